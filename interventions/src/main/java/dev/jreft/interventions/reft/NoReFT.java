package dev.jreft.interventions.reft;

import dev.jreft.hooks.graph.SubgraphBuilder;

import java.util.List;
import java.util.Map;

/**
 * NoReFT (pyreft): LoReFT's formula {@code h + (act(h Wᵀ + b) − h Rᵀ) R} with R unconstrained (no orthogonality),
 * times the dropout mask when p > 0.
 */
public final class NoReFT extends LowRankEdit {
    public NoReFT(int rank) {
        this(rank, Activation.LINEAR, 0);
    }

    public NoReFT(int rank, Activation activation, double dropout) {
        super(rank, activation, dropout);
    }

    @Override
    boolean orthonormalR() {
        return false;
    }

    @Override
    public String type() {
        return "noreft";
    }

    @Override
    public String emit(SubgraphBuilder b, String h, String s, Map<String, String> p) {
        String edit = b.op("Sub", List.of(learnedSource(b, h, p), project(b, h, p.get("R"))));
        return addEdit(b, h, edit, p);
    }
}
