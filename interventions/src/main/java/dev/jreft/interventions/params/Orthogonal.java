package dev.jreft.interventions.params;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Random;

/**
 * Keeps LoReFT's R (orthonormal rows) and DAS's R (orthonormal columns) on their manifold. jreft retracts after
 * each optimiser step (modified Gram–Schmidt in float64) instead of pyreft's differentiable orthogonal
 * parametrisation: the gradient is then the plain Euclidean one the fixtures check, the forward graph stays the
 * paper's formula, and the retraction keeps R orthonormal to float32 rounding (≤ 1e-6) at every step.
 */
public final class Orthogonal {
    private Orthogonal() {
    }

    /** Orthonormalises the rows of R [r, d] in place (r ≤ d). */
    public static void retractRows(INDArray r) {
        int rows = (int) r.size(0);
        int cols = (int) r.size(1);
        double[][] a = r.castTo(DataType.DOUBLE).toDoubleMatrix();
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < i; j++) {
                double dot = 0;
                for (int k = 0; k < cols; k++) {
                    dot += a[i][k] * a[j][k];
                }
                for (int k = 0; k < cols; k++) {
                    a[i][k] -= dot * a[j][k];
                }
            }
            double norm = 0;
            for (int k = 0; k < cols; k++) {
                norm += a[i][k] * a[i][k];
            }
            norm = Math.sqrt(norm);
            if (norm < 1e-12) {
                throw new IllegalStateException("row " + i + " of R became linearly dependent on the others;"
                        + " lower the learning rate");
            }
            for (int k = 0; k < cols; k++) {
                a[i][k] /= norm;
            }
        }
        r.assign(Nd4j.createFromArray(a).castTo(r.dataType()));
    }

    /** Orthonormalises the columns of R [d, r] in place. */
    public static void retractColumns(INDArray r) {
        INDArray t = r.transpose().dup();
        retractRows(t);
        r.assign(t.transpose());
    }

    /** Random R [r, d] with orthonormal rows (Gaussian, then Gram–Schmidt). */
    public static INDArray randomRows(int r, int d, Random random) {
        double[][] a = new double[r][d];
        for (double[] row : a) {
            for (int k = 0; k < d; k++) {
                row[k] = random.nextGaussian();
            }
        }
        INDArray out = Nd4j.createFromArray(a).castTo(DataType.FLOAT);
        retractRows(out);
        return out;
    }

    /** max |R Rᵀ − I| for rows (or Rᵀ R for columns when {@code columns}). */
    public static double deviation(INDArray r, boolean columns) {
        INDArray m = r.castTo(DataType.DOUBLE);
        INDArray gram = columns ? m.transpose().mmul(m) : m.mmul(m.transpose());
        return gram.sub(Nd4j.eye(gram.size(0)).castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
    }
}
