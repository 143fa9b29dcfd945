package dev.jreft.hooks.runtime;

import ai.onnxruntime.OnnxTensor;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TensorsTest {
    @Test
    void boolArraysReachOrtWithTheirValuesSharedOrCopied() throws Exception {
        INDArray mask = Nd4j.createFromArray(new boolean[][] {{true, false, false}, {false, true, true}});
        INDArray view = mask.transpose(); // a view in 'f' order: copied
        for (INDArray a : new INDArray[] {mask, view}) {
            try (OnnxTensor t = Tensors.toOrt(OrtRuntime.shared().env(), a)) {
                INDArray back = Tensors.fromOrt(t);
                assertEquals(DataType.BOOL, back.dataType());
                assertTrue(Tensors.shareable(back), "read back as an array ORT can take without a copy");
                assertArrayEquals(a.shape(), back.shape());
                for (int i = 0; i < a.size(0); i++) {
                    for (int j = 0; j < a.size(1); j++) {
                        assertEquals(a.getDouble(i, j), back.getDouble(i, j), 0.0, i + "," + j);
                    }
                }
            }
        }
        assertTrue(Tensors.shareable(mask));
    }

    @Test
    void boolAndInt64OutputsArePinnedFromTheSecondRunOnWithTheirOwnValues() {
        dev.jreft.hooks.graph.OnnxGraph g = dev.jreft.hooks.graph.OnnxGraph.create(17, "pins");
        g.append("t", b -> {
            String x = b.input("x", dev.jreft.hooks.graph.ElemTypes.FLOAT, 2, 3);
            b.opTo("positive", "Greater", java.util.List.of(x, b.scalar(0, dev.jreft.hooks.graph.ElemTypes.FLOAT)));
            b.opTo("whole", "Cast", java.util.List.of(x), dev.jreft.hooks.graph.Attr.i("to", 7));
        });
        g.exposeOutput("positive", dev.jreft.hooks.graph.ElemTypes.BOOL);
        g.exposeOutput("whole", dev.jreft.hooks.graph.ElemTypes.INT64);
        CompiledGraph c = new CompiledGraph(g, g.fingerprint(), OrtRuntime.shared());
        for (float sign : new float[] {1, -1, 1}) { // the second and third runs write into pinned arrays
            INDArray x = Nd4j.createFromArray(new float[][] {{1.5f, -2f, 3f}, {-4f, 5f, 0.5f}}).muli(sign);
            var out = c.run(java.util.Map.of("x", x), java.util.List.of("positive", "whole"));
            for (int i = 0; i < 2; i++) {
                for (int j = 0; j < 3; j++) {
                    assertEquals(x.getDouble(i, j) > 0 ? 1.0 : 0.0, out.get("positive").getDouble(i, j), 0.0);
                    assertEquals((long) x.getFloat(i, j), out.get("whole").getLong(i, j));
                }
            }
        }
    }

    /**
     * Outputs whose declared dims are all fixed or named by an input's dims are pinned from the first run (decoding
     * meets new shapes every step); an export that declares them wrongly still gets its right values, unpinned.
     */
    @Test
    void declaredOutputShapesPinTheFirstRunAndAWrongDeclarationFallsBack() {
        for (boolean right : new boolean[] {true, false}) {
            dev.jreft.hooks.graph.OnnxGraph g = dev.jreft.hooks.graph.OnnxGraph.create(17, "declared");
            g.addInput("x", dev.jreft.hooks.graph.ElemTypes.FLOAT, new long[] {-1, -1}, new String[] {"batch",
                    "sequence"});
            g.append("t", b -> b.opTo("y", "Concat", java.util.List.of("x", "x"), dev.jreft.hooks.graph.Attr.i("axis",
                    1)));
            // right: y is [batch, total] with total named by no input (not derivable); wrong: [batch, sequence]
            g.exposeOutput("y", dev.jreft.hooks.graph.ElemTypes.FLOAT, new long[] {-1, -1}, new String[] {"batch",
                    right ? "total" : "sequence"});
            CompiledGraph c = new CompiledGraph(g, g.fingerprint(), OrtRuntime.shared());
            for (int len = 1; len <= 3; len++) {
                INDArray x = Nd4j.rand(org.nd4j.linalg.api.buffer.DataType.FLOAT, 2, len);
                INDArray y = c.run(java.util.Map.of("x", x), java.util.List.of("y")).get("y");
                assertTrue(java.util.Arrays.equals(new long[] {2, 2L * len}, y.shape()), right + " " + len);
                assertEquals(0.0, y.get(org.nd4j.linalg.indexing.NDArrayIndex.all(),
                        org.nd4j.linalg.indexing.NDArrayIndex.interval(len, 2 * len)).sub(x).amaxNumber().doubleValue(),
                        0.0);
            }
            assertEquals(right, c.pinsDeclaredShapes(), "a derivable but wrong declaration is found out: " + right);
        }
        // Identity: declared [batch, sequence] is right; pinned from the first run
        dev.jreft.hooks.graph.OnnxGraph g = dev.jreft.hooks.graph.OnnxGraph.create(17, "identity");
        g.addInput("x", dev.jreft.hooks.graph.ElemTypes.FLOAT, new long[] {-1, -1}, new String[] {"batch", "sequence"});
        g.append("t", b -> b.opTo("y", "Neg", java.util.List.of("x")));
        g.exposeOutput("y", dev.jreft.hooks.graph.ElemTypes.FLOAT, new long[] {-1, -1}, new String[] {"batch",
                "sequence"});
        CompiledGraph c = new CompiledGraph(g, g.fingerprint(), OrtRuntime.shared());
        for (int len = 1; len <= 3; len++) {
            INDArray x = Nd4j.rand(org.nd4j.linalg.api.buffer.DataType.FLOAT, 2, len);
            assertEquals(0.0, c.run(java.util.Map.of("x", x), java.util.List.of("y")).get("y").add(x).amaxNumber()
                    .doubleValue(), 0.0);
        }
        assertTrue(c.pinsDeclaredShapes());
    }
}
