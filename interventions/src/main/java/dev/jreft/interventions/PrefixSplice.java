package dev.jreft.interventions;

import ai.onnx.proto.OnnxMl.NodeProto;
import dev.jreft.hooks.discovery.CausalMask;
import dev.jreft.hooks.discovery.InputLimits;
import dev.jreft.hooks.graph.Attr;
import dev.jreft.hooks.graph.ElemTypes;
import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.hooks.graph.SubgraphBuilder;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A {@link KeyValuePrefix} ready to splice. On an export with past inputs ({@code past.<i>.key} or
 * {@code past_key_values.<i>.key}) each past input becomes the layer's prefix broadcast over the batch. On one without,
 * each layer's attention gets the prefix in front of the keys its score MatMul reads ([b, heads, dh, s] in torch
 * exports: the prefix goes first on the last axis) and of the values its context MatMul reads ([b, heads, s, dh]:
 * first on axis 2; after the rotary embedding and before {@code repeat_kv}, where a past would go), computed positions
 * move up by P, and so do a causal mask's cache positions ({@link CausalMask}). Fed {@code position_ids} are moved in
 * the batch, with or without past. Either way the attention mask gains P ones in front; the queries, and so every
 * output and hook, stay the real tokens'.
 */
final class PrefixSplice extends SequenceSplice {
    private static final Pattern PAST = Pattern.compile("^(?:past|past_key_values)\\.(\\d+)\\.(key|value)$");

    /** With past inputs: input name per (layer, key 0 / value 1). */
    private final Map<Integer, String[]> pastInputs = new LinkedHashMap<>();
    /** Without: where each layer's key and value prefixes go. */
    private final List<Operand[]> keysValues = new ArrayList<>();
    private final Optional<String> positions;
    /** A causal mask's cache positions (arange(s) without past), moved up by P as a past of P moves them. */
    private Optional<String> queryPositions = Optional.empty();

    /**
     * A tensor of keys or values and its layout, one letter per axis: b(atch), h(eads), s (positions), d (head size);
     * torch exports transpose [b, s, h, d] to [b, h, s, d] and kᵀ [b, h, d, s].
     */
    private record Operand(String tensor, String layout) {
        int positionAxis() {
            return layout.indexOf('s');
        }
    }

    PrefixSplice(SequenceSite site, int index, SequenceShape shape, HookedModel model, Batch base, String where) {
        super(site, index, shape);
        OnnxGraph g = model.graph();
        for (String in : g.inputNames()) {
            Matcher m = PAST.matcher(in);
            if (m.matches()) {
                pastInputs.computeIfAbsent(Integer.parseInt(m.group(1)), k -> new String[2])[m.group(2).equals("key")
                        ? 0 : 1] = in;
            }
        }
        checkPositions(model, length, base.seqLen());
        INDArray mask = base.attentionMask();
        if (!pastInputs.isEmpty()) {
            if (pastInputs.size() != shape.layers() || pastInputs.values().stream().anyMatch(kv -> kv[0] == null
                    || kv[1] == null)) {
                throw new IllegalArgumentException(where + ": found past inputs for layers " + pastInputs.keySet()
                        + " of a " + shape.layers() + "-layer model; valid: a key and a value input per layer");
            }
            Map<String, INDArray> in = new LinkedHashMap<>(base.inputs());
            in.put(Batch.ATTENTION_MASK, withPrefix(mask, base.size()));
            // placeholders so the model's own inputs are complete; the edited graph computes them from the prefix
            pastInputs.values().forEach(kv -> {
                for (String name : kv) {
                    in.put(name, Nd4j.zeros(org.nd4j.linalg.api.buffer.DataType.FLOAT, base.size(), shape.heads(),
                            length, shape.headDim()));
                }
            });
            if (g.inputNames().contains("position_ids")) { // the real tokens sit at P.. behind a past of P
                INDArray fed = base.inputs().get("position_ids");
                in.put("position_ids", (fed != null ? fed : Nd4j.arange(base.seqLen()).castTo(
                        org.nd4j.linalg.api.buffer.DataType.LONG).reshape(1, base.seqLen()).repeat(0, base.size()))
                        .add(length));
            }
            positions = Optional.empty();
            this.extended = model.complete(new Batch(in));
            return;
        }
        if (!model.hooks().recognised()) {
            throw new IllegalArgumentException(where + ": found a graph whose layers jreft does not recognise;"
                    + " valid: a GPT-2, Llama or BERT-family export, or an export with past inputs");
        }
        for (int l = 0; l < shape.layers(); l++) {
            keysValues.add(attentionOperands(g, model.hook("blocks." + l + ".attention_weight").tensor(), l, where));
        }
        String family = model.hooks().config().family();
        queryPositions = family.equals("bert") ? Optional.empty() : CausalMask.queryPositions(g);
        boolean slicedByKeyLength = keysValues.stream().allMatch(kv -> readsShape(g, kv[0].tensor()));
        if (!family.equals("bert") && queryPositions.isEmpty() && !slicedByKeyLength) {
            throw new IllegalArgumentException(where + ": could not tell how this " + family + " export without past"
                    + " inputs masks future keys; valid: a causal mask sliced by the key length (GPT-2) or built from"
                    + " cache positions (Llama), or an export with past inputs (past.<i>.key / .value)");
        }
        // the graph names the mask's and the ids' lengths alike; its mask arithmetic does not depend on s, so the
        // batch is completed with the real tokens' mask and given the longer one after
        Map<String, INDArray> done = new LinkedHashMap<>(model.complete(base).inputs());
        done.put(Batch.ATTENTION_MASK, withPrefix(done.get(Batch.ATTENTION_MASK), base.size()));
        if (done.containsKey("position_ids")) { // fed positions move in the batch, computed ones in the graph
            done.put("position_ids", done.get("position_ids").add(length));
            positions = Optional.empty();
        } else {
            positions = InputLimits.computedPositions(g);
        }
        this.extended = new Batch(done);
    }

    /** P ones in front of every row of the mask. */
    private INDArray withPrefix(INDArray mask, int rows) {
        return Nd4j.concat(1, Nd4j.ones(mask.dataType(), rows, length), mask);
    }

    @Override
    int offset() {
        return 0;
    }

    /**
     * Where a layer's prefixes go: found from the score MatMul under the layer's Softmax (through its scale and mask)
     * and the context MatMul that reads the Softmax, back through the kᵀ transpose and transformers' {@code repeat_kv}
     * (Unsqueeze → Expand → Reshape), to the keys and values as a past extends them: after the rotary embedding, with
     * the key / value heads. Nothing but Shapes and that path may read them, so the prefix reaches only the attention
     * and the shapes computed from the key length (a causal mask's slice) follow it.
     */
    private static Operand[] attentionOperands(OnnxGraph g, String probabilities, int layer, String where) {
        String softmax = probabilities; // the hook may be a Cast of the Softmax output
        while (g.producer(softmax).filter(p -> Set.of("Cast", "Identity").contains(p.getOpType())).isPresent()) {
            softmax = g.producer(softmax).get().getInput(0);
        }
        if (g.producer(softmax).filter(p -> p.getOpType().equals("Softmax")).isEmpty()) {
            throw new IllegalArgumentException(where + ": could not place the prefix in layer " + layer + ": its"
                    + " attention weights " + probabilities + " are not a Softmax output; valid: an attention of"
                    + " MatMul(q, kᵀ) → Softmax → MatMul(·, v), as torch exports it");
        }
        NodeProto scores = null;
        Deque<String> todo = new ArrayDeque<>(List.of(g.producer(softmax).orElseThrow().getInput(0)));
        Set<String> seen = new HashSet<>();
        while (!todo.isEmpty() && scores == null && seen.size() < 16) {
            String t = todo.pop();
            if (!seen.add(t)) {
                continue;
            }
            Optional<NodeProto> p = g.producer(t);
            if (p.isEmpty()) {
                continue;
            }
            if (p.get().getOpType().equals("MatMul")) {
                scores = p.get();
            } else if (Set.of("Add", "Sub", "Mul", "Div", "Where", "Cast", "Identity").contains(p.get().getOpType())) {
                p.get().getInputList().forEach(todo::add);
            }
        }
        NodeProto context = reachedThroughCasts(g, softmax); // Casts between them: torch's float32 upcast
        if (scores == null || context == null) {
            throw new IllegalArgumentException(where + ": could not place the prefix in layer " + layer + ": found no "
                    + (scores == null ? "score MatMul before" : "context MatMul after") + " its Softmax " + softmax
                    + "; valid: an attention of MatMul(q, kᵀ) → Softmax → MatMul(·, v), as torch exports it");
        }
        Operand[] kv = {pastLike(g, scores.getInput(1), "bhds"), pastLike(g, context.getInput(1), "bhsd")};
        for (int i = 0; i < 2; i++) {
            String t = kv[i].tensor();
            String read = i == 0 ? scores.getName() : context.getName();
            boolean others = g.outputNames().contains(t) || g.consumers(t).stream().anyMatch(n ->
                    !n.getOpType().equals("Shape") && !onPathTo(g, n, read));
            if (others) {
                throw new IllegalArgumentException(where + ": could not place the prefix in layer " + layer + ": "
                        + t + " is read by " + g.consumers(t).stream().map(NodeProto::getOpType).toList()
                        + (g.outputNames().contains(t) ? " and is a graph output" : "") + "; valid: keys and values"
                        + " that only the attention reads");
            }
        }
        return kv;
    }

    private static NodeProto reachedThroughCasts(OnnxGraph g, String tensor) {
        String t = tensor;
        for (int i = 0; i < 4; i++) {
            String at = t;
            List<NodeProto> readers = g.consumers(at);
            Optional<NodeProto> mm = readers.stream().filter(n -> n.getOpType().equals("MatMul")
                    && n.getInput(0).equals(at)).findFirst();
            if (mm.isPresent()) {
                return mm.get();
            }
            if (readers.size() != 1 || !readers.get(0).getOpType().equals("Cast")) {
                return null;
            }
            t = readers.get(0).getOutput(0);
        }
        return null;
    }

    /**
     * From a MatMul operand of {@code layout} back through Transposes and {@code repeat_kv} to the first tensor after
     * the head split (the rotary embedding's output for Llama), where a past would go.
     */
    private static Operand pastLike(OnnxGraph g, String operand, String layout) {
        String t = operand;
        String at = layout;
        for (int guard = 0; guard < 8; guard++) {
            NodeProto p = g.producer(t).orElse(null);
            if (p == null) {
                break;
            }
            String op = p.getOpType();
            if (op.equals("Transpose") && OnnxGraph.attrInts(p, "perm").size() == 4) {
                char[] in = new char[4]; // out[i] = in[perm[i]]
                List<Long> perm = OnnxGraph.attrInts(p, "perm");
                for (int i = 0; i < 4; i++) {
                    in[perm.get(i).intValue()] = at.charAt(i);
                }
                at = new String(in);
                t = p.getInput(0);
            } else if (op.equals("Reshape") && producedBy(g, p.getInput(0), "Expand")) {
                t = p.getInput(0);
            } else if (op.equals("Expand") && producedBy(g, p.getInput(0), "Unsqueeze")
                    && isRepeatStart(g, g.producer(p.getInput(0)).get())) {
                t = g.producer(p.getInput(0)).get().getInput(0);
            } else {
                break;
            }
        }
        return new Operand(t, at);
    }

    /** An Unsqueeze that only an Expand reads: the start of repeat_kv. */
    private static boolean isRepeatStart(OnnxGraph g, NodeProto unsqueeze) {
        List<NodeProto> readers = g.consumers(unsqueeze.getOutput(0));
        return readers.size() == 1 && readers.get(0).getOpType().equals("Expand");
    }

    /** True when a Shape reads {@code tensor}, directly or through a Transpose. */
    private static boolean readsShape(OnnxGraph g, String tensor) {
        return g.consumers(tensor).stream().anyMatch(n -> n.getOpType().equals("Shape") || n.getOpType().equals(
                "Transpose") && g.consumers(n.getOutput(0)).stream().anyMatch(r -> r.getOpType().equals("Shape")));
    }

    private static boolean producedBy(OnnxGraph g, String tensor, String op) {
        return g.producer(tensor).filter(p -> p.getOpType().equals(op)).isPresent();
    }

    /**
     * True when {@code node} is {@code target} or reaches it through nodes that each have one reader besides Shapes,
     * or when only Shapes read what it computes (GPT-2 transposes its keys once for the scores and once for their
     * length).
     */
    private static boolean onPathTo(OnnxGraph g, NodeProto node, String target) {
        NodeProto n = node;
        for (int guard = 0; guard < 8; guard++) {
            if (n.getName().equals(target)) {
                return true;
            }
            if (g.outputNames().contains(n.getOutput(0))) {
                return false;
            }
            List<NodeProto> readers = g.consumers(n.getOutput(0)).stream().filter(r -> !r.getOpType().equals("Shape"))
                    .toList();
            if (readers.isEmpty()) {
                return true;
            }
            if (readers.size() != 1) {
                return false;
            }
            n = readers.get(0);
        }
        return false;
    }

    @Override
    void splice(OnnxGraph g) {
        int n = 2 * shape.layers();
        List<String> prefixes = new ArrayList<>();
        for (int j = 0; j < n; j++) {
            prefixes.add(ns + "/prefix" + j);
        }
        if (!pastInputs.isEmpty()) {
            for (var e : pastInputs.entrySet()) {
                for (int kv = 0; kv < 2; kv++) {
                    String prefix = prefixes.get(2 * e.getKey() + kv);
                    g.defineInput(e.getValue()[kv], ns + ".past" + e.getKey() + "." + kv, b -> b.op("Expand",
                            List.of(prefix, batchShape(b, b.op("Shape", List.of(Batch.INPUT_IDS)), shape.heads(),
                                    length, shape.headDim()))));
                }
            }
        }
        // the prefixes depend on the parameters alone: computed once, first, before every node that reads them
        g.prepend(ns, b -> {
            declaredShapes.forEach((name, dims) -> b.input(name, ElemTypes.FLOAT, dims));
            List<String> emitted = ((KeyValuePrefix) site.edit()).emitPrefixes(b, shape, paramInputs);
            if (emitted.size() != n) {
                throw new IllegalStateException(site.edit().type() + " emitted " + emitted.size() + " prefixes for "
                        + shape.layers() + " layers");
            }
            for (int j = 0; j < n; j++) {
                b.opTo(prefixes.get(j), "Identity", List.of(emitted.get(j)));
            }
        });
        if (!pastInputs.isEmpty()) {
            return;
        }
        for (int l = 0; l < keysValues.size(); l++) {
            prependOn(g, keysValues.get(l)[0], prefixes.get(2 * l), ns + ".k" + l);
            prependOn(g, keysValues.get(l)[1], prefixes.get(2 * l + 1), ns + ".v" + l);
        }
        positions.ifPresent(p -> g.splice(p, ns + ".positions", (SubgraphBuilder b, String original) ->
                b.op("Add", List.of(original, b.constantInts(new long[] {length}, 1)))));
        queryPositions.ifPresent(p -> g.splice(p, ns + ".cache_positions", (SubgraphBuilder b, String original) ->
                b.op("Add", List.of(original, b.op("CastLike", List.of(b.constantInts(new long[] {length}, 1),
                        original))))));
    }

    /** The prefix [1, heads, P, dh] in the operand's layout, broadcast over the batch, first on its positions. */
    private void prependOn(OnnxGraph g, Operand at, String prefix, String namespace) {
        long[] perm = new long[4];
        long[] dims = new long[3];
        for (int i = 0; i < 4; i++) {
            char axis = at.layout().charAt(i);
            perm[i] = "bhsd".indexOf(axis);
            if (i > 0) {
                dims[i - 1] = switch (axis) {
                    case 'h' -> shape.heads();
                    case 's' -> length;
                    default -> shape.headDim();
                };
            }
        }
        g.splice(at.tensor(), namespace, (SubgraphBuilder b, String operand) -> {
            String laid = at.layout().equals("bhsd") ? prefix : b.op("Transpose", List.of(prefix),
                    Attr.ints("perm", perm));
            String front = b.op("Expand", List.of(laid, batchShape(b, b.op("Shape", List.of(operand)), dims[0],
                    dims[1], dims[2])));
            return b.op("Concat", List.of(front, operand), Attr.i("axis", at.positionAxis()));
        });
    }

    /** [b, d1, d2, d3] with b the first entry of {@code shapeOf}. */
    private static String batchShape(SubgraphBuilder b, String shapeOf, long d1, long d2, long d3) {
        String rows = b.op("Slice", List.of(shapeOf, b.constantInts(new long[] {0}, 1), b.constantInts(new long[] {1},
                1)));
        return b.op("Concat", List.of(rows, b.constantInts(new long[] {d1, d2, d3}, 3)), Attr.i("axis", 0));
    }
}
