package dev.jreft.hooks.autodiff;

import dev.jreft.hooks.discovery.HookPoint;
import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.CompiledGraph;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.hooks.runtime.ShapeSpecializer;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * d loss / d hook for hooks of a model: specialise the graph to the batch's shapes (hooks kept by name), append
 * the loss, probe shapes, build the backward graph, run it.
 */
public final class HookGradients {
    /** The loss value and the gradient of each hook, by hook name. */
    public record Result(double loss, Map<String, INDArray> gradients) {
    }

    private HookGradients() {
    }

    /**
     * @param appendLoss appends the loss to the (specialised) graph and returns its tensor name
     * @param lossFeeds  values of the graph inputs the loss declares
     */
    public static Result compute(HookedModel model, Batch batch, Function<OnnxGraph, String> appendLoss,
                                 Map<String, INDArray> lossFeeds, List<String> hooks) {
        Batch b = model.complete(batch);
        Map<String, INDArray> feeds = new LinkedHashMap<>(model.feeds(b));
        Map<String, long[]> dims = new LinkedHashMap<>();
        feeds.forEach((k, v) -> dims.put(k, v.shape()));
        List<String> tensors = new ArrayList<>();
        for (String h : hooks) {
            tensors.add(model.hook(h).tensor());
        }
        List<String> keep = new ArrayList<>(tensors);
        keep.addAll(model.graph().outputNames());
        OnnxGraph g = ShapeSpecializer.specialise(model.graph(), dims, keep);
        String loss = appendLoss.apply(g);
        feeds.putAll(lossFeeds);
        Map<String, long[]> shapes = ShapeProbe.probe(g, feeds);
        GradientGraph gg = GradientBuilder.build(g, loss, tensors.stream().distinct().toList(), shapes);
        CompiledGraph c = new CompiledGraph(gg.graph(), gg.graph().fingerprint(), model.runtime());
        List<String> outputs = new ArrayList<>(gg.gradients().values());
        outputs.add(loss);
        Map<String, INDArray> out = c.run(feeds, outputs);
        Map<String, INDArray> grads = new LinkedHashMap<>();
        for (int i = 0; i < hooks.size(); i++) {
            grads.put(hooks.get(i), out.get(gg.gradients().get(tensors.get(i))));
        }
        return new Result(out.get(loss).getDouble(0), grads);
    }

    /** Hook by hook: convenience for a single hook point. */
    public static INDArray of(HookedModel model, Batch batch, Function<OnnxGraph, String> appendLoss,
                              Map<String, INDArray> lossFeeds, HookPoint hook) {
        return compute(model, batch, appendLoss, lossFeeds, List.of(hook.name())).gradients().get(hook.name());
    }
}
