package dev.jreft.hooks.graph;

import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import com.google.protobuf.ByteString;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Builds the ONNX graph of a Hugging Face GPT-2 from its weights under their Hugging Face names
 * ({@code transformer.h.0.attn.c_attn.weight}, ...), laid out as torch's exporter lays out {@code GPT2LMHeadModel}:
 * nodes named after the module tree ({@code /transformer/h.0/attn/c_attn/MatMul}), so jreft finds the same hooks and
 * linear modules in it as in an export; with or without past inputs ({@code past.<i>.key} / {@code present.<i>.key},
 * [batch, heads, past_sequence, head_dim]). For users with a safetensors checkpoint and no Python, and for
 * benchmarks of a model of any size. With {@code positionIds} the graph takes a {@code position_ids} input [batch,
 * sequence] (what Hugging Face's GPT-2 accepts) instead of deriving {@code arange(past, past + sequence)}, so
 * left-padded prompt batches generate as each prompt alone. The LM head is tied to {@code transformer.wte.weight} unless
 * {@code lm_head.weight} is given; activation {@code gelu_new} (tanh), layer norm epsilon 1e-5.
 */
public final class Gpt2Graph {
    /** The sizes a GPT-2 graph needs beside its weights (the head count is not in the weights' shapes). */
    public record Config(int layers, int width, int heads, int vocab, int positions) {
        public Config {
            if (layers < 1 || heads < 1 || width % heads != 0) {
                throw new IllegalArgumentException("a GPT-2 needs layers >= 1 and a width divisible by the heads; got "
                        + layers + " layers, width " + width + ", " + heads + " heads");
            }
        }

        /** GPT-2 small: 12 layers, width 768, 12 heads, 50,257 tokens, 1,024 positions. */
        public static Config small() {
            return new Config(12, 768, 12, 50257, 1024);
        }
    }

    private final Config c;
    private final Map<String, INDArray> w;
    private final boolean past;
    private final boolean positionIds;
    private final OnnxGraph g;
    private final List<NodeProto> nodes = new ArrayList<>();

    private Gpt2Graph(Config c, Map<String, INDArray> weights, boolean past, boolean positionIds) {
        this.c = c;
        this.w = weights;
        this.past = past;
        this.positionIds = positionIds;
        this.g = OnnxGraph.create(17, "gpt2-" + c.layers() + "x" + c.width() + (past ? "-past" : ""));
    }

    /** The graph of {@code weights} (Hugging Face names, GPT-2's Conv1D layout [in, out]). */
    public static OnnxGraph build(Config config, Map<String, INDArray> weights, boolean withPast) {
        return build(config, weights, withPast, false);
    }

    /** As {@link #build(Config, Map, boolean)}, taking each token's position as the input {@code position_ids}. */
    public static OnnxGraph build(Config config, Map<String, INDArray> weights, boolean withPast,
                                  boolean positionIds) {
        return new Gpt2Graph(config, weights, withPast, positionIds).build();
    }

    /** Weights drawn as GPT-2 initialises them (normal, sd 0.02; norms 1 and 0; biases 0), for benchmarks. */
    public static Map<String, INDArray> randomWeights(Config c, long seed) {
        Random r = new Random(seed);
        Map<String, INDArray> w = new LinkedHashMap<>();
        int d = c.width();
        w.put("transformer.wte.weight", normal(r, c.vocab(), d));
        w.put("transformer.wpe.weight", normal(r, c.positions(), d));
        for (int l = 0; l < c.layers(); l++) {
            String p = "transformer.h." + l + ".";
            for (String norm : List.of("ln_1", "ln_2")) {
                w.put(p + norm + ".weight", Nd4j.ones(DataType.FLOAT, d));
                w.put(p + norm + ".bias", Nd4j.zeros(DataType.FLOAT, d));
            }
            w.put(p + "attn.c_attn.weight", normal(r, d, 3 * d));
            w.put(p + "attn.c_attn.bias", Nd4j.zeros(DataType.FLOAT, 3 * d));
            w.put(p + "attn.c_proj.weight", normal(r, d, d));
            w.put(p + "attn.c_proj.bias", Nd4j.zeros(DataType.FLOAT, d));
            w.put(p + "mlp.c_fc.weight", normal(r, d, 4 * d));
            w.put(p + "mlp.c_fc.bias", Nd4j.zeros(DataType.FLOAT, 4 * d));
            w.put(p + "mlp.c_proj.weight", normal(r, 4 * d, d));
            w.put(p + "mlp.c_proj.bias", Nd4j.zeros(DataType.FLOAT, d));
        }
        w.put("transformer.ln_f.weight", Nd4j.ones(DataType.FLOAT, d));
        w.put("transformer.ln_f.bias", Nd4j.zeros(DataType.FLOAT, d));
        return w;
    }

    private static INDArray normal(Random r, int rows, int cols) {
        float[] v = new float[rows * cols];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (0.02 * r.nextGaussian());
        }
        return Nd4j.create(v, new long[] {rows, cols}, 'c');
    }

    private OnnxGraph build() {
        int d = c.width();
        int h = c.heads();
        int dh = d / h;
        g.addInput("input_ids", ElemTypes.INT64, new long[] {-1, -1}, new String[] {"batch", "sequence"});
        g.addInput("attention_mask", ElemTypes.INT64, new long[] {-1, -1}, new String[] {"batch",
                past ? "total_sequence" : "sequence"});
        if (positionIds) {
            g.addInput("position_ids", ElemTypes.INT64, new long[] {-1, -1}, new String[] {"batch", "sequence"});
        }
        if (past) {
            for (int l = 0; l < c.layers(); l++) {
                for (String kv : List.of("key", "value")) {
                    g.addInput("past." + l + "." + kv, ElemTypes.FLOAT, new long[] {-1, h, -1, dh},
                            new String[] {"batch", null, "past_sequence", null});
                }
            }
        }
        // positions past_len .. past_len + seq - 1, and the attention bias [b, 1, seq, total]
        String seq = node("/transformer/Shape", "Shape", List.of("input_ids"), Attr.i("start", 1), Attr.i("end", 2));
        String pastLen = past ? node("/transformer/Shape_1", "Shape", List.of("past.0.key"), Attr.i("start", 2),
                Attr.i("end", 3)) : ints("past_len", new long[] {0}, 1);
        String total = node("/transformer/Add", "Add", List.of(pastLen, seq));
        String scalarAxes = ints("axis0", new long[] {0}, 1);
        String start = node("/transformer/Squeeze", "Squeeze", List.of(pastLen, scalarAxes));
        String positionRow = positionIds ? "position_ids" : node("/transformer/Unsqueeze", "Unsqueeze", List.of(
                node("/transformer/Range", "Range", List.of(start, node("/transformer/Squeeze_1", "Squeeze",
                        List.of(total, scalarAxes)), ints("one", new long[] {1}))), scalarAxes));
        String tokens = node("/transformer/wte/Gather", "Gather", List.of(weight("transformer.wte.weight"),
                "input_ids"));
        String placed = node("/transformer/wpe/Gather", "Gather", List.of(weight("transformer.wpe.weight"),
                positionRow));
        String hidden = node("/transformer/Add_1", "Add", List.of(tokens, placed));
        String square = node("/transformer/Concat", "Concat", List.of(seq, total), Attr.i("axis", 0));
        String big = floats("big", 1e9f);
        String oneF = floats("one_f", 1f);
        String zeros = node("/transformer/ConstantOfShape", "ConstantOfShape", List.of(square)); // float zeros
        String onesF = node("/transformer/Add_3", "Add", List.of(zeros, oneF));
        // key j is visible from query i (at position past_len + i) when j <= i + past_len
        String allowed = node("/transformer/Trilu", "Trilu", List.of(onesF, start), Attr.i("upper", 0));
        String causal = node("/transformer/Mul", "Mul", List.of(node("/transformer/Sub", "Sub",
                List.of(allowed, oneF)), big));
        String mask = node("/transformer/Cast_1", "Cast", List.of("attention_mask"), Attr.i("to", ElemTypes.FLOAT));
        String mask4 = node("/transformer/Unsqueeze_1", "Unsqueeze", List.of(mask, ints("axes12", new long[] {1, 2},
                2)));
        String padding = node("/transformer/Mul_1", "Mul", List.of(node("/transformer/Sub_1", "Sub",
                List.of(mask4, oneF)), big));
        String bias = node("/transformer/Add_2", "Add", List.of(causal, padding)); // [b, 1, seq, total]
        String split = ints("split", new long[] {d, d, d}, 3);
        String headShape = ints("heads_shape", new long[] {0, 0, h, dh}, 4);
        String mergedShape = ints("merged_shape", new long[] {0, 0, d}, 3);
        String scale = floats("sqrt_head_dim", (float) Math.sqrt(dh));
        for (int l = 0; l < c.layers(); l++) {
            String p = "/transformer/h." + l + "/";
            String hf = "transformer.h." + l + ".";
            String x = norm(p + "ln_1/LayerNormalization", hidden, hf + "ln_1");
            String qkv = linear(p + "attn/c_attn/", x, hf + "attn.c_attn");
            String[] parts = {p + "attn/Split_output_0", p + "attn/Split_output_1", p + "attn/Split_output_2"};
            nodes.add(NodeProto.newBuilder().setName(p + "attn/Split").setOpType("Split").addInput(qkv)
                    .addInput(split).addAllOutput(List.of(parts)).addAllAttribute(Attr.protos(Attr.i("axis", 2)))
                    .build());
            String[] bhsd = new String[3];
            for (int i = 0; i < 3; i++) {
                String r = node(p + "attn/Reshape_" + i, "Reshape", List.of(parts[i], headShape));
                bhsd[i] = node(p + "attn/Transpose_" + i, "Transpose", List.of(r), Attr.ints("perm", 0, 2, 1, 3));
            }
            String keys = bhsd[1];
            String values = bhsd[2];
            if (past) {
                keys = nodeTo(p + "attn/Concat", "present." + l + ".key", "Concat", List.of("past." + l + ".key",
                        keys), Attr.i("axis", 2));
                values = nodeTo(p + "attn/Concat_1", "present." + l + ".value", "Concat", List.of("past." + l
                        + ".value", values), Attr.i("axis", 2));
            }
            String keysT = node(p + "attn/Transpose_3", "Transpose", List.of(keys), Attr.ints("perm", 0, 1, 3, 2));
            String scores = node(p + "attn/Div", "Div", List.of(node(p + "attn/MatMul", "MatMul",
                    List.of(bhsd[0], keysT)), scale));
            String weights = node(p + "attn/Softmax", "Softmax", List.of(node(p + "attn/Add", "Add",
                    List.of(scores, bias))), Attr.i("axis", -1));
            String context = node(p + "attn/MatMul_1", "MatMul", List.of(weights, values));
            String merged = node(p + "attn/Reshape_3", "Reshape", List.of(node(p + "attn/Transpose_4", "Transpose",
                    List.of(context), Attr.ints("perm", 0, 2, 1, 3)), mergedShape));
            String attention = linear(p + "attn/c_proj/", merged, hf + "attn.c_proj");
            String mid = node(p + "Add", "Add", List.of(attention, hidden));
            String y = norm(p + "ln_2/LayerNormalization", mid, hf + "ln_2");
            String activation = geluNew(p + "mlp/act/", linear(p + "mlp/c_fc/", y, hf + "mlp.c_fc"));
            String mlp = linear(p + "mlp/c_proj/", activation, hf + "mlp.c_proj");
            hidden = node(p + "Add_1", "Add", List.of(mlp, mid));
        }
        String last = norm("/transformer/ln_f/LayerNormalization", hidden, "transformer.ln_f");
        INDArray head = w.containsKey("lm_head.weight") ? w.get("lm_head.weight") : w.get("transformer.wte.weight");
        initializer("lm_head.weight_t", head.transpose().dup('c'));
        nodeTo("/lm_head/MatMul", "logits", "MatMul", List.of(last, "lm_head.weight_t"));
        g.addNodes(nodes);
        g.exposeOutput("logits", ElemTypes.FLOAT, new long[] {-1, -1, c.vocab()}, new String[] {"batch", "sequence",
                null});
        if (past) {
            for (int l = 0; l < c.layers(); l++) {
                for (String kv : List.of("key", "value")) {
                    g.exposeOutput("present." + l + "." + kv, ElemTypes.FLOAT, new long[] {-1, h, -1, dh},
                            new String[] {"batch", null, "total_sequence", null});
                }
            }
        }
        return g;
    }

    /** {@code x · W + b} as the module {@code prefix} (a Conv1D: W [in, out]). */
    private String linear(String prefix, String x, String hf) {
        String product = node(prefix + "MatMul", "MatMul", List.of(x, weight(hf + ".weight")));
        return node(prefix + "Add", "Add", List.of(product, weight(hf + ".bias")));
    }

    private String norm(String name, String x, String hf) {
        return node(name, "LayerNormalization", List.of(x, weight(hf + ".weight"), weight(hf + ".bias")),
                Attr.i("axis", -1), Attr.f("epsilon", 1e-5f));
    }

    /** GPT-2's {@code gelu_new}: {@code ½x(1 + tanh(√(2/π)(x + 0.044715x³)))}. */
    private String geluNew(String prefix, String x) {
        String cube = node(prefix + "Pow", "Pow", List.of(x, floats("three", 3f)));
        String inner = node(prefix + "Add", "Add", List.of(x, node(prefix + "Mul", "Mul", List.of(cube,
                floats("gelu_c", 0.044715f)))));
        String t = node(prefix + "Tanh", "Tanh", List.of(node(prefix + "Mul_1", "Mul", List.of(inner,
                floats("gelu_s", (float) Math.sqrt(2 / Math.PI))))));
        String half = node(prefix + "Mul_2", "Mul", List.of(x, floats("half", 0.5f)));
        return node(prefix + "Mul_3", "Mul", List.of(half, node(prefix + "Add_1", "Add", List.of(t,
                floats("one_f", 1f)))));
    }

    private String node(String name, String op, List<String> in, Attr... attrs) {
        return nodeTo(name, name + "_output_0", op, in, attrs);
    }

    private String nodeTo(String name, String out, String op, List<String> in, Attr... attrs) {
        nodes.add(NodeProto.newBuilder().setName(name).setOpType(op).addAllInput(in).addOutput(out)
                .addAllAttribute(Attr.protos(attrs)).build());
        return out;
    }

    /** A weight by its Hugging Face name, added as an initializer of that name the first time. */
    private String weight(String name) {
        INDArray v = w.get(name);
        if (v == null) {
            throw new IllegalArgumentException("weight '" + name + "': found none; valid: every weight of a GPT-2 of"
                    + " " + c.layers() + " layers under its Hugging Face name");
        }
        if (!g.isInitializer(name)) {
            initializer(name, v);
        }
        return name;
    }

    private void initializer(String name, INDArray v) {
        float[] f = v.castTo(DataType.FLOAT).dup('c').data().asFloat();
        ByteBuffer b = ByteBuffer.allocate(4 * f.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(f);
        // the bytes are the tensor's own from here on: wrapped, not copied again (GPT-2 small is 0.5 GB of them)
        TensorProto.Builder t = TensorProto.newBuilder().setName(name).setDataType(TensorProto.DataType.FLOAT_VALUE)
                .setRawData(com.google.protobuf.UnsafeByteOperations.unsafeWrap(b.array()));
        for (long s : v.shape()) {
            t.addDims(s);
        }
        g.addInitializer(t.build());
    }

    private String floats(String name, float value) {
        String n = "const." + name;
        if (!g.isInitializer(n)) {
            ByteBuffer b = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putFloat(value);
            g.addInitializer(TensorProto.newBuilder().setName(n).setDataType(TensorProto.DataType.FLOAT_VALUE)
                    .setRawData(ByteString.copyFrom(b.array())).build());
        }
        return n;
    }

    private String ints(String name, long[] values, long... dims) {
        String n = "const." + name;
        if (!g.isInitializer(n)) {
            ByteBuffer b = ByteBuffer.allocate(8 * values.length).order(ByteOrder.LITTLE_ENDIAN);
            for (long v : values) {
                b.putLong(v);
            }
            TensorProto.Builder t = TensorProto.newBuilder().setName(n).setDataType(TensorProto.DataType.INT64_VALUE)
                    .setRawData(ByteString.copyFrom(b.array()));
            for (long s : dims) {
                t.addDims(s);
            }
            g.addInitializer(t.build());
        }
        return n;
    }
}
