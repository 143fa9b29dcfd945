package dev.jreft.hooks.runtime;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Model inputs by graph input name ({@code input_ids}, {@code attention_mask}, ...), each [batch, seq] int64 for
 * token models; any other model's inputs (a float [batch, seq, ...] tensor) work too. Batch size and sequence length
 * come from {@code input_ids} when present, else from the first input. Right padding: {@code attention_mask} is 1 on
 * real tokens and 0 on padding; without one every position is real.
 */
public record Batch(Map<String, INDArray> inputs) {
    public static final String INPUT_IDS = "input_ids";
    public static final String ATTENTION_MASK = "attention_mask";

    public Batch {
        inputs = Collections.unmodifiableMap(new LinkedHashMap<>(inputs));
        if (inputs.isEmpty()) {
            throw new IllegalArgumentException("a batch needs at least one input (input_ids for token models)");
        }
        INDArray ids = inputs.get(INPUT_IDS);
        long[] shape = (ids != null ? ids : inputs.values().iterator().next()).shape();
        if (ids != null && shape.length != 2) {
            throw new IllegalArgumentException("input_ids must be [batch, seq]; got " + java.util.Arrays.toString(shape));
        }
        if (shape.length < 2) {
            throw new IllegalArgumentException("batch inputs must be at least [batch, seq]; got "
                    + java.util.Arrays.toString(shape));
        }
        INDArray mask = inputs.get(ATTENTION_MASK);
        if (mask != null && mask.size(0) != shape[0]) {
            throw new IllegalArgumentException("batch mismatch: input_ids has " + shape[0]
                    + " rows but attention_mask has " + mask.size(0));
        }
    }

    public static Batch of(long[][] inputIds, long[][] attentionMask) {
        Map<String, INDArray> m = new LinkedHashMap<>();
        m.put(INPUT_IDS, Nd4j.createFromArray(inputIds));
        m.put(ATTENTION_MASK, Nd4j.createFromArray(attentionMask));
        return new Batch(m);
    }

    private INDArray primary() {
        INDArray ids = inputs.get(INPUT_IDS);
        return ids != null ? ids : inputs.values().iterator().next();
    }

    public int size() {
        return (int) primary().size(0);
    }

    public int seqLen() {
        return (int) primary().size(1);
    }

    /** The attention mask; all ones when the batch has none. */
    public INDArray attentionMask() {
        INDArray m = inputs.get(ATTENTION_MASK);
        return m != null ? m : Nd4j.ones(DataType.LONG, size(), seqLen());
    }

    /** True when row {@code b} has a real (non-pad) token at {@code pos}. */
    public boolean isReal(int b, int pos) {
        return pos >= 0 && pos < seqLen() && attentionMask().getLong(b, pos) != 0;
    }

    /** Index of the first real token of row {@code b}: 0 with right padding, the pad count with left padding. */
    public int firstReal(int b) {
        INDArray m = attentionMask();
        for (int t = 0; t < seqLen(); t++) {
            if (m.getLong(b, t) != 0) {
                return t;
            }
        }
        return -1;
    }

    /** Index of the last real token of row {@code b}. */
    public int lastReal(int b) {
        INDArray m = attentionMask();
        for (int t = seqLen() - 1; t >= 0; t--) {
            if (m.getLong(b, t) != 0) {
                return t;
            }
        }
        return -1;
    }

    public Batch with(String name, INDArray value) {
        Map<String, INDArray> m = new LinkedHashMap<>(inputs);
        m.put(name, value);
        return new Batch(m);
    }
}
