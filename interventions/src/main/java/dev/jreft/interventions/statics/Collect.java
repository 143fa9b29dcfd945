package dev.jreft.interventions.statics;

import dev.jreft.hooks.graph.SubgraphBuilder;
import dev.jreft.interventions.Intervention;

import java.util.Map;

/**
 * Collect: reads the selected rows without changing them ({@code h' = h}); the run returns them as
 * [n, selected features]. Handled by the splicer as a read, so the model graph is not rewritten.
 */
public final class Collect implements Intervention {
    @Override
    public String type() {
        return "collect";
    }

    @Override
    public boolean needsSource() {
        return false;
    }

    @Override
    public String emit(SubgraphBuilder b, String h, String s, Map<String, String> params) {
        return h;
    }
}
