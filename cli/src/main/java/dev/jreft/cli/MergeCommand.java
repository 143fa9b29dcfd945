package dev.jreft.cli;

import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.hooks.io.AtomicFiles;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.train.ClassifierExport;
import dev.jreft.interventions.train.ReftCheckpoint;
import dev.jreft.interventions.train.ReftClassifier;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "merge", description = "Bake a trained LoRA, DoRA, IA3, BitFit or full checkpoint into the model's"
        + " weights and write one standalone ONNX classifier (output 'logits') that runs at the plain model's speed.")
final class MergeCommand implements Callable<Integer> {
    @Mixin
    ModelOptions model;

    @Option(names = "--checkpoint", required = true, description = "checkpoint directory (jreft train)")
    Path checkpoint;

    @Option(names = "--out", required = true, description = "the .onnx file to write")
    Path out;

    /** Sentences the merged graph is checked on against the unmerged classifier before it is written. */
    static final List<String> PROBES = List.of("The film was wonderful.", "What an awful, slow and boring meal.",
            "Service was fine, nothing special.", "I would not come back.");

    @Override
    public Integer call() throws Exception {
        AtomicFiles.checkTarget(out, "--out");
        AtomicFiles.checkNotAnInput(out, "--out", java.util.Arrays.asList(checkpoint,
                model.model == null || model.model.equals("minilm") ? null : Path.of(model.model)));
        HookedModel m = model.load();
        ReftClassifier c = ReftCheckpoint.load(checkpoint, m);
        OnnxGraph merged = ClassifierExport.merged(c);
        double err = ClassifierExport.parity(c, merged, PROBES);
        byte[] bytes = merged.toBytes();
        AtomicFiles.write(out, bytes);
        System.out.printf("wrote %s (%.1f MB): %s merged into the weights, head appended (output '%s'); max |logits"
                + " - unmerged| = %.2e on %d sentences%n", out, bytes.length / 1e6, c.config().method().type(),
                ClassifierExport.LOGITS, err, PROBES.size());
        return 0;
    }
}
