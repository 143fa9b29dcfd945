package dev.jreft.interventions.statics;

import dev.jreft.hooks.graph.SubgraphBuilder;
import dev.jreft.interventions.Intervention;

import java.util.List;
import java.util.Map;

/** Zero ablation: {@code h' = 0}. Built from the shape (not {@code h * 0}) so inf or NaN in h cannot leak. */
public final class ZeroAblation implements Intervention {
    @Override
    public String type() {
        return "zero_ablation";
    }

    @Override
    public boolean needsSource() {
        return false;
    }

    @Override
    public String emit(SubgraphBuilder b, String h, String s, Map<String, String> params) {
        return b.op("ConstantOfShape", List.of(b.op("Shape", List.of(h))));
    }
}
