package dev.jreft.hooks.runtime;

import dev.jreft.hooks.discovery.HookMap;
import dev.jreft.hooks.discovery.LinearModule;
import dev.jreft.hooks.io.OutputFolder;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Hook values (by hook name) and model outputs (by output name) from one run, with TransformerLens's
 * {@code ActivationCache} analyses: stacks by layer, the accumulated and decomposed residual stream, and per-head
 * results.
 */
public record ActivationCache(Map<String, INDArray> hooks, Map<String, INDArray> outputs) {
    public ActivationCache {
        hooks = Collections.unmodifiableMap(new LinkedHashMap<>(hooks));
        outputs = Collections.unmodifiableMap(new LinkedHashMap<>(outputs));
    }

    public INDArray get(String hook) {
        INDArray a = hooks.get(hook);
        if (a == null) {
            throw new IllegalArgumentException("hook '" + hook + "' was not cached; cached: " + hooks.keySet());
        }
        return a;
    }

    public INDArray output(String name) {
        INDArray a = outputs.get(name);
        if (a == null) {
            throw new IllegalArgumentException("no output '" + name + "'; outputs: " + outputs.keySet());
        }
        return a;
    }

    /** Values stacked along a new first axis, with a label per slice. */
    public record Stack(List<String> labels, INDArray values) {
    }

    /** Hook values stacked in the given order: [hooks, ...the hooks' common shape]. */
    public INDArray stack(List<String> hookNames) {
        if (hookNames.isEmpty()) {
            throw new IllegalArgumentException("nothing to stack: no hook names given");
        }
        return Nd4j.stack(0, hookNames.stream().map(this::get).toArray(INDArray[]::new));
    }

    /**
     * Every cached {@code blocks.N.<component>} in layer order, stacked: [layers, ...] (TransformerLens's
     * {@code stack_activation}). Layers 0..N must all be cached.
     */
    public INDArray stackByLayer(String component) {
        return stack(layerNames(component));
    }

    /**
     * The residual stream before layer 0 and after each layer, [layers + 1, b, s, d] (TransformerLens's
     * {@code accumulated_resid}): {@code blocks.0.block_input}, then every {@code blocks.N.block_output}. Cache
     * {@link #residualHooks(HookMap)}.
     */
    public Stack accumulatedResidual() {
        List<String> names = new ArrayList<>();
        names.add("blocks.0.block_input");
        names.addAll(layerNames("block_output"));
        return new Stack(names, stack(names));
    }

    /** What {@link #accumulatedResidual()} reads. */
    public static List<String> residualHooks(HookMap hooks) {
        List<String> names = new ArrayList<>();
        names.add("blocks.0.block_input");
        names.addAll(hooks.layers("block_output"));
        return names;
    }

    /**
     * The final residual stream as the sum of what wrote into it, [2·layers + 1, b, s, d] (TransformerLens's
     * {@code decompose_resid}): the embeddings ({@code blocks.0.block_input}), then each layer's attention output and
     * MLP output. Holds for pre-norm blocks (GPT-2, Llama), where {@code block_output = block_input +
     * attention_output + mlp_output}; checked against the cached last block output, so a post-norm model (BERT:
     * a LayerNorm after each residual add) is refused instead of decomposed wrongly. Cache
     * {@link #decompositionHooks(HookMap)}.
     */
    public Stack decomposeResidual() {
        List<String> attention = layerNames("attention_output");
        List<String> mlp = layerNames("mlp_output");
        if (attention.size() != mlp.size()) {
            throw new IllegalArgumentException("cache " + attention.size() + " attention_output and " + mlp.size()
                    + " mlp_output layers alike");
        }
        List<String> names = new ArrayList<>();
        names.add("blocks.0.block_input");
        for (int l = 0; l < attention.size(); l++) {
            names.add(attention.get(l));
            names.add(mlp.get(l));
        }
        INDArray parts = stack(names);
        String last = "blocks." + (attention.size() - 1) + ".block_output";
        INDArray stream = get(last);
        double error = parts.sum(0).sub(stream).amaxNumber().doubleValue();
        double scale = Math.max(1e-6, stream.amaxNumber().doubleValue());
        if (error > 1e-3 * scale) {
            throw new IllegalStateException("the residual stream is not the sum of its writes here: embeddings + "
                    + "attention and MLP outputs differ from " + last + " by " + String.format("%.3g", error)
                    + " (largest |value| " + String.format("%.3g", scale) + "). A post-norm model (BERT, MiniLM)"
                    + " normalises after each residual add, so its stream has no additive decomposition; use "
                    + "accumulatedResidual() or per-layer hooks instead");
        }
        return new Stack(names, parts);
    }

    /** What {@link #decomposeResidual()} reads. */
    public static List<String> decompositionHooks(HookMap hooks) {
        List<String> names = new ArrayList<>();
        names.add("blocks.0.block_input");
        names.addAll(hooks.layers("attention_output"));
        names.addAll(hooks.layers("mlp_output"));
        names.add(hooks.layers("block_output").get(hooks.config().layers() - 1));
        return names;
    }

    /**
     * What each attention head of {@code layer} writes, [b, s, heads, d] (TransformerLens's {@code result} hook):
     * head h's slice of the merged heads ({@code attention_value_output}) times its rows of the output projection.
     * Summed over heads plus the projection's bias, it is {@code attention_output}. Needs
     * {@code blocks.<layer>.attention_value_output} cached.
     */
    public INDArray headResults(HookedModel model, int layer) {
        String merged = "blocks." + layer + ".attention_value_output";
        INDArray z = get(merged);
        LinearModule o = outputProjection(model, layer);
        long heads = model.hooks().config().heads();
        long headDim = o.in() / heads;
        INDArray w = model.modules().weight(o); // [d, heads · headDim]
        long b = z.size(0);
        long s = z.size(1);
        INDArray flat = z.reshape('c', b * s, o.in());
        INDArray result = Nd4j.create(z.dataType(), b * s, heads, o.out());
        for (int h = 0; h < heads; h++) {
            INDArray zh = flat.get(NDArrayIndex.all(), NDArrayIndex.interval(h * headDim, (h + 1) * headDim));
            INDArray wh = w.get(NDArrayIndex.all(), NDArrayIndex.interval(h * headDim, (h + 1) * headDim));
            result.get(NDArrayIndex.all(), NDArrayIndex.point(h), NDArrayIndex.all()).assign(zh.mmul(wh.transpose()));
        }
        return result.reshape('c', b, s, heads, o.out());
    }

    /**
     * Every head's result in every cached layer, [layers · heads, b, s, d], labelled {@code L<layer>H<head>}
     * (TransformerLens's {@code stack_head_results}, without the output projections' biases).
     */
    public Stack stackHeadResults(HookedModel model) {
        List<String> labels = new ArrayList<>();
        List<INDArray> slices = new ArrayList<>();
        List<String> layers = layerNames("attention_value_output");
        for (int l = 0; l < layers.size(); l++) {
            INDArray r = headResults(model, l);
            for (int h = 0; h < r.size(2); h++) {
                labels.add("L" + l + "H" + h);
                slices.add(r.get(NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.point(h), NDArrayIndex.all()));
            }
        }
        return new Stack(labels, Nd4j.stack(0, slices.toArray(INDArray[]::new)));
    }

    /** The linear module between a layer's merged heads and its attention output (o_proj, c_proj, output.dense). */
    private static LinearModule outputProjection(HookedModel model, int layer) {
        String in = model.hook("blocks." + layer + ".attention_value_output").tensor();
        String out = model.hook("blocks." + layer + ".attention_output").tensor();
        return model.modules().all().stream().filter(m -> m.input().equals(in) && m.output().equals(out))
                .findFirst().orElseThrow(() -> new IllegalStateException("no linear module of layer " + layer
                        + " reads its merged heads (" + in + ") and writes its attention output (" + out + "); "
                        + "linear modules: " + model.modules().paths()));
    }

    /** Cached {@code blocks.N.<component>} names in layer order; layers 0..max must all be there. */
    private List<String> layerNames(String component) {
        Pattern p = Pattern.compile("blocks\\.(\\d+)\\." + Pattern.quote(component));
        TreeMap<Integer, String> byLayer = new TreeMap<>();
        for (String name : hooks.keySet()) {
            Matcher m = p.matcher(name);
            if (m.matches()) {
                byLayer.put(Integer.parseInt(m.group(1)), name);
            }
        }
        if (byLayer.isEmpty()) {
            throw new IllegalArgumentException("no blocks.N." + component + " was cached; cached: " + hooks.keySet());
        }
        List<Integer> missing = new ArrayList<>();
        for (int l = 0; l <= byLayer.lastKey(); l++) {
            if (!byLayer.containsKey(l)) {
                missing.add(l);
            }
        }
        if (!missing.isEmpty()) {
            throw new IllegalArgumentException("blocks.N." + component + " is not cached for layers " + missing
                    + " (cached up to layer " + byLayer.lastKey() + "); cache every layer to stack them");
        }
        return new ArrayList<>(byLayer.values());
    }

    /**
     * Writes every hook and output as {@code <name>.npy} into {@code dir} as one set (see {@link OutputFolder}:
     * all files or none, names made safe, {@code index.json} mapping files to names).
     */
    public List<Path> save(Path dir) throws IOException {
        try (OutputFolder out = OutputFolder.prepare(dir, "cache")) {
            save(out);
            return out.commit();
        }
    }

    /** Adds every hook and output to an output set. */
    public void save(OutputFolder out) throws IOException {
        for (var e : hooks.entrySet()) {
            out.npy(e.getKey(), "hook", e.getValue());
        }
        for (var e : outputs.entrySet()) {
            out.npy(e.getKey(), "output", e.getValue());
        }
    }
}
