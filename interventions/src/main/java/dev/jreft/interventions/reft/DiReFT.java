package dev.jreft.interventions.reft;

import dev.jreft.hooks.graph.SubgraphBuilder;

import java.util.List;
import java.util.Map;

/** DiReFT (pyreft): {@code h + Rᵀ(Wh + b)}, no projection of h removed; row form {@code h + (h Wᵀ + b) R}. */
public final class DiReFT extends LowRankEdit {
    public DiReFT(int rank) {
        super(rank);
    }

    @Override
    public String type() {
        return "direft";
    }

    @Override
    public String emit(SubgraphBuilder b, String h, String s, Map<String, String> p) {
        String edit = b.op("Add", List.of(project(b, h, p.get("W")), p.get("b")));
        return b.op("Add", List.of(h, b.op("MatMul", List.of(edit, p.get("R")))));
    }
}
