package dev.jreft.interventions.das;

import dev.jreft.interventions.params.Parameter;
import dev.jreft.interventions.params.Constraint;
import dev.jreft.hooks.graph.Attr;
import dev.jreft.hooks.graph.SubgraphBuilder;
import dev.jreft.interventions.Intervention;

import java.util.List;
import java.util.Map;

/**
 * Low-rank DAS / distributed interchange intervention: R [d, r] with orthonormal columns,
 * {@code h' = h + (sR − hR) Rᵀ}: the source's component in the r-dimensional subspace replaces the base's.
 */
public final class LowRankRotatedSpaceInterchange implements Intervention {
    private final int rank;

    public LowRankRotatedSpaceInterchange(int rank) {
        if (rank < 1) {
            throw new IllegalArgumentException("low-rank DAS rank must be >= 1; got " + rank);
        }
        this.rank = rank;
    }

    @Override
    public String type() {
        return "low_rank_rotated_space_interchange";
    }

    @Override
    public boolean needsSource() {
        return true;
    }

    @Override
    public List<Parameter> parameters(long width) {
        if (rank > width) {
            throw new dev.jreft.hooks.io.ConfigException("rank", rank, "an integer in 1.." + width + " (the hook's"
                    + " width)");
        }
        return List.of(Parameter.constrained("R", Constraint.ORTHONORMAL_COLUMNS, width, rank));
    }

    @Override
    public String emit(SubgraphBuilder b, String h, String s, Map<String, String> p) {
        String r = p.get("R");
        String diff = b.op("Sub", List.of(b.op("MatMul", List.of(s, r)), b.op("MatMul", List.of(h, r))));
        return b.op("Add", List.of(h, b.op("MatMul", List.of(diff,
                b.op("Transpose", List.of(r), Attr.ints("perm", 1, 0))))));
    }
}
