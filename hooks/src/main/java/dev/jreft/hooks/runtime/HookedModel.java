package dev.jreft.hooks.runtime;

import dev.jreft.hooks.discovery.HookDiscovery;
import dev.jreft.hooks.discovery.HookMap;
import dev.jreft.hooks.discovery.ModuleMap;
import dev.jreft.hooks.discovery.HookPoint;
import dev.jreft.hooks.discovery.InputLimits;
import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.io.Warnings;
import dev.jreft.hooks.graph.ElemTypes;
import dev.jreft.hooks.graph.OnnxGraph;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * An exported transformer with its hook map: run it, read any hooks in the same run, and derive graph variants
 * (spliced interventions) that are built and compiled once per structural key.
 */
public final class HookedModel implements AutoCloseable {
    /** The embedded default: all-MiniLM-L6-v2 from its Maven artifact (a real pretrained 6-layer BERT). */
    public static final String MINILM_ONNX = "all-minilm-l6-v2.onnx";
    public static final String MINILM_TOKENIZER = "all-minilm-l6-v2-tokenizer.json";
    /**
     * The models jreft embeds, by the name configs and {@code --model} take: {@code minilm} (the default) and
     * {@code minilm-q}, the same model dynamically quantised to int8 weights (its Maven artifact's
     * {@code all-minilm-l6-v2-q.onnx}: MatMulInteger products; 23 MB against 90 MB).
     */
    public static final Map<String, String[]> EMBEDDED = Map.of(
            "minilm", new String[] {MINILM_ONNX, MINILM_TOKENIZER},
            "minilm-q", new String[] {"all-minilm-l6-v2-q.onnx", "all-minilm-l6-v2-q-tokenizer.json"});

    private final OnnxGraph graph;
    private final HookMap hooks;
    private volatile ModuleMap modules;
    private final TextTokenizer tokenizer;
    private final OrtRuntime runtime;
    private final String fingerprint;
    private final InputLimits limits;
    private final Map<String, CompiledGraph> variants = new HashMap<>();
    /** Weights fed as graph inputs (trained ones: BitFit, full finetuning), by name; empty for a frozen model. */
    private final Map<String, INDArray> weights;

    public HookedModel(OnnxGraph graph, TextTokenizer tokenizer, OrtRuntime runtime) {
        this.graph = graph;
        // any graph runs: a family that is not recognised still has raw tensor: hooks
        this.hooks = HookDiscovery.discoverOrRaw(graph);
        this.tokenizer = tokenizer;
        this.runtime = runtime;
        this.fingerprint = graph.fingerprint();
        this.limits = InputLimits.of(graph);
        this.weights = Map.of();
    }

    private HookedModel(HookedModel frozen, OnnxGraph graph, Map<String, INDArray> weights, String fingerprint) {
        this.graph = graph;
        this.hooks = frozen.hooks; // found on the frozen graph, whose weights are initializers
        this.modules = frozen.modules();
        this.tokenizer = frozen.tokenizer;
        this.runtime = frozen.runtime;
        this.fingerprint = fingerprint;
        this.limits = frozen.limits;
        this.weights = Collections.unmodifiableMap(weights);
    }

    /**
     * This model with the initializers {@code names} turned into graph inputs, fed from {@link #weights()} at every
     * run: the arrays there are the model's weights, so a trainer that updates them in place trains the model.
     * Hooks and modules are those of this model; the fingerprint names the variant, never the model it came from.
     */
    public HookedModel withWeightInputs(List<String> names) {
        OnnxGraph g = graph.copy();
        Map<String, INDArray> values = new LinkedHashMap<>();
        g.unfreeze(names).forEach((name, v) -> {
            long[] dims = graph.initializer(name).orElseThrow().getDimsList().stream().mapToLong(Long::longValue)
                    .toArray();
            values.put(name, Nd4j.create(v, dims, 'c'));
        });
        return new HookedModel(this, g, values, OnnxGraph.sha256((fingerprint + "\nweights:" + names).getBytes()));
    }

    /** The weights fed as graph inputs ({@link #withWeightInputs}); the arrays are live. */
    public Map<String, INDArray> weights() {
        return weights;
    }

    /** The model's file name (or resource) for messages. */
    private String originName() {
        String o = graph.origin().replaceFirst("^classpath:", "");
        int slash = o.lastIndexOf('/');
        return slash >= 0 ? o.substring(slash + 1) : o;
    }

    public static HookedModel load(Path onnx) {
        return new HookedModel(OnnxGraph.load(onnx), null, OrtRuntime.shared());
    }

    public static HookedModel load(Path onnx, Path tokenizerJson) {
        return new HookedModel(OnnxGraph.load(onnx), TextTokenizer.load(tokenizerJson), OrtRuntime.shared());
    }

    public static HookedModel fromResources(String onnx, String tokenizerJson) {
        return new HookedModel(OnnxGraph.fromResource(onnx),
                tokenizerJson == null ? null : TextTokenizer.fromResource(tokenizerJson), OrtRuntime.shared());
    }

    /** The embedded default model, MiniLM. */
    public static HookedModel minilm() {
        return fromResources(MINILM_ONNX, MINILM_TOKENIZER);
    }

    /** True when {@code name} is one of the {@link #EMBEDDED} models' names. */
    public static boolean isEmbedded(String name) {
        return name != null && EMBEDDED.containsKey(name);
    }

    /** An embedded model by name ({@link #EMBEDDED}). */
    public static HookedModel embedded(String name) {
        String[] files = EMBEDDED.get(name);
        if (files == null) {
            throw new IllegalArgumentException("no embedded model '" + name + "'; embedded: " + EMBEDDED.keySet());
        }
        return fromResources(files[0], files[1]);
    }

    public OnnxGraph graph() {
        return graph;
    }

    /** The graph's linear modules by Hugging Face module path (found on first use). */
    public ModuleMap modules() {
        ModuleMap m = modules;
        if (m == null) {
            modules = m = ModuleMap.of(graph);
        }
        return m;
    }

    public HookMap hooks() {
        return hooks;
    }

    /** {@link #hook(String)} for a name read from config field {@code field}, which an error then names. */
    public HookPoint hook(String name, String field) {
        try {
            return hook(name);
        } catch (IllegalArgumentException e) {
            throw ConfigException.within(field, e);
        }
    }

    public HookPoint hook(String name) {
        return hooks.resolve(name);
    }

    public String fingerprint() {
        return fingerprint;
    }

    public OrtRuntime runtime() {
        return runtime;
    }

    public Optional<TextTokenizer> tokenizer() {
        return Optional.ofNullable(tokenizer);
    }

    /**
     * Tokenises {@code texts} into one right-padded batch. A text longer than the model's position table is cut to
     * it, keeping its final special token (what Hugging Face tokenizers do with {@code truncation=True}), with a
     * warning that says which texts and how long they were; token ids given directly are never cut (refused).
     */
    public Batch tokenize(List<String> texts) {
        if (tokenizer == null) {
            throw new IllegalArgumentException("texts: found texts, but the model was loaded without a tokenizer;"
                    + " valid: token ids, or a model with its tokenizer.json (--tokenizer / \"tokenizer\")");
        }
        if (texts.isEmpty()) {
            throw ConfigException.of("texts", "found an empty list; valid: one or more texts");
        }
        for (int i = 0; i < texts.size(); i++) {
            if (texts.get(i) == null || texts.get(i).isBlank()) {
                throw new ConfigException("texts[" + i + "]", texts.get(i), "a text with at least one non-space"
                        + " character");
            }
        }
        int max = limits.maxPositions().map(Long::intValue).orElse(Integer.MAX_VALUE);
        List<String> cut = new ArrayList<>();
        Batch b = tokenizer.encode(texts, max, 1, (row, length) -> cut.add("text " + row + " ("
                + ConfigException.show(texts.get(row).length() > 24 ? texts.get(row).substring(0, 21) + "..."
                : texts.get(row)) + ", " + length + " tokens)"));
        if (!cut.isEmpty()) {
            Warnings.warn((cut.size() == 1 ? "" : cut.size() + " texts: ") + String.join(", ", cut.subList(0,
                    Math.min(5, cut.size()))) + (cut.size() > 5 ? ", ..." : "") + " cut to the model's " + max
                    + " positions, keeping the final special token (as Hugging Face tokenizers do with"
                    + " truncation=True)");
        }
        return complete(b);
    }

    /** What the graph's integer inputs may hold (vocabulary, token types, positions), read off its tables. */
    public InputLimits inputLimits() {
        return limits;
    }

    /**
     * Fills inputs the graph needs that a batch may leave out ({@code position_ids} = arange,
     * {@code token_type_ids} = 0), drops inputs it does not take, and checks the rest.
     */
    public Batch complete(Batch batch) {
        List<String> needed = graph.inputNames();
        Map<String, INDArray> in = new LinkedHashMap<>();
        for (String name : needed) {
            if (weights.containsKey(name)) {
                continue; // the model's own, fed by feeds()
            }
            INDArray v = batch.inputs().get(name);
            if (v == null) {
                v = switch (name) {
                    case "position_ids" -> Nd4j.arange(batch.seqLen()).castTo(DataType.LONG).reshape(1, batch.seqLen())
                            .repeat(0, batch.size());
                    case "token_type_ids" -> Nd4j.zeros(DataType.LONG, batch.size(), batch.seqLen());
                    case Batch.ATTENTION_MASK -> batch.attentionMask();
                    default -> emptyPastOrNull(name, batch.size());
                };
            }
            if (v == null) {
                throw ConfigException.of(name, "found nothing; valid: a value for this input of the"
                            + " graph (its inputs: " + graph.inputNames() + "; the batch has " + batch.inputs().keySet()
                            + "; give the others as .npy inputs)");
            }
            v = asDeclared(name, v);
            if (v.size(0) != batch.size()) {
                throw new IllegalArgumentException("batch mismatch: input '" + name + "' has " + v.size(0)
                        + " rows, input_ids has " + batch.size());
            }
            in.put(name, v);
        }
        checkSymbolicDims(in);
        limits.check(in, originName(), batch.inputs().containsKey("position_ids"));
        if (hooks.recognised() && batch.inputs().containsKey(Batch.INPUT_IDS)) {
            MemoryBudget.check("batch", ConfigException.described(batch.size() + " sequences of " + batch.seqLen()
                    + " tokens"), MemoryBudget.inference(hooks.config(), batch.size(), batch.seqLen()), "one run",
                    "fewer sequences per run (split the inputs)");
        }
        Map<String, INDArray> all = new LinkedHashMap<>(in);
        batch.inputs().forEach(all::putIfAbsent);
        return new Batch(all);
    }

    /**
     * {@code v} as the graph declares input {@code name}: the same element type (int32 ids widen to int64 and
     * float64 values narrow to float32, as numpy's defaults need; other mismatches are refused), the same rank and
     * every fixed dimension. ORT would otherwise stop with a kernel message about tensor types.
     */
    private INDArray asDeclared(String name, INDArray v) {
        var info = graph.inputs().stream().filter(i -> i.getName().equals(name)).findFirst();
        if (info.isEmpty() || !info.get().getType().hasTensorType()) {
            return v;
        }
        var type = info.get().getType().getTensorType();
        if (v.length() == 0 && !emptyPast(type, v)) {
            throw new ConfigException(name, ConfigException.described("an empty array of shape "
                    + Arrays.toString(v.shape())), "an array with no zero-sized dimension (only a KV cache's past"
                    + " sequence may be empty, before the first token)");
        }
        int want = type.getElemType();
        int have = ElemTypes.of(v.dataType());
        if (want == ElemTypes.INT64 && v.dataType() == DataType.INT) {
            v = v.castTo(DataType.LONG);
        } else if (want == ElemTypes.FLOAT && v.dataType() == DataType.DOUBLE) {
            v = v.castTo(DataType.FLOAT);
        } else if (want != ElemTypes.UNKNOWN && have != want) {
            throw new ConfigException(name, ConfigException.described(v.dataType().name().toLowerCase()
                    + " values"), ElemTypes.name(want) + " values (the type of the graph input " + name + ")");
        }
        if (type.hasShape()) {
            var dims = type.getShape().getDimList();
            if (dims.size() != v.rank()) {
                throw new ConfigException(name, ConfigException.described("shape " + Arrays.toString(v.shape())),
                        "rank " + dims.size() + " (the graph input " + name + " is " + describe(dims) + ")");
            }
            for (int d = 0; d < dims.size(); d++) {
                if (dims.get(d).hasDimValue() && dims.get(d).getDimValue() != v.size(d)) {
                    throw new ConfigException(name, ConfigException.described("shape " + Arrays.toString(v.shape())),
                            describe(dims) + " (the graph input's fixed dimensions)");
                }
            }
        }
        return v;
    }

    /**
     * For a KV-cache input the batch leaves out, the empty past a with-past export's prompt pass feeds (its fixed
     * dimensions, {@code rows} rows, no past positions), so the export trains and runs like its no-past twin; null
     * for any other input.
     */
    private INDArray emptyPastOrNull(String name, int rows) {
        var info = graph.inputs().stream().filter(i -> i.getName().equals(name)).findFirst();
        if (info.isEmpty() || !info.get().getType().hasTensorType() || !info.get().getType().getTensorType().hasShape()
                || info.get().getType().getTensorType().getElemType() != ElemTypes.FLOAT) {
            return null;
        }
        var dims = info.get().getType().getTensorType().getShape().getDimList();
        long[] shape = new long[dims.size()];
        boolean past = false;
        for (int d = 0; d < shape.length; d++) {
            var dim = dims.get(d);
            if (dim.hasDimValue()) {
                shape[d] = dim.getDimValue();
            } else if (dim.getDimParam().toLowerCase(java.util.Locale.ROOT).contains("past")) {
                past = true;
            } else if (d == 0) {
                shape[d] = rows;
            } else {
                return null;
            }
        }
        return past ? Nd4j.create(DataType.FLOAT, shape) : null;
    }

    /**
     * An empty past: a KV-cache input whose only zero-sized dimensions are declared as a past sequence length
     * ({@code past_sequence}, {@code past_sequence_length}), as the prompt pass of a with-past export feeds it.
     */
    private static boolean emptyPast(ai.onnx.proto.OnnxMl.TypeProto.Tensor type, INDArray v) {
        if (!type.hasShape() || type.getShape().getDimCount() != v.rank()) {
            return false;
        }
        boolean any = false;
        for (int d = 0; d < v.rank(); d++) {
            if (v.size(d) == 0) {
                if (!type.getShape().getDim(d).getDimParam().toLowerCase(java.util.Locale.ROOT).contains("past")) {
                    return false;
                }
                any = true;
            }
        }
        return any;
    }

    /**
     * Inputs whose declared dimensions share a name ({@code batch}, {@code past_sequence}) agree on its size; and,
     * as exports with a KV cache name them, {@code total_sequence} = {@code past_sequence} + {@code sequence}.
     * ORT reports a disagreement as a broadcast failure deep in the graph.
     */
    private void checkSymbolicDims(Map<String, INDArray> in) {
        Map<String, Long> size = new LinkedHashMap<>();
        Map<String, String> where = new HashMap<>();
        for (var info : graph.inputs()) {
            INDArray v = in.get(info.getName());
            if (v == null || !info.getType().hasTensorType() || !info.getType().getTensorType().hasShape()) {
                continue;
            }
            var dims = info.getType().getTensorType().getShape().getDimList();
            for (int d = 0; d < dims.size() && d < v.rank(); d++) {
                String param = dims.get(d).getDimParam();
                if (param.isEmpty()) {
                    continue;
                }
                Long seen = size.putIfAbsent(param, v.size(d));
                if (seen == null) {
                    where.put(param, info.getName() + " dimension " + d);
                } else if (seen != v.size(d)) {
                    throw new ConfigException(info.getName(), ConfigException.described("size " + v.size(d)
                            + " in dimension " + d + " ('" + param + "')"), "size " + seen + ", as "
                            + where.get(param) + " (the graph names both '" + param + "')");
                }
            }
        }
        Long total = size.get("total_sequence");
        Long past = size.get("past_sequence");
        Long seq = size.get("sequence");
        if (total != null && past != null && seq != null && total != past + seq) {
            String at = where.get("total_sequence");
            throw new ConfigException(at.substring(0, at.indexOf(' ')), ConfigException.described(total
                    + " positions"), past + seq + ": the past's " + past + " + the " + seq + " new tokens ('total_sequence'"
                    + " = 'past_sequence' + 'sequence')");
        }
    }

    private static String describe(List<ai.onnx.proto.OnnxMl.TensorShapeProto.Dimension> dims) {
        return dims.stream().map(d -> d.hasDimValue() ? Long.toString(d.getDimValue()) : d.getDimParam().isEmpty()
                ? "?" : d.getDimParam()).collect(java.util.stream.Collectors.joining(", ", "[", "]"));
    }

    /** The unmodified graph, compiled. */
    public CompiledGraph base() {
        return variant("base", g -> { });
    }

    /**
     * A derived graph: {@code edit} is applied to a copy of the model graph once per {@code key}; the copy's
     * fingerprint is derived from the model's and the key, so sessions are shared across equal variants.
     */
    public synchronized CompiledGraph variant(String key, Consumer<OnnxGraph> edit) {
        CompiledGraph c = variants.get(key);
        if (c == null) {
            OnnxGraph g = key.equals("base") ? graph : graph.copy();
            edit.accept(g);
            String fp = key.equals("base") ? fingerprint : OnnxGraph.sha256((fingerprint + "\n" + key).getBytes());
            c = new CompiledGraph(g, fp, runtime);
            variants.put(key, c);
        }
        return c;
    }

    /** How many graph variants this model has built (each is one ORT session). */
    public synchronized int variantCount() {
        return variants.size();
    }

    /** Model outputs for a batch. */
    public Map<String, INDArray> run(Batch batch) {
        Batch b = complete(batch);
        return base().run(feeds(b), List.of());
    }

    /** Model outputs and the values of {@code hookNames}, all from one ORT run. */
    public ActivationCache runWithCache(Batch batch, String... hookNames) {
        return runWithCache(batch, Arrays.asList(hookNames));
    }

    public ActivationCache runWithCache(Batch batch, List<String> hookNames) {
        Batch b = complete(batch);
        List<HookPoint> points = new ArrayList<>();
        for (String h : hookNames) {
            points.add(hooks.resolve(h));
        }
        long exposed = 0;
        for (HookPoint p : hooks.recognised() ? points : List.<HookPoint>of()) {
            var l = p.layout();
            exposed += 4L * b.size() * b.seqLen() * switch (l.kind()) {
                case ATTENTION_PATTERN -> l.heads() * b.seqLen();
                case RAW -> hooks.config().hidden();
                default -> l.width();
            };
        }
        MemoryBudget.check("hooks", ConfigException.described(points.size() + " hooks over " + b.size()
                + " sequences of " + b.seqLen() + " tokens"), exposed, "the cache", "fewer texts per run (split the"
                + " inputs) or fewer hooks");
        List<String> tensors = points.stream().map(HookPoint::tensor).distinct().sorted().toList();
        CompiledGraph c = variant("cache:" + String.join(",", tensors), g -> tensors.forEach(
                t -> g.exposeOutput(t, ElemTypes.FLOAT)));
        List<String> wanted = new ArrayList<>(graph.outputNames());
        wanted.addAll(tensors);
        Map<String, INDArray> out = c.run(feeds(b), wanted.stream().distinct().toList());
        Map<String, INDArray> hookValues = new LinkedHashMap<>();
        for (HookPoint p : points) {
            hookValues.put(p.name(), out.get(p.tensor()));
        }
        Map<String, INDArray> outputs = new LinkedHashMap<>();
        for (String o : graph.outputNames()) {
            outputs.put(o, out.get(o));
        }
        return new ActivationCache(hookValues, outputs);
    }

    /** The batch's arrays that are graph inputs. */
    public Map<String, INDArray> feeds(Batch b) {
        Map<String, INDArray> f = new LinkedHashMap<>();
        for (String name : graph.inputNames()) {
            f.put(name, weights.containsKey(name) ? weights.get(name) : b.inputs().get(name));
        }
        return f;
    }

    @Override
    public void close() {
        if (tokenizer != null) {
            tokenizer.close();
        }
    }
}
