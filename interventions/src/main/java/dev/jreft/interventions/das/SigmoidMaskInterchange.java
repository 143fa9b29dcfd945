package dev.jreft.interventions.das;

import dev.jreft.interventions.params.Parameter;
import dev.jreft.interventions.params.Init;
import dev.jreft.hooks.graph.ElemTypes;
import dev.jreft.hooks.graph.SubgraphBuilder;
import dev.jreft.interventions.Intervention;

import java.util.List;
import java.util.Map;

/**
 * Sigmoid-mask interchange (pyvene {@code SigmoidMaskIntervention}): a learned mask [d] and a fed temperature T,
 * {@code m = sigmoid(mask / T), h' = (1 − m)⊙h + m⊙s}. T is a non-trained input and must be fed.
 */
public final class SigmoidMaskInterchange implements Intervention {
    @Override
    public String type() {
        return "sigmoid_mask_interchange";
    }

    @Override
    public boolean needsSource() {
        return true;
    }

    @Override
    public List<Parameter> parameters(long width) {
        return List.of(Parameter.of("mask", Init.zeros(), width)); // pyvene: zeros, i.e. sigmoid 0.5 everywhere
    }

    @Override
    public Map<String, long[]> inputShapes(long width) {
        return Map.of("temperature", new long[] {1});
    }

    @Override
    public String emit(SubgraphBuilder b, String h, String s, Map<String, String> p) {
        String m = b.op("Sigmoid", List.of(b.op("Div", List.of(p.get("mask"), p.get("temperature")))));
        return b.op("Add", List.of(b.op("Mul", List.of(b.op("Sub", List.of(b.scalar(1, ElemTypes.FLOAT), m)), h)),
                b.op("Mul", List.of(m, s))));
    }

    /** The temperature divides: it must be a positive number. */
    @Override
    public void checkInput(String name, org.nd4j.linalg.api.ndarray.INDArray value) {
        if (name.equals("temperature") && !(value.getDouble(0) > 0)) {
            throw new dev.jreft.hooks.io.ConfigException("temperature", value.getDouble(0), "a number > 0");
        }
    }
}
