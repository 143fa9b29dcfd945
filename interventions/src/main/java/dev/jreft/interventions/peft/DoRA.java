package dev.jreft.interventions.peft;

import dev.jreft.hooks.discovery.LinearModule;
import dev.jreft.hooks.graph.ElemTypes;
import dev.jreft.hooks.graph.SubgraphBuilder;
import dev.jreft.interventions.MergedWeights;
import dev.jreft.interventions.params.Init;
import dev.jreft.interventions.params.Parameter;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * DoRA (Liu et al. 2024, eq. 5) as peft's {@code DoraLinearLayer}: the LoRA-updated weight's direction with a
 * learned magnitude m [out], {@code W' = m · (W + s·BA) / ‖W + s·BA‖}, norm per output feature. Row form
 * {@code y' = y + (g − 1)·(x Wᵀ) + g·s·(x Aᵀ Bᵀ)} with {@code g = m / n} and {@code x Wᵀ = y − b}. The norm n is
 * detached (paper §4.3, peft's {@code weight_norm.detach()}): it is computed from detached copies of A and B, so no
 * gradient flows through it. m starts at ‖W‖ (B is zero), so training starts from the plain model.
 */
public final class DoRA extends LoRA {
    static final String A_DETACHED = "A.detached";
    static final String B_DETACHED = "B.detached";

    public DoRA(int rank, double alpha, double dropout, boolean rsLora) {
        super(rank, alpha, dropout, rsLora);
    }

    public DoRA(int rank, double alpha) {
        this(rank, alpha, 0, false);
    }

    @Override
    public String type() {
        return "dora";
    }

    @Override
    public String structureKey() {
        return type() + (dropout > 0 ? "[dropout]" : "");
    }

    @Override
    public List<Parameter> parameters(LinearModule m, java.util.function.Supplier<INDArray> weight) {
        List<Parameter> lora = super.parameters(m, weight);
        Init rowNorms = (shape, random) -> { // ‖W‖ per output feature, read when a fresh m is drawn
            INDArray w = weight.get().castTo(DataType.DOUBLE);
            return org.nd4j.linalg.ops.transforms.Transforms.sqrt(w.mul(w).sum(1)).castTo(DataType.FLOAT);
        };
        return List.of(lora.get(0), lora.get(1), Parameter.of("m", rowNorms, m.out()));
    }

    @Override
    public Map<String, long[]> inputShapes(LinearModule m) {
        Map<String, long[]> in = new LinkedHashMap<>(super.inputShapes(m));
        in.put(A_DETACHED, new long[] {rank, m.in()});
        in.put(B_DETACHED, new long[] {m.out(), rank});
        return in;
    }

    @Override
    public Map<String, String> detachedCopies() {
        return Map.of(A_DETACHED, "A", B_DETACHED, "B");
    }

    @Override
    public String emit(SubgraphBuilder b, LinearModule m, String x, String y, Map<String, String> p) {
        String g = b.op("Div", List.of(p.get("m"), weightNorm(b, m, p)));
        String xw = m.hasBias() ? b.op("Sub", List.of(y, m.bias())) : y;
        String gMinus1 = b.op("Sub", List.of(g, b.scalar(1, ElemTypes.FLOAT)));
        String rescaled = b.op("Mul", List.of(gMinus1, xw));
        String update = b.op("Mul", List.of(g, scaledDelta(b, x, p)));
        return b.op("Add", List.of(y, b.op("Add", List.of(rescaled, update))));
    }

    /** {@code ‖W + s·BA‖} per output feature [out], from the detached copies of A and B. */
    private static String weightNorm(SubgraphBuilder b, LinearModule m, Map<String, String> p) {
        // BA [out, in]; the initializer holds W as [in, out] or [out, in]
        String ba = b.op("Mul", List.of(b.op("MatMul", List.of(p.get(B_DETACHED), p.get(A_DETACHED))),
                p.get(SCALING)));
        boolean inOut = m.layout() == LinearModule.Layout.IN_OUT;
        String w = inOut ? b.op("Add", List.of(m.floatWeight(b), transpose(b, ba)))
                : b.op("Add", List.of(m.floatWeight(b), ba));
        String squares = b.op("Mul", List.of(w, w));
        return b.op("Sqrt", List.of(b.reduceSum(squares, new long[] {inOut ? 0 : 1}, false)));
    }

    /** {@code W' = (m / ‖W + s·BA‖) ⊙ (W + s·BA)} row by row: the paper's eq. 5 as a weight; the bias is unchanged. */
    @Override
    public java.util.Optional<MergedWeights> merge(LinearModule m, INDArray weight, INDArray bias,
                                                   Map<String, INDArray> params) {
        INDArray w = updated(weight, params).castTo(DataType.DOUBLE);
        INDArray norms = org.nd4j.linalg.ops.transforms.Transforms.sqrt(w.mul(w).sum(1));
        INDArray g = params.get("m").castTo(DataType.DOUBLE).div(norms);
        return java.util.Optional.of(new MergedWeights(w.mulColumnVector(g.reshape(g.length(), 1))
                .castTo(DataType.FLOAT), bias));
    }
}
