package dev.jreft.analysis;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** Sentence embeddings from hidden states, as sentence-transformers computes them for MiniLM. */
public final class Embeddings {
    private Embeddings() {
    }

    /** Mean of the real-token rows: hidden [b, s, d], mask [b, s] → [b, d]. */
    public static INDArray meanPool(INDArray hidden, INDArray mask) {
        INDArray m = mask.castTo(DataType.FLOAT);
        INDArray summed = hidden.mul(m.reshape(m.size(0), m.size(1), 1)).sum(1);
        return summed.diviColumnVector(m.sum(1).reshape(m.size(0), 1));
    }

    /** 1 − cos(a, b) for two vectors. */
    public static double cosineDistance(INDArray a, INDArray b) {
        double dot = a.mul(b).sumNumber().doubleValue();
        double d = 1.0 - dot / (a.norm2Number().doubleValue() * b.norm2Number().doubleValue());
        return Math.max(0.0, d); // rounding can give -1e-8 for identical vectors

    }
}
