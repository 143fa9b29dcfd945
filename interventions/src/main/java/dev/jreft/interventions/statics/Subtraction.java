package dev.jreft.interventions.statics;

import dev.jreft.interventions.params.Parameter;
import dev.jreft.interventions.params.Init;
import dev.jreft.hooks.graph.SubgraphBuilder;
import dev.jreft.interventions.Intervention;

import java.util.List;
import java.util.Map;

/** Steering by subtraction: {@code h' = h - v}, v a [width] vector. */
public final class Subtraction implements Intervention {
    @Override
    public String type() {
        return "subtraction";
    }

    @Override
    public boolean needsSource() {
        return false;
    }

    @Override
    public List<Parameter> parameters(long width) {
        return List.of(Parameter.of("v", Init.zeros(), width));
    }

    @Override
    public String emit(SubgraphBuilder b, String h, String s, Map<String, String> params) {
        return b.op("Sub", List.of(h, params.get("v")));
    }
}
