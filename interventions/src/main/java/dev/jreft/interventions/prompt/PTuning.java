package dev.jreft.interventions.prompt;

import dev.jreft.hooks.graph.SubgraphBuilder;
import dev.jreft.interventions.SequenceShape;
import dev.jreft.interventions.SoftPrompt;
import dev.jreft.interventions.params.Init;
import dev.jreft.interventions.params.Parameter;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * P-tuning (Liu et al. 2021) with peft's MLP prompt encoder ({@code PromptEncoder}, reparameterisation MLP): the
 * virtual tokens are {@code prompt = mlp_head(E)}, {@code mlp_head = Linear(d, h) → ReLU → Linear(h, h) → ReLU →
 * Linear(h, d)} on trained embeddings E [P, d]. Parameters keep peft's names; E starts as N(0, 1) and each Linear
 * as {@code nn.Linear} does (weight and bias U(±1/√fan_in)).
 */
public final class PTuning implements SoftPrompt {
    private final int length;
    private final int hidden;

    public PTuning(int length, int hidden) {
        if (length < 1) {
            throw new dev.jreft.hooks.io.ConfigException("num_virtual_tokens", length, "an integer >= 1");
        }
        if (hidden < 1) {
            throw new dev.jreft.hooks.io.ConfigException("encoder_hidden_size", hidden, "an integer >= 1");
        }
        this.length = length;
        this.hidden = hidden;
    }

    @Override
    public String type() {
        return "p_tuning";
    }

    @Override
    public int length() {
        return length;
    }

    @Override
    public List<Parameter> parameters(SequenceShape embedding, Supplier<INDArray> table) {
        long d = embedding.width();
        return List.of(Parameter.of("embedding.weight", Init.normal(1), length, d),
                Parameter.of("mlp_head.0.weight", Init.kaimingUniform(), hidden, d),
                Parameter.of("mlp_head.0.bias", Init.uniform(1 / Math.sqrt(d)), hidden),
                Parameter.of("mlp_head.2.weight", Init.kaimingUniform(), hidden, hidden),
                Parameter.of("mlp_head.2.bias", Init.uniform(1 / Math.sqrt(hidden)), hidden),
                Parameter.of("mlp_head.4.weight", Init.kaimingUniform(), d, hidden),
                Parameter.of("mlp_head.4.bias", Init.uniform(1 / Math.sqrt(hidden)), d));
    }

    @Override
    public String emitPrompt(SubgraphBuilder b, Map<String, String> params) {
        String h = b.op("Relu", List.of(b.linear(params.get("embedding.weight"), params.get("mlp_head.0.weight"),
                params.get("mlp_head.0.bias"))));
        h = b.op("Relu", List.of(b.linear(h, params.get("mlp_head.2.weight"), params.get("mlp_head.2.bias"))));
        return b.linear(h, params.get("mlp_head.4.weight"), params.get("mlp_head.4.bias"));
    }
}
