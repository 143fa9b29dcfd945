package dev.jreft.training;

import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.IntervenableModel;
import dev.jreft.interventions.params.Parameter;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * The model's own weights as the trained parameters (BitFit: Ben Zaken et al. 2022, the bias terms only; full
 * finetuning: every weight). The weights become graph inputs of a variant of the model, fed from live arrays that
 * the optimiser updates in place; parameters keep the initializers' names.
 */
final class WeightSites implements TrainableSites {
    private final HookedModel trainable;

    WeightSites(HookedModel model, boolean biasesOnly) {
        List<String> names = select(model.graph(), biasesOnly);
        if (names.isEmpty()) {
            throw dev.jreft.hooks.io.ConfigException.of("method", "found " + (biasesOnly ? "bitfit" : "full")
                    + " for a graph with no " + (biasesOnly ? "bias initializers (names ending in .bias)"
                    : "weight initializers") + "; valid: a method with its own parameters, such as lora");
        }
        long int8 = model.modules().all().stream().filter(dev.jreft.hooks.discovery.LinearModule::quantised).count();
        if (!biasesOnly && int8 > 0) { // their scales and zero points are not weights a step can move
            throw dev.jreft.hooks.io.ConfigException.of("method", "found full for a model whose " + int8 + " linear"
                    + " modules hold int8 weights; valid: a method that keeps the int8 base frozen (lora, dora, ia3,"
                    + " adapter, bitfit, loreft and the rest), or full on the float export");
        }
        this.trainable = model.withWeightInputs(names);
    }

    /** Float initializers of one dimension or more that some node reads; for BitFit those named {@code *.bias}. */
    static List<String> select(OnnxGraph g, boolean biasesOnly) {
        List<String> names = new ArrayList<>();
        for (var t : g.initializers()) {
            long n = t.getDimsList().stream().reduce(1L, (a, b) -> a * b);
            boolean weight = t.getDataType() == ai.onnx.proto.OnnxMl.TensorProto.DataType.FLOAT_VALUE
                    && t.getDimsCount() >= 1 && n > 1 && !g.consumers(t.getName()).isEmpty();
            if (weight && (!biasesOnly || t.getName().endsWith(".bias"))) {
                names.add(t.getName());
            }
        }
        return names;
    }

    @Override
    public HookedModel runOn(HookedModel model) {
        return trainable;
    }

    @Override
    public List<String> weightSources() {
        return List.copyOf(trainable.weights().keySet());
    }

    @Override
    public Map<String, Parameter> declarations() {
        Map<String, Parameter> m = new LinkedHashMap<>();
        trainable.weights().forEach((name, v) -> m.put(name, Parameter.of(name, (shape, random) -> v.dup(),
                v.shape())));
        return m;
    }

    /** The live weight arrays themselves: the optimiser's in-place updates are what the next run feeds. */
    @Override
    public void initialise(Map<String, INDArray> params, Random random) {
        params.putAll(trainable.weights());
    }

    @Override
    public Map<String, INDArray> collect(IntervenableModel.Gradients g) {
        return new LinkedHashMap<>(g.extra());
    }
}
