package dev.jreft.training;

import dev.jreft.interventions.params.Orthogonal;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Known answer: minimising {@code L(Q) = −tr(Qᵀ C Q)} over Q [n, k] with orthonormal columns gives the top-k
 * eigenspace of the symmetric C, with {@code −L} the sum of the k largest eigenvalues (Ky Fan).
 */
class OrthogonalAdamTest {
    private static final double[] EIGENVALUES = {5, 4, 3, 1, 0.5, 0.2, 0.1, 0};

    private static INDArray matrixWithEigenvalues(Random r) {
        INDArray v = Orthogonal.randomRows(8, 8, r).castTo(DataType.DOUBLE);
        return v.transpose().mmul(Nd4j.diag(Nd4j.createFromArray(EIGENVALUES))).mmul(v);
    }

    private static double objective(INDArray c, INDArray q) {
        INDArray qd = q.castTo(DataType.DOUBLE);
        return Nd4j.diag(qd.transpose().mmul(c).mmul(qd)).sumNumber().doubleValue();
    }

    private static INDArray minimise(INDArray c, INDArray q, int steps, double lr) {
        OrthogonalAdam opt = new OrthogonalAdam();
        for (int i = 0; i < steps; i++) {
            INDArray grad = c.mmul(q.castTo(DataType.DOUBLE)).muli(-2).castTo(DataType.FLOAT); // dL/dQ
            opt.step(Map.of("Q", q), Map.of("Q", grad), lr);
        }
        return q;
    }

    @Test
    void findsTheTopEigenspaceAndKeepsTheColumnsOrthonormal() {
        Random r = new Random(3);
        INDArray c = matrixWithEigenvalues(r);
        for (int k : new int[] {2, 8}) {
            INDArray q = Orthogonal.randomRows(k, 8, r).transpose().dup();
            minimise(c, q, 600, 0.02);
            double best = 0;
            for (int i = 0; i < k; i++) {
                best += EIGENVALUES[i];
            }
            assertEquals(best, objective(c, q), 1e-3, "k = " + k);
            assertTrue(Orthogonal.deviation(q, true) < 1e-5, "deviation " + Orthogonal.deviation(q, true));
        }
    }

    @Test
    void everyStepOfPlainGradientDescentLowersTheLoss() {
        Random r = new Random(5);
        INDArray c = matrixWithEigenvalues(r);
        INDArray q = Orthogonal.randomRows(3, 8, r).transpose().dup();
        OrthogonalAdam sgdLike = new OrthogonalAdam(0, 0.999, 1e-8);
        double before = -objective(c, q);
        for (int i = 0; i < 50; i++) {
            INDArray grad = c.mmul(q.castTo(DataType.DOUBLE)).muli(-2).castTo(DataType.FLOAT);
            sgdLike.step(Map.of("Q", q), Map.of("Q", grad), 1e-3);
            double after = -objective(c, q);
            assertTrue(after <= before + 1e-6, "step " + i + ": " + before + " -> " + after);
            before = after;
        }
    }

    @Test
    void theLowRankCayleyStepEqualsTheFullOne() {
        Random r = new Random(9);
        int n = 12;
        INDArray frame = Orthogonal.randomRows(n, n, r).castTo(DataType.DOUBLE).transpose().dup();
        for (int k : new int[] {1, 3, 5}) {
            INDArray step = Nd4j.zeros(DataType.DOUBLE, n, n);
            for (int j = 0; j < k; j++) {
                for (int i = j + 1; i < n; i++) {
                    step.putScalar(i, j, r.nextGaussian() * 0.3);
                }
            }
            INDArray full = frame.mmul(OrthogonalAdam.cayley(step.sub(step.transpose())));
            INDArray lowRank = OrthogonalAdam.rotate(frame, step, k);
            assertEquals(0, full.sub(lowRank).amaxNumber().doubleValue(), 1e-10, "k = " + k);
            // the frame came from floats: the rotation must keep its orthogonality, not improve on it
            assertTrue(Orthogonal.deviation(lowRank, true) < Orthogonal.deviation(frame, true) + 1e-10, "k = " + k);
        }
    }

    @Test
    void rejectsAMatrixWithoutOrthonormalColumns() {
        INDArray q = Nd4j.ones(DataType.FLOAT, 4, 2);
        var e = assertThrows(IllegalArgumentException.class, () -> new OrthogonalAdam().step(Map.of("Q", q),
                Map.of("Q", Nd4j.zeros(DataType.FLOAT, 4, 2)), 1e-3));
        assertTrue(e.getMessage().contains("orthonormal columns"), e.getMessage());
    }
}
