package dev.jreft.bench;

import dev.jreft.hooks.graph.Gpt2Graph;
import dev.jreft.hooks.io.FixturesLocation;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.hooks.runtime.OrtRuntime;
import dev.jreft.interventions.IntervenableModel;
import dev.jreft.interventions.InterventionSite;
import dev.jreft.interventions.generation.Generator;
import dev.jreft.interventions.generation.InterveneOn;
import dev.jreft.interventions.statics.Addition;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.function.Supplier;

/**
 * Greedy decoding throughput on a causal export with past inputs and its twin without: tokens per second with the
 * KV cache, by recomputing the whole sequence each step, and with the KV cache plus a steering vector added at a
 * middle block's output on every token (the intervention overhead during decoding). Interleaved rounds, medians.
 * Default: the fixtures' GPT-2 (2 layers, width 32, vocabulary 101), where one step is mostly per-run overhead;
 * {@code small}: GPT-2 small's shape (12 layers, width 768) with random weights, built by {@link Gpt2Graph}; or a
 * with-past and a no-past export of any GPT-2.
 *
 * <p>Run: {@code java -cp bench/target/jreft-bench.jar dev.jreft.bench.GenerationBenchmark [small | past.onnx
 * nopast.onnx] [batch] [prompt] [new tokens] [rounds]}
 */
public final class GenerationBenchmark {
    private GenerationBenchmark() {
    }

    public static void main(String[] args) {
        Path fixtures = FixturesLocation.configured();
        boolean small = args.length > 0 && args[0].equals("small");
        boolean files = !small && args.length > 1 && args[0].endsWith(".onnx");
        Path past = files ? Path.of(args[0]) : fixtures.resolve("models/gpt2/gpt2_past_op17.onnx");
        Path noPast = files ? Path.of(args[1]) : fixtures.resolve("models/gpt2/gpt2_op17.onnx");
        int off = small ? 1 : files ? 2 : 0;
        int batch = args.length > off ? Integer.parseInt(args[off]) : 4;
        int prompt = args.length > off + 1 ? Integer.parseInt(args[off + 1]) : 16;
        int newTokens = args.length > off + 2 ? Integer.parseInt(args[off + 2]) : 32;
        int rounds = args.length > off + 3 ? Integer.parseInt(args[off + 3]) : 7;
        HookedModel cachedModel;
        HookedModel noPastModel;
        String name;
        if (small) { // GPT-2 small's shape with random weights, built in Java (no export needed)
            var shape = Gpt2Graph.Config.small();
            var weights = Gpt2Graph.randomWeights(shape, 1);
            cachedModel = new HookedModel(Gpt2Graph.build(shape, weights, true), null, OrtRuntime.shared());
            noPastModel = new HookedModel(Gpt2Graph.build(shape, weights, false), null, OrtRuntime.shared());
            name = "GPT-2 small shape (random weights, built by Gpt2Graph)";
        } else {
            cachedModel = HookedModel.load(past);
            noPastModel = HookedModel.load(noPast);
            name = past.getFileName().toString();
        }
        Generator cached = new Generator(new IntervenableModel(cachedModel));
        Generator recomputed = new Generator(new IntervenableModel(noPastModel));
        var config = cachedModel.hooks().config();
        Random r = new Random(1);
        long[][] ids = new long[batch][prompt];
        long[][] mask = new long[batch][prompt];
        for (int b = 0; b < batch; b++) {
            for (int t = 0; t < prompt; t++) {
                ids[b][t] = 1 + r.nextInt(90);
                mask[b][t] = 1;
            }
        }
        Batch prompts = Batch.of(ids, mask);
        String hook = "blocks." + config.layers() / 2 + ".block_output";
        int[][] every = new int[batch][];
        for (int b = 0; b < batch; b++) {
            every[b] = java.util.stream.IntStream.range(0, prompt).toArray();
        }
        List<InterventionSite> steer = List.of(InterventionSite.at(hook, new Addition()).positions(every)
                .params(Map.of("v", Nd4j.rand(DataType.FLOAT, config.hidden()).subi(0.5))).build());
        Generator.Settings settings = Generator.Settings.greedy(newTokens);
        List<Supplier<Generator.Generation>> cases = List.of(
                () -> cached.generate(prompts, List.of(), InterveneOn.PROMPT, settings),
                () -> recomputed.generate(prompts, List.of(), InterveneOn.PROMPT, settings),
                () -> cached.generate(prompts, steer, InterveneOn.EVERY, settings));
        String[] names = {"KV cache", "recomputation", "KV cache + steering vector on every token"};
        cases.forEach(Supplier::get); // warm: sessions and shapes
        double[][] seconds = new double[cases.size()][rounds];
        for (int k = 0; k < rounds; k++) {
            for (int c = 0; c < cases.size(); c++) {
                long t0 = System.nanoTime();
                cases.get(c).get();
                seconds[c][k] = (System.nanoTime() - t0) / 1e9;
            }
        }
        System.out.printf(Locale.ROOT, "%s: %d layers, width %d; batch %d, prompt %d, %d new tokens, %d rounds%n",
                name, config.layers(), config.hidden(), batch, prompt, newTokens, rounds);
        double[] median = new double[cases.size()];
        for (int c = 0; c < cases.size(); c++) {
            double[] s = seconds[c].clone();
            Arrays.sort(s);
            median[c] = s[s.length / 2];
            System.out.printf(Locale.ROOT, "%-45s %8.1f ms  %8.0f tokens/s%n", names[c], median[c] * 1e3,
                    batch * newTokens / median[c]);
        }
        System.out.printf(Locale.ROOT, "recomputation / KV cache: %.2f x; steering overhead with the KV cache: %.3f x%n",
                median[1] / median[0], median[2] / median[0]);
    }
}
