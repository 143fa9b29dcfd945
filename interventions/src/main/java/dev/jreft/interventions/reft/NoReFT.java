package dev.jreft.interventions.reft;

import dev.jreft.hooks.graph.SubgraphBuilder;

import java.util.List;
import java.util.Map;

/** NoReFT (pyreft): LoReFT's formula {@code h + Rᵀ(Wh + b − Rh)} with R unconstrained (no orthogonality). */
public final class NoReFT extends LowRankEdit {
    public NoReFT(int rank) {
        super(rank);
    }

    @Override
    public String type() {
        return "noreft";
    }

    @Override
    public String emit(SubgraphBuilder b, String h, String s, Map<String, String> p) {
        String edit = b.op("Sub", List.of(b.op("Add", List.of(project(b, h, p.get("W")), p.get("b"))),
                project(b, h, p.get("R"))));
        return b.op("Add", List.of(h, b.op("MatMul", List.of(edit, p.get("R")))));
    }
}
