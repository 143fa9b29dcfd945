package dev.jreft.cli;

import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.config.InterventionConfig;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/** {@code --model} and {@code --tokenizer}, shared by commands that load a model. */
final class ModelOptions {
    @Option(names = "--model", defaultValue = "minilm",
            description = "minilm (embedded default, from its Maven artifact), minilm-q (its int8-quantised export,"
                    + " embedded too) or a path to an .onnx file")
    String model;

    @Option(names = "--tokenizer", description = "tokenizer.json for an .onnx model (needed for --text)")
    String tokenizer;

    HookedModel load() {
        return InterventionConfig.loadModel(model, tokenizer, Path.of(""));
    }
}
