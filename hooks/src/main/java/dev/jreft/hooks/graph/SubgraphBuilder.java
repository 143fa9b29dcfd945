package dev.jreft.hooks.graph;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;

import java.util.ArrayList;
import java.util.List;

/**
 * Emits nodes into a namespace of a graph ({@code <namespace>/<op>_<n>}), declares the graph inputs they read, and
 * marks tensors to expose. Interventions build their subgraphs with it; {@link OnnxGraph#splice} and
 * {@link OnnxGraph#append} commit the result.
 */
public final class SubgraphBuilder {
    private final String namespace;
    private final List<NodeProto> nodes = new ArrayList<>();
    private final List<Runnable> inputs = new ArrayList<>();
    private final List<String> outputs = new ArrayList<>();
    private final java.util.Map<String, Integer> typedOutputs = new java.util.LinkedHashMap<>();
    private final OnnxGraph graph;
    private int counter;

    SubgraphBuilder(OnnxGraph graph, String namespace) {
        this.graph = graph;
        this.namespace = namespace;
    }

    public String namespace() {
        return namespace;
    }

    /** A fresh tensor name inside the namespace. */
    public String name(String hint) {
        return namespace + "/" + hint + "_" + counter++;
    }

    /** Emits {@code type(inputs)} and returns its single output. */
    public String op(String type, List<String> in, Attr... attrs) {
        return opTo(name(type), type, in, attrs);
    }

    /** Emits a node with several named outputs (Split, ...). */
    public void opN(String type, List<String> in, String[] outs, Attr... attrs) {
        nodes.add(NodeProto.newBuilder().setName(namespace + "/" + type + "_" + counter++).setOpType(type)
                .addAllInput(in).addAllOutput(List.of(outs)).addAllAttribute(Attr.protos(attrs)).build());
    }

    /** Emits {@code domain.type(inputs)} (an op outside the default domain, such as onnxruntime's com.microsoft). */
    public String op(String domain, String type, List<String> in, Attr... attrs) {
        String output = name(type);
        nodes.add(NodeProto.newBuilder().setName(namespace + "/" + type + "_" + counter++).setDomain(domain)
                .setOpType(type).addAllInput(in).addOutput(output).addAllAttribute(Attr.protos(attrs)).build());
        return output;
    }

    /** Emits {@code type(inputs)} writing {@code output}. */
    public String opTo(String output, String type, List<String> in, Attr... attrs) {
        nodes.add(NodeProto.newBuilder().setName(namespace + "/" + type + "_" + counter++).setOpType(type)
                .addAllInput(in).addOutput(output).addAllAttribute(Attr.protos(attrs)).build());
        return output;
    }

    /** {@code x Mᵀ} for rows x [.., k] and M [n, k]: torch's {@code F.linear(x, M)} without a bias. */
    public String rowProjection(String x, String m) {
        return op("MatMul", List.of(x, op("Transpose", List.of(m), Attr.ints("perm", 1, 0))));
    }

    /** {@code x Wᵀ + bias}: torch's {@code F.linear(x, W, bias)} with W [out, in]. */
    public String linear(String x, String weight, String bias) {
        return op("Add", List.of(rowProjection(x, weight), bias));
    }

    /** A graph input that a run must feed; a dim of -1 is symbolic (named after the input). */
    public String input(String name, int elemType, long... dims) {
        inputs.add(() -> graph.addInput(name, elemType, dims, null));
        return name;
    }

    /** An int64 constant of the given dims. */
    public String constantInts(long[] values, long... dims) {
        TensorProto.Builder t = TensorProto.newBuilder().setDataType(ElemTypes.INT64);
        for (long d : dims) {
            t.addDims(d);
        }
        for (long v : values) {
            t.addInt64Data(v);
        }
        return constant(t.build());
    }

    /** A float constant of the given dims. */
    public String constantFloats(float[] values, long... dims) {
        TensorProto.Builder t = TensorProto.newBuilder().setDataType(ElemTypes.FLOAT);
        for (long d : dims) {
            t.addDims(d);
        }
        for (float v : values) {
            t.addFloatData(v);
        }
        return constant(t.build());
    }

    private String constant(TensorProto value) {
        String out = name("Constant");
        nodes.add(NodeProto.newBuilder().setName(out + "_node").setOpType("Constant").addOutput(out)
                .addAttribute(AttributeProto.newBuilder().setName("value").setType(AttributeProto.AttributeType.TENSOR)
                        .setT(value)).build());
        return out;
    }

    /** ReduceSum over {@code axes}: axes as an input from opset 13, as an attribute before. */
    public String reduceSum(String x, long[] axes, boolean keepDims) {
        if (graph.opset() >= 13) {
            return op("ReduceSum", List.of(x, constantInts(axes, axes.length)), Attr.i("keepdims", keepDims ? 1 : 0));
        }
        return op("ReduceSum", List.of(x), Attr.ints("axes", axes), Attr.i("keepdims", keepDims ? 1 : 0));
    }

    /** ReduceMean over {@code axes}: axes as an input from opset 18, as an attribute before. */
    public String reduceMean(String x, long[] axes, boolean keepDims) {
        if (graph.opset() >= 18) {
            return op("ReduceMean", List.of(x, constantInts(axes, axes.length)), Attr.i("keepdims", keepDims ? 1 : 0));
        }
        return op("ReduceMean", List.of(x), Attr.ints("axes", axes), Attr.i("keepdims", keepDims ? 1 : 0));
    }

    /** A 0-d constant of the given element type (float or double), broadcastable against any shape. */
    public String scalar(double value, int elemType) {
        TensorProto.Builder t = TensorProto.newBuilder().setDataType(elemType);
        if (elemType == TensorProto.DataType.DOUBLE_VALUE) {
            t.addDoubleData(value);
        } else {
            t.addFloatData((float) value);
        }
        return constant(t.build());
    }

    /** Zeros of a static shape and element type. */
    public String zeros(long[] shape, int elemType) {
        TensorProto.Builder v = TensorProto.newBuilder().setDataType(elemType).addDims(1);
        if (elemType == TensorProto.DataType.DOUBLE_VALUE) {
            v.addDoubleData(0);
        } else {
            v.addFloatData(0);
        }
        String out = name("ConstantOfShape");
        nodes.add(NodeProto.newBuilder().setName(out + "_node").setOpType("ConstantOfShape")
                .addInput(constantInts(shape, shape.length)).addOutput(out)
                .addAttribute(AttributeProto.newBuilder().setName("value").setType(AttributeProto.AttributeType.TENSOR)
                        .setT(v)).build());
        return out;
    }

    /** Marks {@code tensor} (float) as a graph output. */
    public void expose(String tensor) {
        outputs.add(tensor);
    }

    /** Marks {@code tensor} as a graph output of the given element type. */
    public void expose(String tensor, int elemType) {
        typedOutputs.put(tensor, elemType);
    }

    List<NodeProto> nodes() {
        return nodes;
    }

    void commitInputsAndOutputs() {
        inputs.forEach(Runnable::run);
        for (String o : outputs) {
            graph.exposeOutput(o, ElemTypes.FLOAT);
        }
        typedOutputs.forEach(graph::exposeOutput);
    }
}
