package dev.jreft.cli;

import dev.jreft.checkpoints.SafeTensors;
import dev.jreft.hooks.graph.Gpt2Graph;
import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.hooks.io.AtomicFiles;
import dev.jreft.hooks.io.ConfigException;
import org.nd4j.linalg.api.ndarray.INDArray;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "gpt2", description = "Build the ONNX graph of a Hugging Face GPT-2 from its safetensors weights"
        + " (transformer.h.0.attn.c_attn.weight, ...), as torch's exporter lays it out, with past inputs for a KV cache"
        + " unless --no-past: no Python needed. The sizes come from the weights; the head count from --heads.")
final class Gpt2Command implements Callable<Integer> {
    @Option(names = "--weights", required = true, description = "model.safetensors of a GPT2LMHeadModel / GPT2Model")
    Path weights;

    @Option(names = "--heads", required = true, description = "attention heads (GPT-2 small 12, medium 16, large 20,"
            + " xl 25)")
    int heads;

    @Option(names = "--no-past", description = "no past inputs (each decoding step recomputes the sequence)")
    boolean noPast;

    @Option(names = "--position-ids", description = "take each token's position as a position_ids input (as Hugging"
            + " Face's GPT-2 accepts it) instead of counting from the past length: needed to generate after left-padded"
            + " prompts of unequal length")
    boolean positionIds;

    @Option(names = "--out", required = true, description = "the .onnx file to write (new, or one jreft wrote)")
    Path out;

    @Override
    public Integer call() throws Exception {
        if (!java.nio.file.Files.isRegularFile(weights)) {
            throw new ConfigException("--weights", weights.toString(), "an existing .safetensors file");
        }
        AtomicFiles.requireRegularFile(weights, "--weights");
        MergeCommand.checkOnnxOut(out, java.util.List.of(weights), "jreft");
        Map<String, INDArray> w = new java.util.LinkedHashMap<>();
        SafeTensors.read(weights).tensors().forEach((name, v) -> w.put(name.startsWith("h.") || name.startsWith("wte")
                || name.startsWith("wpe") || name.startsWith("ln_f") ? "transformer." + name : name, v)); // GPT2Model
        INDArray wte = w.get("transformer.wte.weight");
        INDArray wpe = w.get("transformer.wpe.weight");
        if (wte == null || wpe == null || wte.rank() != 2 || wpe.rank() != 2) {
            throw new ConfigException("--weights", weights.toString(), "GPT-2 weights with transformer.wte.weight and"
                    + " transformer.wpe.weight (a GPT2LMHeadModel's or GPT2Model's safetensors)");
        }
        int layers = 0;
        while (w.containsKey("transformer.h." + layers + ".ln_1.weight")) {
            layers++;
        }
        int width = (int) wte.size(1);
        if (heads < 1 || width % heads != 0) {
            throw new ConfigException("--heads", heads, "a divisor of the width " + width + " (GPT-2: width / 64)");
        }
        var config = new Gpt2Graph.Config(layers, width, heads, (int) wte.size(0), (int) wpe.size(0));
        OnnxGraph g;
        try {
            g = Gpt2Graph.build(config, w, !noPast, positionIds);
        } catch (IllegalArgumentException e) { // a weight missing or of the wrong name
            throw new ConfigException("--weights", weights.toString(), e.getMessage());
        }
        g.setDocString("jreft: GPT-2 built from " + weights.getFileName() + " (" + layers + " layers, width " + width
                + ", " + heads + " heads" + (noPast ? ", no past" : ", past inputs") + (positionIds ? ", position_ids" : "")
                + ")");
        byte[] bytes = g.toBytes();
        AtomicFiles.write(out, bytes);
        System.out.printf("wrote %s (%.1f MB): GPT-2, %d layers, width %d, %d heads, vocabulary %d, %d positions, %s%n",
                out, bytes.length / 1e6, layers, width, heads, config.vocab(), config.positions(),
                (noPast ? "no past inputs" : "past.<i>.key / value inputs and present outputs")
                + (positionIds ? ", a position_ids input" : ""));
        return 0;
    }
}
