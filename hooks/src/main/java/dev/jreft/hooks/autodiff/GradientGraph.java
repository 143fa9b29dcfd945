package dev.jreft.hooks.autodiff;

import dev.jreft.hooks.graph.OnnxGraph;

import java.util.Map;

/** A graph that outputs the loss and the gradient of each source: {@code gradients} maps source → output name. */
public record GradientGraph(OnnxGraph graph, String loss, Map<String, String> gradients) {
}
