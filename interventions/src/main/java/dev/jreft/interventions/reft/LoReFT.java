package dev.jreft.interventions.reft;

import dev.jreft.hooks.graph.SubgraphBuilder;

import java.util.List;
import java.util.Map;

/**
 * LoReFT (Wu et al. 2024, eq. 2): {@code Φ(h) = h + Rᵀ(act(Wh + b) − Rh)}, R with orthonormal rows; row form
 * {@code h + (act(h Wᵀ + b) − h Rᵀ) R}, times the dropout mask when p > 0 (act is linear by default).
 */
public final class LoReFT extends LowRankEdit {
    public LoReFT(int rank) {
        this(rank, Activation.LINEAR, 0);
    }

    public LoReFT(int rank, Activation activation, double dropout) {
        super(rank, activation, dropout);
    }

    @Override
    boolean orthonormalR() {
        return true;
    }

    @Override
    public String type() {
        return "loreft";
    }

    @Override
    public String emit(SubgraphBuilder b, String h, String s, Map<String, String> p) {
        String edit = b.op("Sub", List.of(learnedSource(b, h, p), project(b, h, p.get("R"))));
        return addEdit(b, h, edit, p);
    }
}
