package dev.jreft.interventions.statics;

import dev.jreft.hooks.graph.SubgraphBuilder;
import dev.jreft.interventions.Intervention;

import java.util.Map;

/** Interchange (activation patching): {@code h' = s}, the source run's value at the paired position. */
public final class VanillaInterchange implements Intervention {
    @Override
    public String type() {
        return "vanilla_interchange";
    }

    @Override
    public boolean needsSource() {
        return true;
    }

    @Override
    public String emit(SubgraphBuilder b, String h, String s, Map<String, String> params) {
        return s;
    }
}
