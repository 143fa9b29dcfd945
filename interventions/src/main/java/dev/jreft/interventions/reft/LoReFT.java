package dev.jreft.interventions.reft;

import dev.jreft.hooks.graph.SubgraphBuilder;

import java.util.List;
import java.util.Map;

/**
 * LoReFT (Wu et al. 2024, eq. 2): {@code Φ(h) = h + Rᵀ(Wh + b − Rh)}, R with orthonormal rows; row form
 * {@code h + (h Wᵀ + b − h Rᵀ) R}. No activation, no dropout here (as in the fixtures).
 */
public final class LoReFT extends LowRankEdit {
    public LoReFT(int rank) {
        super(rank);
    }

    @Override
    public String type() {
        return "loreft";
    }

    @Override
    public String emit(SubgraphBuilder b, String h, String s, Map<String, String> p) {
        String edit = b.op("Sub", List.of(b.op("Add", List.of(project(b, h, p.get("W")), p.get("b"))),
                project(b, h, p.get("R"))));
        return b.op("Add", List.of(h, b.op("MatMul", List.of(edit, p.get("R")))));
    }
}
