package dev.jreft.interventions.das;

import dev.jreft.interventions.params.Parameter;
import dev.jreft.interventions.params.Init;
import dev.jreft.interventions.params.Constraint;
import dev.jreft.hooks.graph.Attr;
import dev.jreft.hooks.graph.ElemTypes;
import dev.jreft.hooks.graph.SubgraphBuilder;
import dev.jreft.interventions.Intervention;

import java.util.List;
import java.util.Map;

/**
 * Boundless DAS (pyvene {@code BoundlessRotatedSpaceIntervention}, Wu et al. 2023): R [d, d] orthogonal, a
 * learned boundary (a fraction of d) and a fed temperature T: {@code u = hR, w = sR, c = clip(boundary, 1e-3, 1)·d,
 * m_k = sigmoid(k/T)·sigmoid((c − k)/T) for k = 0..d−1, h' = ((1 − m)⊙u + m⊙w) Rᵀ}. T is a non-trained input
 * (annealed by the caller; pyvene starts at 50) and must be fed. Needs opset >= 11 (Clip bounds and Range as
 * inputs).
 */
public final class BoundlessRotatedSpaceInterchange implements Intervention {
    @Override
    public String type() {
        return "boundless_rotated_space_interchange";
    }

    @Override
    public boolean needsSource() {
        return true;
    }

    @Override
    public List<Parameter> parameters(long width) {
        return List.of(Parameter.constrained("R", Constraint.ORTHONORMAL_COLUMNS, width, width),
                Parameter.of("boundary", Init.constant(0.5), 1)); // pyvene's initial boundary: half the width
    }

    @Override
    public Map<String, long[]> inputShapes(long width) {
        return Map.of("temperature", new long[] {1});
    }

    @Override
    public String emit(SubgraphBuilder b, String h, String s, Map<String, String> p) {
        String r = p.get("R");
        String t = p.get("temperature");
        String u = b.op("MatMul", List.of(h, r));
        String w = b.op("MatMul", List.of(s, r));
        // d from R's shape: the index vector k = 0..d−1 is built off the differentiable path (int64 until the Cast)
        String d = b.op("Gather", List.of(b.op("Shape", List.of(r)), b.constantInts(new long[] {0})),
                Attr.i("axis", 0));
        String k = b.op("Cast", List.of(b.op("Range", List.of(b.constantInts(new long[] {0}), d,
                b.constantInts(new long[] {1})))), Attr.i("to", ElemTypes.FLOAT));
        String c = b.op("Mul", List.of(b.op("Clip", List.of(p.get("boundary"), b.scalar(1e-3, ElemTypes.FLOAT),
                b.scalar(1, ElemTypes.FLOAT))), b.op("Cast", List.of(d), Attr.i("to", ElemTypes.FLOAT))));
        String m = b.op("Mul", List.of(b.op("Sigmoid", List.of(b.op("Div", List.of(k, t)))),
                b.op("Sigmoid", List.of(b.op("Div", List.of(b.op("Sub", List.of(c, k)), t))))));
        String keep = b.op("Sub", List.of(b.scalar(1, ElemTypes.FLOAT), m));
        String mixed = b.op("Add", List.of(b.op("Mul", List.of(keep, u)), b.op("Mul", List.of(m, w))));
        return b.op("MatMul", List.of(mixed, b.op("Transpose", List.of(r), Attr.ints("perm", 1, 0))));
    }

    /** The temperature divides: it must be a positive number. */
    @Override
    public void checkInput(String name, org.nd4j.linalg.api.ndarray.INDArray value) {
        if (name.equals("temperature") && !(value.getDouble(0) > 0)) {
            throw new dev.jreft.hooks.io.ConfigException("temperature", value.getDouble(0), "a number > 0");
        }
    }
}
