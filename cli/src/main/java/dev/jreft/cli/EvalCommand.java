package dev.jreft.cli;

import dev.jreft.hooks.runtime.HookedModel;

import dev.jreft.hooks.io.AtomicFiles;
import dev.jreft.hooks.io.Check;
import dev.jreft.hooks.io.ConfigException;
import dev.jreft.training.TrainConfig;
import dev.jreft.training.data.Datasets;
import dev.jreft.training.data.LabelledText;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "eval", description = "Evaluate a checkpoint on labelled data: a .jsonl file ({\"text\",\"label\"}"
        + " per line) or the sentiment set's split.")
final class EvalCommand implements Callable<Integer> {
    @Mixin
    ModelOptions model;

    @Option(names = "--checkpoint", required = true, description = "checkpoint directory")
    Path checkpoint;

    @Option(names = "--data", description = "a .jsonl file of {\"text\", \"label\"}")
    Path data;

    @Option(names = "--sentiment", description = "the sentiment data folder (fetched if missing)")
    Path sentiment;

    @Option(names = "--split", defaultValue = "test", description = "train, dev or test of --sentiment"
            + " (default: ${DEFAULT-VALUE})")
    String split;

    @Option(names = "--split-seed", defaultValue = "42", description = "seed of the sentiment split")
    long splitSeed;

    @Option(names = "--out", description = "metrics JSON to write")
    Path out;

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        List<LabelledText> examples;
        if ((data == null) == (sentiment == null)) {
            throw ConfigException.of("--data / --sentiment", "found " + (data == null ? "neither" : "both")
                    + "; valid: one of --data FILE.jsonl or --sentiment DIR");
        }
        Check.oneOf("--split", split, List.of("train", "dev", "test"));
        var parsed = spec.commandLine().getParseResult();
        for (String sentimentOnly : List.of("--split", "--split-seed")) {
            if (data != null && parsed.hasMatchedOption(sentimentOnly)) {
                throw new ConfigException(sentimentOnly, parsed.matchedOption(sentimentOnly).getValue().toString(),
                        "nothing with --data (" + sentimentOnly + " picks a part of --sentiment's data set)");
            }
        }
        if (out != null) {
            TrainConfig.checkMetricsTarget(out, "--out", java.util.Arrays.asList(checkpoint, data, sentiment,
                    model.model == null || HookedModel.isEmbedded(model.model) ? null : Path.of(model.model),
                    model.tokenizer == null ? null : Path.of(model.tokenizer)));
        }
        if (data != null) {
            examples = Datasets.jsonl(data);
        } else {
            var s = new TrainConfig.DataSpec(sentiment.toString(), splitSeed, null, null, null).load(Path.of(""),
                    "--sentiment");
            examples = switch (split) {
                case "train" -> s.train();
                case "dev" -> s.dev();
                default -> s.test();
            };
        }
        var metrics = TrainConfig.evaluate(checkpoint, model.load(), examples);
        String json = TrainConfig.toJson(metrics);
        System.out.println(json);
        if (out != null) {
            TrainConfig.writeMetrics(out, metrics);
        }
        return 0;
    }
}
