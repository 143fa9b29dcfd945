package dev.jreft.interventions.peft;

import dev.jreft.hooks.graph.SubgraphBuilder;
import dev.jreft.interventions.Intervention;
import dev.jreft.interventions.MergedWeights;
import dev.jreft.interventions.params.Init;
import dev.jreft.interventions.params.Parameter;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;
import java.util.Map;

/**
 * IA3 (Liu et al. 2022, §3.3): a learned vector rescales the keys, the values and the MLP's inner activation,
 * {@code h' = h ⊙ l} with l [width] starting at ones (peft's init), so training starts from the plain model. A model
 * trains one site per hook: {@code key_output}, {@code value_output}, {@code mlp_activation} of each layer.
 */
public final class ElementwiseScale implements Intervention {
    @Override
    public String type() {
        return "elementwise_scale";
    }

    @Override
    public boolean needsSource() {
        return false;
    }

    @Override
    public List<Parameter> parameters(long width) {
        return List.of(Parameter.of("l", Init.constant(1), width));
    }

    @Override
    public String emit(SubgraphBuilder b, String h, String s, Map<String, String> p) {
        return b.op("Mul", List.of(h, p.get("l")));
    }

    /**
     * peft's IA3 merge: scaling a module's output by l scales its weight's rows and its bias; scaling its input
     * scales the weight's columns.
     */
    @Override
    public java.util.Optional<MergedWeights> mergeInto(boolean atOutput, INDArray weight, INDArray bias,
                                                       Map<String, INDArray> params) {
        INDArray l = params.get("l").castTo(weight.dataType());
        if (atOutput) {
            return java.util.Optional.of(new MergedWeights(weight.mulColumnVector(l.reshape(l.length(), 1)),
                    bias == null ? null : bias.mul(l)));
        }
        return java.util.Optional.of(new MergedWeights(weight.mulRowVector(l.reshape(1, l.length())), bias));
    }
}
