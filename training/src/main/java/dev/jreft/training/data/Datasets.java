package dev.jreft.training.data;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.io.ConfigJson;

import dev.jreft.hooks.io.TextFiles;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Labelled text from JSON Lines files: one {@code {"text": ..., "label": <int>}} object per line (other fields, such
 * as an id, are allowed and ignored; blank lines are skipped). Each example remembers its file and line, so a bad
 * label found later is reported where it is.
 */
public final class Datasets {
    private Datasets() {
    }

    public static List<LabelledText> jsonl(Path file) {
        List<String> lines = TextFiles.readUtf8(file, null).lines().toList();
        List<LabelledText> out = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).isBlank()) {
                continue;
            }
            String where = file + " line " + (i + 1);
            JsonNode n = ConfigJson.tree(lines.get(i), where);
            if (!n.isObject()) {
                throw new ConfigException(where, ConfigException.described(n.getNodeType().name().toLowerCase()),
                        "an object {\"text\": string, \"label\": integer}").in(null);
            }
            JsonNode text = n.get("text");
            JsonNode label = n.get("label");
            if (text == null || !text.isTextual()) {
                throw new ConfigException("text", text == null ? ConfigException.described("nothing") : text,
                        "a string").in(where);
            }
            if (text.textValue().isBlank()) {
                throw new ConfigException("text", text.textValue(), "a text with at least one non-space character")
                        .in(where);
            }
            if (label == null || !label.isIntegralNumber() || !label.canConvertToInt()) {
                throw new ConfigException("label", label == null ? ConfigException.described("nothing") : label,
                        "an integer class index").in(where);
            }
            out.add(new LabelledText(text.textValue(), label.intValue(), where));
        }
        if (out.isEmpty()) {
            throw ConfigException.of(file.toString(), "found no examples; valid: one {\"text\", \"label\"} object per"
                    + " line");
        }
        return out;
    }

    /** Every label in {@code [0, classes)}; else an error naming the example's file and line. */
    public static void checkLabels(List<LabelledText> examples, int classes) {
        for (LabelledText t : examples) {
            if (t.label() < 0 || t.label() >= classes) {
                throw new ConfigException("label", t.label(), "an integer in 0.." + (classes - 1) + " (the model has "
                        + classes + " classes)").in(t.source());
            }
        }
    }
}
