package dev.jreft.hooks.discovery;

/**
 * One linear module of an exported graph, named by its Hugging Face module path ({@code transformer.h.0.attn.c_attn},
 * {@code model.layers.1.self_attn.q_proj}): {@code output = input · W (+ bias)} over the last axis.
 *
 * @param path   the HF module path, read off the node name ({@code /encoder/layer.0/attention/self/query/MatMul})
 * @param node   the MatMul or Gemm node's name
 * @param op     {@code MatMul}, {@code Gemm} or {@code MatMulInteger}
 * @param weight the weight initializer's name (torch's exporter may rename it, e.g. {@code onnx::MatMul_123})
 * @param layout how the initializer holds W: {@link Layout#IN_OUT} [in, out] (MatMul, Conv1D, Gemm without
 *               transB) or {@link Layout#OUT_IN} [out, in] (Gemm with transB = 1, torch's own Linear layout)
 * @param bias   the bias initializer [out], or null when the module has none
 * @param input  the tensor the module reads from the rest of the graph ([.., in])
 * @param output the tensor it hands on, bias included ([.., out])
 * @param weightScale     for an int8 weight (MatMulInteger, or MatMul by a DequantizeLinear'd weight), its scale
 *                        initializer (one value, or one per output); null for a float weight. W = (Wq − zero) · scale.
 * @param weightZeroPoint the int8 weight's zero point initializer, or null (zero)
 */
public record LinearModule(String path, String node, String op, String weight, Layout layout, long in, long out,
                           String bias, String input, String output, String weightScale, String weightZeroPoint) {
    /** A float module. */
    public LinearModule(String path, String node, String op, String weight, Layout layout, long in, long out,
                        String bias, String input, String output) {
        this(path, node, op, weight, layout, in, out, bias, input, output, null, null);
    }

    /** True when the weight is stored as int8 / uint8 with a scale (an int8-quantised export). */
    public boolean quantised() {
        return weightScale != null;
    }

    public enum Layout {
        IN_OUT, OUT_IN
    }

    public boolean hasBias() {
        return bias != null;
    }

    /**
     * The weight as a float tensor of the graph {@code b} builds into, in the initializer's layout: the initializer
     * itself, or an int8 one dequantised in the graph, (Wq − zero) · scale (the scale per output column broadcasts
     * over the [in, out] layout int8 exports use).
     */
    public String floatWeight(dev.jreft.hooks.graph.SubgraphBuilder b) {
        if (!quantised()) {
            return weight;
        }
        int f = dev.jreft.hooks.graph.ElemTypes.FLOAT;
        String w = b.op("Cast", java.util.List.of(weight), dev.jreft.hooks.graph.Attr.i("to", f));
        if (weightZeroPoint != null) {
            w = b.op("Sub", java.util.List.of(w, b.op("Cast", java.util.List.of(weightZeroPoint),
                    dev.jreft.hooks.graph.Attr.i("to", f))));
        }
        return b.op("Mul", java.util.List.of(w, weightScale));
    }

    /** The last dot-separated name: {@code q_proj}, {@code query}, {@code c_attn}. */
    public String name() {
        return path.substring(path.lastIndexOf('.') + 1);
    }

    @Override
    public String toString() {
        return path + " [" + in + " -> " + out + (bias != null ? ", bias" : "") + (quantised() ? ", int8" : "") + "]";
    }
}
