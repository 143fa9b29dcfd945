package dev.jreft.analysis;

import ai.onnx.proto.OnnxMl.NodeProto;
import dev.jreft.hooks.discovery.DetectionException;
import dev.jreft.hooks.discovery.HookPoint;
import dev.jreft.hooks.graph.ElemTypes;
import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.CompiledGraph;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.hooks.runtime.MemoryBudget;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The logit lens (nostalgebraist 2020) on a causal export: the model's own final norm and unembedding applied to the
 * residual stream after earlier layers, {@code logits_l = unembed(norm_f(h_l))}, to read what the model "would
 * predict" at each depth. Nothing is written by hand: the head is the part of the graph between the last block's
 * output and the logits output (GPT-2's {@code ln_f} and tied {@code lm_head}, Llama's RMSNorm and {@code lm_head},
 * whatever ops the exporter wrote), and the lens graph copies that part once per hook read, so every layer's lens
 * comes from one ORT run.
 */
public final class LogitLens {
    private final HookedModel model;
    private final String stream;
    private final String logits;
    private final List<NodeProto> head;

    private LogitLens(HookedModel model, String stream, String logits, List<NodeProto> head) {
        this.model = model;
        this.stream = stream;
        this.logits = logits;
        this.head = head;
    }

    /**
     * Finds the head of {@code model}: the nodes that depend on the last block's output and feed the one graph output
     * that does. An encoder export that ends at its hidden states has no head: use {@link LayerProbes#lens}.
     */
    public static LogitLens of(HookedModel model) {
        var config = model.hooks().config();
        String last = "blocks." + (config.layers() - 1) + ".block_output";
        String stream = model.hook(last).tensor();
        OnnxGraph g = model.graph();
        Set<String> downstream = downstream(g, stream);
        List<String> outputs = g.outputNames().stream().filter(o -> !o.equals(stream) && downstream.contains(o))
                .toList();
        if (outputs.size() != 1) {
            throw new DetectionException("no unembedding after " + last + " in this " + config.family() + " export: "
                    + (outputs.isEmpty() ? "no graph output is computed from it (an encoder ending at its hidden "
                    + "states; use the probe lens, LayerProbes.lens)" : "several outputs depend on it: " + outputs));
        }
        String logits = outputs.get(0);
        Set<String> upstream = upstream(g, logits);
        List<NodeProto> head = new ArrayList<>();
        for (NodeProto n : g.nodes()) {
            // the stream's own producer (the last residual add) is upstream of the head, not in it
            if (n.getOutputList().stream().anyMatch(o -> !o.equals(stream) && downstream.contains(o)
                    && upstream.contains(o))) {
                head.add(n);
            }
        }
        boolean unembeds = head.stream().anyMatch(n -> (n.getOpType().equals("MatMul") || n.getOpType().equals("Gemm"))
                && n.getInputList().stream().anyMatch(g::isInitializer));
        if (!unembeds) {
            throw new DetectionException("no unembedding after " + last + ": the ops from it to output '" + logits
                    + "' (" + ops(head) + ") multiply by no weight");
        }
        return new LogitLens(model, stream, logits, List.copyOf(head));
    }

    /** The graph output the lens reads as the logits. */
    public String logitsOutput() {
        return logits;
    }

    /** The head's ops in order, as found ({@code LayerNormalization, MatMul} for GPT-2 at opset 17). */
    public String describe() {
        return "final norm and unembedding between " + stream + " and " + logits + ": " + ops(head);
    }

    private static String ops(List<NodeProto> nodes) {
        return String.join(", ", nodes.stream().map(NodeProto::getOpType).toList());
    }

    /**
     * The lens at each hook, [b, s, vocab] per hook, from one run. Hooks must be residual-stream wide ([b, s, d]:
     * block inputs and outputs, attention and MLP outputs); the last block's output gives the model's logits.
     */
    public Map<String, INDArray> run(Batch batch, List<String> hooks) {
        var config = model.hooks().config();
        List<HookPoint> points = new ArrayList<>();
        for (int i = 0; i < hooks.size(); i++) {
            HookPoint p = model.hooks().resolve(hooks.get(i));
            if (p.layout().kind() != dev.jreft.hooks.discovery.HookLayout.Kind.RESIDUAL
                    || p.layout().width() != config.hidden()) {
                throw new ConfigException("hooks[" + i + "]", hooks.get(i), "a hook of the residual stream's width "
                        + config.hidden() + " ([b,s," + config.hidden() + "]: block_input, block_output, "
                        + "attention_output, mlp_output); this one is " + p.layout().shape());
            }
            points.add(p);
        }
        Batch b = model.complete(batch);
        long vocab = Math.max(0, model.graph().lastDim(logits));
        MemoryBudget.check("hooks", ConfigException.described(hooks.size() + " lens reads over " + b.size()
                + " sequences of " + b.seqLen() + " tokens"), 4L * hooks.size() * b.size() * b.seqLen() * vocab,
                "the lens logits", "fewer hooks or texts per run");
        List<String> tensors = points.stream().map(HookPoint::tensor).distinct().sorted().toList();
        Map<String, String> lensOf = new LinkedHashMap<>();
        for (int i = 0; i < tensors.size(); i++) {
            lensOf.put(tensors.get(i), tensors.get(i).equals(stream) ? logits : "jreft.lens" + i + "." + logits);
        }
        CompiledGraph c = model.variant("logit-lens:" + String.join(",", tensors), g -> {
            for (int i = 0; i < tensors.size(); i++) {
                if (!tensors.get(i).equals(stream)) {
                    copyHead(g, tensors.get(i), "jreft.lens" + i + ".");
                }
            }
        });
        Map<String, INDArray> out = c.run(model.feeds(b), List.copyOf(new HashSet<>(lensOf.values())));
        Map<String, INDArray> byHook = new LinkedHashMap<>();
        for (HookPoint p : points) {
            byHook.put(p.name(), out.get(lensOf.get(p.tensor())));
        }
        return byHook;
    }

    /**
     * Appends a copy of the head reading {@code input} instead of the last block's output, every name prefixed, and
     * exposes its logits ({@code prefix + logits}).
     */
    private void copyHead(OnnxGraph g, String input, String prefix) {
        Map<String, String> renamed = new HashMap<>();
        renamed.put(stream, input);
        List<NodeProto> copies = new ArrayList<>();
        for (NodeProto n : head) {
            NodeProto.Builder b = n.toBuilder().setName(prefix + n.getName()).clearInput().clearOutput();
            n.getInputList().forEach(t -> b.addInput(renamed.getOrDefault(t, t)));
            for (String o : n.getOutputList()) {
                String copy = o.isEmpty() ? o : prefix + o;
                renamed.put(o, copy);
                b.addOutput(copy);
            }
            copies.add(b.build());
        }
        g.addNodes(copies);
        g.exposeOutput(renamed.get(logits), ElemTypes.FLOAT);
    }

    private static Set<String> downstream(OnnxGraph g, String tensor) {
        Set<String> seen = new HashSet<>(List.of(tensor));
        Deque<String> todo = new ArrayDeque<>(List.of(tensor));
        while (!todo.isEmpty()) {
            for (NodeProto n : g.consumers(todo.pop())) {
                for (String o : n.getOutputList()) {
                    if (!o.isEmpty() && seen.add(o)) {
                        todo.push(o);
                    }
                }
            }
        }
        return seen;
    }

    private static Set<String> upstream(OnnxGraph g, String tensor) {
        Set<String> seen = new HashSet<>(List.of(tensor));
        Deque<String> todo = new ArrayDeque<>(List.of(tensor));
        while (!todo.isEmpty()) {
            g.producer(todo.pop()).ifPresent(n -> n.getInputList().forEach(i -> {
                if (!i.isEmpty() && seen.add(i)) {
                    todo.push(i);
                }
            }));
        }
        return seen;
    }
}
