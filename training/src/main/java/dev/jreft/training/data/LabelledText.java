package dev.jreft.training.data;

/** A sentence with its class label (and where it came from). */
public record LabelledText(String text, int label, String source) {
}
