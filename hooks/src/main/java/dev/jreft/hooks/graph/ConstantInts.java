package dev.jreft.hooks.graph;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Evaluates the small integer subgraphs exporters build for Reshape targets, such as
 * {@code Concat(Unsqueeze(batch), Unsqueeze(seq), Constant(heads), Constant(dh))}. Parts that depend on runtime
 * shapes come back as -1; only the constant parts matter to hook discovery.
 */
public final class ConstantInts {
    private ConstantInts() {
    }

    /** The value of an int tensor, with -1 for entries only known at run time; null when not a 1-D shape. */
    public static long[] evaluate(OnnxGraph graph, String tensor) {
        Optional<TensorProto> init = graph.initializer(tensor);
        if (init.isPresent()) {
            return values(init.get());
        }
        Optional<NodeProto> p = graph.producer(tensor);
        if (p.isEmpty()) {
            return null;
        }
        NodeProto n = p.get();
        switch (n.getOpType()) {
            case "Constant":
                for (AttributeProto a : n.getAttributeList()) {
                    if (a.getName().equals("value")) {
                        return values(a.getT());
                    }
                    if (a.getName().equals("value_ints")) {
                        return a.getIntsList().stream().mapToLong(Long::longValue).toArray();
                    }
                }
                return null;
            case "Unsqueeze": {
                long[] v = evaluate(graph, n.getInput(0));
                return v != null && v.length == 1 ? v : new long[] {-1};
            }
            case "Concat": {
                List<Long> out = new ArrayList<>();
                for (String in : n.getInputList()) {
                    long[] v = evaluate(graph, in);
                    if (v == null) {
                        return null;
                    }
                    for (long x : v) {
                        out.add(x);
                    }
                }
                return out.stream().mapToLong(Long::longValue).toArray();
            }
            case "Cast":
                return evaluate(graph, n.getInput(0));
            default:
                return new long[] {-1};
        }
    }

    private static long[] values(TensorProto t) {
        long count = 1;
        for (long d : t.getDimsList()) {
            count *= d;
        }
        if (count > 64) {
            return null;
        }
        long[] out = new long[(int) count];
        if (t.getDataType() == TensorProto.DataType.INT64_VALUE) {
            if (t.getInt64DataCount() > 0) {
                for (int i = 0; i < out.length; i++) {
                    out[i] = t.getInt64Data(i);
                }
            } else {
                ByteBuffer b = t.getRawData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
                for (int i = 0; i < out.length; i++) {
                    out[i] = b.getLong();
                }
            }
            return out;
        }
        if (t.getDataType() == TensorProto.DataType.INT32_VALUE) {
            if (t.getInt32DataCount() > 0) {
                for (int i = 0; i < out.length; i++) {
                    out[i] = t.getInt32Data(i);
                }
            } else {
                ByteBuffer b = t.getRawData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
                for (int i = 0; i < out.length; i++) {
                    out[i] = b.getInt();
                }
            }
            return out;
        }
        return null;
    }
}
