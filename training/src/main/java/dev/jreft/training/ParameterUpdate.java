package dev.jreft.training;

import dev.jreft.interventions.params.Parameter;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Map;

/** The common tail of every objective's step: check, clip, update, retract, free. */
public final class ParameterUpdate {
    private ParameterUpdate() {
    }

    /**
     * Stops on a non-finite loss or gradient (naming it), clips the gradients to a global L2 norm of
     * {@code maxGradNorm} (0: no clipping), steps {@code opt}, stops on a non-finite parameter, puts every
     * constrained parameter of {@code declared} back onto its manifold, and frees the gradients.
     */
    public static void apply(Map<String, Parameter> declared, Map<String, INDArray> params,
                             Map<String, INDArray> grads, double loss, Optimizer opt, double lr, double maxGradNorm,
                             int step) {
        // one pass over the gradients: the clipping norm; only a non-finite one is searched for its tensor
        if (!Double.isFinite(loss) || !Double.isFinite(clip(grads, maxGradNorm))) {
            NonFiniteException.check(step, loss, grads); // names the loss or the gradient, and throws
        }
        opt.step(params, grads, lr);
        NonFiniteException.checkParameters(step, params);
        // constrained parameters (LoReFT's R: orthonormal rows) go back onto their manifold after every step
        declared.forEach((name, p) -> p.constraint().retract(params.get(name)));
        // the gradients are off-heap arrays the GC would free only under heap pressure: full finetuning's 90 MB a
        // step would pile up to gigabytes, so they go now
        dev.jreft.hooks.runtime.Tensors.free(grads.values());
    }

    /**
     * Scales all gradients so their global L2 norm is at most {@code max} (no-op for max ≤ 0); returns the norm. A
     * NaN or infinite norm leaves the gradients as they are, for the caller to report.
     */
    public static double clip(Map<String, INDArray> grads, double max) {
        double sq = 0;
        for (INDArray g : grads.values()) {
            sq += HostFloats.sumOfSquares(g);
        }
        double norm = Math.sqrt(sq);
        if (max > 0 && Double.isFinite(norm) && norm > max) {
            grads.values().forEach(g -> HostFloats.scale(g, max / norm));
        }
        return norm;
    }
}
