package dev.jreft.interventions.reft;

import dev.jreft.hooks.graph.SubgraphBuilder;

import java.util.List;
import java.util.Map;

/**
 * LobiReFT (pyreft): a learned bias in a low-rank subspace, {@code h + Rᵀb}; row form {@code h + b R}, times the
 * dropout mask when p > 0. Parameters R [r, d] and b [r] only (no W, so no activation).
 */
public final class LobiReFT extends LowRankEdit {
    public LobiReFT(int rank) {
        this(rank, 0);
    }

    public LobiReFT(int rank, double dropout) {
        super(rank, Activation.LINEAR, dropout);
    }

    @Override
    boolean orthonormalR() {
        return true;
    }

    @Override
    public String type() {
        return "lobireft";
    }

    @Override
    boolean learnsProjection() {
        return false;
    }

    @Override
    public String emit(SubgraphBuilder b, String h, String s, Map<String, String> p) {
        // b as a [1, r] row (MatMul's gradient rule takes operands of rank >= 2); b R broadcasts over every row of h
        String row = b.op("Reshape", List.of(p.get("b"), b.constantInts(new long[] {1, rank}, 2)));
        return addEdit(b, h, row, p);
    }
}
