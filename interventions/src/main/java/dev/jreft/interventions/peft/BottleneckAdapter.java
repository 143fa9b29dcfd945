package dev.jreft.interventions.peft;

import dev.jreft.hooks.graph.SubgraphBuilder;
import dev.jreft.interventions.Intervention;
import dev.jreft.interventions.params.Init;
import dev.jreft.interventions.params.Parameter;

import java.util.List;
import java.util.Map;

/**
 * A residual bottleneck adapter (Houlsby et al. 2019, §2.1; Pfeiffer et al. 2021 place one after the MLP only):
 * {@code h' = h + relu(h W_downᵀ + b_down) W_upᵀ + b_up} with W_down [m, d], W_up [d, m]. W_up and both biases start
 * at zero, so training starts from the plain model (the near-identity init of the paper).
 */
public final class BottleneckAdapter implements Intervention {
    private final int size;

    public BottleneckAdapter(int size) {
        if (size < 1) {
            throw new IllegalArgumentException("bottleneck size must be >= 1; got " + size);
        }
        this.size = size;
    }

    @Override
    public String type() {
        return "bottleneck_adapter";
    }

    @Override
    public boolean needsSource() {
        return false;
    }

    @Override
    public List<Parameter> parameters(long width) {
        return List.of(Parameter.of("W_down", Init.kaimingUniform(), size, width), Parameter.of("b_down", Init.zeros(),
                size), Parameter.of("W_up", Init.zeros(), width, size), Parameter.of("b_up", Init.zeros(), width));
    }

    @Override
    public String emit(SubgraphBuilder b, String h, String s, Map<String, String> p) {
        String down = b.op("Relu", List.of(b.linear(h, p.get("W_down"), p.get("b_down"))));
        String up = b.linear(down, p.get("W_up"), p.get("b_up"));
        return b.op("Add", List.of(h, up));
    }
}
