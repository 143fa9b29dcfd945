package dev.jreft.interventions.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Labelled text from JSON Lines files: one {@code {"text": ..., "label": <int>}} object per line. */
public final class Datasets {
    private Datasets() {
    }

    public static List<LabelledText> jsonl(Path file) {
        ObjectMapper json = new ObjectMapper();
        List<LabelledText> out = new ArrayList<>();
        List<String> lines;
        try {
            lines = Files.readAllLines(file);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read " + file + ": " + e.getMessage(), e);
        }
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).isBlank()) {
                continue;
            }
            JsonNode n;
            try {
                n = json.readTree(lines.get(i));
            } catch (IOException e) {
                throw new IllegalArgumentException(file + " line " + (i + 1) + " is not JSON: " + e.getMessage());
            }
            if (n == null || !n.hasNonNull("text") || !n.hasNonNull("label") || !n.get("label").canConvertToInt()) {
                throw new IllegalArgumentException(file + " line " + (i + 1)
                        + ": expected {\"text\": string, \"label\": integer}, got " + lines.get(i));
            }
            out.add(new LabelledText(n.get("text").asText(), n.get("label").asInt(), file.getFileName().toString()));
        }
        if (out.isEmpty()) {
            throw new IllegalArgumentException(file + " holds no examples");
        }
        return out;
    }
}
