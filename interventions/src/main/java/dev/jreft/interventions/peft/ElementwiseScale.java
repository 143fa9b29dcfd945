package dev.jreft.interventions.peft;

import dev.jreft.hooks.graph.SubgraphBuilder;
import dev.jreft.interventions.Intervention;
import dev.jreft.interventions.params.Init;
import dev.jreft.interventions.params.Parameter;

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
}
