package dev.jreft.hooks.graph;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;

import java.util.HashMap;
import java.util.Map;
import java.util.Set;

/**
 * Element type of every tensor of a graph, propagated forward from inputs, initializers and constants. Hook
 * discovery needs it to tell the float data path from shape arithmetic; exposing a tensor as an output needs it
 * to declare the output's type.
 */
public final class ElemTypes {
    public static final int FLOAT = TensorProto.DataType.FLOAT_VALUE;
    public static final int INT64 = TensorProto.DataType.INT64_VALUE;
    public static final int BOOL = TensorProto.DataType.BOOL_VALUE;
    public static final int UINT8 = TensorProto.DataType.UINT8_VALUE;
    public static final int UNKNOWN = 0;

    private static final Set<String> TO_INT64 = Set.of("Shape", "Size", "NonZero", "ArgMax", "ArgMin", "TopK_indices");
    private static final Set<String> TO_BOOL = Set.of("Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual",
            "Not", "And", "Or", "Xor", "IsNaN", "IsInf");

    private final Map<String, Integer> types = new HashMap<>();

    public ElemTypes(OnnxGraph graph) {
        for (ValueInfoProto v : graph.inputs()) {
            types.put(v.getName(), v.getType().getTensorType().getElemType());
        }
        for (TensorProto t : graph.initializers()) {
            types.put(t.getName(), t.getDataType());
        }
        for (NodeProto n : graph.nodes()) {
            for (int i = 0; i < n.getOutputCount(); i++) {
                types.put(n.getOutput(i), outputType(n, i));
            }
        }
    }

    /** The ONNX element type of an ND4J data type ({@link #UNKNOWN} for types ONNX has no match for). */
    public static int of(org.nd4j.linalg.api.buffer.DataType t) {
        return switch (t) {
            case FLOAT -> FLOAT;
            case DOUBLE -> TensorProto.DataType.DOUBLE_VALUE;
            case HALF -> TensorProto.DataType.FLOAT16_VALUE;
            case LONG -> INT64;
            case INT -> TensorProto.DataType.INT32_VALUE;
            case BOOL -> BOOL;
            default -> UNKNOWN;
        };
    }

    /** An ONNX element type as people name it: float32, int64, ... */
    public static String name(int elemType) {
        return switch (elemType) {
            case TensorProto.DataType.FLOAT_VALUE -> "float32";
            case TensorProto.DataType.DOUBLE_VALUE -> "float64";
            case TensorProto.DataType.FLOAT16_VALUE -> "float16";
            case TensorProto.DataType.INT64_VALUE -> "int64";
            case TensorProto.DataType.INT32_VALUE -> "int32";
            case TensorProto.DataType.BOOL_VALUE -> "bool";
            default -> TensorProto.DataType.forNumber(elemType) == null ? "type " + elemType
                    : TensorProto.DataType.forNumber(elemType).name().toLowerCase();
        };
    }

    /** True for the 8-bit integer types quantised weights and activations are stored in. */
    public static boolean isInt8(int elemType) {
        return elemType == TensorProto.DataType.INT8_VALUE || elemType == UINT8;
    }

    public int of(String tensor) {
        return types.getOrDefault(tensor, UNKNOWN);
    }

    public boolean isFloat(String tensor) {
        int t = of(tensor);
        return t == FLOAT || t == TensorProto.DataType.DOUBLE_VALUE || t == TensorProto.DataType.FLOAT16_VALUE
                || t == TensorProto.DataType.BFLOAT16_VALUE;
    }

    /** The type of output {@code index} of {@code n}: quantisation ops mix types; most ops keep their input's. */
    private int outputType(NodeProto n, int index) {
        switch (n.getOpType()) {
            case "DynamicQuantizeLinear": // y, y_scale, y_zero_point
                return index == 1 ? FLOAT : UINT8;
            case "QuantizeLinear": // the zero point's type (uint8 without one; opset 21's output_dtype when set)
                if (n.getInputCount() > 2 && !n.getInput(2).isEmpty()) {
                    return of(n.getInput(2));
                }
                int declared = (int) OnnxGraph.attrInt(n, "output_dtype", UNKNOWN);
                return declared == UNKNOWN ? UINT8 : declared;
            case "DequantizeLinear": // the scale's type
                return n.getInputCount() > 1 ? of(n.getInput(1)) : FLOAT;
            case "MatMulInteger", "ConvInteger":
                return TensorProto.DataType.INT32_VALUE;
            case "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "QAttention": // com.microsoft: float out, int8 in
                return FLOAT;
            case "EmbedLayerNormalization": // com.microsoft, int32 ids in: the embeddings' type, the mask index int32
                return index == 1 ? TensorProto.DataType.INT32_VALUE : n.getInputCount() > 2 ? of(n.getInput(2))
                        : FLOAT;
            default:
                return outputType(n);
        }
    }

    private int outputType(NodeProto n) {
        String op = n.getOpType();
        if (TO_INT64.contains(op)) {
            return INT64;
        }
        if (TO_BOOL.contains(op)) {
            return BOOL;
        }
        switch (op) {
            case "Cast":
                return (int) OnnxGraph.attrInt(n, "to", UNKNOWN);
            case "Constant":
                for (AttributeProto a : n.getAttributeList()) {
                    if (a.getName().equals("value")) {
                        return a.getT().getDataType();
                    }
                    if (a.getName().equals("value_float") || a.getName().equals("value_floats")) {
                        return FLOAT;
                    }
                    if (a.getName().equals("value_int") || a.getName().equals("value_ints")) {
                        return INT64;
                    }
                }
                return UNKNOWN;
            case "ConstantOfShape":
                for (AttributeProto a : n.getAttributeList()) {
                    if (a.getName().equals("value")) {
                        return a.getT().getDataType();
                    }
                }
                return FLOAT;
            case "Where":
                return n.getInputCount() > 1 ? of(n.getInput(1)) : UNKNOWN;
            default:
                for (String in : n.getInputList()) {
                    int t = of(in);
                    if (t != UNKNOWN) {
                        return t;
                    }
                }
                return UNKNOWN;
        }
    }
}
