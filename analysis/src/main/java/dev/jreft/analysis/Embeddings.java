package dev.jreft.analysis;

import org.nd4j.linalg.api.ndarray.INDArray;

/** Distances between sentence embeddings. */
public final class Embeddings {
    private Embeddings() {
    }

    /** 1 − cos(a, b) for two vectors. */
    public static double cosineDistance(INDArray a, INDArray b) {
        double dot = a.mul(b).sumNumber().doubleValue();
        double d = 1.0 - dot / (a.norm2Number().doubleValue() * b.norm2Number().doubleValue());
        return Math.max(0.0, d); // rounding can give -1e-8 for identical vectors

    }
}
