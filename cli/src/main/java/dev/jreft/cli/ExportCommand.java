package dev.jreft.cli;

import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.hooks.io.AtomicFiles;
import dev.jreft.hooks.io.Check;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.train.ClassifierExport;
import dev.jreft.interventions.train.ReftCheckpoint;
import dev.jreft.interventions.train.ReftClassifier;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "export", description = "Write a trained checkpoint for use without jreft: --format onnx writes any"
        + " method as one standalone ONNX classifier (output 'logits'); --format peft writes a LoRA / DoRA checkpoint"
        + " as a peft adapter folder (adapter_config.json, adapter_model.safetensors).")
final class ExportCommand implements Callable<Integer> {
    @Mixin
    ModelOptions model;

    @Option(names = "--checkpoint", required = true, description = "checkpoint directory (jreft train)")
    Path checkpoint;

    @Option(names = "--format", required = true, description = "onnx or peft")
    String format;

    @Option(names = "--out", required = true, description = "onnx: the .onnx file to write; peft: the folder (new,"
            + " empty, or an earlier export)")
    Path out;

    @Override
    public Integer call() throws Exception {
        Check.oneOf("--format", format, List.of("onnx", "peft"));
        if (format.equals("onnx")) {
            AtomicFiles.checkTarget(out, "--out");
            AtomicFiles.checkNotAnInput(out, "--out", java.util.Arrays.asList(checkpoint,
                    model.model == null || model.model.equals("minilm") ? null : Path.of(model.model)));
        }
        HookedModel m = model.load();
        ReftClassifier c = ReftCheckpoint.load(checkpoint, m);
        if (format.equals("onnx")) {
            OnnxGraph g = ClassifierExport.standalone(c);
            double err = ClassifierExport.parity(c, g, MergeCommand.PROBES);
            byte[] bytes = g.toBytes();
            AtomicFiles.write(out, bytes);
            System.out.printf("wrote %s (%.1f MB): %s spliced in with its parameters frozen, positions from the"
                    + " attention mask, head appended (output '%s'); max |logits - jreft's| = %.2e on %d sentences%n",
                    out, bytes.length / 1e6, c.config().method().type(), ClassifierExport.LOGITS, err,
                    MergeCommand.PROBES.size());
            return 0;
        }
        List<Path> files = ClassifierExport.peft(c, model.model, out);
        System.out.println("wrote " + files.size() + " files to " + out + ": adapter_config.json and"
                + " adapter_model.safetensors load with PeftModel.from_pretrained(<the HF model>, \"" + out
                + "\"); head.safetensors holds jreft's classification head");
        return 0;
    }
}
