package dev.jreft.interventions.params;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Random;

/**
 * Dropout as a fed mask rather than a random op, so one graph serves training and evaluation and a run is
 * reproducible from its seed: a method multiplies by the mask, and evaluation feeds ones.
 */
public final class Dropout {
    private Dropout() {
    }

    /** Inverted dropout [batch, seq, width]: each entry 0 with probability p, else 1/(1 − p), as torch.nn.Dropout. */
    public static INDArray mask(long batch, long seq, long width, double p, Random random) {
        float keep = (float) (1 / (1 - p));
        float[] m = new float[Math.toIntExact(batch * seq * width)];
        for (int i = 0; i < m.length; i++) {
            m[i] = random.nextDouble() < p ? 0f : keep;
        }
        return Nd4j.create(m, new long[] {batch, seq, width}, 'c');
    }
}
