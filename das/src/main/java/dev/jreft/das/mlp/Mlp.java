package dev.jreft.das.mlp;

import dev.jreft.hooks.autodiff.GraphGradients;
import dev.jreft.hooks.autodiff.LossGraphs;
import dev.jreft.hooks.graph.ElemTypes;
import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.hooks.runtime.CompiledGraph;
import dev.jreft.hooks.runtime.OrtRuntime;
import dev.jreft.training.Optimizer;
import dev.jreft.training.ParameterUpdate;
import dev.jreft.training.Trainer;
import dev.jreft.training.TrainingArguments;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.IntStream;

/**
 * A ReLU MLP built as an ONNX graph in Java and trained with jreft's own autodiff (every weight is a graph input and
 * a gradient source). Input {@code x} is [b, 1, in] and hidden layer k is the tensor {@code hidden.k} [b, 1, h], so
 * interventions address it as {@code tensor:hidden.k} at position 0; the output {@code logits} is [b, classes].
 * {@link #frozen()} turns the trained weights into initializers: the model DAS then looks into.
 */
public final class Mlp {
    public static final String INPUT = "x";
    public static final String LOGITS = "logits";

    private final int in;
    private final int[] hidden;
    private final int classes;
    private final OnnxGraph graph;
    private final Map<String, INDArray> weights = new LinkedHashMap<>();

    public Mlp(int in, int[] hidden, int classes, long seed) {
        this.in = in;
        this.hidden = hidden.clone();
        this.classes = classes;
        this.graph = OnnxGraph.create(17, "mlp");
        Random r = new Random(seed);
        graph.append("mlp", b -> {
            String x = b.input(INPUT, ElemTypes.FLOAT, -1, 1, in);
            int width = in;
            for (int k = 0; k <= hidden.length; k++) {
                int out = k < hidden.length ? hidden[k] : classes;
                String w = b.input("mlp.W" + k, ElemTypes.FLOAT, width, out);
                String bias = b.input("mlp.b" + k, ElemTypes.FLOAT, out);
                // torch's nn.Linear default, as pyvene's MLP: weights and biases uniform in ±1/√fan_in. The larger
                // He-uniform start gave layer-0 units mixing (a, b) with (c, d) more often.
                double bound = 1 / Math.sqrt(width);
                weights.put("mlp.W" + k, uniform(r, bound, width, out));
                weights.put("mlp.b" + k, uniform(r, bound, out));
                String z = b.op("Add", List.of(b.op("MatMul", List.of(x, w)), bias));
                if (k < hidden.length) {
                    x = b.opTo("hidden." + k, "Relu", List.of(z));
                } else {
                    b.opTo(LOGITS, "Reshape", List.of(z, b.constantInts(new long[] {-1, classes}, 2)));
                }
                width = out;
            }
            b.expose(LOGITS);
        });
    }

    private static INDArray uniform(Random r, double bound, long... shape) {
        INDArray a = Nd4j.create(DataType.FLOAT, shape);
        for (long i = 0; i < a.length(); i++) {
            a.putScalar(i, (r.nextDouble() * 2 - 1) * bound);
        }
        return a;
    }

    public Map<String, INDArray> weights() {
        return weights;
    }

    /** Features [n, in] as the graph's input [n, 1, in]. */
    public static INDArray input(INDArray features) {
        return features.reshape(features.size(0), 1, features.size(1)).castTo(DataType.FLOAT);
    }

    /**
     * Trains on (features [n, in], labels) with mini-batches of {@code args.batchSize()} (the last partial batch of an
     * epoch dropped) through the one {@link Trainer}: plain supervised cross-entropy on every weight. Returns the
     * mean loss of each epoch.
     */
    public List<Double> train(INDArray features, int[] labels, TrainingArguments args, PrintStream out) {
        String key = "mlp" + in + java.util.Arrays.toString(hidden) + classes;
        Trainer.Objective<Integer> objective = new Trainer.Objective<>() {
            @Override
            public double step(List<Integer> batch, Optimizer opt, double lr, double maxGradNorm, int step) {
                int[] idx = batch.stream().mapToInt(Integer::intValue).toArray();
                Map<String, INDArray> feeds = new LinkedHashMap<>(weights);
                feeds.put(INPUT, input(rows(features, idx)));
                var r = GraphGradients.compute(key, "cls", graph, feeds, g -> LossGraphs.classificationCrossEntropy(
                        g, LOGITS), Map.of(LossGraphs.LABELS, labelColumn(labels, idx)),
                        new ArrayList<>(weights.keySet()), OrtRuntime.shared());
                ParameterUpdate.apply(Map.of(), weights, new LinkedHashMap<>(r.gradients()), r.loss(), opt, lr,
                        maxGradNorm, step);
                return r.loss();
            }

            @Override
            public double evaluate(List<Integer> dev, TrainingArguments a) {
                int[] idx = dev.stream().mapToInt(Integer::intValue).toArray();
                return accuracy(rows(features, idx), java.util.Arrays.stream(idx).map(i -> labels[i]).toArray());
            }

            @Override
            public Map<String, INDArray> parameters() {
                return weights;
            }

            @Override
            public void training(Random random) {
            }
        };
        List<Integer> examples = IntStream.range(0, (int) features.size(0)).boxed().toList();
        return Trainer.train(objective, examples, List.of(), args, out, true).epochLosses();
    }

    /** Logits [n, classes] for features [n, in] with the current weights. */
    public INDArray logits(INDArray features) {
        Map<String, INDArray> feeds = new LinkedHashMap<>(weights);
        feeds.put(INPUT, input(features));
        return new CompiledGraph(graph, graph.fingerprint(), OrtRuntime.shared()).run(feeds, List.of(LOGITS))
                .get(LOGITS);
    }

    public double accuracy(INDArray features, int[] labels) {
        INDArray pred = logits(features).argMax(1);
        int ok = 0;
        for (int i = 0; i < labels.length; i++) {
            if (pred.getInt(i) == labels[i]) {
                ok++;
            }
        }
        return (double) ok / labels.length;
    }

    /** The trained network with its weights as initializers (only {@code x} left as input). */
    public OnnxGraph frozen() {
        OnnxGraph g = graph.copy();
        for (var e : weights.entrySet()) {
            g.freezeInput(e.getKey(), e.getValue().dup('c').data().asFloat(), e.getValue().shape());
        }
        return g;
    }

    static INDArray rows(INDArray a, int[] idx) {
        return a.getRows(idx);
    }

    static INDArray labelColumn(int[] labels, int[] idx) {
        long[][] l = new long[idx.length][1];
        for (int i = 0; i < idx.length; i++) {
            l[i][0] = labels[idx[i]];
        }
        return Nd4j.createFromArray(l);
    }
}
