package dev.jreft.analysis;

import dev.jreft.hooks.io.Check;
import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;

import java.util.ArrayList;
import java.util.List;

/**
 * A patching sweep as {@code jreft sweep --config} reads it: a base and a source text of the same token length, the
 * hooks (by name, or components × layers: every layer unless {@code layers} is given; default the block outputs),
 * which grids ({@code activation}, {@code attribution} or {@code both}) and the metric: {@code embedding_direction}
 * (a sentence embedding's projection on the base → source direction), {@code logit_difference} of
 * {@code correct_token} over {@code wrong_token} (token ids) at the base's last token, or {@code token_loss} /
 * {@code token_probability} of {@code correct_token} there; {@code across}
 * {@code positions} (one cell per hook and token, the default) or {@code heads} (one cell per hook and attention
 * head, the head patched at every token; hooks with a head axis such as {@code attention_value_output}).
 */
public record SweepConfig(String base, String source, List<String> hooks, List<String> components,
                          List<Integer> layers, String patching, String metric, Long correctToken, Long wrongToken,
                          String across) implements java.io.Serializable {
    public static final List<String> PATCHING = List.of("activation", "attribution", "both");
    public static final List<String> ACROSS = List.of("positions", "heads");
    public static final List<String> METRICS = List.of("embedding_direction", "logit_difference", "token_loss",
            "token_probability");

    public SweepConfig {
        for (var text : List.of(new String[] {"base", base}, new String[] {"source", source})) {
            if (text[1] == null || text[1].isBlank()) {
                throw ConfigException.of(text[0], "found " + (text[1] == null ? "nothing" : "a blank text")
                        + "; valid: a sentence");
            }
        }
        if (hooks != null && (components != null || layers != null)) {
            throw ConfigException.of("hooks", "found hooks together with components / layers; valid: either hook"
                    + " names, or components and layers");
        }
        if (hooks != null && hooks.isEmpty()) {
            throw ConfigException.of("hooks", "found an empty list; valid: one or more hook names");
        }
        if (components != null) {
            if (components.isEmpty()) {
                throw ConfigException.of("components", "found an empty list; valid: components such as block_output");
            }
            for (int i = 0; i < components.size(); i++) {
                Check.oneOf("components[" + i + "]", components.get(i), dev.jreft.hooks.discovery.HookMap.COMPONENTS);
            }
        }
        if (patching != null) {
            Check.oneOf("patching", patching, PATCHING);
        }
        if (metric != null) {
            Check.oneOf("metric", metric, METRICS);
        }
        if (across != null) {
            Check.oneOf("across", across, ACROSS);
        }
        boolean difference = "logit_difference".equals(metric);
        boolean token = "token_loss".equals(metric) || "token_probability".equals(metric);
        if ((difference || token) && correctToken == null) {
            throw ConfigException.of("correct_token", "found none; valid: a token id (metric " + metric + " reads it)");
        }
        if (difference != (wrongToken != null)) {
            throw ConfigException.of("wrong_token", difference ? "found none; valid: a token id (metric"
                    + " logit_difference compares two logits)" : "found a token id with metric " + (metric == null
                    ? "embedding_direction (the default)" : metric) + "; valid: none (only logit_difference reads it)");
        }
        if (!difference && !token && correctToken != null) {
            throw ConfigException.of("correct_token", "found a token id with metric " + (metric == null
                    ? "embedding_direction (the default)" : metric) + "; valid: none (only logit_difference,"
                    + " token_loss and token_probability read it)");
        }
    }

    /** The metric on {@code model} for the base and source batches. */
    public ActivationPatching.Metric metricOf(HookedModel model, Batch base, Batch source) {
        return switch (metric == null ? "embedding_direction" : metric) {
            case "logit_difference" -> ActivationPatching.Metric.logitDifference(model, base, correctToken, wrongToken);
            case "token_loss" -> ActivationPatching.Metric.tokenLoss(model, base, correctToken);
            case "token_probability" -> ActivationPatching.Metric.tokenProbability(model, base, correctToken);
            default -> ActivationPatching.Metric.embeddingDirection(model, base, source);
        };
    }

    /** True when the grid's columns are heads. */
    public boolean byHead() {
        return "heads".equals(across);
    }

    /** The grids to compute. */
    public String patchingOrBoth() {
        return patching == null ? "both" : patching;
    }

    /** The hooks of the sweep on {@code model}, each checked to exist. */
    public List<String> hooksOf(HookedModel model) {
        List<String> out = new ArrayList<>();
        if (hooks != null) {
            out.addAll(hooks);
        } else {
            int n = model.hooks().config().layers();
            List<Integer> ls = layers;
            if (ls == null) {
                ls = new ArrayList<>();
                for (int l = 0; l < n; l++) {
                    ls.add(l);
                }
            }
            for (int i = 0; i < ls.size(); i++) {
                Check.between("layers[" + i + "]", ls.get(i), 0, n - 1);
            }
            for (String c : components == null ? List.of("block_output") : components) {
                for (int l : ls) {
                    out.add("blocks." + l + "." + c);
                }
            }
        }
        for (int i = 0; i < out.size(); i++) {
            model.hook(out.get(i), hooks != null ? "hooks[" + i + "]" : "components");
        }
        return out;
    }

    /**
     * Writes the sweep's files into {@code dir}: {@code sweep.csv} (one row per hook and column, the grids' cells
     * to six decimals, empty where a grid was not run) and a heatmap per grid run (PNG and SVG).
     */
    public void write(java.nio.file.Path dir, List<String> hooks, ActivationPatching.Grid act,
                      ActivationPatching.Grid attr, List<String> tokens) throws java.io.IOException {
        if (act != null) {
            Plots.write(Plots.heatmap(act, tokens, "activation patching"), dir, "sweep-activation");
        }
        if (attr != null) {
            Plots.write(Plots.heatmap(attr, tokens, "attribution patching"), dir, "sweep-attribution");
        }
        ActivationPatching.Grid any = act != null ? act : attr;
        StringBuilder csv = new StringBuilder(byHead() ? "hook,head,activation,attribution\n"
                : "hook,position,token,activation,attribution\n");
        for (int h = 0; h < hooks.size(); h++) {
            for (int t = 0; t < any.positions(); t++) {
                String column = byHead() ? Integer.toString(t) : t + ",\"" + (t < tokens.size()
                        ? tokens.get(t).replace("\"", "\"\"") : "") + "\"";
                csv.append(String.format(java.util.Locale.ROOT, "%s,%s,%s,%s%n", hooks.get(h), column,
                        act == null ? "" : String.format(java.util.Locale.ROOT, "%.6f", act.effect()[h][t]),
                        attr == null ? "" : String.format(java.util.Locale.ROOT, "%.6f", attr.effect()[h][t])));
            }
        }
        java.nio.file.Files.writeString(dir.resolve("sweep.csv"), csv);
    }
}
