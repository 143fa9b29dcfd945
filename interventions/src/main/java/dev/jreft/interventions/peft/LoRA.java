package dev.jreft.interventions.peft;

import dev.jreft.hooks.discovery.LinearModule;
import dev.jreft.hooks.graph.Attr;
import dev.jreft.hooks.graph.SubgraphBuilder;
import dev.jreft.interventions.ModuleEdit;
import dev.jreft.interventions.MergedWeights;
import dev.jreft.interventions.params.Init;
import dev.jreft.interventions.params.Parameter;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * LoRA (Hu et al. 2021, eq. 3): {@code h = W₀x + (α/r)·BAx}; row form {@code y' = y + (α/r)·(x Aᵀ) Bᵀ} with A [r, in]
 * and B [out, r], as peft's {@code lora.Linear}: A Kaiming-uniform, B zero, so training starts from the plain model.
 * rsLoRA (Kalajdzievski 2023) scales by {@code α/√r} instead. Dropout on x is a fed mask (0 or 1/(1−p) per entry);
 * a site that feeds none gets ones (evaluation mode). The scale is a fed input too, so one graph serves every α.
 */
public class LoRA implements ModuleEdit {
    public static final String DROPOUT_MASK = "dropout_mask";
    public static final String SCALING = "scaling";

    final int rank;
    final double alpha;
    final double dropout;
    final boolean rsLora;

    public LoRA(int rank, double alpha, double dropout, boolean rsLora) {
        if (rank < 1) {
            throw new IllegalArgumentException("LoRA rank must be >= 1; got " + rank);
        }
        if (!(dropout >= 0 && dropout < 1)) {
            throw new IllegalArgumentException("LoRA dropout must be in [0, 1); got " + dropout);
        }
        if (!Double.isFinite(alpha)) {
            throw new IllegalArgumentException("LoRA alpha must be finite; got " + alpha);
        }
        this.rank = rank;
        this.alpha = alpha;
        this.dropout = dropout;
        this.rsLora = rsLora;
    }

    public LoRA(int rank, double alpha) {
        this(rank, alpha, 0, false);
    }

    @Override
    public String type() {
        return "lora";
    }

    /** Whether x is dropped changes the graph (the mask's values and p do not). */
    @Override
    public String structureKey() {
        return type() + (dropout > 0 ? "[dropout]" : "");
    }

    public int rank() {
        return rank;
    }

    /** α/r, or α/√r with rsLoRA. */
    public double scaling() {
        return rsLora ? alpha / Math.sqrt(rank) : alpha / rank;
    }

    @Override
    public List<Parameter> parameters(LinearModule m, java.util.function.Supplier<INDArray> weight) {
        if (rank > Math.min(m.in(), m.out())) {
            throw new dev.jreft.hooks.io.ConfigException("rank", rank, "an integer in 1.." + Math.min(m.in(), m.out())
                    + " (module " + m.path() + " is " + m.in() + " -> " + m.out() + ")");
        }
        return List.of(Parameter.of("A", Init.kaimingUniform(), rank, m.in()), Parameter.of("B", Init.zeros(),
                m.out(), rank));
    }

    @Override
    public Map<String, long[]> inputShapes(LinearModule m) {
        Map<String, long[]> in = new LinkedHashMap<>();
        in.put(SCALING, new long[] {1});
        if (dropout > 0) {
            in.put(DROPOUT_MASK, new long[] {-1, -1, m.in()});
        }
        return in;
    }

    @Override
    public Float inputDefault(String name) {
        return switch (name) {
            case SCALING -> (float) scaling();
            case DROPOUT_MASK -> 1f;
            default -> null;
        };
    }

    @Override
    public String emit(SubgraphBuilder b, LinearModule m, String x, String y, Map<String, String> p) {
        return b.op("Add", List.of(y, scaledDelta(b, x, p)));
    }

    /**
     * {@code (scaling · dropout(x) Aᵀ) Bᵀ}: the low-rank update of the module's output, scaled at rank r (the
     * [.., r] rows are out/r times smaller than the [.., out] ones: MiniLM's q/v LoRA step lost 24 Muls over
     * [16, 32, 384], 3 ms).
     */
    String scaledDelta(SubgraphBuilder b, String x, Map<String, String> p) {
        String dropped = dropout > 0 ? b.op("Mul", List.of(x, p.get(DROPOUT_MASK))) : x;
        String down = b.op("Mul", List.of(b.rowProjection(dropped, p.get("A")), p.get(SCALING)));
        return b.rowProjection(down, p.get("B"));
    }

    static String transpose(SubgraphBuilder b, String m) {
        return b.op("Transpose", List.of(m), Attr.ints("perm", 1, 0));
    }

    /** {@code W' = W + s·BA}: the update in weight form; the bias is unchanged. */
    @Override
    public java.util.Optional<MergedWeights> merge(LinearModule m, INDArray weight, INDArray bias,
                                                   Map<String, INDArray> params) {
        return java.util.Optional.of(new MergedWeights(updated(weight, params), bias));
    }

    /** {@code W + s·BA} [out, in], in float64 and back. */
    INDArray updated(INDArray weight, Map<String, INDArray> params) {
        INDArray ba = params.get("B").castTo(DataType.DOUBLE).mmul(params.get("A").castTo(DataType.DOUBLE));
        return weight.castTo(DataType.DOUBLE).add(ba.muli(scaling())).castTo(DataType.FLOAT);
    }
}
