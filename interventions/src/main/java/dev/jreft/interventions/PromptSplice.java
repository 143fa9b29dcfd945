package dev.jreft.interventions;

import ai.onnx.proto.OnnxMl.ValueInfoProto;
import dev.jreft.hooks.discovery.TokenEmbedding;
import dev.jreft.hooks.graph.Attr;
import dev.jreft.hooks.graph.ElemTypes;
import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.hooks.graph.SubgraphBuilder;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A {@link SoftPrompt} ready to splice: the batch extended by P placeholder tokens in front, the edit's parameter
 * feeds, and the graph changes (the placeholders' token-embedding rows replaced by the prompt; the P virtual
 * positions cut off every output that runs along the sequence).
 */
final class PromptSplice extends SequenceSplice {
    /** The token id under each virtual token before its embedding is replaced (peft and the fixtures use 0). */
    static final long PLACEHOLDER = 0;

    private final TokenEmbedding embedding;
    private final List<String> trimmedOutputs;

    PromptSplice(SequenceSite site, int index, SequenceShape shape, HookedModel model, Batch base, String where) {
        super(site, index, shape);
        OnnxGraph graph = model.graph();
        this.embedding = TokenEmbedding.of(graph).orElseThrow(() -> new IllegalArgumentException(where
                + ": found no token embedding in the graph (a Gather from a [vocab, width] table indexed by"
                + " input_ids); valid: a token model with an input_ids input"));
        Batch completed = model.complete(base);
        checkPositions(model, length, completed.seqLen());
        this.extended = model.complete(extend(completed, length, where));
        this.trimmedOutputs = sequenceOutputs(graph);
    }

    @Override
    int offset() {
        return length;
    }

    /**
     * The batch with P placeholders in front of every row: ids {@link #PLACEHOLDER}, mask 1, token type 0, positions
     * 0..P−1 with the real tokens' positions moved up by P (what the model computes for a length P+s input).
     */
    static Batch extend(Batch b, int p, String where) {
        Map<String, INDArray> out = new LinkedHashMap<>();
        for (var e : b.inputs().entrySet()) {
            INDArray v = e.getValue();
            if (v.rank() != 2 || !v.dataType().isIntType()) {
                throw new IllegalArgumentException(where + ": input '" + e.getKey() + "' is " + v.dataType() + " "
                        + Arrays.toString(v.shape()) + "; valid: [batch, seq] integer inputs (a soft prompt extends"
                        + " token inputs)");
            }
            long rows = v.size(0);
            INDArray front = switch (e.getKey()) {
                case Batch.INPUT_IDS -> Nd4j.zeros(v.dataType(), rows, p).addi(PLACEHOLDER);
                case Batch.ATTENTION_MASK -> Nd4j.ones(v.dataType(), rows, p);
                case "position_ids" -> Nd4j.arange(p).castTo(v.dataType()).reshape(1, p).repeat(0, rows);
                default -> Nd4j.zeros(v.dataType(), rows, p); // token types and other per-token ids
            };
            INDArray rest = e.getKey().equals("position_ids") ? v.add(p) : v;
            out.put(e.getKey(), Nd4j.concat(1, front, rest));
        }
        return new Batch(out);
    }

    /** The graph outputs whose axis 1 is input_ids' sequence axis (same symbolic dim): they lose the prompt rows. */
    private static List<String> sequenceOutputs(OnnxGraph g) {
        String seq = g.inputs().stream().filter(v -> v.getName().equals(Batch.INPUT_IDS)).findFirst()
                .map(v -> dimParam(v, 1)).orElse("");
        List<String> out = new ArrayList<>();
        if (!seq.isEmpty()) {
            for (ValueInfoProto v : g.outputs()) {
                if (seq.equals(dimParam(v, 1))) {
                    out.add(v.getName());
                }
            }
        }
        return out;
    }

    private static String dimParam(ValueInfoProto v, int axis) {
        var dims = v.getType().getTensorType().getShape().getDimList();
        return dims.size() > axis ? dims.get(axis).getDimParam() : "";
    }

    @Override
    void splice(OnnxGraph g) {
        g.splice(embedding.output(), ns, (SubgraphBuilder b, String original) -> {
            declaredShapes.forEach((name, shape) -> b.input(name, ElemTypes.FLOAT, shape));
            String prompt = ((SoftPrompt) site.edit()).emitPrompt(b, paramInputs); // [P, d]
            String rows = b.op("Slice", List.of(b.op("Shape", List.of(original)), b.constantInts(new long[] {0}, 1),
                    b.constantInts(new long[] {1}, 1)));
            String target = b.op("Concat", List.of(rows, b.constantInts(new long[] {length, embedding.width()}, 2)),
                    Attr.i("axis", 0));
            String front = b.op("Expand", List.of(b.op("Reshape", List.of(prompt,
                    b.constantInts(new long[] {1, length, embedding.width()}, 3))), target));
            return b.op("Concat", List.of(front, tail(b, original)), Attr.i("axis", 1));
        });
        for (String out : trimmedOutputs) {
            g.splice(out, ns + ".trim/" + out, (SubgraphBuilder b, String original) -> tail(b, original));
        }
    }

    /** Positions P.. of axis 1. */
    private String tail(SubgraphBuilder b, String t) {
        return b.op("Slice", List.of(t, b.constantInts(new long[] {length}, 1),
                b.constantInts(new long[] {Long.MAX_VALUE}, 1), b.constantInts(new long[] {1}, 1)));
    }

    /** A hook value read from the extended run, with the virtual positions cut off axis 1. */
    @Override
    INDArray trim(INDArray hook) {
        if (hook == null || hook.rank() < 2 || hook.size(1) != extended.seqLen()) {
            return hook;
        }
        var all = new org.nd4j.linalg.indexing.INDArrayIndex[hook.rank()];
        Arrays.fill(all, NDArrayIndex.all());
        all[1] = NDArrayIndex.interval(length, hook.size(1));
        return hook.get(all).dup('c');
    }
}
