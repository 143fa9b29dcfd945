package dev.jreft.training;

import dev.jreft.hooks.io.ConfigException;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;
import java.util.Map;

/**
 * The workers of a data-parallel run as one of them sees them: its rank, how many there are, and a sum across all.
 * Every worker holds the same parameters and walks the same shuffled global batches; each computes the gradient
 * of its share of a batch, and the shares' gradients, weighted by their share of the batch, sum to the gradient of
 * the whole batch's mean loss. Every worker then applies that same update, so the workers stay equal and equal to
 * one process training on the global batch (up to float rounding of the sum).
 */
public interface Replicas {
    /** One process alone: the sum is the value itself. */
    Replicas ALONE = new Replicas() {
        @Override
        public int rank() {
            return 0;
        }

        @Override
        public int count() {
            return 1;
        }

        @Override
        public double[] sum(float[] values, double weight) {
            double[] s = new double[values.length];
            for (int i = 0; i < s.length; i++) {
                s[i] = weight * values[i];
            }
            return s;
        }
    };

    /** Every worker needs a share of every batch. */
    static void checkBatch(int batchSize, int workers) {
        if (batchSize < workers) {
            throw new ConfigException("training.batch_size", batchSize, "at least the " + workers
                    + " workers (each steps on its share of every batch)");
        }
    }

    /** This worker's place, 0 .. count - 1. */
    int rank();

    /** How many workers share each batch. */
    int count();

    /**
     * Σ over workers of weight · values, element-wise, summed in rank order so that every worker gets the same
     * bits. Every worker calls it at the same point of its step with an array of the same length.
     */
    double[] sum(float[] values, double weight);

    /** This worker's rows of a global batch of {@code n}: a contiguous range, the first n % count one row longer. */
    default <E> List<E> share(List<E> batch) {
        int n = batch.size();
        int base = n / count();
        int extra = n % count();
        int from = rank() * base + Math.min(rank(), extra);
        return batch.subList(from, from + base + (rank() < extra ? 1 : 0));
    }

    /**
     * Replaces each of {@code grads} (the gradient of this worker's mean loss over {@code shareSize} of the
     * {@code batchSize} rows) by the whole batch's gradient, in place and in the map's order; returns the batch's mean
     * loss from this worker's {@code loss}.
     */
    default double meanOverBatch(Map<String, INDArray> grads, double loss, int shareSize, int batchSize) {
        if (count() == 1) {
            return loss;
        }
        long total = 1;
        for (INDArray g : grads.values()) {
            total += g.length();
        }
        if (total > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("the gradients hold " + total + " values; a data-parallel step sums at"
                    + " most " + Integer.MAX_VALUE);
        }
        float[] flat = new float[(int) total];
        flat[0] = (float) loss;
        int at = 1;
        for (INDArray g : grads.values()) {
            float[] v = g.castTo(DataType.FLOAT).reshape(g.length()).toFloatVector();
            System.arraycopy(v, 0, flat, at, v.length);
            at += v.length;
        }
        double[] sum = sum(flat, (double) shareSize / batchSize);
        at = 1;
        for (Map.Entry<String, INDArray> e : grads.entrySet()) {
            INDArray g = e.getValue();
            float[] v = new float[(int) g.length()];
            for (int i = 0; i < v.length; i++) {
                v[i] = (float) sum[at + i];
            }
            at += v.length;
            e.setValue(Nd4j.createFromArray(v).reshape(g.shape()).castTo(g.dataType()));
            dev.jreft.hooks.runtime.Tensors.free(List.of(g));
        }
        return sum[0];
    }

    /** The sum over workers of a count (correct predictions on each worker's share of the dev set). */
    default long total(long count) {
        return Math.round(sum(new float[] {count}, 1)[0]);
    }
}
