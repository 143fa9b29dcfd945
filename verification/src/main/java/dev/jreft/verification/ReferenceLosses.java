package dev.jreft.verification;

import org.nd4j.linalg.api.ndarray.INDArray;

/** The fixture losses (fixtures README section 5), computed on the host in float64. */
public final class ReferenceLosses {
    private ReferenceLosses() {
    }

    /** Mean over rows of the cross-entropy at each row's last real token. */
    public static double causalLastTokenCe(INDArray logits, INDArray targets, INDArray mask) {
        long b = logits.size(0);
        long s = logits.size(1);
        long v = logits.size(2);
        double total = 0;
        for (int i = 0; i < b; i++) {
            int t = -1;
            for (int j = 0; j < s; j++) {
                if (mask.getLong(i, j) != 0) {
                    t = j;
                }
            }
            double max = Double.NEGATIVE_INFINITY;
            for (int k = 0; k < v; k++) {
                max = Math.max(max, logits.getDouble(i, t, k));
            }
            double sum = 0;
            for (int k = 0; k < v; k++) {
                sum += Math.exp(logits.getDouble(i, t, k) - max);
            }
            total += max + Math.log(sum) - logits.getDouble(i, t, targets.getLong(i));
        }
        return total / b;
    }

    /** sum_b sum_t m[b,t] * sum_k h[b,t,k] * probe[k]. */
    public static double maskedProbeSum(INDArray hidden, INDArray probe, INDArray mask) {
        double total = 0;
        for (int i = 0; i < hidden.size(0); i++) {
            for (int j = 0; j < hidden.size(1); j++) {
                if (mask.getLong(i, j) == 0) {
                    continue;
                }
                for (int k = 0; k < hidden.size(2); k++) {
                    total += hidden.getDouble(i, j, k) * probe.getDouble(k);
                }
            }
        }
        return total;
    }
}
