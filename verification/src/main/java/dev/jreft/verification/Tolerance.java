package dev.jreft.verification;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Arrays;

/** NumPy allclose: {@code |a - e| <= atol + rtol * |e|} element-wise. */
public record Tolerance(double atol, double rtol) {
    public static final Tolerance DEFAULT = new Tolerance(1e-4, 1e-4);

    /** Max |a - e| and the worst ratio |a - e| / (atol + rtol |e|) (passes when ≤ 1). */
    public Comparison compare(INDArray actual, INDArray expected) {
        if (!Arrays.equals(actual.shape(), expected.shape())) {
            return new Comparison(Double.POSITIVE_INFINITY, Double.POSITIVE_INFINITY,
                    "shape " + Arrays.toString(actual.shape()) + " != expected " + Arrays.toString(expected.shape()));
        }
        double[] a = actual.castTo(DataType.DOUBLE).data().asDouble();
        double[] e = expected.castTo(DataType.DOUBLE).data().asDouble();
        double maxErr = 0;
        double worst = 0;
        for (int i = 0; i < a.length; i++) {
            double d = Math.abs(a[i] - e[i]);
            if (Double.isNaN(d)) {
                return new Comparison(Double.NaN, Double.POSITIVE_INFINITY, "NaN at flat index " + i);
            }
            maxErr = Math.max(maxErr, d);
            worst = Math.max(worst, d / (atol + rtol * Math.abs(e[i])));
        }
        return new Comparison(maxErr, worst, null);
    }

    public Comparison compare(double actual, double expected) {
        double d = Math.abs(actual - expected);
        return new Comparison(d, d / (atol + rtol * Math.abs(expected)), null);
    }

    /** Result of one comparison. */
    public record Comparison(double maxAbsError, double worstRatio, String problem) {
        public boolean ok() {
            return problem == null && worstRatio <= 1.0;
        }
    }
}
