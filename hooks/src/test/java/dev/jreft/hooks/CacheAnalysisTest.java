package dev.jreft.hooks;

import dev.jreft.hooks.runtime.ActivationCache;
import dev.jreft.hooks.runtime.HookedModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The cache's TransformerLens-style analyses on the fixture exports, checked against the PyTorch hook values. */
class CacheAnalysisTest {
    private static double maxAbs(INDArray a, INDArray b) {
        return a.sub(b).amaxNumber().doubleValue();
    }

    private static ActivationCache cache(HookedModel m, String model, List<String> hooks) {
        return m.runWithCache(Fixtures.inputs(model), hooks);
    }

    @ParameterizedTest
    @CsvSource({"gpt2, models/gpt2/gpt2_op17.onnx", "llama, models/llama/llama_op17.onnx"})
    void residualStreamOfPreNormModelsIsTheSumOfItsWrites(String model, String file) {
        try (HookedModel m = HookedModel.load(Fixtures.dir().resolve(file))) {
            List<String> hooks = new ArrayList<>(ActivationCache.decompositionHooks(m.hooks()));
            hooks.addAll(ActivationCache.residualHooks(m.hooks()));
            ActivationCache c = cache(m, model, hooks.stream().distinct().toList());

            ActivationCache.Stack parts = c.decomposeResidual();
            assertEquals(List.of("blocks.0.block_input", "blocks.0.attention_output", "blocks.0.mlp_output",
                    "blocks.1.attention_output", "blocks.1.mlp_output"), parts.labels());
            INDArray last = Fixtures.npy("models/" + model + "/hooks/blocks.1.block_output.npy");
            assertTrue(maxAbs(parts.values().sum(0), last) < 1e-4, "sum of writes vs the PyTorch stream");

            ActivationCache.Stack stream = c.accumulatedResidual();
            assertEquals(3, stream.values().size(0));
            for (int i = 0; i < 3; i++) {
                String hook = i == 0 ? "blocks.0.block_input" : "blocks." + (i - 1) + ".block_output";
                assertEquals(hook, stream.labels().get(i));
                assertTrue(maxAbs(stream.values().get(NDArrayIndex.point(i)), Fixtures.npy("models/" + model
                        + "/hooks/" + hook + ".npy")) < 1e-4, hook);
            }
        }
    }

    @Test
    void postNormModelIsRefusedADecomposition() {
        try (HookedModel m = HookedModel.load(Fixtures.dir().resolve("models/bert/bert_op14.onnx"))) {
            ActivationCache c = cache(m, "bert", ActivationCache.decompositionHooks(m.hooks()));
            var e = assertThrows(IllegalStateException.class, c::decomposeResidual);
            assertTrue(e.getMessage().contains("post-norm"), e.getMessage());
        }
    }

    /** Head results summed over heads, plus the output projection's bias, are the attention output. */
    @ParameterizedTest
    @CsvSource({"gpt2, models/gpt2/gpt2_op17.onnx", "llama, models/llama/llama_op17.onnx",
            "bert, models/bert/bert_op14.onnx"})
    void headResultsAddUpToTheAttentionOutput(String model, String file) {
        try (HookedModel m = HookedModel.load(Fixtures.dir().resolve(file))) {
            List<String> hooks = new ArrayList<>(m.hooks().layers("attention_value_output"));
            ActivationCache c = cache(m, model, hooks);
            long heads = m.hooks().config().heads();
            for (int l = 0; l < m.hooks().config().layers(); l++) {
                INDArray r = c.headResults(m, l);
                INDArray out = Fixtures.npy("models/" + model + "/hooks/blocks." + l + ".attention_output.npy");
                assertArrayEquals(new long[] {out.size(0), out.size(1), heads, out.size(2)}, r.shape());
                INDArray sum = r.sum(2);
                String proj = m.hook("blocks." + l + ".attention_output").tensor();
                var module = m.modules().all().stream().filter(x -> x.output().equals(proj)).findFirst().orElseThrow();
                if (module.hasBias()) {
                    sum = sum.add(m.modules().bias(module).reshape(1, 1, module.out()));
                }
                assertTrue(maxAbs(sum, out) < 1e-4, model + " layer " + l + ": " + maxAbs(sum, out));
            }
            ActivationCache.Stack all = c.stackHeadResults(m);
            assertEquals(m.hooks().config().layers() * heads, all.values().size(0));
            assertEquals("L1H0", all.labels().get((int) heads));
        }
    }

    @Test
    void stackByLayerNeedsEveryLayerCached() {
        try (HookedModel m = HookedModel.load(Fixtures.dir().resolve("models/gpt2/gpt2_op17.onnx"))) {
            ActivationCache all = cache(m, "gpt2", m.hooks().layers("mlp_output"));
            INDArray s = all.stackByLayer("mlp_output");
            assertEquals(2, s.size(0));
            assertTrue(maxAbs(s.get(NDArrayIndex.point(1)), Fixtures.npy("models/gpt2/hooks/blocks.1.mlp_output.npy"))
                    < 1e-4);
            ActivationCache gap = cache(m, "gpt2", List.of("blocks.1.mlp_output"));
            var e = assertThrows(IllegalArgumentException.class, () -> gap.stackByLayer("mlp_output"));
            assertTrue(e.getMessage().contains("not cached for layers [0]"), e.getMessage());
            var unknown = assertThrows(RuntimeException.class, () -> m.hooks().layers("mlp_out"));
            assertTrue(unknown.getMessage().contains("mlp_output"), unknown.getMessage());
        }
    }
}
