package dev.jreft.hooks.discovery;

import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.hooks.io.ConfigException;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayDeque;
import java.util.Deque;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * What a graph's integer inputs may hold, read off its embedding tables instead of a config file: a Gather from a
 * [rows, width] initializer indexed by an input bounds that input's values by the rows (the vocabulary for
 * {@code input_ids}, 2 for BERT's {@code token_type_ids}); a table indexed by positions the graph computes itself
 * (from shapes only) bounds the sequence length. ONNX Runtime reports a value past either as a broadcast or index
 * error deep in a kernel; {@link #check} says which input, where, and what is valid.
 */
public record InputLimits(Map<String, Long> idLimits, Optional<Long> maxPositions) {
    /** Ops that pass index values through unchanged in meaning (reshaping, casting). */
    private static final Set<String> PASS_THROUGH = Set.of("Reshape", "Unsqueeze", "Squeeze", "Cast", "Identity",
            "Flatten");

    public static InputLimits of(OnnxGraph g) {
        Map<String, Long> ids = new LinkedHashMap<>();
        Long positions = null;
        Set<String> inputs = new HashSet<>(g.inputNames());
        for (NodeProto n : g.nodes()) {
            if (!n.getOpType().equals("Gather") || n.getInputCount() < 2) {
                continue;
            }
            Optional<TensorProto> table = g.initializer(n.getInput(0));
            if (table.isEmpty() || table.get().getDimsCount() != 2 || OnnxGraph.attrInt(n, "axis", 0) != 0) {
                continue;
            }
            long rows = table.get().getDims(0);
            Optional<String> input = indexedInput(g, n.getInput(1));
            if (input.isPresent()) {
                String idx = input.get();
                ids.merge(idx, rows, Math::min);
                if (idx.equals("position_ids")) {
                    positions = positions == null ? rows : Math.min(positions, rows);
                }
            } else if (!readsInputValues(g, n.getInput(1), inputs)) {
                positions = positions == null ? rows : Math.min(positions, rows);
            }
        }
        return new InputLimits(Map.copyOf(ids), Optional.ofNullable(positions));
    }

    /**
     * The indices of the position-embedding lookup when the graph computes them itself (from shapes only, BERT's
     * {@code /embeddings/Slice} of its position buffer; GPT-2's {@code arange}): the tensor a prefix of P shifts by
     * P. Empty when positions are fed ({@code position_ids}) or the model has no position table (rotary).
     */
    public static Optional<String> computedPositions(OnnxGraph g) {
        Set<String> inputs = new HashSet<>(g.inputNames());
        for (NodeProto n : g.nodes()) {
            if (!n.getOpType().equals("Gather") || n.getInputCount() < 2 || OnnxGraph.attrInt(n, "axis", 0) != 0) {
                continue;
            }
            Optional<TensorProto> table = g.initializer(n.getInput(0));
            if (table.isPresent() && table.get().getDimsCount() == 2 && indexedInput(g, n.getInput(1)).isEmpty()
                    && !readsInputValues(g, n.getInput(1), inputs)) {
                return Optional.of(n.getInput(1));
            }
        }
        return Optional.empty();
    }

    /** The graph input that {@code indices} is, through reshapes and casts; empty when it is computed. */
    static Optional<String> indexedInput(OnnxGraph g, String indices) {
        String idx = indices;
        while (!g.inputNames().contains(idx) && g.producer(idx).filter(p -> PASS_THROUGH.contains(p.getOpType()))
                .isPresent()) {
            idx = g.producer(idx).get().getInput(0);
        }
        return g.inputNames().contains(idx) ? Optional.of(idx) : Optional.empty();
    }

    /** True when {@code tensor} depends on the values (not only the shapes) of a graph input. */
    private static boolean readsInputValues(OnnxGraph g, String tensor, Set<String> inputs) {
        Deque<String> todo = new ArrayDeque<>();
        Set<String> seen = new HashSet<>();
        todo.add(tensor);
        while (!todo.isEmpty()) {
            String t = todo.pop();
            if (!seen.add(t)) {
                continue;
            }
            if (inputs.contains(t)) {
                return true;
            }
            Optional<NodeProto> p = g.producer(t);
            if (p.isPresent() && !p.get().getOpType().equals("Shape")) {
                p.get().getInputList().stream().filter(s -> !s.isEmpty()).forEach(todo::add);
            }
        }
        return false;
    }

    /**
     * Checks a batch's integer inputs against the limits and the attention mask's form (0 or 1, at least one real
     * token per row); {@code origin} names the model in messages.
     */
    public void check(Map<String, INDArray> batch, String origin) {
        check(batch, origin, false);
    }

    /**
     * As {@link #check(Map, String)}; with {@code positionsGiven} (the caller fed each token's position, as left-padded
     * generation does) the mask may also pad on the left.
     */
    public void check(Map<String, INDArray> batch, String origin, boolean positionsGiven) {
        for (var e : batch.entrySet()) {
            INDArray v = e.getValue();
            if (v == null || !v.dataType().isIntType()) {
                continue;
            }
            Long limit = idLimits.get(e.getKey());
            if (limit == null && e.getKey().equals("position_ids")) {
                limit = Long.MAX_VALUE; // rotary positions have no table, but are never negative
            }
            if (limit != null) {
                long[] flat = v.dup('c').data().asLong();
                for (int i = 0; i < flat.length; i++) {
                    if (flat[i] < 0 || flat[i] >= limit) {
                        throw new ConfigException(e.getKey() + index(v, i), flat[i], (e.getKey().equals("input_ids")
                                ? "a token id in 0.." + (limit - 1) + " (the vocabulary of " + origin + ")"
                                : limit == Long.MAX_VALUE ? "a position >= 0"
                                : "an id in 0.." + (limit - 1) + " (the embedding table " + origin + " looks "
                                + e.getKey() + " up in has " + limit + " rows)"));
                    }
                }
            }
        }
        INDArray mask = batch.get("attention_mask");
        if (mask != null && mask.dataType().isIntType() && mask.rank() == 2) {
            long[] flat = mask.dup('c').data().asLong();
            int cols = (int) mask.size(1);
            for (int r = 0; r < mask.size(0); r++) {
                long real = 0;
                boolean padding = false;
                for (int c = 0; c < cols; c++) {
                    long m = flat[r * cols + c];
                    if (m != 0 && m != 1) {
                        throw new ConfigException("attention_mask[" + r + "][" + c + "]", m, "0 (padding) or 1 (a real"
                                + " token)");
                    }
                    if (m == 1 && padding && !positionsGiven) { // jreft's positions count real tokens from the left
                        throw ConfigException.of("attention_mask[" + r + "]", "found a real token at " + c + " after"
                                + " padding; valid: right padding (the 1s first, then the 0s), or left padding with"
                                + " position_ids given");
                    }
                    padding |= m == 0;
                    real += m;
                }
                if (real == 0 && cols > 0) {
                    throw ConfigException.of("attention_mask[" + r + "]", "found no real token (all 0); valid: at"
                            + " least one 1 per row");
                }
            }
        }
        INDArray ids = batch.get("input_ids");
        if (maxPositions.isPresent() && ids != null && ids.rank() == 2 && ids.size(1) > maxPositions.get()) {
            throw new ConfigException("input_ids", ConfigException.described(ids.size(1) + " positions"), "at most "
                    + maxPositions.get() + " (the position table of " + origin + ")");
        }
    }

    private static String index(INDArray v, int flat) {
        StringBuilder b = new StringBuilder();
        long rest = flat;
        long[] shape = v.shape();
        long[] at = new long[shape.length];
        for (int d = shape.length - 1; d >= 0; d--) {
            at[d] = rest % shape[d];
            rest /= shape[d];
        }
        for (long a : at) {
            b.append('[').append(a).append(']');
        }
        return b.toString();
    }
}
