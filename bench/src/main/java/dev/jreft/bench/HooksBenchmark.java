package dev.jreft.bench;

import dev.jreft.hooks.runtime.ActivationCache;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.IntervenableModel;
import dev.jreft.interventions.InterventionSite;
import dev.jreft.interventions.Source;
import dev.jreft.interventions.statics.VanillaInterchange;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.function.Supplier;

/**
 * Hooks-foundation benchmark on the embedded MiniLM, CPU, batch 8 × seq 64: a plain forward vs the same forward
 * with all 6 block outputs cached vs with one interchange intervention spliced in (source values cached, every
 * position of every row patched). The three are timed in interleaved rounds so drift hits all alike; ratios are of
 * medians. Also the time to build a spliced graph and create its ORT session.
 *
 * <p>Run: {@code mvn -B -q -DskipTests install && java -jar bench/target/jreft-bench.jar [rounds]}
 */
public final class HooksBenchmark {
    private HooksBenchmark() {
    }

    public static void main(String[] args) {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 40;
        int batch = 8;
        int seq = 64;
        HookedModel model = HookedModel.minilm();
        Batch base = randomBatch(batch, seq, 1);
        Batch source = randomBatch(batch, seq, 2);
        List<String> blocks = new ArrayList<>();
        for (int l = 0; l < model.hooks().config().layers(); l++) {
            blocks.add("blocks." + l + ".block_output");
        }
        INDArray sourceValues = model.runWithCache(source, "blocks.2.block_output").get("blocks.2.block_output");
        int[][] all = new int[batch][];
        for (int b = 0; b < batch; b++) {
            all[b] = java.util.stream.IntStream.range(0, seq).toArray();
        }
        IntervenableModel im = new IntervenableModel(model);
        List<InterventionSite> sites = List.of(InterventionSite.at("blocks.2.block_output", new VanillaInterchange())
                .positions(all).source(Source.cached(sourceValues), all).build());

        List<Supplier<Object>> cases = List.of(
                () -> model.run(base),
                () -> model.runWithCache(base, blocks),
                () -> im.run(base, sites));
        String[] names = {"plain forward", "forward + 6 block outputs cached", "forward + 1 interchange (512 rows)"};
        for (int w = 0; w < 5; w++) {
            cases.forEach(Supplier::get);
        }
        double[][] ms = new double[cases.size()][rounds];
        for (int r = 0; r < rounds; r++) {
            for (int c = 0; c < cases.size(); c++) {
                long t0 = System.nanoTime();
                cases.get(c).get();
                ms[c][r] = (System.nanoTime() - t0) / 1e6;
            }
        }
        double plain = median(ms[0]);
        System.out.printf("MiniLM, batch %d x seq %d, %s, %d interleaved rounds (medians)%n", batch, seq,
                model.runtime().device(), rounds);
        for (int c = 0; c < cases.size(); c++) {
            System.out.printf("  %-38s %8.2f ms   ratio %.3f%n", names[c], median(ms[c]), median(ms[c]) / plain);
        }
        System.out.printf("  goals: cache ratio <= 1.03, interchange ratio <= 1.05%n");

        // a spliced graph: edit the graph and create its session (fresh structure each time)
        double[] splice = new double[model.hooks().config().layers()];
        for (int l = 0; l < splice.length; l++) {
            String hook = "blocks." + l + ".mlp_output";
            INDArray src = model.runWithCache(source, hook).get(hook);
            List<InterventionSite> s = List.of(InterventionSite.at(hook, new VanillaInterchange()).positions(all)
                    .source(Source.cached(src), all).build());
            long t0 = System.nanoTime();
            im.run(base, s);
            double first = (System.nanoTime() - t0) / 1e6;
            t0 = System.nanoTime();
            im.run(base, s);
            double second = (System.nanoTime() - t0) / 1e6;
            splice[l] = first - second;
        }
        System.out.printf("  spliced graph build + session creation: median %.0f ms over %d new graphs (%s)%n",
                median(splice), splice.length, Arrays.toString(Arrays.stream(splice).map(Math::round).toArray()));
    }

    static Batch randomBatch(int batch, int seq, long seed) {
        Random r = new Random(seed);
        long[][] ids = new long[batch][seq];
        long[][] mask = new long[batch][seq];
        for (int b = 0; b < batch; b++) {
            for (int t = 0; t < seq; t++) {
                ids[b][t] = t == 0 ? 101 : t == seq - 1 ? 102 : 1000 + r.nextInt(28000);
                mask[b][t] = 1;
            }
        }
        return Batch.of(ids, mask);
    }

    static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }
}
