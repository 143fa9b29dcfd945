package dev.jreft.hooks.autodiff;

import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.hooks.runtime.CompiledGraph;
import dev.jreft.hooks.runtime.OrtRuntime;
import dev.jreft.hooks.runtime.ShapeSpecializer;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * Loss and gradients for any graph: specialise its input shapes (the named tensors kept), append the loss, probe
 * every intermediate shape, build the backward graph and run it.
 */
public final class GraphGradients {
    /** The loss value and the gradient of each source tensor. */
    public record Result(double loss, Map<String, INDArray> gradients) {
    }

    /** System property: split off the frozen prefix (default true). */
    public static final String PREFIX_SPLIT = "jreft.autodiff.prefixSplit";

    private GraphGradients() {
    }

    /** The frozen prefix (an inference graph) and the backward graph of the trainable suffix. */
    private record Built(CompiledGraph prefix, List<String> frontier, GradientGraph gradient, CompiledGraph compiled) {
    }

    /** System property: bytes of frontier values the prefix cache may hold (default 32 MiB; 0 turns it off). */
    public static final String PREFIX_CACHE_BYTES = "jreft.autodiff.prefixCacheBytes";

    /**
     * Frontier values per (prefix graph, input contents): a batch seen again skips the frozen prefix. Bounded by
     * bytes as well as entries: every new batch adds its frontier (MiniLM LoReFT at 16 x 32: 2.7 MB). A batch's
     * values are kept from its second sighting on (its key is remembered at the first): a run whose batches never
     * repeat keeps nothing. Kept from the first, they were dropped a dozen batches later, by then in the old
     * generation of the Java heap, where the arrays (small objects holding megabytes of ND4J memory each) waited
     * for an old-generation collection: 2.5 MB more native memory per step, 370 MB after 150 LoReFT steps.
     */
    private static FrontierCache prefixOutputs;

    /** The cache, made on first use: a bad {@code -D} value is then an error of that call, not of class loading. */
    private static synchronized FrontierCache prefixOutputs() {
        if (prefixOutputs == null) {
            prefixOutputs = new FrontierCache(64, dev.jreft.hooks.io.SystemSettings.bytes(PREFIX_CACHE_BYTES,
                    32L << 20));
        }
        return prefixOutputs;
    }

    /** Bytes the prefix-output cache holds now. */
    static long cachedPrefixBytes() {
        return prefixOutputs().held();
    }

    /** Bytes the prefix-output cache may hold. */
    static long prefixCacheBound() {
        return prefixOutputs().bytes;
    }

    /**
     * A least-recently-used map of frontier values, at most {@code entries} of them and {@code bytes} in all, that
     * admits a key the second time it is offered.
     */
    static final class FrontierCache {
        private final int entries;
        private final long bytes;
        private final LinkedHashMap<String, Map<String, INDArray>> map = new LinkedHashMap<>(16, 0.75f, true);
        /** Keys offered once, most recent last (a few hundred bytes each). */
        private final LinkedHashMap<String, Boolean> seen = new LinkedHashMap<>(16, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<String, Boolean> e) {
                return size() > 4096;
            }
        };
        private long held;

        FrontierCache(int entries, long bytes) {
            this.entries = entries;
            this.bytes = bytes;
        }

        synchronized Map<String, INDArray> get(String key) {
            return map.get(key);
        }

        /** Offers {@code values}; returns whether the cache keeps them (else they are the caller's alone). */
        synchronized boolean put(String key, Map<String, INDArray> values) {
            long size = size(values);
            if (size > bytes || seen.put(key, Boolean.TRUE) == null) {
                return false; // too large, or the first sighting
            }
            Map<String, INDArray> old = map.put(key, values);
            held += size - (old == null ? 0 : size(old));
            var it = map.entrySet().iterator();
            while ((map.size() > entries || held > bytes) && it.hasNext()) {
                held -= size(it.next().getValue());
                it.remove();
            }
            return map.get(key) == values;
        }

        synchronized long held() {
            return held;
        }

        private static long size(Map<String, INDArray> values) {
            long n = 0;
            for (INDArray v : values.values()) {
                n += v.length() * v.dataType().width();
            }
            return n;
        }
    }

    /** Built backward graphs per (graph, input shapes, loss, sources): a new batch of the same shapes reuses one. */
    private static final Map<String, Built> CACHE = java.util.Collections.synchronizedMap(
            new LinkedHashMap<>(16, 0.75f, true) {
                @Override
                protected boolean removeEldestEntry(Map.Entry<String, Built> e) {
                    return size() > 16;
                }
            });

    /**
     * As {@link #compute(OnnxGraph, Map, Function, Map, List, OrtRuntime)}, with the backward graph cached under
     * {@code graphKey} (identifies the graph, e.g. its fingerprint) and {@code lossKey} (identifies the loss).
     */
    public static Result compute(String graphKey, String lossKey, OnnxGraph graph, Map<String, INDArray> feeds,
                                 Function<OnnxGraph, String> appendLoss, Map<String, INDArray> lossFeeds,
                                 List<String> sources, OrtRuntime runtime) {
        StringBuilder key = new StringBuilder(graphKey).append('|').append(lossKey).append('|').append(sources);
        for (String in : graph.inputNames()) {
            INDArray v = feeds.get(in);
            key.append('|').append(in).append(v == null ? "?" : java.util.Arrays.toString(v.shape()));
        }
        Built built = CACHE.get(key.toString());
        if (built != null) {
            return run(built, feeds, lossFeeds, sources);
        }
        built = build(graph, feeds, appendLoss, lossFeeds, sources, runtime);
        CACHE.put(key.toString(), built);
        Result r = run(built, feeds, lossFeeds, sources); // builds the sessions
        dev.jreft.hooks.runtime.NativeMemory.afterBuild();
        return r;
    }

    /**
     * @param feeds      the graph's inputs (their shapes specialise the graph)
     * @param appendLoss appends the loss to the specialised graph, returns its tensor name
     * @param lossFeeds  values of the inputs the loss declares
     * @param sources    tensors to differentiate: graph inputs, initializers or intermediates
     */
    public static Result compute(OnnxGraph graph, Map<String, INDArray> feeds, Function<OnnxGraph, String> appendLoss,
                                 Map<String, INDArray> lossFeeds, List<String> sources, OrtRuntime runtime) {
        return run(build(graph, feeds, appendLoss, lossFeeds, sources, runtime), feeds, lossFeeds, sources);
    }

    private static Built build(OnnxGraph graph, Map<String, INDArray> feeds, Function<OnnxGraph, String> appendLoss,
                               Map<String, INDArray> lossFeeds, List<String> sources, OrtRuntime runtime) {
        Map<String, long[]> dims = new LinkedHashMap<>();
        for (String in : graph.inputNames()) {
            INDArray v = feeds.get(in);
            if (v == null) {
                throw new IllegalArgumentException("missing input '" + in + "' (graph inputs: " + graph.inputNames()
                        + ")");
            }
            dims.put(in, v.shape());
        }
        // intermediate sources must survive folding; sources the loss declares do not exist yet
        List<String> keep = new ArrayList<>(sources.stream()
                .filter(s -> graph.hasTensor(s) && !graph.inputNames().contains(s)).toList());
        keep.addAll(graph.outputNames());
        OnnxGraph g = ShapeSpecializer.specialise(graph, dims, keep);
        Fusions.apply(g, keep);
        String loss = appendLoss.apply(g);
        Map<String, INDArray> all = new LinkedHashMap<>(feeds);
        all.putAll(lossFeeds);
        Map<String, long[]> shapes = ShapeProbe.probe(g, all);
        Fusions.skipLayerNorms(g, keep, shapes);
        List<String> distinct = sources.stream().distinct().toList();
        // -Djreft.autodiff.prefixSplit=false differentiates the whole graph in one session: on this machine that is
        // faster for a batch seen once (MiniLM LoReFT: 1.51x a forward vs 1.84x), slower for a batch seen again (1.18x)
        PrefixSplit split = dev.jreft.hooks.io.SystemSettings.flag(PREFIX_SPLIT, true)
                ? PrefixSplit.split(g, distinct, shapes) : new PrefixSplit(g, g, List.of());
        GradientGraph gg = GradientBuilder.build(split.suffix(), loss, distinct, shapes);
        CompiledGraph prefix = split.frontier().isEmpty() ? null
                : new CompiledGraph(split.prefix(), split.prefix().fingerprint(), runtime);
        return new Built(prefix, split.frontier(), gg, new CompiledGraph(gg.graph(), gg.graph().fingerprint(), runtime));
    }

    /**
     * The frozen prefix's frontier values for a batch; {@code mine}: computed by this call and not kept by the cache,
     * so the caller frees them after the backward run. Left to the collector they outlived many steps: the step
     * makes too little Java garbage for frequent collections (MiniLM LoRA: 4 young collections in 25 steps, the
     * process growing by 5 MB a step meanwhile).
     */
    private record Frontier(Map<String, INDArray> values, boolean mine) {
        void free() {
            if (mine) {
                dev.jreft.hooks.runtime.Tensors.free(values.values());
            }
        }
    }

    private static Frontier prefixOutputs(Built built, Map<String, INDArray> all) {
        if (built.prefix() == null) {
            return new Frontier(Map.of(), false);
        }
        Map<String, INDArray> in = new LinkedHashMap<>();
        StringBuilder key = new StringBuilder(built.prefix().fingerprint());
        for (String name : built.prefix().graph().inputNames()) {
            INDArray v = all.get(name);
            in.put(name, v);
            key.append('|').append(name).append(contentHash(v));
        }
        Map<String, INDArray> out = prefixOutputs().get(key.toString());
        if (out != null) {
            return new Frontier(out, false);
        }
        out = built.prefix().run(in, built.frontier());
        return new Frontier(out, !prefixOutputs().put(key.toString(), out));
    }

    private static String contentHash(INDArray v) {
        if (v == null) {
            return "null";
        }
        if (v.length() == 0) { // an empty past: its shape is its content
            return java.util.Arrays.toString(v.shape()) + v.dataType();
        }
        // an array that owns its memory in C order is hashed in place; a view is copied, and the copy freed now
        // (not when the garbage collector gets to it)
        boolean own = !v.isView() && v.ordering() == 'c' && v.offset() == 0 && v.data().length() == v.length();
        INDArray c = own ? v : v.dup('c');
        try {
            java.security.MessageDigest md = java.security.MessageDigest.getInstance("SHA-256");
            md.update(c.data().asNio());
            return java.util.Arrays.toString(v.shape()) + v.dataType() + java.util.HexFormat.of().formatHex(md.digest());
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        } finally {
            if (c != v && c.closeable()) {
                c.close();
            }
        }
    }

    private static Result run(Built built, Map<String, INDArray> feeds, Map<String, INDArray> lossFeeds,
                              List<String> sources) {
        GradientGraph gg = built.gradient();
        Map<String, INDArray> all = new LinkedHashMap<>(feeds);
        all.putAll(lossFeeds);
        Frontier frontier = prefixOutputs(built, all);
        all.putAll(frontier.values());
        List<String> outputs = new ArrayList<>(gg.gradients().values());
        outputs.add(gg.loss());
        Map<String, INDArray> out;
        try {
            out = built.compiled().run(all, outputs);
        } finally {
            frontier.free();
        }
        Map<String, INDArray> grads = new LinkedHashMap<>();
        for (String s : sources.stream().distinct().toList()) {
            grads.put(s, out.get(gg.gradients().get(s)));
        }
        return new Result(out.get(gg.loss()).getDouble(0), grads);
    }
}
