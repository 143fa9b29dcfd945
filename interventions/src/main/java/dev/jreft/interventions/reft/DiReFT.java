package dev.jreft.interventions.reft;

import dev.jreft.hooks.graph.SubgraphBuilder;

import java.util.Map;

/**
 * DiReFT (pyreft): {@code h + Rᵀ act(Wh + b)}, no projection of h removed; row form {@code h + act(h Wᵀ + b) R},
 * times the dropout mask when p > 0.
 */
public final class DiReFT extends LowRankEdit {
    public DiReFT(int rank) {
        this(rank, Activation.LINEAR, 0);
    }

    public DiReFT(int rank, Activation activation, double dropout) {
        super(rank, activation, dropout);
    }

    @Override
    boolean orthonormalR() {
        return false;
    }

    @Override
    public String type() {
        return "direft";
    }

    @Override
    public String emit(SubgraphBuilder b, String h, String s, Map<String, String> p) {
        return addEdit(b, h, learnedSource(b, h, p), p);
    }
}
