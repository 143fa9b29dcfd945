package dev.jreft.cli;

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

@Command(name = "export", description = "Write a trained checkpoint in another tool's format: --format peft writes a"
        + " LoRA / DoRA checkpoint as a peft adapter folder (adapter_config.json, adapter_model.safetensors).")
final class ExportCommand implements Callable<Integer> {
    @Mixin
    ModelOptions model;

    @Option(names = "--checkpoint", required = true, description = "checkpoint directory (jreft train)")
    Path checkpoint;

    @Option(names = "--format", required = true, description = "peft")
    String format;

    @Option(names = "--out", required = true, description = "the folder to write (new, empty, or an earlier export)")
    Path out;

    @Override
    public Integer call() throws Exception {
        Check.oneOf("--format", format, List.of("peft"));
        HookedModel m = model.load();
        ReftClassifier c = ReftCheckpoint.load(checkpoint, m);
        List<Path> files = ClassifierExport.peft(c, model.model, out);
        System.out.println("wrote " + files.size() + " files to " + out + ": adapter_config.json and"
                + " adapter_model.safetensors load with PeftModel.from_pretrained(<the HF model>, \"" + out
                + "\"); head.safetensors holds jreft's classification head");
        return 0;
    }
}
