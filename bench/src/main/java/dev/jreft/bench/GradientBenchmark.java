package dev.jreft.bench;

import dev.jreft.hooks.autodiff.LossGraphs;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.IntervenableModel;
import dev.jreft.interventions.InterventionSite;
import dev.jreft.interventions.reft.LoReFT;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Autodiff benchmark on the embedded MiniLM, CPU, batch 16 × seq 32: the gradient of a loss with respect to a
 * rank-4 LoReFT at blocks.2.block_output (one forward + backward run of the built gradient graph) vs one forward of
 * the same intervened model. Interleaved rounds, medians; then the process's peak RSS.
 *
 * <p>Run: {@code mvn -B -q -DskipTests install && java -cp bench/target/jreft-bench.jar dev.jreft.bench.GradientBenchmark}
 */
public final class GradientBenchmark {
    private GradientBenchmark() {
    }

    public static void main(String[] args) throws Exception {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 30;
        int batch = 16;
        int seq = 32;
        int rank = 4;
        HookedModel model = HookedModel.minilm();
        Batch base = HooksBenchmark.randomBatch(batch, seq, 3);
        Nd4j.getRandom().setSeed(5);
        long d = model.hooks().config().hidden();
        Map<String, INDArray> params = Map.of(
                "R", Nd4j.randn(DataType.FLOAT, rank, d).divi(Math.sqrt(d)),
                "W", Nd4j.randn(DataType.FLOAT, rank, d).divi(Math.sqrt(d)),
                "b", Nd4j.zeros(DataType.FLOAT, rank));
        int[][] positions = new int[batch][];
        for (int b = 0; b < batch; b++) {
            positions[b] = new int[] {0, seq - 1}; // pyreft's f1+l1
        }
        List<InterventionSite> sites = List.of(InterventionSite.at("blocks.2.block_output", new LoReFT(rank))
                .positions(positions).params(params).build());
        Map<String, INDArray> lossFeeds = Map.of(
                LossGraphs.PROBE, Nd4j.randn(DataType.FLOAT, d),
                LossGraphs.MASK, base.attentionMask().castTo(DataType.FLOAT));
        IntervenableModel im = new IntervenableModel(model);
        long t0 = System.nanoTime();
        im.gradients(base, sites, "probe", g -> LossGraphs.maskedProbeSum(g, "last_hidden_state", d), lossFeeds);
        double buildMs = (System.nanoTime() - t0) / 1e6;
        Runnable forward = () -> im.run(base, sites);
        Runnable backward = () -> im.gradients(base, sites, "probe",
                g -> LossGraphs.maskedProbeSum(g, "last_hidden_state", d), lossFeeds);
        for (int w = 0; w < 3; w++) {
            forward.run();
            backward.run();
        }
        double[] f = new double[rounds];
        double[] fb = new double[rounds];
        for (int r = 0; r < rounds; r++) {
            long a = System.nanoTime();
            forward.run();
            f[r] = (System.nanoTime() - a) / 1e6;
            a = System.nanoTime();
            backward.run();
            fb[r] = (System.nanoTime() - a) / 1e6;
        }
        // a new batch every round: the frozen prefix's output cannot come from the cache
        double[] f2 = new double[rounds];
        double[] fb2 = new double[rounds];
        for (int r = 0; r < rounds; r++) {
            Batch fresh = HooksBenchmark.randomBatch(batch, seq, 100 + r);
            Map<String, INDArray> freshLoss = Map.of(LossGraphs.PROBE, lossFeeds.get(LossGraphs.PROBE),
                    LossGraphs.MASK, fresh.attentionMask().castTo(DataType.FLOAT));
            long a = System.nanoTime();
            im.run(fresh, sites);
            f2[r] = (System.nanoTime() - a) / 1e6;
            a = System.nanoTime();
            im.gradients(fresh, sites, "probe", g -> LossGraphs.maskedProbeSum(g, "last_hidden_state", d), freshLoss);
            fb2[r] = (System.nanoTime() - a) / 1e6;
        }
        double mf = HooksBenchmark.median(f);
        double mfb = HooksBenchmark.median(fb);
        double mf2 = HooksBenchmark.median(f2);
        double mfb2 = HooksBenchmark.median(fb2);
        System.out.printf("MiniLM, batch %d x seq %d, LoReFT rank %d at blocks.2.block_output, %s, %d rounds (medians)%n",
                batch, seq, rank, model.runtime().device(), rounds);
        System.out.printf("  forward + backward, new batch each round (prefix run)   %8.2f ms vs forward %8.2f ms"
                + "   ratio %.2f  (goal <= 3)%n", mfb2, mf2, mfb2 / mf2);
        System.out.printf("  forward + backward, same batch again (prefix cached)    %8.2f ms vs forward %8.2f ms"
                + "   ratio %.2f%n", mfb, mf, mfb / mf);
        System.out.printf("  first call: specialise + probe + build backward + session: %.0f ms%n", buildMs);
        String status = Files.readString(Path.of("/proc/self/status"));
        String hwm = Arrays.stream(status.split("\n")).filter(l -> l.startsWith("VmHWM")).findFirst().orElse("?");
        System.out.println("  peak RSS of the process: " + hwm.replaceAll("\\s+", " ").replace("VmHWM: ", ""));
    }
}
