package dev.jreft.training;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.FloatBuffer;
import java.util.HashMap;
import java.util.Map;

/**
 * AdamW (Loshchilov &amp; Hutter): Adam moments with bias correction, and weight decay applied to the parameter
 * directly ({@code p -= lr·λ·p}), not through the gradient. As torch.optim.AdamW:
 * <pre>
 *   m = β₁·m + (1 − β₁)·g
 *   v = β₂·v + (1 − β₂)·g²
 *   p = p·(1 − lr·λ) − lr · (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε)
 * </pre>
 * One loop per parameter, each element's update in double precision and stored as float32 (see {@link HostFloats}).
 */
public final class AdamW implements Optimizer {
    private final double beta1;
    private final double beta2;
    private final double eps;
    private final double weightDecay;
    private final Map<String, INDArray> m = new HashMap<>();
    private final Map<String, INDArray> v = new HashMap<>();
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
        double decay = 1 - lr * weightDecay;
        for (var e : params.entrySet()) {
            INDArray g = grads.get(e.getKey());
            if (g == null) {
                continue;
            }
            INDArray target = e.getValue();
            INDArray p = HostFloats.own(target);
            FloatBuffer pb = HostFloats.buffer(p);
            FloatBuffer gb = HostFloats.buffer(HostFloats.own(g));
            FloatBuffer mb = HostFloats.buffer(m.computeIfAbsent(e.getKey(), k -> Nd4j.zeros(DataType.FLOAT,
                    target.shape())));
            FloatBuffer vb = HostFloats.buffer(v.computeIfAbsent(e.getKey(), k -> Nd4j.zeros(DataType.FLOAT,
                    target.shape())));
            HostFloats.each(pb.limit(), (from, to) -> {
                for (int i = from; i < to; i++) {
                    double gi = gb.get(i);
                    float mi = (float) (beta1 * mb.get(i) + (1 - beta1) * gi);
                    float vi = (float) (beta2 * vb.get(i) + (1 - beta2) * gi * gi);
                    mb.put(i, mi);
                    vb.put(i, vi);
                    pb.put(i, (float) (pb.get(i) * decay - lr * (mi / c1) / (Math.sqrt(vi / c2) + eps)));
                }
            });
            HostFloats.writeBack(p, target);
        }
    }
}
