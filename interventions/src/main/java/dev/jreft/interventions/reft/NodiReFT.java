package dev.jreft.interventions.reft;

import dev.jreft.hooks.graph.SubgraphBuilder;

import java.util.Map;

/**
 * NodiReFT (pyreft): DiReFT with R unconstrained (pyreft's {@code proj_layer} weight), row form
 * {@code h + act(h Wᵀ + b) R}, times the dropout mask when p > 0.
 */
public final class NodiReFT extends LowRankEdit {
    public NodiReFT(int rank) {
        this(rank, Activation.LINEAR, 0);
    }

    public NodiReFT(int rank, Activation activation, double dropout) {
        super(rank, activation, dropout);
    }

    @Override
    boolean orthonormalR() {
        return false;
    }

    @Override
    public String type() {
        return "nodireft";
    }

    @Override
    public String emit(SubgraphBuilder b, String h, String s, Map<String, String> p) {
        return addEdit(b, h, learnedSource(b, h, p), p);
    }
}
