package dev.jreft.spark;

import picocli.CommandLine.Option;

/** The jobs' {@code --model} and {@code --tokenizer}: the embedded MiniLM, or an .onnx file with its tokenizer. */
final class ModelOptions {
    @Option(names = "--model", defaultValue = ActivationDatasets.EMBEDDED, description = "minilm (embedded) or an"
            + " .onnx file; default ${DEFAULT-VALUE}")
    String model;

    @Option(names = "--tokenizer", description = "the model's tokenizer.json (for an .onnx file)")
    String tokenizer;
}
