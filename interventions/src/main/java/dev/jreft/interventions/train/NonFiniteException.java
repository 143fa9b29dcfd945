package dev.jreft.interventions.train;

/** A loss or gradient became NaN or infinite: training stops and says where. */
public class NonFiniteException extends RuntimeException {
    public NonFiniteException(String message) {
        super(message);
    }

    /** Throws when the loss or any gradient is NaN or infinite, naming the step and the tensor. */
    public static void check(int step, double loss, java.util.Map<String, org.nd4j.linalg.api.ndarray.INDArray> grads) {
        if (!Double.isFinite(loss)) {
            throw new NonFiniteException("training stopped at step " + step + ": the loss is " + loss + " (a learning"
                    + " rate too high for this model diverges; try a smaller one)");
        }
        for (var e : grads.entrySet()) {
            double n = e.getValue().norm2Number().doubleValue();
            if (!Double.isFinite(n)) {
                throw new NonFiniteException("training stopped at step " + step + ": the gradient of '" + e.getKey()
                        + "' contains NaN or Inf (loss " + loss + ")");
            }
        }
    }
}
