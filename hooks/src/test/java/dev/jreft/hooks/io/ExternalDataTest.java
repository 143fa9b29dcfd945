package dev.jreft.hooks.io;

import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.StringStringEntryProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import com.google.protobuf.ByteString;
import dev.jreft.hooks.graph.ElemTypes;
import dev.jreft.hooks.graph.OnnxFormatException;
import dev.jreft.hooks.graph.OnnxGraph;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** An ONNX file's external-data locations must name files inside the model's folder (the ONNX rule). */
class ExternalDataTest {
    @Test
    void locationsOutsideTheModelsFolderAreRefusedNamingTensorAndLocation(@TempDir Path tmp) throws IOException {
        Path modelDir = Files.createDirectories(tmp.resolve("model"));
        Path model = modelDir.resolve("tiny.onnx");
        tiny().saveWithExternalData(model, "tiny.onnx.data", 1);
        assertEquals(2, OnnxGraph.load(model).initializers().get(0).getDimsCount(), "loads as written");

        Path outside = Files.write(tmp.resolve("outside.data"), new byte[16]);
        Files.createSymbolicLink(modelDir.resolve("link.data"), outside);
        for (String location : List.of("../outside.data", outside.toString(), "link.data")) {
            relocate(model, location);
            var e = assertThrows(OnnxFormatException.class, () -> OnnxGraph.load(model), location);
            assertTrue(e.getMessage().startsWith("initializer 'w' of " + model + ": external data location: found '"
                    + location + "'"), e.getMessage());
        }
        relocate(model, "missing.data");
        assertTrue(assertThrows(OnnxFormatException.class, () -> OnnxGraph.load(model)).getMessage()
                .contains("found no file"));
        assertThrows(IllegalArgumentException.class, () -> tiny().saveWithExternalData(model, "../x.data", 1));
    }

    /** y = x + w with a 2 × 2 float initializer w. */
    static OnnxGraph tiny() {
        OnnxGraph g = OnnxGraph.create(13, "tiny");
        g.addInput("x", ElemTypes.FLOAT, new long[] {2, 2}, null);
        g.addInitializer(TensorProto.newBuilder().setName("w").setDataType(ElemTypes.FLOAT).addDims(2).addDims(2)
                .setRawData(ByteString.copyFrom(new byte[16])).build());
        g.addNodes(List.of(NodeProto.newBuilder().setOpType("Add").addInput("x").addInput("w").addOutput("y").build()));
        g.exposeOutput("y", ElemTypes.FLOAT);
        return g;
    }

    private static void relocate(Path model, String location) throws IOException {
        ModelProto.Builder m = ModelProto.parseFrom(Files.readAllBytes(model)).toBuilder();
        TensorProto.Builder t = m.getGraphBuilder().getInitializerBuilder(0);
        t.clearExternalData().addExternalData(StringStringEntryProto.newBuilder().setKey("location").setValue(location))
                .addExternalData(StringStringEntryProto.newBuilder().setKey("offset").setValue("0"))
                .addExternalData(StringStringEntryProto.newBuilder().setKey("length").setValue("16"));
        Files.write(model, m.build().toByteArray());
    }
}
