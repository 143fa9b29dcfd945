package dev.jreft.interventions.reft;

import dev.jreft.hooks.graph.Attr;
import dev.jreft.hooks.graph.SubgraphBuilder;
import dev.jreft.interventions.Intervention;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Shared shape of the ReFT family: parameters {@code R} [r, d], {@code W} [r, d], {@code b} [r] acting on rows
 * {@code h} [n, d] in row form (pyreft writes the column form {@code h + Rᵀ(Wh + b − Rh)}).
 */
abstract class LowRankEdit implements Intervention {
    final int rank;

    LowRankEdit(int rank) {
        if (rank < 1) {
            throw new IllegalArgumentException("ReFT rank must be >= 1; got " + rank);
        }
        this.rank = rank;
    }

    @Override
    public boolean needsSource() {
        return false;
    }

    @Override
    public Map<String, long[]> parameterShapes(long width) {
        if (rank > width) {
            throw new IllegalArgumentException(type() + " rank " + rank + " exceeds the hook width " + width);
        }
        Map<String, long[]> m = new LinkedHashMap<>();
        m.put("R", new long[] {rank, width});
        m.put("W", new long[] {rank, width});
        m.put("b", new long[] {rank});
        return m;
    }

    /** {@code x Mᵀ} for rows x [n, d] and M [r, d]: the r projections of each row. */
    static String project(SubgraphBuilder b, String x, String m) {
        return b.op("MatMul", List.of(x, b.op("Transpose", List.of(m), Attr.ints("perm", 1, 0))));
    }
}
