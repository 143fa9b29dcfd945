package dev.jreft.das;

import dev.jreft.das.causal.CausalModel;
import dev.jreft.das.causal.CounterfactualDataset;
import dev.jreft.das.causal.CounterfactualExample;
import dev.jreft.das.causal.HierarchicalEquality;
import dev.jreft.das.mlp.Mlp;
import dev.jreft.das.train.DasTrainer;
import dev.jreft.das.train.InterchangeExample;
import dev.jreft.das.train.ModelInputs;
import dev.jreft.hooks.io.Check;
import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.hooks.runtime.OrtRuntime;
import dev.jreft.training.TrainingArguments;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Function;
import java.util.stream.IntStream;

/**
 * The hierarchical-equality experiment of the DAS paper: inputs a, b, c, d (random vectors), label (a == b) == (c == d).
 * An MLP is built as an ONNX graph and trained with jreft's autodiff, saved, and DAS then looks for the variables
 * WX = (a == b) and YZ = (c == d) in its first hidden layer with a w × w rotation (WX on the first half of the rotated
 * coordinates, YZ on the second). Reported: factual accuracy, IIA of the aligned rotation per variable and for both,
 * and the IIA of a random frozen rotation as a control.
 */
public final class HierarchicalEqualityExperiment {
    /** Sizes of the run. */
    /**
     * Sizes of the run. The MLP is trained as pyvene's tutorial trains it (about a million fresh examples, batch
     * 1024, 3 epochs at 1e-3); DAS trains on {@code dasExamples} interchanges of each of WX, YZ and both.
     */
    public record Settings(int dim, int hidden, int trainExamples, int mlpEpochs, int mlpBatchSize,
                           double mlpLearningRate, int dasExamples, int dasEpochs, int dasBatchSize,
                           double dasLearningRate, int testExamples, int subspace, long seed) {
        /** Every setting checked here, so a bad one fails before the MLP trains, not after. */
        public Settings {
            // the upper bounds keep a typo from allocating more than a laptop has (4·dim inputs per example)
            Check.between("dim", dim, 1, 1024);
            Check.between("hidden", hidden, 2, 4096);
            Check.between("mlp_epochs", mlpEpochs, 1, 1000);
            Check.between("mlp_batch_size", mlpBatchSize, 1, 1 << 16);
            Check.between("train_examples", trainExamples, mlpBatchSize, 1 << 23);
            TrainingArguments.checkLearningRate("mlp_learning_rate", mlpLearningRate);
            Check.between("das_epochs", dasEpochs, 1, 1000);
            Check.between("das_batch_size", dasBatchSize, 1, 1 << 16);
            // DAS trains in batches of das_batch_size per intervened-variable set
            if (dasExamples < dasBatchSize || dasExamples > 1 << 22) {
                throw new ConfigException("das_examples", dasExamples, "an integer in das_batch_size (" + dasBatchSize
                        + ").." + (1 << 22));
            }
            TrainingArguments.checkLearningRate("das_learning_rate", dasLearningRate);
            Check.between("test_examples", testExamples, 1, 1 << 20);
            long floats = 4L * dim * Math.max(trainExamples, 2L * dasExamples);
            if (floats > 1L << 28) {
                throw new ConfigException("dim", dim, "a size whose data fits in 1 GiB: 4 x dim x max(train_examples,"
                        + " 2 x das_examples) = " + floats + " floats, at most " + (1L << 28));
            }
            // WX and YZ take subspace coordinates each of the first hidden layer
            Check.between("subspace", subspace, 1, hidden / 2);
        }

        public static Settings defaults() {
            return new Settings(4, 16, 1 << 20, 3, 1024, 1e-3, 100_000, 5, 1024, 1e-2, 2_000, 8, 2);
        }
    }

    /** What the run measured. */
    public record Report(double factualAccuracy, double iiaWx, double iiaYz, double iiaBoth, double controlIia,
                         double controlIiaBoth, double seconds, Path model) {
    }

    private HierarchicalEqualityExperiment() {
    }

    public static Report run(Settings s, Path outDir, PrintStream out) throws IOException {
        long t0 = System.nanoTime();
        Function<Random, Map<String, Object>> sampler = HierarchicalEquality.freshSampler(s.dim());
        CausalModel causal = HierarchicalEquality.model();
        int in = 4 * s.dim();

        // 1. factual training of the MLP with jreft's autodiff
        Object[] train = factual(causal, sampler, s.trainExamples(), s.seed() + 1, in);
        Object[] test = factual(causal, sampler, s.testExamples(), s.seed() + 2, in);
        Mlp mlp = new Mlp(in, new int[] {s.hidden(), s.hidden(), s.hidden()}, 2, s.seed());
        mlp.train((INDArray) train[0], (int[]) train[1],
                new TrainingArguments(s.mlpEpochs(), s.mlpBatchSize(), s.mlpLearningRate(), 0, 0, 0, s.seed(), 0, 0,
                        "adamw", 2), out);
        double factual = mlp.accuracy((INDArray) test[0], (int[]) test[1]);
        out.printf("factual accuracy of the MLP: %.4f%n", factual);
        Path model = outDir.resolve("hierarchical-equality-mlp.onnx");
        mlp.frozen().save(model);
        HookedModel frozen = new HookedModel(dev.jreft.hooks.graph.OnnxGraph.load(model), null, OrtRuntime.shared());

        // 2. DAS on the first hidden layer: WX on rotated coordinates [0, w/2), YZ on [w/2, w)
        int w = s.hidden();
        Map<String, int[]> subspaces = new LinkedHashMap<>();
        subspaces.put(HierarchicalEquality.WX, IntStream.range(0, s.subspace()).toArray());
        subspaces.put(HierarchicalEquality.YZ, IntStream.range(s.subspace(), 2 * s.subspace()).toArray());
        List<InterchangeExample<float[]>> wxTest = testInterchanges(s, List.of(HierarchicalEquality.WX));
        List<InterchangeExample<float[]>> yzTest = testInterchanges(s, List.of(HierarchicalEquality.YZ));
        List<InterchangeExample<float[]>> bothTest = testInterchanges(s, List.of(HierarchicalEquality.WX,
                HierarchicalEquality.YZ));
        List<InterchangeExample<float[]>> dasTrain = trainInterchanges(s);
        INDArray initial = DasTrainer.randomRotation(w, s.seed() + 30);
        DasTrainer<float[]> control = new DasTrainer<>(frozen, ModelInputs.features(Mlp.INPUT), "tensor:hidden.0",
                Mlp.LOGITS, subspaces, initial);
        double controlIia = (control.iia(wxTest, 500) + control.iia(yzTest, 500)) / 2;
        double controlBoth = control.iia(bothTest, 500);
        DasTrainer<float[]> das = new DasTrainer<>(frozen, ModelInputs.features(Mlp.INPUT), "tensor:hidden.0",
                Mlp.LOGITS, subspaces, initial);
        das.train(dasTrain, dasArguments(s), out);
        double wx = das.iia(wxTest, 500);
        double yz = das.iia(yzTest, 500);
        double both = das.iia(bothTest, 500);
        return new Report(factual, wx, yz, both, controlIia, controlBoth, (System.nanoTime() - t0) / 1e9, model);
    }

    /** DAS training data: {@code dasExamples} interchanges of WX, of YZ and of both (from two sources). */
    static List<InterchangeExample<float[]>> trainInterchanges(Settings s) {
        Function<Random, Map<String, Object>> sampler = HierarchicalEquality.freshSampler(s.dim());
        CausalModel causal = HierarchicalEquality.model();
        List<InterchangeExample<float[]>> train = new ArrayList<>();
        List<List<String>> sets = List.of(List.of(HierarchicalEquality.WX), List.of(HierarchicalEquality.YZ),
                List.of(HierarchicalEquality.WX, HierarchicalEquality.YZ));
        for (int i = 0; i < sets.size(); i++) {
            train.addAll(interchanges(causal, sampler, sets.get(i), s.dasExamples(), s.seed() + 20 + i));
        }
        return train;
    }

    /** Held-out interchanges of {@code variables} (WX, YZ, or both). */
    static List<InterchangeExample<float[]>> testInterchanges(Settings s, List<String> variables) {
        long offset = variables.size() == 2 ? 12 : variables.get(0).equals(HierarchicalEquality.WX) ? 10 : 11;
        return interchanges(HierarchicalEquality.model(), HierarchicalEquality.freshSampler(s.dim()), variables,
                s.testExamples(), s.seed() + offset);
    }

    static TrainingArguments dasArguments(Settings s) {
        return new TrainingArguments(s.dasEpochs(), s.dasBatchSize(), s.dasLearningRate(), 0, 0.05, 0, s.seed(), 0, 0,
                "adamw", 2);
    }

    public static void print(Report r, PrintStream out) {
        out.println();
        out.printf("factual accuracy (MLP trained with jreft's autodiff)   %.4f%n", r.factualAccuracy());
        out.printf("IIA, DAS rotation, interchange of WX = (a == b)         %.4f%n", r.iiaWx());
        out.printf("IIA, DAS rotation, interchange of YZ = (c == d)         %.4f%n", r.iiaYz());
        out.printf("IIA, DAS rotation, both variables from two sources      %.4f%n", r.iiaBoth());
        out.printf("control: random frozen rotation, single variables       %.4f%n", r.controlIia());
        out.printf("control: random frozen rotation, both variables         %.4f%n", r.controlIiaBoth());
        out.printf("(reference: the DAS paper's 16 x 16 rotation reaches 0.97; model saved to %s; %.1f s)%n",
                r.model(), r.seconds());
    }

    private static Object[] factual(CausalModel causal, Function<Random, Map<String, Object>> sampler, int n, long seed,
                                    int in) {
        Random r = new Random(seed);
        INDArray x = Nd4j.create(org.nd4j.linalg.api.buffer.DataType.FLOAT, n, in);
        int[] y = new int[n];
        for (int i = 0; i < n; i++) {
            Map<String, Object> inputs = sampler.apply(r);
            x.putRow(i, Nd4j.createFromArray(HierarchicalEquality.features(inputs)));
            y[i] = (Boolean) causal.output(inputs) ? 1 : 0;
        }
        return new Object[] {x, y};
    }

    static List<InterchangeExample<float[]>> interchanges(CausalModel causal, Function<Random, Map<String, Object>> sampler,
                                                 List<String> variables, int n, long seed) {
        List<InterchangeExample<float[]>> out = new ArrayList<>();
        for (CounterfactualExample e : CounterfactualDataset.sample(causal, sampler, variables, n, seed)) {
            Map<String, float[]> sources = new LinkedHashMap<>();
            for (String v : variables) {
                sources.put(v, HierarchicalEquality.features(e.sourceFor(v)));
            }
            out.add(new InterchangeExample<>(HierarchicalEquality.features(e.baseInputs()), sources,
                    (Boolean) e.counterfactualOutput() ? 1 : 0));
        }
        return out;
    }
}
