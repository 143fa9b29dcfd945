package dev.jreft.interventions.train;

/** A loss or gradient became NaN or infinite: training stops and says where. */
public class NonFiniteException extends RuntimeException {
    public NonFiniteException(String message) {
        super(message);
    }
}
