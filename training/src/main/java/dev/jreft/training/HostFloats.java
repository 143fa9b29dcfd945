package dev.jreft.training;

import dev.jreft.hooks.runtime.Tensors;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.FloatBuffer;
import java.util.stream.IntStream;

/**
 * The optimisers' elementwise work as Java loops over the arrays' own memory: one pass per tensor where ND4J runs an
 * op per term, each with a fixed cost of tens of microseconds whatever the size. For LoRA on MiniLM (26 small
 * tensors) AdamW's ten ops per tensor took about 10 ms of a 150 ms step; its loop takes well under one.
 */
final class HostFloats {
    /** Tensors above this many elements are split over the common fork-join pool (full finetuning's weights). */
    private static final int PARALLEL_ABOVE = 1 << 18;
    private static final int CHUNK = 1 << 16;

    private HostFloats() {
    }

    /** An elementwise body over {@code [from, to)}. */
    interface Range {
        void run(int from, int to);
    }

    /** Runs {@code body} over {@code [0, n)}: in one piece, or in chunks in parallel for a large tensor. */
    static void each(long n, Range body) {
        int size = Math.toIntExact(n);
        if (size <= PARALLEL_ABOVE) {
            body.run(0, size);
            return;
        }
        int chunks = (size + CHUNK - 1) / CHUNK;
        IntStream.range(0, chunks).parallel().forEach(c -> body.run(c * CHUNK, Math.min(size, (c + 1) * CHUNK)));
    }

    /**
     * {@code a} itself when it owns float32 memory in C order, else a float32 C-order copy: the loops then write the
     * copy, and the caller assigns it back ({@link #writeBack}).
     */
    static INDArray own(INDArray a) {
        return Tensors.floats(a) != null ? a : a.castTo(DataType.FLOAT).dup('c');
    }

    static FloatBuffer buffer(INDArray owned) {
        FloatBuffer b = Tensors.floats(owned);
        if (b == null) {
            throw new IllegalArgumentException("not an owned float32 array: " + owned.shapeInfoToString());
        }
        return b;
    }

    /** After the loops wrote {@code owned} = {@link #own}({@code target}): copies it into target if it was a copy. */
    static void writeBack(INDArray owned, INDArray target) {
        if (owned != target) {
            target.assign(owned);
        }
    }

    /** Σ aᵢ² in double precision (NaN or infinite when an element is). */
    static double sumOfSquares(INDArray a) {
        FloatBuffer b = buffer(own(a));
        double s = 0;
        for (int i = 0, n = b.limit(); i < n; i++) {
            double x = b.get(i);
            s += x * x;
        }
        return s;
    }

    /** Multiplies {@code a} by {@code factor} in place. */
    static void scale(INDArray a, double factor) {
        INDArray owned = own(a);
        FloatBuffer b = buffer(owned);
        each(b.limit(), (from, to) -> {
            for (int i = from; i < to; i++) {
                b.put(i, (float) (b.get(i) * factor));
            }
        });
        writeBack(owned, a);
    }
}
