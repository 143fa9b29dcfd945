package dev.jreft.hooks.autodiff;

import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.hooks.runtime.CompiledGraph;
import dev.jreft.hooks.runtime.OrtRuntime;
import dev.jreft.hooks.runtime.ShapeSpecializer;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * Loss and gradients for any graph: specialise its input shapes (the named tensors kept), append the loss, probe
 * every intermediate shape, build the backward graph and run it.
 */
public final class GraphGradients {
    /** The loss value and the gradient of each source tensor. */
    public record Result(double loss, Map<String, INDArray> gradients) {
    }

    private GraphGradients() {
    }

    /**
     * @param feeds      the graph's inputs (their shapes specialise the graph)
     * @param appendLoss appends the loss to the specialised graph, returns its tensor name
     * @param lossFeeds  values of the inputs the loss declares
     * @param sources    tensors to differentiate: graph inputs, initializers or intermediates
     */
    public static Result compute(OnnxGraph graph, Map<String, INDArray> feeds, Function<OnnxGraph, String> appendLoss,
                                 Map<String, INDArray> lossFeeds, List<String> sources, OrtRuntime runtime) {
        Map<String, long[]> dims = new LinkedHashMap<>();
        for (String in : graph.inputNames()) {
            INDArray v = feeds.get(in);
            if (v == null) {
                throw new IllegalArgumentException("missing input '" + in + "' (graph inputs: " + graph.inputNames()
                        + ")");
            }
            dims.put(in, v.shape());
        }
        List<String> keep = new ArrayList<>(sources.stream().filter(s -> !graph.inputNames().contains(s)).toList());
        keep.addAll(graph.outputNames());
        OnnxGraph g = ShapeSpecializer.specialise(graph, dims, keep);
        String loss = appendLoss.apply(g);
        Map<String, INDArray> all = new LinkedHashMap<>(feeds);
        all.putAll(lossFeeds);
        Map<String, long[]> shapes = ShapeProbe.probe(g, all);
        List<String> distinct = sources.stream().distinct().toList();
        GradientGraph gg = GradientBuilder.build(g, loss, distinct, shapes);
        CompiledGraph c = new CompiledGraph(gg.graph(), gg.graph().fingerprint(), runtime);
        List<String> outputs = new ArrayList<>(gg.gradients().values());
        outputs.add(loss);
        Map<String, INDArray> out = c.run(all, outputs);
        Map<String, INDArray> grads = new LinkedHashMap<>();
        for (String s : distinct) {
            grads.put(s, out.get(gg.gradients().get(s)));
        }
        return new Result(out.get(loss).getDouble(0), grads);
    }
}
