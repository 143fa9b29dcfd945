package dev.jreft.bench;

import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.hooks.runtime.Tensors;
import dev.jreft.training.AdamW;
import dev.jreft.training.ClassificationHead;
import dev.jreft.training.ClassifierExport;
import dev.jreft.training.MethodSpec;
import dev.jreft.training.ReftClassifier;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * The PEFT methods side by side on MiniLM, batch 16 × seq 32, CPU, one run: the median training step of each
 * method (LoRA r=8 on query+value of all layers, DoRA likewise, a bottleneck adapter of 32 at every mlp_output, IA3
 * on every layer's keys, values and MLP activations, BitFit (every bias), full finetuning (every weight), prompt tuning,
 * P-tuning and prefix tuning (10 virtual positions; P-tuning's encoder 128 wide), and the main job's LoReFT) divided
 * by the median plain forward (of the 32 real tokens: the soft prompts' steps run 42 positions, prefix tuning's
 * attention 42 keys; each step timed beside a plain forward of its own, so both see the machine in one state),
 * and the forward of the merged-LoRA graph divided by the plain forward (the goal is 1.00: merging leaves the
 * model's own graph). One method per process gives each its own peak RSS ({@code /usr/bin/time -v}).
 *
 * <p>Run: {@code java -cp bench/target/jreft-bench.jar dev.jreft.bench.PeftBenchmark [all|lora|dora|adapter|ia3|bitfit|full|prompt|ptuning|prefix|loreft]
 * [steps]}
 */
public final class PeftBenchmark {
    private PeftBenchmark() {
    }

    static Map<String, MethodSpec> methods(int layers) {
        Map<String, MethodSpec> m = new LinkedHashMap<>();
        m.put("lora", new MethodSpec.Lora("lora", List.of("query", "value"), 8, 16, 0, false));
        m.put("dora", new MethodSpec.Lora("dora", List.of("query", "value"), 8, 16, 0, false));
        List<String> mlp = new ArrayList<>();
        List<String> ia3 = new ArrayList<>();
        for (int l = 0; l < layers; l++) {
            mlp.add("blocks." + l + ".mlp_output");
            ia3.addAll(List.of("blocks." + l + ".key_output", "blocks." + l + ".value_output",
                    "blocks." + l + ".mlp_activation"));
        }
        m.put("adapter", new MethodSpec.Adapter(mlp, 32));
        m.put("ia3", new MethodSpec.Ia3(ia3));
        m.put("bitfit", new MethodSpec.Weights("bitfit"));
        m.put("full", new MethodSpec.Weights("full"));
        m.put("prompt", new MethodSpec.Prompt("prompt_tuning", 10, "sample_vocab", null, 0));
        m.put("ptuning", new MethodSpec.Prompt("p_tuning", 10, "random", null, 128));
        m.put("prefix", new MethodSpec.Prompt("prefix_tuning", 10, "random", null, 0, false));
        m.put("loreft", new MethodSpec.Reft("loreft", List.of("blocks.1.block_output", "blocks.3.block_output",
                "blocks.5.block_output"), 4, "f1+l1", false, "linear", 0));
        return m;
    }

    public static void main(String[] args) {
        String which = args.length > 0 ? args[0] : "all";
        int steps = args.length > 1 ? Integer.parseInt(args[1]) : 20;
        int batch = 16;
        int seq = 32;
        HookedModel model = HookedModel.minilm();
        Map<String, MethodSpec> all = methods(model.hooks().config().layers());
        if (!which.equals("all") && !all.containsKey(which)) {
            System.err.println("method: found '" + which + "'; valid: all, " + String.join(", ", all.keySet()));
            System.exit(2);
        }
        double forward = median(steps, s -> Tensors.free(model.run(HooksBenchmark.randomBatch(batch, seq, s))
                .values()));
        System.out.printf("MiniLM, batch %d x seq %d, %s, medians over %d: plain forward %.1f ms%n", batch, seq,
                model.runtime().device(), steps, forward);
        for (var e : all.entrySet()) {
            if (!which.equals("all") && !which.equals(e.getKey())) {
                continue;
            }
            ReftClassifier c = ReftClassifier.create(model, new ReftClassifier.Config(e.getValue(), 2,
                    ClassificationHead.Pooling.MEAN), 42);
            AdamW opt = new AdamW(0.9, 0.999, 1e-8, 0);
            Random random = new Random(9);
            int[] labels = new int[batch];
            for (int w = 0; w < 3; w++) {
                c.step(HooksBenchmark.randomBatch(batch, seq, 1000 + w), labels, opt, 1e-3, 1.0, w);
            }
            // each step beside a plain forward of its own: on a machine whose speed drifts (a shared VM), a forward
            // measured before all the steps made the ratio move by a tenth from run to run
            double[] stepMs = new double[steps];
            double[] forwardMs = new double[steps];
            for (int s = 0; s < steps; s++) {
                for (int i = 0; i < batch; i++) {
                    labels[i] = random.nextInt(2);
                }
                long t0 = System.nanoTime();
                Map<String, INDArray> forwardOut = model.run(HooksBenchmark.randomBatch(batch, seq, 9000 + s));
                long t1 = System.nanoTime();
                // the benchmark's own forwards: left to the collector they raised the peak RSS
                Tensors.free(forwardOut.values());
                c.step(HooksBenchmark.randomBatch(batch, seq, s), labels, opt, 1e-3, 1.0, 3 + s);
                forwardMs[s] = (t1 - t0) / 1e6;
                stepMs[s] = (System.nanoTime() - t1) / 1e6;
            }
            double step = HooksBenchmark.median(stepMs);
            double beside = HooksBenchmark.median(forwardMs);
            System.out.printf("%-8s step %7.1f ms = %5.2f x plain forward (%.1f ms, measured between its steps)  (%,d"
                    + " trained parameters with the head)%s%n", e.getKey(), step, step / beside, beside,
                    c.trainableParameters(), peakSoFar());
            if (e.getKey().equals("lora")) {
                OnnxGraph merged = ClassifierExport.merged(c);
                HookedModel plain = new HookedModel(merged, model.tokenizer().orElseThrow(), model.runtime());
                for (int w = 0; w < 3; w++) { // the merged graph's session is built and warm
                    plain.run(HooksBenchmark.randomBatch(batch, seq, 5000 + w)).get(ClassifierExport.LOGITS);
                }
                double[] mergedMs = new double[steps];
                double[] plainMs = new double[steps];
                for (int s = 0; s < steps; s++) { // in turn, as the steps
                    long t0 = System.nanoTime();
                    Map<String, INDArray> mergedOut = plain.run(HooksBenchmark.randomBatch(batch, seq, s));
                    long t1 = System.nanoTime();
                    Map<String, INDArray> plainOut = model.run(HooksBenchmark.randomBatch(batch, seq, s));
                    mergedMs[s] = (t1 - t0) / 1e6;
                    Tensors.free(mergedOut.values());
                    Tensors.free(plainOut.values());
                    plainMs[s] = (System.nanoTime() - t1) / 1e6;
                }
                double mergedForward = HooksBenchmark.median(mergedMs);
                double again = HooksBenchmark.median(plainMs);
                System.out.printf("merged-LoRA forward %.1f ms = %.2f x plain forward (%.1f ms, measured in turn with"
                        + " it)%n", mergedForward, mergedForward / again, again);
            }
        }
        model.runtime().close(); // sessions end here: with JREFT_ORT_PROFILE their traces are written now
    }

    /** ", peak RSS so far N MB" from the kernel's VmHWM (Linux), else nothing. */
    private static String peakSoFar() {
        try {
            for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) {
                    long kb = Long.parseLong(line.replaceAll("\\D", ""));
                    return String.format(", peak RSS so far %,d MB", kb / 1024);
                }
            }
        } catch (java.io.IOException | RuntimeException e) {
            // not Linux: /usr/bin/time -v still reports the process's peak
        }
        return "";
    }

    private interface Work {
        void run(int seed);
    }

    private static double median(int n, Work w) {
        for (int i = 0; i < 3; i++) {
            w.run(5000 + i);
        }
        double[] ms = new double[n];
        for (int i = 0; i < n; i++) {
            long t0 = System.nanoTime();
            w.run(i);
            ms[i] = (System.nanoTime() - t0) / 1e6;
        }
        return HooksBenchmark.median(ms);
    }
}
