package dev.jreft.analysis;

import ai.onnx.proto.OnnxMl.NodeProto;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jreft.hooks.discovery.DetectionException;
import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.io.FixturesLocation;
import dev.jreft.hooks.io.Npy;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.training.data.LabelledText;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LensTest {
    private static Path fixtures() {
        var d = FixturesLocation.find();
        Assumptions.assumeTrue(d.isPresent(), "reference fixtures not found at " + FixturesLocation.configured());
        return d.get();
    }

    private static Batch inputs(String model) throws IOException {
        JsonNode m = new ObjectMapper().readTree(fixtures().resolve("manifest.json").toFile());
        Map<String, INDArray> in = new LinkedHashMap<>();
        m.get("models").get(model).get("inputs").fields().forEachRemaining(e -> in.put(e.getKey(),
                Npy.read(fixtures().resolve(e.getValue().asText()))));
        return new Batch(in);
    }

    /** Read at the last block's output, the lens is the model: the fixture's PyTorch logits. */
    @ParameterizedTest
    @CsvSource({"gpt2, gpt2_op14.onnx", "gpt2, gpt2_op17.onnx", "llama, llama_op17.onnx"})
    void lensAtTheLastBlockIsTheModelsLogits(String model, String file) throws IOException {
        try (HookedModel m = HookedModel.load(fixtures().resolve("models/" + model + "/" + file))) {
            LogitLens lens = LogitLens.of(m);
            List<String> hooks = new ArrayList<>(m.hooks().layers("block_output"));
            hooks.add(0, "blocks.0.block_input");
            Map<String, INDArray> read = lens.run(inputs(model), hooks);
            assertEquals(hooks, List.copyOf(read.keySet()));
            INDArray expected = Npy.read(fixtures().resolve("models/" + model + "/logits.npy"));
            INDArray last = read.get("blocks.1.block_output");
            assertArrayEquals(expected.shape(), last.shape());
            assertTrue(last.sub(expected).amaxNumber().doubleValue() < 1e-4, lens.describe());
            // earlier layers read something else
            double apart = read.get("blocks.0.block_output").sub(expected).amaxNumber().doubleValue();
            assertTrue(apart > 1e-2, "layer 0's lens equals the logits: " + apart + "; " + lens.describe());
            assertTrue(lens.describe().contains("MatMul"), lens.describe());
        }
    }

    /** GPT-2's lens at layer 0 is ln_f then the tied unembedding, computed here from the graph's weights. */
    @Test
    void gpt2LensAtLayerZeroIsLnFThenUnembedding() throws IOException {
        try (HookedModel m = HookedModel.load(fixtures().resolve("models/gpt2/gpt2_op17.onnx"))) {
            INDArray h = Npy.read(fixtures().resolve("models/gpt2/hooks/blocks.0.block_output.npy"));
            long d = h.size(2);
            INDArray gamma = Nd4j.create(m.graph().floats("transformer.ln_f.weight"), new long[] {1, 1, d}, 'c');
            INDArray beta = Nd4j.create(m.graph().floats("transformer.ln_f.bias"), new long[] {1, 1, d}, 'c');
            NodeProto unembed = m.graph().nodes().stream().filter(n -> n.getName().equals("/lm_head/MatMul"))
                    .findFirst().orElseThrow();
            String w = unembed.getInput(1);
            long vocab = m.graph().initializer(w).orElseThrow().getDims(1);
            INDArray wu = Nd4j.create(m.graph().floats(w), new long[] {d, vocab}, 'c');
            INDArray mean = h.mean(true, 2);
            INDArray centred = h.sub(mean);
            INDArray var = centred.mul(centred).mean(true, 2);
            INDArray normed = centred.div(org.nd4j.linalg.ops.transforms.Transforms.sqrt(var.add(1e-5))).mul(gamma)
                    .add(beta);
            INDArray expected = normed.reshape(h.size(0) * h.size(1), d).mmul(wu).reshape(h.size(0), h.size(1), vocab);
            INDArray lens = LogitLens.of(m).run(inputs("gpt2"), List.of("blocks.0.block_output"))
                    .get("blocks.0.block_output");
            assertTrue(lens.sub(expected).amaxNumber().doubleValue() < 1e-3, "lens vs ln_f + lm_head by hand: "
                    + lens.sub(expected).amaxNumber() + " " + lens.amaxNumber() + " " + expected.amaxNumber());
        }
    }

    @Test
    void encoderHasNoLogitLensAndOnlyResidualHooksAreRead() throws IOException {
        try (HookedModel bert = HookedModel.load(fixtures().resolve("models/bert/bert_op14.onnx"))) {
            var e = assertThrows(DetectionException.class, () -> LogitLens.of(bert));
            assertTrue(e.getMessage().contains("probe lens"), e.getMessage());
        }
        try (HookedModel m = HookedModel.load(fixtures().resolve("models/gpt2/gpt2_op17.onnx"))) {
            var e = assertThrows(ConfigException.class, () -> LogitLens.of(m).run(inputs("gpt2"),
                    List.of("blocks.0.mlp_activation")));
            assertTrue(e.getMessage().contains("hooks[0]") && e.getMessage().contains("residual"), e.getMessage());
        }
    }

    /** The probe lens reads a last-layer probe at each layer; at the last layer it is that probe. */
    @Test
    void probeLensReadsTheLastLayersProbeEverywhere() {
        HookedModel model = HookedModel.minilm();
        String[] good = {"great", "wonderful", "excellent", "lovely", "superb", "fantastic", "delightful", "brilliant"};
        String[] bad = {"awful", "terrible", "horrible", "dreadful", "boring", "painful", "disappointing", "poor"};
        String[] frames = {"The film was %s.", "What a %s meal.", "Service here is %s.", "Honestly, %s acting."};
        List<LabelledText> train = new ArrayList<>();
        List<LabelledText> test = new ArrayList<>();
        for (String frame : frames) {
            for (int i = 0; i < good.length; i++) {
                List<LabelledText> into = i < 6 ? train : test;
                into.add(new LabelledText(String.format(frame, good[i]), 1, "synthetic"));
                into.add(new LabelledText(String.format(frame, bad[i]), 0, "synthetic"));
            }
        }
        List<String> hooks = List.of("blocks.0.block_output", "blocks.5.block_output");
        var rows = LayerProbes.lens(model, train, test, test, hooks, 300, 1e-2);
        assertEquals(hooks, rows.stream().map(LayerProbes.LensRow::hook).toList());
        assertTrue(rows.get(1).accuracy() >= 0.8, "the probe at its own layer: " + rows.get(1));
        assertTrue(rows.get(1).trueLabelProbability() > 0.5, rows.get(1).toString());
    }
}
