package dev.jreft.hooks.autodiff;

import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/** d loss / d hook for hooks of a model (the total derivative through everything downstream of each hook). */
public final class HookGradients {
    private HookGradients() {
    }

    /** The loss and the gradient of each hook, keyed by hook name. */
    public static GraphGradients.Result compute(HookedModel model, Batch batch, Function<OnnxGraph, String> appendLoss,
                                                Map<String, INDArray> lossFeeds, List<String> hooks) {
        Batch b = model.complete(batch);
        List<String> tensors = hooks.stream().map(h -> model.hook(h).tensor()).toList();
        GraphGradients.Result r = GraphGradients.compute(model.graph(), model.feeds(b), appendLoss, lossFeeds, tensors,
                model.runtime());
        Map<String, INDArray> byHook = new LinkedHashMap<>();
        for (int i = 0; i < hooks.size(); i++) {
            byHook.put(hooks.get(i), r.gradients().get(tensors.get(i)));
        }
        return new GraphGradients.Result(r.loss(), byHook);
    }
}
