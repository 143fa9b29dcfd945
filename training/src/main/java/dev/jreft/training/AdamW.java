package dev.jreft.training;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.ops.transforms.Transforms;

import java.util.HashMap;
import java.util.Map;

/**
 * AdamW (Loshchilov &amp; Hutter): Adam moments with bias correction, and weight decay applied to the parameter
 * directly ({@code p -= lr·λ·p}), not through the gradient. As torch.optim.AdamW.
 */
public final class AdamW implements Optimizer {
    private final double beta1;
    private final double beta2;
    private final double eps;
    private final double weightDecay;
    private final Map<String, INDArray> m = new HashMap<>();
    private final Map<String, INDArray> v = new HashMap<>();
    /** Two work arrays per parameter, reused every step: temporaries of a 22M-weight model would be 90 MB each. */
    private final Map<String, INDArray[]> work = new HashMap<>();
    private int t;

    public AdamW(double beta1, double beta2, double eps, double weightDecay) {
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.eps = eps;
        this.weightDecay = weightDecay;
    }

    @Override
    public void step(Map<String, INDArray> params, Map<String, INDArray> grads, double lr) {
        t++;
        double c1 = 1 - Math.pow(beta1, t);
        double c2 = 1 - Math.pow(beta2, t);
        for (var e : params.entrySet()) {
            INDArray g = grads.get(e.getKey());
            if (g == null) {
                continue;
            }
            INDArray p = e.getValue();
            INDArray mi = m.computeIfAbsent(e.getKey(), k -> p.ulike());
            INDArray vi = v.computeIfAbsent(e.getKey(), k -> p.ulike());
            INDArray[] w = work.computeIfAbsent(e.getKey(), k -> new INDArray[] {p.ulike(), p.ulike()});
            INDArray a = w[0];
            INDArray denom = w[1];
            // the same operations in the same order as m = β1·m + (1−β1)·g ... , without allocating
            mi.muli(beta1).addi(a.assign(g).muli(1 - beta1));
            vi.muli(beta2).addi(a.assign(g).muli(g).muli(1 - beta2));
            if (weightDecay != 0) {
                p.muli(1 - lr * weightDecay);
            }
            Transforms.sqrt(denom.assign(vi).divi(c2), false).addi(eps);
            p.subi(a.assign(mi).divi(c1).divi(denom).muli(lr));
        }
    }
}
