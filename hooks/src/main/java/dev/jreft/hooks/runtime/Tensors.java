package dev.jreft.hooks.runtime;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.TensorInfo;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;

/** ND4J arrays at the API, ORT tensors over direct buffers inside. */
public final class Tensors {
    private Tensors() {
    }

    /** True when ORT can read or write the array's own off-heap memory (C order, no view, no offset). */
    static boolean shareable(INDArray a) {
        return !a.isView() && a.ordering() == 'c' && a.offset() == 0 && a.data().length() == a.length()
                && a.length() > 0;
    }

    /**
     * The array's own float32 memory as a buffer (absolute index = C-order element index), or null when the array is
     * not float32 or does not own its memory in C order (a view, an offset, another order).
     */
    public static FloatBuffer floats(INDArray a) {
        return a.dataType() == DataType.FLOAT && shareable(a) ? memory(a).asFloatBuffer() : null;
    }

    /**
     * Frees the off-heap memory of arrays nothing will read again, now: left to the collector, which sees only their
     * small Java objects, they wait for it while the process grows. Views and arrays already closed are skipped.
     */
    public static void free(Iterable<INDArray> arrays) {
        for (INDArray a : arrays) {
            if (a != null && a.closeable()) {
                a.close();
            }
        }
    }

    /** A direct byte buffer over the array's own memory, in native order. */
    static ByteBuffer memory(INDArray a) {
        return a.data().asNio().order(ByteOrder.nativeOrder());
    }

    /**
     * An ORT tensor over the array: float, int64 and bool arrays in C order are shared without copying, so ORT reads
     * ND4J's memory directly; other layouts are copied once.
     */
    public static OnnxTensor toOrt(OrtEnvironment env, INDArray a) {
        long[] shape = a.shape();
        try {
            if (a.length() == 0) { // an empty past of a KV cache: no memory to share or copy
                ByteBuffer none = ByteBuffer.allocateDirect(0).order(ByteOrder.nativeOrder());
                return a.dataType() == DataType.LONG || a.dataType() == DataType.INT
                        ? OnnxTensor.createTensor(env, none.asLongBuffer(), shape)
                        : OnnxTensor.createTensor(env, none.asFloatBuffer(), shape);
            }
            if (shareable(a) && a.dataType() == DataType.FLOAT) {
                return OnnxTensor.createTensor(env, memory(a).asFloatBuffer(), shape);
            }
            if (shareable(a) && a.dataType() == DataType.LONG) {
                return OnnxTensor.createTensor(env, memory(a).asLongBuffer(), shape);
            }
            if (shareable(a) && a.dataType() == DataType.BOOL) { // one byte of 0 / 1 per element in both
                return OnnxTensor.createTensor(env, memory(a), shape, OnnxJavaType.BOOL);
            }
        } catch (OrtException e) {
            throw new IllegalStateException("cannot create ORT tensor: " + e.getMessage(), e);
        }
        INDArray c = a.isView() || a.ordering() != 'c' ? a.dup('c') : a;
        try {
            switch (c.dataType()) {
                case FLOAT: {
                    FloatBuffer fb = ByteBuffer.allocateDirect((int) c.length() * 4).order(ByteOrder.nativeOrder())
                            .asFloatBuffer();
                    fb.put(c.data().asFloat()).rewind();
                    return OnnxTensor.createTensor(env, fb, shape);
                }
                case DOUBLE: {
                    java.nio.DoubleBuffer db = ByteBuffer.allocateDirect((int) c.length() * 8)
                            .order(ByteOrder.nativeOrder()).asDoubleBuffer();
                    db.put(c.data().asDouble()).rewind();
                    return OnnxTensor.createTensor(env, db, shape);
                }
                case LONG:
                case INT: {
                    LongBuffer lb = ByteBuffer.allocateDirect((int) c.length() * 8).order(ByteOrder.nativeOrder())
                            .asLongBuffer();
                    lb.put(c.data().asLong()).rewind();
                    return OnnxTensor.createTensor(env, lb, shape);
                }
                case BOOL: {
                    // a compact copy, then its bytes (one byte of 0 / 1 per element in ND4J and ORT alike)
                    ByteBuffer bb = ByteBuffer.allocateDirect((int) c.length()).order(ByteOrder.nativeOrder());
                    if (c.length() > 0) {
                        bb.put(memory(a.dup('c')));
                    }
                    bb.rewind();
                    return OnnxTensor.createTensor(env, bb, shape, OnnxJavaType.BOOL);
                }
                default:
                    return toOrt(env, c.castTo(DataType.FLOAT));
            }
        } catch (OrtException e) {
            throw new IllegalStateException("cannot create ORT tensor: " + e.getMessage(), e);
        }
    }

    /** An output's shape and element type, as one run reported it. */
    record Spec(long[] shape, OnnxJavaType type) {
        /** Types an ND4J array can hold for ORT to write into (ORT and ND4J keep them alike). */
        boolean pinnable() {
            return (type == OnnxJavaType.FLOAT || type == OnnxJavaType.INT64 || type == OnnxJavaType.BOOL)
                    && java.util.Arrays.stream(shape).allMatch(d -> d > 0);
        }
    }

    /** An array ORT can write into directly as a pinned output; returns the pair. */
    static Pinned pinned(OrtEnvironment env, Spec spec) {
        DataType type = switch (spec.type()) {
            case FLOAT -> DataType.FLOAT;
            case INT64 -> DataType.LONG;
            case BOOL -> DataType.BOOL;
            default -> throw new IllegalArgumentException("cannot pin an output of type " + spec.type());
        };
        INDArray a = Nd4j.createUninitialized(type, spec.shape(), 'c');
        if (!shareable(a)) {
            throw new IllegalStateException("a fresh " + type + " array " + java.util.Arrays.toString(spec.shape())
                    + " does not own its memory; ORT could not write into it");
        }
        return new Pinned(a, toOrt(env, a)); // shares the array's memory
    }

    /** An ND4J array and the ORT tensor over its memory. */
    record Pinned(INDArray array, OnnxTensor tensor) {
    }

    private static float[] copy(FloatBuffer fb) {
        float[] v = new float[fb.remaining()];
        fb.get(v);
        return v;
    }

    public static INDArray fromOrt(OnnxTensor t) {
        TensorInfo info = t.getInfo();
        long[] shape = info.getShape();
        switch (info.type) {
            case FLOAT: {
                // ORT's copy is a heap buffer over an array: ND4J copies that array, with no third copy in between
                FloatBuffer fb = t.getFloatBuffer();
                float[] v = fb.hasArray() && fb.arrayOffset() == 0 && fb.remaining() == fb.array().length ? fb.array()
                        : copy(fb);
                return Nd4j.create(v, shape, 'c');
            }
            case DOUBLE: {
                java.nio.DoubleBuffer db = t.getDoubleBuffer();
                double[] v = new double[db.remaining()];
                db.get(v);
                return Nd4j.create(v, shape, 'c');
            }
            case INT64: {
                LongBuffer lb = t.getLongBuffer();
                long[] v = new long[lb.remaining()];
                lb.get(v);
                return Nd4j.createFromArray(v).reshape(shape);
            }
            case BOOL: {
                ByteBuffer bb = t.getByteBuffer();
                if (bb.remaining() == 0) {
                    return Nd4j.create(DataType.BOOL, shape);
                }
                // straight into a C-order array that is no view, so it goes back to ORT without a copy
                INDArray a = Nd4j.createUninitialized(DataType.BOOL, shape, 'c');
                memory(a).put(bb);
                return a;
            }
            default:
                throw new IllegalStateException("output type " + info.type + " is not supported");
        }
    }
}
