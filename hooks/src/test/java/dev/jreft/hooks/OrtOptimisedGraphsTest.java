package dev.jreft.hooks;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import dev.jreft.hooks.discovery.LinearModule;
import dev.jreft.hooks.discovery.ModuleMap;
import dev.jreft.hooks.discovery.UnknownHookException;
import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.hooks.runtime.ActivationCache;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.hooks.runtime.OrtRuntime;
import dev.jreft.hooks.runtime.TextTokenizer;
import dev.jreft.hooks.testing.OrtOptimised;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Graphs that onnxruntime's own optimiser wrote (what {@code SessionOptions.setOptimizedModelFilePath} saves: fused
 * LayerNormalization, BiasGelu / Gelu, FusedMatMul, and for int8 DynamicQuantizeMatMul / MatMulIntegerToFloat):
 * every hook is found, and each holds the value the unoptimised graph gives it.
 */
class OrtOptimisedGraphsTest {
    static final String MICROSOFT = "com.microsoft";

    /**
     * What onnxruntime's transformer optimiser does to BERT's residual adds and norms (its SkipLayerNorm fusion with
     * the bias folded in): {@code LayerNorm(dense(x) + b + skip)} becomes one {@code SkipLayerNormalization(x·W, skip,
     * γ, β, b)} named without the module path, writing the norm's output tensor under its old name.
     */
    static OnnxGraph skipLayerNormFused(OnnxGraph g) {
        Set<Integer> removed = new HashSet<>();
        Map<Integer, NodeProto> inserted = new HashMap<>();
        int fused = 0;
        for (int i = 0; i < g.nodes().size(); i++) {
            NodeProto ln = g.nodes().get(i);
            if (!ln.getOpType().equals("LayerNormalization") || !ln.getName().startsWith("/encoder/")) {
                continue;
            }
            NodeProto residual = g.producer(ln.getInput(0)).orElseThrow();
            NodeProto dense = g.producer(residual.getInput(0)).orElseThrow(); // Add(bias, x·W)
            String bias = dense.getInput(0);
            String product = dense.getInput(1);
            removed.add(g.producerPosition(residual.getOutput(0)));
            removed.add(g.producerPosition(dense.getOutput(0)));
            removed.add(i);
            inserted.put(i, NodeProto.newBuilder().setName("SkipLayerNorm_AddBias_" + fused++).setDomain(MICROSOFT)
                    .setOpType("SkipLayerNormalization").addAllInput(List.of(product, residual.getInput(1),
                            ln.getInput(1), ln.getInput(2), bias)).addOutput(ln.getOutput(0))
                    .addAttribute(AttributeProto.newBuilder().setName("epsilon").setType(AttributeProto.AttributeType.FLOAT)
                            .setF(1e-12f)).build());
        }
        g.replaceNodes(removed, inserted);
        g.importDomain(MICROSOFT, 1);
        return g;
    }

    /**
     * ... and its attention fusion: every layer's self-attention (q, k, v projections, scores, softmax, context)
     * becomes one {@code Attention(x, W_qkv, b_qkv, mask)} named {@code Attention_N}, writing the context tensor
     * under its old name.
     */
    static OnnxGraph attentionFused(OnnxGraph g, int layers) {
        Set<Integer> removed = new HashSet<>();
        Map<Integer, NodeProto> inserted = new HashMap<>();
        ModuleMap modules = ModuleMap.of(g);
        String mask = "attention_mask_int32";
        for (int l = 0; l < layers; l++) {
            String self = "/encoder/layer." + l + "/attention/self/";
            String context = self + "Reshape_3_output_0";
            long d = 384;
            float[] w = new float[(int) (d * 3 * d)];
            float[] b = new float[(int) (3 * d)];
            String input = null;
            int k = 0;
            for (String proj : List.of("query", "key", "value")) {
                LinearModule m = modules.get("encoder.layer." + l + ".attention.self." + proj).orElseThrow();
                input = m.input();
                float[] wm = g.floats(m.weight()); // [in, out]
                for (int row = 0; row < d; row++) {
                    System.arraycopy(wm, (int) (row * d), w, (int) (row * 3 * d + k * d), (int) d);
                }
                System.arraycopy(g.floats(m.bias()), 0, b, (int) (k * d), (int) d);
                k++;
            }
            g.addInitializer(floats("qkv_weight_" + l, w, d, 3 * d));
            g.addInitializer(floats("qkv_bias_" + l, b, 3 * d));
            int last = -1;
            for (int i = 0; i < g.nodes().size(); i++) {
                if (g.nodes().get(i).getName().startsWith(self)) {
                    removed.add(i);
                    last = i;
                }
            }
            inserted.put(last, NodeProto.newBuilder().setName("Attention_" + l).setDomain(MICROSOFT)
                    .setOpType("Attention").addAllInput(List.of(input, "qkv_weight_" + l, "qkv_bias_" + l, mask))
                    .addOutput(context).addAttribute(AttributeProto.newBuilder().setName("num_heads")
                            .setType(AttributeProto.AttributeType.INT).setI(12)).build());
        }
        g.replaceNodes(removed, inserted);
        OnnxGraph out = OnnxGraph.wrap(g.toProto().toBuilder().setGraph(g.toProto().getGraph().toBuilder()
                .addNode(0, NodeProto.newBuilder().setName("MaskCast").setOpType("Cast").addInput("attention_mask")
                        .addOutput(mask).addAttribute(AttributeProto.newBuilder().setName("to")
                                .setType(AttributeProto.AttributeType.INT).setI(6)))).build(), "attention-fused");
        out.importDomain(MICROSOFT, 1);
        out.removeDeadNodes(); // the unfused mask arithmetic nothing reads now
        return out;
    }

    /**
     * ... its embedding fusion (word + position + segment embeddings and their norm in one EmbedLayerNormalization,
     * int32 ids) and, as its FastGelu fusion writes for the tanh GELU, FastGelu in place of BiasGelu.
     */
    static OnnxGraph embedAndFastGeluFused(OnnxGraph g) {
        List<NodeProto> nodes = new java.util.ArrayList<>();
        String ln = null;
        for (NodeProto n : g.nodes()) {
            if (n.getName().startsWith("/embeddings/")) {
                if (n.getOpType().equals("LayerNormalization")) {
                    ln = n.getOutput(0);
                    for (String in : List.of("input_ids", "token_type_ids", "attention_mask")) {
                        nodes.add(NodeProto.newBuilder().setName("Cast_" + in).setOpType("Cast").addInput(in)
                                .addOutput(in + "_int32").addAttribute(AttributeProto.newBuilder().setName("to")
                                        .setType(AttributeProto.AttributeType.INT).setI(6)).build());
                    }
                    nodes.add(NodeProto.newBuilder().setName("EmbedLayerNormalization_0").setDomain(MICROSOFT)
                            .setOpType("EmbedLayerNormalization").addAllInput(List.of("input_ids_int32",
                                    "token_type_ids_int32", "embeddings.word_embeddings.weight",
                                    "embeddings.position_embeddings.weight", "embeddings.token_type_embeddings.weight",
                                    n.getInput(1), n.getInput(2), "attention_mask_int32")).addOutput(ln)
                            .addOutput("mask_index").addAttribute(AttributeProto.newBuilder().setName("epsilon")
                                    .setType(AttributeProto.AttributeType.FLOAT).setF(1e-12f)).build());
                }
                continue; // the lookups, sums and position slice are inside the fused op now
            }
            nodes.add(n.getOpType().equals("BiasGelu") ? n.toBuilder().setOpType("FastGelu").build() : n);
        }
        var proto = g.toProto().toBuilder();
        proto.getGraphBuilder().clearNode().addAllNode(nodes);
        OnnxGraph out = OnnxGraph.parse(proto.build().toByteArray(), "embed-fused.onnx", null);
        out.importDomain(MICROSOFT, 1);
        return out;
    }

    static TensorProto floats(String name, float[] values, long... dims) {
        java.nio.ByteBuffer buf = java.nio.ByteBuffer.allocate(values.length * 4).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (float v : values) {
            buf.putFloat(v);
        }
        TensorProto.Builder t = TensorProto.newBuilder().setName(name).setDataType(TensorProto.DataType.FLOAT_VALUE)
                .setRawData(com.google.protobuf.ByteString.copyFrom(buf.array()));
        for (long x : dims) {
            t.addDims(x);
        }
        return t.build();
    }

    @Test
    void hooksASkipLayerNormFusionHidesAreReportedByItsNodeAndTheRestHoldTheirValues(@TempDir Path tmp)
            throws Exception {
        OnnxGraph g = skipLayerNormFused(OnnxGraph.load(OrtOptimised.write("all-minilm-l6-v2.onnx", tmp)));
        TextTokenizer tokenizer = TextTokenizer.fromResource("all-minilm-l6-v2-tokenizer.json");
        HookedModel fused = new HookedModel(g, tokenizer, OrtRuntime.shared());
        HookedModel plain = HookedModel.minilm();
        // the norms' outputs keep their names: mlp_input and block_output are found; attention_output and mlp_output
        // are the projections before the bias the fused op adds, so they are hidden, not returned wrong
        assertEquals(plain.hooks().config(), fused.hooks().config());
        assertEquals(12, fused.hooks().hidden().size(), fused.hooks().hidden().toString());
        var e = assertThrows(UnknownHookException.class, () -> fused.hook("blocks.2.mlp_output"));
        assertTrue(e.getMessage().contains("inside the fused com.microsoft.SkipLayerNormalization node"
                + " 'SkipLayerNorm_AddBias_5'") && e.getMessage().contains("optimum"), e.getMessage());
        assertPlacedHooksHoldThePlainValues(plain, fused, tokenizer, 10 * 6);
    }

    /**
     * The optimiser's SkipLayerNormalization (a bias input, no sum output) has a gradient rule: the gradients at
     * hooks below three of its norms equal the plain graph's.
     */
    @Test
    void aSkipLayerNormFusedGraphGivesThePlainGraphsGradients(@TempDir Path tmp) throws Exception {
        OnnxGraph g = skipLayerNormFused(OnnxGraph.load(OrtOptimised.write("all-minilm-l6-v2.onnx", tmp)));
        assertTrue(g.nodes().stream().filter(n -> n.getOpType().equals("SkipLayerNormalization")
                && n.getInputCount() > 4 && n.getOutputCount() < 4).count() >= 6, "fused with a bias, no sum output");
        TextTokenizer tokenizer = TextTokenizer.fromResource("all-minilm-l6-v2-tokenizer.json");
        HookedModel fused = new HookedModel(g, tokenizer, OrtRuntime.shared());
        HookedModel plain = HookedModel.minilm();
        Batch batch = tokenizer.encode(List.of("The movie was wonderful.", "A dull, slow and far too long film."));
        INDArray probe = org.nd4j.linalg.factory.Nd4j.rand(DataType.FLOAT, 384).subi(0.5);
        Map<String, INDArray> feeds = Map.of(dev.jreft.hooks.autodiff.LossGraphs.PROBE, probe,
                dev.jreft.hooks.autodiff.LossGraphs.MASK, batch.attentionMask().castTo(DataType.FLOAT));
        List<String> hooks = List.of("blocks.4.block_output", "blocks.4.mlp_input", "blocks.1.attention_input");
        String out = plain.graph().outputNames().get(0);
        var a = dev.jreft.hooks.autodiff.HookGradients.compute(plain, batch,
                x -> dev.jreft.hooks.autodiff.LossGraphs.maskedProbeSum(x, out, 384), feeds, hooks);
        var b = dev.jreft.hooks.autodiff.HookGradients.compute(fused, batch,
                x -> dev.jreft.hooks.autodiff.LossGraphs.maskedProbeSum(x, fused.graph().outputNames().get(0), 384),
                feeds, hooks);
        assertEquals(a.loss(), b.loss(), 1e-4 * Math.abs(a.loss()));
        for (String h : hooks) {
            INDArray x = a.gradients().get(h).castTo(DataType.DOUBLE);
            INDArray y = b.gradients().get(h).castTo(DataType.DOUBLE);
            double relative = x.sub(y).norm2Number().doubleValue() / x.norm2Number().doubleValue();
            assertTrue(relative < 1e-4, h + "'s gradient differs from the unfused graph's by " + relative);
        }
    }

    @Test
    void hooksAnAttentionFusionHidesAreReportedAndTheRestHoldTheirValues(@TempDir Path tmp) throws Exception {
        OnnxGraph g = attentionFused(skipLayerNormFused(OnnxGraph.load(OrtOptimised.write("all-minilm-l6-v2.onnx", tmp))), 6);
        TextTokenizer tokenizer = TextTokenizer.fromResource("all-minilm-l6-v2-tokenizer.json");
        HookedModel fused = new HookedModel(g, tokenizer, OrtRuntime.shared());
        HookedModel plain = HookedModel.minilm();
        assertEquals(plain.hooks().config(), fused.hooks().config());
        // per layer: the four inside attention and the two before the norms' bias
        assertEquals(6 * 6, fused.hooks().hidden().size(), fused.hooks().hidden().toString());
        var e = assertThrows(UnknownHookException.class, () -> fused.hook("blocks.0.attention_weight"));
        assertTrue(e.getMessage().contains("inside a fused com.microsoft.Attention node of layer 0"), e.getMessage());
        assertPlacedHooksHoldThePlainValues(plain, fused, tokenizer, 6 * 6);
    }

    @Test
    void anEmbeddingFusionAndFastGeluHideNoHook(@TempDir Path tmp) throws Exception {
        OnnxGraph g = embedAndFastGeluFused(OnnxGraph.load(OrtOptimised.write("all-minilm-l6-v2.onnx", tmp)));
        assertTrue(g.nodes().stream().anyMatch(n -> n.getOpType().equals("FastGelu")));
        TextTokenizer tokenizer = TextTokenizer.fromResource("all-minilm-l6-v2-tokenizer.json");
        HookedModel fused = new HookedModel(g, tokenizer, OrtRuntime.shared());
        HookedModel plain = HookedModel.minilm();
        assertEquals(plain.hooks().config(), fused.hooks().config());
        assertEquals(plain.hooks().names(), fused.hooks().names());
        assertTrue(fused.hooks().hidden().isEmpty(), fused.hooks().hidden().toString());
        // the tanh GELU differs from the erf one by up to 1e-3: exact before the first MLP, close after
        Batch batch = tokenizer.encode(List.of("The movie was wonderful.", "A dull, slow and far too long film."));
        ActivationCache a = plain.runWithCache(batch, plain.hooks().names());
        ActivationCache b = fused.runWithCache(batch, plain.hooks().names());
        for (String h : plain.hooks().names()) {
            INDArray x = a.get(h).castTo(DataType.DOUBLE);
            double relative = x.sub(b.get(h).castTo(DataType.DOUBLE)).norm2Number().doubleValue()
                    / x.norm2Number().doubleValue();
            boolean beforeMlp = h.startsWith("blocks.0.") && !h.contains("mlp") && !h.endsWith("block_output");
            assertTrue(relative < (beforeMlp ? 1e-4 : 2e-2), h + " differs from the unfused graph's by " + relative);
        }
    }

    private static void assertPlacedHooksHoldThePlainValues(HookedModel plain, HookedModel fused,
                                                            TextTokenizer tokenizer, int placed) {
        List<String> names = fused.hooks().names();
        assertEquals(placed, names.size(), names.toString());
        Batch batch = tokenizer.encode(List.of("The movie was wonderful.", "A dull, slow and far too long film."));
        ActivationCache a = plain.runWithCache(batch, names);
        ActivationCache b = fused.runWithCache(batch, names);
        for (String h : names) {
            INDArray x = a.get(h).castTo(DataType.DOUBLE);
            INDArray y = b.get(h).castTo(DataType.DOUBLE);
            double relative = x.sub(y).norm2Number().doubleValue() / x.norm2Number().doubleValue();
            assertTrue(relative < 1e-4, h + " differs from the unfused graph's by " + relative);
        }
    }

    @ParameterizedTest
    @CsvSource({"all-minilm-l6-v2.onnx,BiasGelu,1e-5", "all-minilm-l6-v2-q.onnx,DynamicQuantizeMatMul,1e-4"})
    void everyHookIsFoundAndHoldsTheUnoptimisedValue(String resource, String fusedOp, double tolerance,
                                                     @TempDir Path tmp) throws Exception {
        OnnxGraph g = OnnxGraph.load(OrtOptimised.write(resource, tmp));
        assertTrue(g.nodes().stream().anyMatch(n -> n.getOpType().equals(fusedOp)), "onnxruntime fused " + fusedOp);
        TextTokenizer tokenizer = TextTokenizer.fromResource(resource.replace(".onnx", "-tokenizer.json"));
        HookedModel fused = new HookedModel(g, tokenizer, OrtRuntime.shared());
        HookedModel plain = HookedModel.fromResources(resource, resource.replace(".onnx", "-tokenizer.json"));
        assertEquals(plain.hooks().config(), fused.hooks().config());
        assertEquals(plain.hooks().names(), fused.hooks().names());
        Batch batch = tokenizer.encode(List.of("The movie was wonderful.", "A dull, slow and far too long film."));
        ActivationCache a = plain.runWithCache(batch, plain.hooks().names());
        ActivationCache b = fused.runWithCache(batch, fused.hooks().names());
        double worst = 0;
        for (String h : plain.hooks().names()) {
            INDArray x = a.get(h).castTo(DataType.DOUBLE);
            INDArray y = b.get(h).castTo(DataType.DOUBLE);
            double relative = x.sub(y).norm2Number().doubleValue() / x.norm2Number().doubleValue();
            worst = Math.max(worst, relative);
            assertTrue(relative < tolerance, h + " differs from the unoptimised graph's by " + relative);
        }
        System.out.printf("%s optimised by onnxruntime: %d hooks, the worst %.2e of its norm from the plain graph's%n",
                resource, plain.hooks().names().size(), worst);
    }
}
