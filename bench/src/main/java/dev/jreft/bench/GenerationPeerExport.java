package dev.jreft.bench;

import dev.jreft.checkpoints.SafeTensors;
import dev.jreft.hooks.graph.Gpt2Graph;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.hooks.runtime.OrtRuntime;
import dev.jreft.interventions.IntervenableModel;
import dev.jreft.interventions.generation.Generator;
import dev.jreft.interventions.generation.InterveneOn;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Writes what {@code bench/peer/gpt2_decode.py} needs to decode with the same GPT-2 as {@link GenerationBenchmark}'s
 * {@code small} case: the random GPT-2-small weights under their Hugging Face names ({@code gpt2_small.safetensors})
 * and a prompt with jreft's greedy tokens and step logits after it ({@code gpt2_decode.safetensors}), so the peer checks
 * it computes the same function before it is timed.
 *
 * <p>Run: {@code java -cp bench/target/jreft-bench.jar dev.jreft.bench.GenerationPeerExport runs/peer [prompt] [new]}
 */
public final class GenerationPeerExport {
    private GenerationPeerExport() {
    }

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args.length > 0 ? args[0] : "runs/peer");
        int prompt = args.length > 1 ? Integer.parseInt(args[1]) : 32;
        int newTokens = args.length > 2 ? Integer.parseInt(args[2]) : 32;
        Files.createDirectories(dir);
        var shape = Gpt2Graph.Config.small();
        Map<String, INDArray> weights = Gpt2Graph.randomWeights(shape, 1);
        SafeTensors.write(dir.resolve("gpt2_small.safetensors"), weights, Map.of("heads", "12"));
        Random r = new Random(1); // the prompt GenerationBenchmark draws for batch 1
        long[][] ids = new long[1][prompt];
        long[][] ones = new long[1][prompt];
        for (int t = 0; t < prompt; t++) {
            ids[0][t] = 1 + r.nextInt(90);
            ones[0][t] = 1;
        }
        HookedModel model = new HookedModel(Gpt2Graph.build(shape, weights, true), null, OrtRuntime.shared());
        var out = new Generator(new IntervenableModel(model)).generate(Batch.of(ids, ones), List.of(),
                InterveneOn.PROMPT, Generator.Settings.greedy(newTokens));
        Map<String, INDArray> decode = new LinkedHashMap<>();
        decode.put("prompt", Nd4j.createFromArray(ids).castTo(DataType.LONG));
        decode.put("tokens", Nd4j.createFromArray(out.tokens()).castTo(DataType.LONG));
        decode.put("step_logits", out.stepLogits());
        SafeTensors.write(dir.resolve("gpt2_decode.safetensors"), decode, Map.of());
        System.out.println("wrote " + dir.resolve("gpt2_small.safetensors") + " and gpt2_decode.safetensors; jreft's"
                + " first tokens: " + java.util.Arrays.toString(java.util.Arrays.copyOf(out.tokens()[0], 8)));
    }
}
