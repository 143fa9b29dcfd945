package dev.jreft.interventions.reft;

import dev.jreft.hooks.graph.ElemTypes;
import dev.jreft.hooks.graph.SubgraphBuilder;

import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;

/**
 * pyreft's {@code act_fn}, applied to the learned projection {@code h Wᵀ + b}; {@code gelu} is the exact form
 * {@code 0.5·x·(1 + erf(x/√2))} (transformers' {@code ACT2FN["gelu"]}), {@code linear} applies none.
 */
public enum Activation {
    LINEAR("linear"),
    RELU("relu"),
    TANH("tanh"),
    SIGMOID("sigmoid"),
    GELU("gelu");

    private final String configName;

    Activation(String configName) {
        this.configName = configName;
    }

    /** The name used in configs ({@code "linear"}, {@code "relu"}, ...). */
    public String configName() {
        return configName;
    }

    /** The activation with this config name; an unknown name fails with the list of valid ones. */
    public static Activation named(String name) {
        for (Activation a : values()) {
            if (a.configName.equals(name)) {
                return a;
            }
        }
        throw new dev.jreft.hooks.io.ConfigException("activation", name, validNames());
    }

    /** The valid config names, comma separated. */
    public static String validNames() {
        return Arrays.stream(values()).map(Activation::configName).collect(Collectors.joining(", "));
    }

    /** Emits {@code act(x)} (every op used has a gradient rule). */
    public String emit(SubgraphBuilder b, String x) {
        return switch (this) {
            case LINEAR -> x;
            case RELU -> b.op("Relu", List.of(x));
            case TANH -> b.op("Tanh", List.of(x));
            case SIGMOID -> b.op("Sigmoid", List.of(x));
            case GELU -> {
                String erf = b.op("Erf", List.of(b.op("Div", List.of(x, b.scalar(Math.sqrt(2), ElemTypes.FLOAT)))));
                yield b.op("Mul", List.of(b.op("Mul", List.of(x, b.scalar(0.5, ElemTypes.FLOAT))),
                        b.op("Add", List.of(b.scalar(1, ElemTypes.FLOAT), erf))));
            }
        };
    }
}
