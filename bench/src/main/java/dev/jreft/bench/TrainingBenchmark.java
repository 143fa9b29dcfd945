package dev.jreft.bench;

import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.training.AdamW;
import dev.jreft.training.ClassificationHead;
import dev.jreft.training.ReftClassifier;

import java.util.List;
import java.util.Random;

/**
 * Training throughput of the main job's setup (LoReFT rank 4 at blocks.1/3/5.block_output, f1+l1, separate first
 * and last interventions, linear head, AdamW) on the embedded MiniLM, CPU, batch 16 × seq 32: optimisation steps on
 * fixed-shape batches after warm-up, examples per second as the median over steps. A new batch each step, so the
 * frozen prefix is never served from its cache.
 *
 * <p>Run: {@code mvn -B -q -DskipTests install && java -cp bench/target/jreft-bench.jar dev.jreft.bench.TrainingBenchmark}
 */
public final class TrainingBenchmark {
    private TrainingBenchmark() {
    }

    public static void main(String[] args) {
        int steps = args.length > 0 ? Integer.parseInt(args[0]) : 30;
        int batch = 16;
        int seq = 32;
        HookedModel model = HookedModel.minilm();
        ReftClassifier c = ReftClassifier.create(model, new ReftClassifier.Config("loreft",
                List.of("blocks.1.block_output", "blocks.3.block_output", "blocks.5.block_output"), 4, "f1+l1", false,
                2, ClassificationHead.Pooling.MEAN), 42);
        AdamW opt = new AdamW(0.9, 0.999, 1e-8, 0);
        Random random = new Random(9);
        int[] labels = new int[batch];
        for (int w = 0; w < 3; w++) {
            c.step(HooksBenchmark.randomBatch(batch, seq, 1000 + w), labels, opt, 1e-3, 1.0, w);
        }
        double[] ms = new double[steps];
        for (int s = 0; s < steps; s++) {
            Batch b = HooksBenchmark.randomBatch(batch, seq, s);
            for (int i = 0; i < batch; i++) {
                labels[i] = random.nextInt(2);
            }
            long t0 = System.nanoTime();
            c.step(b, labels, opt, 1e-3, 1.0, s);
            ms[s] = (System.nanoTime() - t0) / 1e6;
        }
        double med = HooksBenchmark.median(ms);
        System.out.printf("LoReFT training step (3 layers x first/last, rank 4, %d trainable), MiniLM, batch %d x seq"
                + " %d, %s: median %.1f ms/step = %.1f examples/s over %d steps%n", c.trainableParameters(), batch, seq,
                model.runtime().device(), med, batch * 1000 / med, steps);
    }
}
