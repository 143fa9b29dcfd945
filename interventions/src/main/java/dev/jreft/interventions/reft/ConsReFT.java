package dev.jreft.interventions.reft;

import dev.jreft.hooks.graph.SubgraphBuilder;

import java.util.List;
import java.util.Map;

/**
 * ConsReFT (pyreft): a constant learned source, {@code h + Rᵀ(b − Rh)}, R with orthonormal rows; row form
 * {@code h + (b − h Rᵀ) R}, times the dropout mask when p > 0. Parameters R [r, d] and b [r] only (no W, so no
 * activation).
 */
public final class ConsReFT extends LowRankEdit {
    public ConsReFT(int rank) {
        this(rank, 0);
    }

    public ConsReFT(int rank, double dropout) {
        super(rank, Activation.LINEAR, dropout);
    }

    @Override
    boolean orthonormalR() {
        return true;
    }

    @Override
    public String type() {
        return "consreft";
    }

    @Override
    boolean learnsProjection() {
        return false;
    }

    @Override
    public String emit(SubgraphBuilder b, String h, String s, Map<String, String> p) {
        return addEdit(b, h, b.op("Sub", List.of(p.get("b"), project(b, h, p.get("R")))), p);
    }
}
