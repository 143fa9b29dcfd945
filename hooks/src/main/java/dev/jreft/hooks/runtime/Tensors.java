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

    /** A direct byte buffer over the array's own memory, in native order. */
    static ByteBuffer memory(INDArray a) {
        return a.data().asNio().order(ByteOrder.nativeOrder());
    }

    /**
     * An ORT tensor over the array: float and int64 arrays in C order are shared without copying, so ORT reads
     * ND4J's memory directly; other layouts are copied once.
     */
    public static OnnxTensor toOrt(OrtEnvironment env, INDArray a) {
        long[] shape = a.shape();
        try {
            if (shareable(a) && a.dataType() == DataType.FLOAT) {
                return OnnxTensor.createTensor(env, memory(a).asFloatBuffer(), shape);
            }
            if (shareable(a) && a.dataType() == DataType.LONG) {
                return OnnxTensor.createTensor(env, memory(a).asLongBuffer(), shape);
            }
            if (shareable(a) && a.dataType() == DataType.BOOL) {
                // ND4J keeps a bool as one byte, 0 or 1: ORT's layout
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
                    ByteBuffer bb = ByteBuffer.allocateDirect((int) c.length()).order(ByteOrder.nativeOrder());
                    for (int v : c.castTo(DataType.INT).data().asInt()) {
                        bb.put((byte) (v != 0 ? 1 : 0));
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

    /** True for the output types {@link #pinned} supports. */
    static boolean pinnable(OnnxJavaType type) {
        return type == OnnxJavaType.FLOAT || type == OnnxJavaType.INT64 || type == OnnxJavaType.BOOL;
    }

    /** An array of {@code type} (float, int64 or bool) ORT can write into directly as a pinned output. */
    static Pinned pinned(OrtEnvironment env, OnnxJavaType type, long[] shape) {
        DataType dt = switch (type) {
            case FLOAT -> DataType.FLOAT;
            case INT64 -> DataType.LONG;
            case BOOL -> DataType.BOOL;
            default -> throw new IllegalArgumentException("output type " + type + " cannot be pinned");
        };
        INDArray a = Nd4j.createUninitialized(dt, shape, 'c');
        try {
            ByteBuffer m = memory(a);
            OnnxTensor t = switch (type) {
                case FLOAT -> OnnxTensor.createTensor(env, m.asFloatBuffer(), shape);
                case INT64 -> OnnxTensor.createTensor(env, m.asLongBuffer(), shape);
                default -> OnnxTensor.createTensor(env, m, shape, OnnxJavaType.BOOL);
            };
            return new Pinned(a, t);
        } catch (OrtException e) {
            throw new IllegalStateException("cannot create ORT tensor: " + e.getMessage(), e);
        }
    }

    /** An ND4J array and the ORT tensor over its memory. */
    record Pinned(INDArray array, OnnxTensor tensor) {
    }

    public static INDArray fromOrt(OnnxTensor t) {
        TensorInfo info = t.getInfo();
        long[] shape = info.getShape();
        switch (info.type) {
            case FLOAT: {
                FloatBuffer fb = t.getFloatBuffer();
                float[] v = new float[fb.remaining()];
                fb.get(v);
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
                boolean[] v = new boolean[bb.remaining()];
                for (int i = 0; i < v.length; i++) {
                    v[i] = bb.get() != 0;
                }
                return Nd4j.createFromArray(v).reshape(shape);
            }
            default:
                throw new IllegalStateException("output type " + info.type + " is not supported");
        }
    }
}
