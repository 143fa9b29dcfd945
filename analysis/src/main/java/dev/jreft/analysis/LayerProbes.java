package dev.jreft.analysis;

import dev.jreft.hooks.runtime.ActivationCache;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.training.ClassificationHead;
import dev.jreft.training.LinearProbe;
import dev.jreft.training.data.LabelledText;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Linear probes at a list of hooks (mean-pooled over real tokens) for a sentence label, each beside a control task
 * in the sense of Hewitt and Liang (2019): every word type gets a random label, and an example's control label is
 * that of its first word, a property a probe can only get right by memorising word identities. Selectivity, the
 * task's test accuracy minus the control's, tells a hook that represents the label from a probe that memorises.
 */
public final class LayerProbes {
    private LayerProbes() {
    }

    /** One hook's probes: test accuracy on the task and on its control. */
    public record Row(String hook, double accuracy, double controlAccuracy) {
        public double selectivity() {
            return accuracy - controlAccuracy;
        }
    }

    /**
     * Mean-pooled features [n, width] of {@code data} at each hook, from one cached run per batch of
     * {@code batchSize} texts (at most {@code maxLength} tokens each).
     */
    public static Map<String, INDArray> features(HookedModel model, List<LabelledText> data, List<String> hooks,
                                                 int batchSize, int maxLength) {
        Map<String, List<INDArray>> rows = new LinkedHashMap<>();
        hooks.forEach(h -> rows.put(h, new ArrayList<>()));
        for (int i = 0; i < data.size(); i += batchSize) {
            List<String> texts = data.subList(i, Math.min(data.size(), i + batchSize)).stream()
                    .map(LabelledText::text).toList();
            Batch batch = model.complete(model.tokenizer().orElseThrow().encode(texts, maxLength, 16));
            ActivationCache cache = model.runWithCache(batch, hooks);
            for (String h : hooks) {
                rows.get(h).add(ClassificationHead.pool(cache.get(h), batch, ClassificationHead.Pooling.MEAN));
            }
        }
        Map<String, INDArray> out = new LinkedHashMap<>();
        rows.forEach((h, r) -> out.put(h, Nd4j.concat(0, r.toArray(new INDArray[0]))));
        return out;
    }

    /** One hook read through the probe lens: test accuracy and mean probability of the true label. */
    public record LensRow(String hook, double accuracy, double trueLabelProbability) {
    }

    /**
     * The probe lens, an encoder's logit lens: one linear probe is trained on the last hook's mean-pooled features
     * (the dev split choosing its step) and read, unchanged, at every hook. Where the last layer's decision can
     * already be read off an earlier layer in the same basis, the lens is accurate there; a per-layer probe
     * ({@link #train}) asks the weaker question of whether the label is linearly present at all.
     */
    public static List<LensRow> lens(HookedModel model, List<LabelledText> train, List<LabelledText> dev,
                                     List<LabelledText> test, List<String> hooks, int steps, double lr) {
        if (hooks.isEmpty()) {
            throw new IllegalArgumentException("the probe lens needs at least one hook");
        }
        int classes = 1 + java.util.stream.Stream.of(train, dev, test).flatMap(List::stream)
                .mapToInt(LabelledText::label).max().orElse(1);
        String last = hooks.get(hooks.size() - 1);
        Map<String, INDArray> fit = features(model, concat(train, dev), List.of(last), 32, 64);
        INDArray x = fit.get(last);
        int a = train.size();
        LinearProbe probe = LinearProbe.train(x.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(0, a)),
                labels(train), x.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(a, x.size(0))), labels(dev),
                classes, steps, lr, ClassificationHead.Pooling.MEAN);
        Map<String, INDArray> read = features(model, test, hooks, 32, 64);
        int[] y = labels(test);
        List<LensRow> rows = new ArrayList<>();
        for (String h : hooks) {
            INDArray logits = read.get(h).mmul(probe.weights()).addiRowVector(probe.bias());
            INDArray p = org.nd4j.linalg.ops.transforms.Transforms.softmax(logits, false);
            double sure = 0;
            for (int i = 0; i < y.length; i++) {
                sure += p.getDouble(i, y[i]);
            }
            rows.add(new LensRow(h, probe.accuracy(read.get(h), y), sure / y.length));
        }
        return rows;
    }

    private static List<LabelledText> concat(List<LabelledText> a, List<LabelledText> b) {
        List<LabelledText> all = new ArrayList<>(a);
        all.addAll(b);
        return all;
    }

    private static int[] labels(List<LabelledText> data) {
        return data.stream().mapToInt(LabelledText::label).toArray();
    }

    /** The control labels of {@code data}: a random label (from {@code seed}) per first word type. */
    public static int[] controlLabels(HookedModel model, List<LabelledText> data, int classes, long seed) {
        Random r = new Random(seed);
        Map<String, Integer> byType = new HashMap<>();
        int[] out = new int[data.size()];
        for (int i = 0; i < data.size(); i++) {
            List<String> tokens = model.tokenizer().orElseThrow().tokens(data.get(i).text());
            // the first token that is not a special one ([CLS], <s>, ...)
            String first = tokens.stream().filter(t -> !(t.startsWith("[") && t.endsWith("]")) && !(t.startsWith("<")
                    && t.endsWith(">"))).findFirst().orElse("").toLowerCase(java.util.Locale.ROOT);
            out[i] = byType.computeIfAbsent(first, k -> r.nextInt(classes));
        }
        return out;
    }

    /**
     * Trains a task probe and a control probe at each hook (full-batch AdamW, {@code steps} steps at {@code lr}, the
     * dev split choosing the step) and reports their test accuracies.
     */
    public static List<Row> train(HookedModel model, List<LabelledText> train, List<LabelledText> dev,
                                  List<LabelledText> test, List<String> hooks, int steps, double lr, long seed) {
        int classes = 1 + java.util.stream.Stream.of(train, dev, test).flatMap(List::stream)
                .mapToInt(LabelledText::label).max().orElse(1);
        List<LabelledText> all = new ArrayList<>(train);
        all.addAll(dev);
        all.addAll(test);
        int[] control = controlLabels(model, all, classes, seed);
        int[] task = all.stream().mapToInt(LabelledText::label).toArray();
        Map<String, INDArray> f = features(model, all, hooks, 32, 64);
        int a = train.size();
        int b = a + dev.size();
        List<Row> rows = new ArrayList<>();
        for (String h : hooks) {
            INDArray x = f.get(h);
            INDArray xTrain = x.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(0, a));
            INDArray xDev = x.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(a, b));
            INDArray xTest = x.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(b, all.size()));
            double[] acc = new double[2];
            int[][] labels = {task, control};
            for (int k = 0; k < 2; k++) {
                int[] y = labels[k];
                LinearProbe p = LinearProbe.train(xTrain, java.util.Arrays.copyOfRange(y, 0, a), xDev,
                        java.util.Arrays.copyOfRange(y, a, b), classes, steps, lr, ClassificationHead.Pooling.MEAN);
                acc[k] = p.accuracy(xTest, java.util.Arrays.copyOfRange(y, b, all.size()));
            }
            rows.add(new Row(h, acc[0], acc[1]));
        }
        return rows;
    }
}
