package dev.jreft.hooks;

import dev.jreft.hooks.graph.OnnxFormatException;
import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.hooks.io.Npy;
import dev.jreft.hooks.runtime.ActivationCache;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.hooks.runtime.OrtRuntime;
import dev.jreft.hooks.runtime.ShapeSpecializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GraphAndRuntimeTest {
    @Test
    void garbledOnnxIsAClearError(@TempDir Path tmp) throws IOException {
        Path garbled = tmp.resolve("garbled.onnx");
        byte[] noise = new byte[4096];
        new java.util.Random(7).nextBytes(noise);
        Files.write(garbled, noise);
        var e = assertThrows(OnnxFormatException.class, () -> OnnxGraph.load(garbled));
        assertTrue(e.getMessage().contains("is not a valid ONNX model"), e.getMessage());

        byte[] full;
        try (InputStream in = getClass().getClassLoader().getResourceAsStream(HookedModel.MINILM_ONNX)) {
            full = in.readAllBytes();
        }
        Path truncated = tmp.resolve("truncated.onnx");
        Files.write(truncated, Arrays.copyOf(full, full.length / 3));
        var t = assertThrows(OnnxFormatException.class, () -> OnnxGraph.load(truncated));
        assertTrue(t.getMessage().contains("truncated"), t.getMessage());

        var missing = assertThrows(OnnxFormatException.class, () -> OnnxGraph.load(tmp.resolve("none.onnx")));
        assertTrue(missing.getMessage().contains("not found"), missing.getMessage());
    }

    @Test
    void saveIsAtomicAndRoundTripsTheFingerprint(@TempDir Path tmp) throws IOException {
        OnnxGraph g = OnnxGraph.load(Fixtures.dir().resolve("models/gpt2/gpt2_op14.onnx"));
        Path out = tmp.resolve("copy.onnx");
        g.save(out);
        assertEquals(g.fingerprint(), OnnxGraph.load(out).fingerprint());
        try (var files = Files.list(tmp)) {
            assertEquals(List.of(out), files.toList(), "no temp file left behind");
        }
        OnnxGraph edited = g.copy();
        edited.exposeOutput("/transformer/h.0/Add_output_0", 1);
        assertNotEquals(g.fingerprint(), edited.fingerprint());
    }

    @Test
    void externalDataRoundTrip(@TempDir Path tmp) throws IOException {
        OnnxGraph g = OnnxGraph.load(Fixtures.dir().resolve("models/llama/llama_op17.onnx"));
        Path model = tmp.resolve("llama_ext.onnx");
        g.saveWithExternalData(model, "llama_ext.onnx.data", 1024);
        assertTrue(Files.size(model) < Files.size(tmp.resolve("llama_ext.onnx.data")), "weights moved out");
        OnnxGraph back = OnnxGraph.load(model);
        assertEquals(g.fingerprint(), back.fingerprint());
        assertEquals(g.toProto(), back.toProto());

        Files.write(tmp.resolve("llama_ext.onnx.data"), new byte[10]);
        var e = assertThrows(OnnxFormatException.class, () -> OnnxGraph.load(model));
        assertTrue(e.getMessage().contains("is too short for initializer"), e.getMessage());
    }

    @Test
    void cudaRequestFallsBackToCpuWhenTheLibrariesAreMissing() {
        // the default build carries the CPU-only ORT: asking for CUDA must log one line and run on CPU
        try (OrtRuntime rt = new OrtRuntime(dev.jreft.hooks.runtime.Device.CUDA, 4)) {
            HookedModel m = new HookedModel(OnnxGraph.load(Fixtures.dir().resolve("models/bert/bert_op14.onnx")),
                    null, rt);
            var out = m.run(Fixtures.inputs("bert")).get("last_hidden_state");
            assertClose(Fixtures.npy("models/bert/last_hidden_state.npy"), out, 1e-4, "bert on fallback");
            assertEquals(dev.jreft.hooks.runtime.Device.CPU, rt.device());
        }
    }

    @Test
    void allHooksOfEveryFixtureModelMatchTheReferencesInOneRun() {
        for (String model : List.of("gpt2", "llama", "bert")) {
            var m = Fixtures.manifest().get("models").get(model);
            HookedModel hm = HookedModel.load(Fixtures.dir().resolve(m.get("onnx").elements().next().asText()));
            List<String> hooks = hm.hooks().names();
            ActivationCache cache = hm.runWithCache(Fixtures.inputs(model), hooks);
            for (String h : hooks) {
                INDArray ref = Fixtures.npy(m.get("hook_references").get(h).asText());
                assertClose(ref, cache.get(h), 1e-4, model + " " + h);
            }
            String out = m.get("onnx_output").asText();
            assertClose(Fixtures.npy(m.get("outputs").get(out).asText()), cache.output(out), 1e-4, model + " " + out);
        }
    }

    @Test
    void minilmFinalBlockOutputIsTheModelsOwnOutput() {
        HookedModel m = HookedModel.minilm();
        Batch batch = Fixtures.inputs("minilm");
        ActivationCache c = m.runWithCache(batch, "blocks.5.block_output", "blocks.2.block_output");
        assertEquals(c.output("last_hidden_state"), c.get("blocks.5.block_output"));
        assertClose(Fixtures.npy("models/minilm/hooks/blocks.2.block_output.npy"), c.get("blocks.2.block_output"),
                1e-3, "minilm blocks.2");
    }

    @Test
    void tokenizerReproducesTheFixtureTokenIds() throws IOException {
        HookedModel m = HookedModel.minilm();
        var sentences = new com.fasterxml.jackson.databind.ObjectMapper()
                .readTree(Fixtures.dir().resolve("models/minilm/sentences.json").toFile());
        List<String> texts = new java.util.ArrayList<>();
        sentences.get("sentences").forEach(s -> texts.add(s.asText()));
        Batch b = m.tokenize(texts);
        Batch ref = Fixtures.inputs("minilm");
        assertEquals(ref.inputs().get("input_ids"), b.inputs().get("input_ids"));
        assertEquals(ref.inputs().get("attention_mask"), b.inputs().get("attention_mask"));
    }

    @Test
    void repeatedRunsWriteIntoFreshArraysWithTheSameValues() {
        // the second run of a shape goes through pinned outputs (ORT writes into ND4J memory directly)
        HookedModel m = HookedModel.load(Fixtures.dir().resolve("models/llama/llama_op17.onnx"));
        Batch b = Fixtures.inputs("llama");
        ActivationCache first = m.runWithCache(b, "blocks.0.mlp_activation", "blocks.1.attention_weight");
        ActivationCache second = m.runWithCache(b, "blocks.0.mlp_activation", "blocks.1.attention_weight");
        ActivationCache third = m.runWithCache(b, "blocks.0.mlp_activation", "blocks.1.attention_weight");
        assertEquals(first.hooks(), second.hooks());
        assertEquals(first.outputs(), third.outputs());
        second.get("blocks.0.mlp_activation").assign(0);
        assertEquals(first.get("blocks.0.mlp_activation"), third.get("blocks.0.mlp_activation"), "no aliasing");
        assertClose(Fixtures.npy("models/llama/logits.npy"), third.output("logits"), 1e-4, "pinned logits");
    }

    @Test
    void rawTensorNamesWorkAsHooks() {
        HookedModel m = HookedModel.load(Fixtures.dir().resolve("models/gpt2/gpt2_op14.onnx"));
        String tensor = m.hook("blocks.0.mlp_output").tensor();
        ActivationCache c = m.runWithCache(Fixtures.inputs("gpt2"), "tensor:" + tensor, "blocks.0.mlp_output");
        assertEquals(c.get("blocks.0.mlp_output"), c.get("tensor:" + tensor));
    }

    @Test
    void specialisedGraphFoldsShapeArithmeticAndKeepsValues() {
        HookedModel m = HookedModel.load(Fixtures.dir().resolve("models/gpt2/gpt2_op14.onnx"));
        List<String> hookTensors = m.hooks().all().stream().map(h -> h.tensor()).distinct().toList();
        OnnxGraph s = ShapeSpecializer.specialise(m.graph(), Map.of("input_ids", new long[] {2, 6},
                "attention_mask", new long[] {2, 6}), hookTensors);
        long shapesBefore = m.graph().nodes().stream().filter(n -> n.getOpType().equals("Shape")).count();
        long shapesAfter = s.nodes().stream().filter(n -> n.getOpType().equals("Shape")).count();
        assertTrue(shapesBefore > 20 && shapesAfter == 0, shapesBefore + " Shape ops before, " + shapesAfter + " after");
        assertTrue(s.nodes().size() < m.graph().nodes().size() / 2, s.nodes().size() + " nodes left");
        HookedModel specialised = new HookedModel(s, null, OrtRuntime.shared());
        assertEquals(m.hooks().names(), specialised.hooks().names());
        var a = m.run(Fixtures.inputs("gpt2")).get("logits");
        var b = specialised.run(Fixtures.inputs("gpt2")).get("logits");
        assertClose(a, b, 1e-5, "specialised logits");
    }

    @Test
    void frozenPrefixSplitGivesTheSameGradientsAsTheWholeGraph() {
        HookedModel m = HookedModel.load(Fixtures.dir().resolve("models/bert/bert_op14.onnx"));
        Batch b = Fixtures.inputs("bert");
        var feeds = Map.of(dev.jreft.hooks.autodiff.LossGraphs.PROBE, Fixtures.npy("models/bert/probe.npy"),
                dev.jreft.hooks.autodiff.LossGraphs.MASK, b.attentionMask().castTo(
                        org.nd4j.linalg.api.buffer.DataType.FLOAT));
        java.util.function.Function<OnnxGraph, String> loss =
                g -> dev.jreft.hooks.autodiff.LossGraphs.maskedProbeSum(g, "last_hidden_state", 32);
        List<String> hooks = List.of("blocks.0.mlp_output", "blocks.1.attention_input");
        var split = dev.jreft.hooks.autodiff.HookGradients.compute(m, b, loss, feeds, hooks);
        System.setProperty(dev.jreft.hooks.autodiff.GraphGradients.PREFIX_SPLIT, "false");
        try {
            var whole = dev.jreft.hooks.autodiff.HookGradients.compute(m, b, loss, feeds, hooks);
            assertEquals(whole.loss(), split.loss(), 1e-4);
            for (String h : hooks) {
                assertClose(whole.gradients().get(h), split.gradients().get(h), 1e-5, h);
            }
        } finally {
            System.clearProperty(dev.jreft.hooks.autodiff.GraphGradients.PREFIX_SPLIT);
        }
    }

    @Test
    void npyRoundTrip(@TempDir Path tmp) throws IOException {
        INDArray f = Nd4j.rand(org.nd4j.linalg.api.buffer.DataType.FLOAT, 2, 3, 4);
        INDArray l = Nd4j.createFromArray(new long[][] {{1, -2}, {3, Long.MAX_VALUE}});
        Npy.write(tmp.resolve("f.npy"), f);
        Npy.write(tmp.resolve("l.npy"), l);
        assertEquals(f, Npy.read(tmp.resolve("f.npy")));
        assertEquals(l, Npy.read(tmp.resolve("l.npy")));
        var bad = assertThrows(IllegalArgumentException.class, () -> Npy.parse(new byte[] {1, 2, 3}, "x.npy"));
        assertTrue(bad.getMessage().contains("not a .npy"));
    }

    @Test
    void batchMismatchIsAClearError() {
        var e = assertThrows(IllegalArgumentException.class, () -> Batch.of(new long[][] {{1, 2}, {3, 4}},
                new long[][] {{1, 1}}));
        assertTrue(e.getMessage().contains("batch mismatch"), e.getMessage());
    }

    static void assertClose(INDArray expected, INDArray actual, double atol, String what) {
        assertArrayEquals(expected.shape(), actual.shape(), what + " shape");
        double err = expected.castTo(org.nd4j.linalg.api.buffer.DataType.DOUBLE)
                .sub(actual.castTo(org.nd4j.linalg.api.buffer.DataType.DOUBLE)).amaxNumber().doubleValue();
        assertTrue(err <= atol + 1e-4 * expected.amaxNumber().doubleValue(), what + ": max abs error " + err);
    }
}
