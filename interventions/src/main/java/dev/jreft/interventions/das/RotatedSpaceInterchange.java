package dev.jreft.interventions.das;

import dev.jreft.interventions.params.Parameter;
import dev.jreft.interventions.params.Constraint;
import dev.jreft.hooks.graph.Attr;
import dev.jreft.hooks.graph.SubgraphBuilder;
import dev.jreft.interventions.Intervention;

import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * DAS (Geiger et al. 2023): rotate base and source by R [d, d] (orthogonal), take the source's coordinates on the
 * subspace, rotate back: {@code u = hR, w = sR, u'[k] = w[k] for k in subspace, h' = u' Rᵀ}. Written literally (not
 * as {@code h + ((sR − hR)·mask) Rᵀ}) so the Euclidean gradient w.r.t. R is the formula's own.
 */
public final class RotatedSpaceInterchange implements Intervention {
    private final int[] subspace;

    public RotatedSpaceInterchange(int... subspace) {
        if (subspace.length == 0) {
            throw new IllegalArgumentException("DAS needs a non-empty subspace (rotated coordinates to interchange)");
        }
        this.subspace = subspace.clone();
    }

    @Override
    public String type() {
        return "rotated_space_interchange";
    }

    @Override
    public String structureKey() {
        return type() + Arrays.toString(subspace);
    }

    @Override
    public boolean needsSource() {
        return true;
    }

    @Override
    public List<Parameter> parameters(long width) {
        for (int k : subspace) {
            if (k < 0 || k >= width) {
                throw new dev.jreft.hooks.io.ConfigException("subspace", k, "coordinates in 0.." + (width - 1)
                        + " (the hook's width is " + width + ")");
            }
        }
        return List.of(Parameter.constrained("R", Constraint.ORTHONORMAL_COLUMNS, width, width));
    }

    @Override
    public String emit(SubgraphBuilder b, String h, String s, Map<String, String> p) {
        String r = p.get("R");
        String u = b.op("MatMul", List.of(h, r));
        String w = b.op("MatMul", List.of(s, r));
        long width = 0;
        for (int k : subspace) {
            width = Math.max(width, k + 1);
        }
        // the mask is baked in (part of the structure key); its length follows R's width via Shape
        String mask = b.op("Cast", List.of(b.op("ScatterElements", List.of(
                b.op("ConstantOfShape", List.of(b.op("Slice", List.of(b.op("Shape", List.of(r)),
                        b.constantInts(new long[] {0}, 1), b.constantInts(new long[] {1}, 1))))),
                b.constantInts(Arrays.stream(subspace).asLongStream().toArray(), subspace.length),
                b.constantFloats(ones(subspace.length), subspace.length)))), Attr.i("to", 9));
        String mixed = b.op("Where", List.of(mask, w, u));
        return b.op("MatMul", List.of(mixed, b.op("Transpose", List.of(r), Attr.ints("perm", 1, 0))));
    }

    private static float[] ones(int n) {
        float[] f = new float[n];
        Arrays.fill(f, 1f);
        return f;
    }
}
