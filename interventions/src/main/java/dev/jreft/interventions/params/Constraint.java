package dev.jreft.interventions.params;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * What a parameter must stay while it trains. jreft keeps a constraint by a retraction after each optimiser step
 * (see {@link Orthogonal}), so the forward graph is the paper's formula and gradients are the plain Euclidean ones.
 */
public enum Constraint {
    NONE("unconstrained", ""),
    /** R [r, d], r ≤ d, R Rᵀ = I: LoReFT's subspace (pyreft's rotate layer). */
    ORTHONORMAL_ROWS("orthonormal rows", "|R Rᵀ - I|"),
    /** R [d, r], r ≤ d, Rᵀ R = I: DAS rotations (square: orthogonal) and DII's low-rank R. */
    ORTHONORMAL_COLUMNS("orthonormal columns", "|Rᵀ R - I|");

    /** How far from the manifold a loaded value may be (float32 rounding after many retractions). */
    public static final double TOLERANCE = 1e-3;

    private final String description;
    private final String deviation;

    Constraint(String description, String deviation) {
        this.description = description;
        this.deviation = deviation;
    }

    public String description() {
        return description;
    }

    /** Checks a loaded or given value; throws an {@link IllegalArgumentException} saying how far off it is. */
    public void check(String name, INDArray value) {
        double err = deviation(value);
        if (err > TOLERANCE) {
            throw new IllegalArgumentException(name + ": found " + description.replace("orthonormal ", "")
                    + " that are not orthonormal (max " + deviation + " = " + String.format("%.3g", err)
                    + "); valid: " + description + " (within " + TOLERANCE + ")");
        }
    }

    void checkShape(String name, long[] shape) {
        boolean ok = switch (this) {
            case NONE -> true;
            case ORTHONORMAL_ROWS -> shape.length == 2 && shape[0] <= shape[1];
            case ORTHONORMAL_COLUMNS -> shape.length == 2 && shape[1] <= shape[0];
        };
        if (!ok) {
            throw new IllegalArgumentException(name + ": " + description + " need a 2-D shape with the constrained "
                    + "axis no longer than the other; got " + java.util.Arrays.toString(shape));
        }
    }

    /** A random point of the manifold (Gaussian, then Gram–Schmidt); zeros for {@link #NONE}. */
    Init randomInit() {
        return switch (this) {
            case NONE -> Init.zeros();
            case ORTHONORMAL_ROWS -> (shape, random) -> Orthogonal.randomRows((int) shape[0], (int) shape[1], random);
            case ORTHONORMAL_COLUMNS -> (shape, random) ->
                    Orthogonal.randomRows((int) shape[1], (int) shape[0], random).transpose().dup();
        };
    }

    /** Puts {@code value} back on the manifold in place (after an optimiser step). */
    public void retract(INDArray value) {
        switch (this) {
            case NONE -> {
            }
            case ORTHONORMAL_ROWS -> Orthogonal.retractRows(value);
            case ORTHONORMAL_COLUMNS -> Orthogonal.retractColumns(value);
        }
    }

    /** max |R Rᵀ − I| (rows) or |Rᵀ R − I| (columns); 0 for {@link #NONE}. */
    public double deviation(INDArray value) {
        return switch (this) {
            case NONE -> 0;
            case ORTHONORMAL_ROWS -> Orthogonal.deviation(value, false);
            case ORTHONORMAL_COLUMNS -> Orthogonal.deviation(value, true);
        };
    }
}
