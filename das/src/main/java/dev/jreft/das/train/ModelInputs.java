package dev.jreft.das.train;

import dev.jreft.hooks.runtime.Batch;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;
import java.util.Map;

/**
 * How inputs of type {@code T} (feature vectors, sentences, ...) become one batch for the model, and at which
 * positions of an input an alignment intervenes.
 */
public interface ModelInputs<T> {
    /** The batch for these inputs (padded as the model needs). */
    Batch batch(List<T> inputs);

    /** The sequence positions of {@code input} that are intervened on (base) or read (source). */
    int[] positions(T input);

    /** Feature vectors fed as {@code name} [n, 1, width]; the one position is 0. For MLPs such as {@code Mlp}. */
    static ModelInputs<float[]> features(String name) {
        return new ModelInputs<>() {
            @Override
            public Batch batch(List<float[]> rows) {
                int n = rows.size();
                int w = rows.get(0).length;
                float[] flat = new float[n * w];
                for (int i = 0; i < n; i++) {
                    if (rows.get(i).length != w) {
                        throw new IllegalArgumentException("feature vectors in one batch must share one width; row "
                                + i + " has " + rows.get(i).length + ", row 0 has " + w);
                    }
                    System.arraycopy(rows.get(i), 0, flat, i * w, w);
                }
                return new Batch(Map.of(name, Nd4j.create(flat, new long[] {n, 1, w}, 'c')));
            }

            @Override
            public int[] positions(float[] input) {
                return new int[] {0};
            }
        };
    }
}
