package dev.jreft.hooks.runtime;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Model inputs by graph input name ({@code input_ids}, {@code attention_mask}, ...), each [batch, seq] int64.
 * Right padding: {@code attention_mask} is 1 on real tokens and 0 on padding.
 */
public record Batch(Map<String, INDArray> inputs) {
    public static final String INPUT_IDS = "input_ids";
    public static final String ATTENTION_MASK = "attention_mask";

    public Batch {
        inputs = Collections.unmodifiableMap(new LinkedHashMap<>(inputs));
        if (!inputs.containsKey(INPUT_IDS)) {
            throw new IllegalArgumentException("a batch needs input_ids; got " + inputs.keySet());
        }
        long[] shape = inputs.get(INPUT_IDS).shape();
        if (shape.length != 2) {
            throw new IllegalArgumentException("input_ids must be [batch, seq]; got " + java.util.Arrays.toString(shape));
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

    public int size() {
        return (int) inputs.get(INPUT_IDS).size(0);
    }

    public int seqLen() {
        return (int) inputs.get(INPUT_IDS).size(1);
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

    /** Index of the last real token of row {@code b} (right padding). */
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
