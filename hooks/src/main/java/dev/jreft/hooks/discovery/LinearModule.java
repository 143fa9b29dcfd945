package dev.jreft.hooks.discovery;

/**
 * One linear module of an exported graph, named by its Hugging Face module path ({@code transformer.h.0.attn.c_attn},
 * {@code model.layers.1.self_attn.q_proj}): {@code output = input · W (+ bias)} over the last axis.
 *
 * @param path   the HF module path, read off the node name ({@code /encoder/layer.0/attention/self/query/MatMul})
 * @param node   the MatMul or Gemm node's name
 * @param op     {@code MatMul} or {@code Gemm}
 * @param weight the weight initializer's name (torch's exporter may rename it, e.g. {@code onnx::MatMul_123})
 * @param layout how the initializer holds W: {@link Layout#IN_OUT} [in, out] (MatMul, Conv1D, Gemm without
 *               transB) or {@link Layout#OUT_IN} [out, in] (Gemm with transB = 1, torch's own Linear layout)
 * @param bias   the bias initializer [out], or null when the module has none
 * @param input  the tensor the module reads from the rest of the graph ([.., in])
 * @param output the tensor it hands on, bias included ([.., out])
 */
public record LinearModule(String path, String node, String op, String weight, Layout layout, long in, long out,
                           String bias, String input, String output) {
    public enum Layout {
        IN_OUT, OUT_IN
    }

    public boolean hasBias() {
        return bias != null;
    }

    /** The last dot-separated name: {@code q_proj}, {@code query}, {@code c_attn}. */
    public String name() {
        return path.substring(path.lastIndexOf('.') + 1);
    }

    @Override
    public String toString() {
        return path + " [" + in + " -> " + out + (bias != null ? ", bias" : "") + "]";
    }
}
