package dev.jreft.cli;

import dev.jreft.hooks.io.Check;
import dev.jreft.training.ClassifierExport;
import dev.jreft.training.ReftCheckpoint;
import dev.jreft.training.ReftClassifier;
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
            MergeCommand.checkOut(out, checkpoint, model);
        }
        ReftClassifier c = ReftCheckpoint.load(checkpoint, model.load());
        if (format.equals("onnx")) {
            MergeCommand.write(ClassifierExport.standalone(c), c, out, "spliced in with its parameters frozen,"
                    + " positions from the attention mask, head appended", "jreft's");
            return 0;
        }
        List<Path> files = ClassifierExport.peft(c, model.model, out);
        System.out.println("wrote " + files.size() + " files to " + out + ": adapter_config.json and"
                + " adapter_model.safetensors load with PeftModel.from_pretrained(<the HF model>, \"" + out
                + "\"); head.safetensors holds jreft's classification head");
        return 0;
    }
}
