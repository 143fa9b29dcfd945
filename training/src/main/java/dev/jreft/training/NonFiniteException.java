package dev.jreft.training;

/** A loss or gradient became NaN or infinite: training stops and says where. */
public class NonFiniteException extends RuntimeException {
    public NonFiniteException(String message) {
        super(message);
    }

    /** Throws when the loss or any gradient is NaN or infinite, naming the step and the tensor. */
    public static void check(int step, double loss, java.util.Map<String, org.nd4j.linalg.api.ndarray.INDArray> grads) {
        if (!Double.isFinite(loss)) {
            throw new NonFiniteException("training stopped at step " + step + ": the loss is " + loss + HINT);
        }
        for (var e : grads.entrySet()) {
            if (!Double.isFinite(HostFloats.sumOfSquares(e.getValue()))) {
                throw new NonFiniteException("training stopped at step " + step + ": the gradient of '" + e.getKey()
                        + "' contains NaN or Inf (loss " + loss + ")" + HINT);
            }
        }
    }

    private static final String HINT = " (training diverged: try a smaller learning rate or weight decay)";

    /** Throws when an optimiser step left a parameter NaN or infinite (the step diverged). */
    public static void checkParameters(int step, java.util.Map<String, org.nd4j.linalg.api.ndarray.INDArray> params) {
        for (var e : params.entrySet()) {
            if (!Double.isFinite(HostFloats.sumOfSquares(e.getValue()))) {
                throw new NonFiniteException("training stopped at step " + step + ": parameter '" + e.getKey()
                        + "' became NaN or infinite" + HINT);
            }
        }
    }
}
