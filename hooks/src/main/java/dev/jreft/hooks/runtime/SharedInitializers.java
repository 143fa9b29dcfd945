package dev.jreft.hooks.runtime;

import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.StringStringEntryProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxTensorLike;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import com.google.protobuf.ByteString;
import dev.jreft.hooks.graph.ElemTypes;
import dev.jreft.hooks.graph.OnnxGraph;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A graph's large initializers handed to ONNX Runtime as tensors over memory jreft already holds, one tensor per
 * distinct value for all sessions of the process, instead of inside the serialized model.
 *
 * <p>Given the model bytes, every session parses its own copy of the protobuf and then keeps its own copy of each
 * initializer: the forward graph, the frozen prefix, the backward graph and the short-lived shape and
 * specialisation sessions of one MiniLM training job each held the model's weights again (86 MB each, plus as much
 * again while parsing). Here the model ORT parses names each large initializer as external data, and the session
 * options supply its values ({@code AddExternalInitializers}, so graph optimisers can read them) and let the
 * session use that very tensor ({@code AddInitializer}, so it makes no copy). The tensors are read in place from the
 * graph's own bytes when they are in native memory (as {@link OnnxGraph#parse} keeps a large model), else copied
 * once; they live while a session that uses them does. A session on another device copies what it needs, as before.
 */
final class SharedInitializers {
    /** Initializers smaller than this stay inside the model bytes (biases, norms, shape constants). */
    static final int MIN_BYTES = 16 * 1024;
    /** The placeholder location: never read, every initializer that names it is supplied by the options. */
    static final String LOCATION = "jreft-shared-initializer";

    private record Key(ByteString data, int type, List<Long> dims) {
    }

    private static final class Entry {
        final OnnxTensor tensor;
        int users;

        Entry(OnnxTensor tensor) {
            this.tensor = tensor;
        }
    }

    private static final Map<Key, Entry> TENSORS = new HashMap<>();

    private SharedInitializers() {
    }

    /** The model bytes ORT parses and the tensors its options supply; closing it releases the tensors. */
    static final class Lease implements AutoCloseable {
        private final byte[] model;
        private final Map<String, OnnxTensor> tensors;
        private final List<Key> keys;
        private boolean closed;

        private Lease(byte[] model, Map<String, OnnxTensor> tensors, List<Key> keys) {
            this.model = model;
            this.tensors = tensors;
            this.keys = keys;
        }

        byte[] model() {
            return model;
        }

        /** Number of initializers supplied from shared memory. */
        int shared() {
            return tensors.size();
        }

        /** Adds the tensors to {@code options}: they must stay open as long as the session (this lease). */
        void addTo(OrtSession.SessionOptions options) throws OrtException {
            if (tensors.isEmpty()) {
                return;
            }
            options.addExternalInitializers(new LinkedHashMap<String, OnnxTensorLike>(tensors));
            for (var e : tensors.entrySet()) {
                options.addInitializer(e.getKey(), e.getValue());
            }
        }

        @Override
        public void close() {
            synchronized (SharedInitializers.class) {
                if (closed) {
                    return;
                }
                closed = true;
                for (Key k : keys) {
                    Entry e = TENSORS.get(k);
                    if (e != null && --e.users == 0) {
                        TENSORS.remove(k);
                        e.tensor.close();
                    }
                }
            }
        }
    }

    /** The model of {@code graph} without the bytes of its large initializers, and the tensors that hold them. */
    static synchronized Lease lease(OrtEnvironment env, OnnxGraph graph) {
        ModelProto.Builder m = graph.toProto().toBuilder();
        GraphProto.Builder g = m.getGraphBuilder();
        Set<String> inputs = new HashSet<>();
        g.getInputList().forEach(v -> inputs.add(v.getName()));
        Set<String> used = new HashSet<>();
        g.getOutputList().forEach(v -> used.add(v.getName()));
        reads(g, used);
        Set<String> seen = new HashSet<>();
        Map<String, OnnxTensor> tensors = new LinkedHashMap<>();
        List<Key> keys = new ArrayList<>();
        boolean littleEndian = ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN; // raw_data is little-endian
        for (int i = 0; i < g.getInitializerCount() && littleEndian; i++) {
            TensorProto t = g.getInitializer(i);
            // an initializer that is also a graph input is a default the caller may override: left as it is
            if (!seen.add(t.getName()) || inputs.contains(t.getName()) || !t.hasRawData()
                    || t.getRawData().size() < MIN_BYTES || t.getDataLocation() == TensorProto.DataLocation.EXTERNAL
                    || javaType(t.getDataType()) == null) {
                continue;
            }
            if (!used.contains(t.getName())) {
                // ORT drops an initializer no node reads before it looks for supplied ones (and then fails to
                // find it): a graph cut short (the shape probe's) has many; dropped here instead
                g.removeInitializer(i--);
                continue;
            }
            Key key = new Key(t.getRawData(), t.getDataType(), t.getDimsList());
            Entry e = TENSORS.get(key);
            if (e == null) {
                OnnxTensor tensor = tensor(env, t);
                if (tensor == null) {
                    continue;
                }
                e = new Entry(tensor);
                TENSORS.put(key, e);
            }
            e.users++;
            keys.add(key);
            tensors.put(t.getName(), e.tensor);
            g.setInitializer(i, t.toBuilder().clearRawData().setDataLocation(TensorProto.DataLocation.EXTERNAL)
                    .addExternalData(StringStringEntryProto.newBuilder().setKey("location").setValue(LOCATION))
                    .addExternalData(StringStringEntryProto.newBuilder().setKey("length")
                            .setValue(Integer.toString(t.getRawData().size()))));
        }
        return new Lease(m.build().toByteArray(), tensors, keys);
    }

    /** Adds every tensor a node of {@code g} reads, subgraphs (which may read the outer graph's) included. */
    private static void reads(GraphProto.Builder g, Set<String> out) {
        g.getNodeList().forEach(n -> reads(n, out));
    }

    private static void reads(ai.onnx.proto.OnnxMl.NodeProto n, Set<String> out) {
        out.addAll(n.getInputList());
        for (var a : n.getAttributeList()) {
            if (a.hasG()) {
                a.getG().getNodeList().forEach(x -> reads(x, out));
            }
            a.getGraphsList().forEach(sub -> sub.getNodeList().forEach(x -> reads(x, out)));
        }
    }

    private static OnnxJavaType javaType(int elemType) {
        return switch (elemType) {
            case ElemTypes.FLOAT -> OnnxJavaType.FLOAT;
            case ElemTypes.INT64 -> OnnxJavaType.INT64;
            case TensorProto.DataType.DOUBLE_VALUE -> OnnxJavaType.DOUBLE;
            case TensorProto.DataType.INT32_VALUE -> OnnxJavaType.INT32;
            case TensorProto.DataType.INT8_VALUE -> OnnxJavaType.INT8;
            case TensorProto.DataType.UINT8_VALUE -> OnnxJavaType.UINT8;
            default -> null;
        };
    }

    /**
     * A tensor over {@code t}'s raw bytes: in place when they are in native memory (ORT reads a direct buffer
     * without copying), else over one native copy; null when no copy can be made (the initializer stays inline).
     */
    private static OnnxTensor tensor(OrtEnvironment env, TensorProto t) {
        long[] dims = t.getDimsList().stream().mapToLong(Long::longValue).toArray();
        ByteBuffer raw = t.getRawData().asReadOnlyByteBuffer();
        try {
            if (!raw.isDirect()) {
                ByteBuffer copy = ByteBuffer.allocateDirect(raw.remaining());
                copy.put(raw).flip();
                raw = copy;
            }
            raw = raw.order(ByteOrder.LITTLE_ENDIAN);
            return switch (t.getDataType()) {
                case ElemTypes.FLOAT -> OnnxTensor.createTensor(env, raw.asFloatBuffer(), dims);
                case ElemTypes.INT64 -> OnnxTensor.createTensor(env, raw.asLongBuffer(), dims);
                case TensorProto.DataType.DOUBLE_VALUE -> OnnxTensor.createTensor(env, raw.asDoubleBuffer(), dims);
                case TensorProto.DataType.INT32_VALUE -> OnnxTensor.createTensor(env, raw.asIntBuffer(), dims);
                default -> OnnxTensor.createTensor(env, raw, dims, javaType(t.getDataType()));
            };
        } catch (OrtException | OutOfMemoryError e) {
            return null; // the direct-memory limit, or a tensor ORT refuses: the model keeps its bytes
        }
    }

    /** Distinct shared tensors alive now (for tests). */
    static synchronized int live() {
        return TENSORS.size();
    }
}
