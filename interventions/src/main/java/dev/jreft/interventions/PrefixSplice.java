package dev.jreft.interventions;

import ai.onnx.proto.OnnxMl.NodeProto;
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
 * first on axis 2), and computed positions move up by P (fed {@code position_ids} are moved in the batch). Either way
 * the attention mask gains P ones in front; the queries, and so every output and hook, stay the real tokens'.
 */
final class PrefixSplice extends SequenceSplice {
    private static final Pattern PAST = Pattern.compile("^(?:past|past_key_values)\\.(\\d+)\\.(key|value)$");

    /** With past inputs: input name per (layer, key 0 / value 1). */
    private final Map<Integer, String[]> pastInputs = new LinkedHashMap<>();
    /** Without: the tensors the score and context MatMuls read, per layer. */
    private final List<String[]> keysValues = new ArrayList<>();
    private final Optional<String> positions;

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
            positions = Optional.empty();
            this.extended = model.complete(new Batch(in));
            return;
        }
        if (!model.hooks().recognised()) {
            throw new IllegalArgumentException(where + ": found a graph whose layers jreft does not recognise;"
                    + " valid: a GPT-2, Llama or BERT-family export, or an export with past inputs");
        }
        String family = model.hooks().config().family();
        if (!family.equals("bert")) { // a causal mask sliced from the key length would need the prefix too
            throw new IllegalArgumentException(where + ": found a " + family + " export without past inputs;"
                    + " valid: for causal models an export with past inputs (past.<i>.key / .value), where the"
                    + " prefix is the past; without them, BERT-family encoders");
        }
        for (int l = 0; l < shape.layers(); l++) {
            keysValues.add(attentionOperands(g, model.hook("blocks." + l + ".attention_weight").tensor(), l, where));
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
     * The key operand of the score MatMul under the layer's Softmax (through its scale and mask) and the value operand
     * of the context MatMul that reads the Softmax; each must feed that MatMul alone.
     */
    private static String[] attentionOperands(OnnxGraph g, String softmax, int layer, String where) {
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
        NodeProto context = g.consumers(softmax).stream().filter(n -> n.getOpType().equals("MatMul")
                && n.getInput(0).equals(softmax)).findFirst().orElse(null);
        if (scores == null || context == null) {
            throw new IllegalArgumentException(where + ": could not place the prefix in layer " + layer + ": found no "
                    + (scores == null ? "score MatMul before" : "context MatMul after") + " its Softmax " + softmax
                    + "; valid: an attention of MatMul(q, kᵀ) → Softmax → MatMul(·, v), as torch exports it");
        }
        String[] kv = {scores.getInput(1), context.getInput(1)};
        for (String t : kv) {
            if (g.consumers(t).size() != 1) {
                throw new IllegalArgumentException(where + ": could not place the prefix in layer " + layer + ": "
                        + t + " is read by " + g.consumers(t).size() + " nodes; valid: keys and values that only"
                        + " the attention reads");
            }
        }
        return kv;
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
            String key = prefixes.get(2 * l);
            String value = prefixes.get(2 * l + 1);
            g.splice(keysValues.get(l)[0], ns + ".k" + l, (SubgraphBuilder b, String keys) -> {
                String front = b.op("Expand", List.of(b.op("Transpose", List.of(key), Attr.ints("perm", 0, 1, 3, 2)),
                        batchShape(b, b.op("Shape", List.of(keys)), shape.heads(), shape.headDim(), length)));
                return b.op("Concat", List.of(front, keys), Attr.i("axis", 3));
            });
            g.splice(keysValues.get(l)[1], ns + ".v" + l, (SubgraphBuilder b, String values) -> {
                String front = b.op("Expand", List.of(value, batchShape(b, b.op("Shape", List.of(values)),
                        shape.heads(), length, shape.headDim())));
                return b.op("Concat", List.of(front, values), Attr.i("axis", 2));
            });
        }
        positions.ifPresent(p -> g.splice(p, ns + ".positions", (SubgraphBuilder b, String original) ->
                b.op("Add", List.of(original, b.constantInts(new long[] {length}, 1)))));
    }

    /** [b, d1, d2, d3] with b the first entry of {@code shapeOf}. */
    private static String batchShape(SubgraphBuilder b, String shapeOf, long d1, long d2, long d3) {
        String rows = b.op("Slice", List.of(shapeOf, b.constantInts(new long[] {0}, 1), b.constantInts(new long[] {1},
                1)));
        return b.op("Concat", List.of(rows, b.constantInts(new long[] {d1, d2, d3}, 3)), Attr.i("axis", 0));
    }
}
