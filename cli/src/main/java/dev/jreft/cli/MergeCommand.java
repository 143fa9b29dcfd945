package dev.jreft.cli;

import dev.jreft.hooks.runtime.HookedModel;

import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.hooks.io.AtomicFiles;
import dev.jreft.training.ClassifierExport;
import dev.jreft.training.ReftCheckpoint;
import dev.jreft.training.ReftClassifier;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

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
        checkOut(out, checkpoint, model);
        ReftClassifier c = ReftCheckpoint.load(checkpoint, model.load());
        write(ClassifierExport.merged(c), c, out, "merged into the weights, head appended", "unmerged");
        return 0;
    }

    /**
     * An .onnx output path checked before any work: a file path, not the checkpoint's or the model's, and either new
     * or a graph an earlier merge or export wrote (its doc string says so); any other file is the user's.
     */
    static void checkOut(Path out, Path checkpoint, ModelOptions model) {
        checkOnnxOut(out, java.util.Arrays.asList(checkpoint, model.model == null || HookedModel.isEmbedded(model.model)
                ? null : Path.of(model.model)), "an earlier jreft merge or export");
    }

    /**
     * {@code --out} may be written: a new file or an .onnx file jreft wrote ({@code writer} says which command), and
     * none of the {@code inputs} (null entries ignored).
     */
    static void checkOnnxOut(Path out, java.util.List<Path> inputs, String writer) {
        AtomicFiles.checkTarget(out, "--out");
        AtomicFiles.checkNotAnInput(out, "--out", inputs);
        if (java.nio.file.Files.exists(out)
                && !OnnxGraph.docStringOf(out).map(d -> d.startsWith("jreft: ")).orElse(false)) {
            throw new dev.jreft.hooks.io.ConfigException("--out", dev.jreft.hooks.io.ConfigException.described(
                    "the existing file " + out + ", which jreft did not write"), "a new file, or an .onnx file "
                    + writer + " wrote (it is replaced)");
        }
    }

    /** Checks {@code g}'s logits against the classifier's on {@link #PROBES}, writes it atomically, says so. */
    static void write(OnnxGraph g, ReftClassifier c, Path out, String how, String against) throws java.io.IOException {
        double err = ClassifierExport.parity(c, g, PROBES);
        byte[] bytes = g.toBytes();
        AtomicFiles.write(out, bytes);
        boolean int8 = c.model().modules().all().stream().anyMatch(dev.jreft.hooks.discovery.LinearModule::quantised);
        System.out.printf("wrote %s (%.1f MB): %s %s (output '%s'); max |logits - %s| = %.2e on %d sentences%s%n", out,
                bytes.length / 1e6, c.config().method().type(), how, ClassifierExport.LOGITS, against, err,
                PROBES.size(), int8 ? " (an int8 base quantises each tensor with a scale from the whole batch's range,"
                        + " so float-rounding differences between the two graphs can move its outputs by this much;"
                        + " a float base agrees to 1e-5)" : "");
    }
}
