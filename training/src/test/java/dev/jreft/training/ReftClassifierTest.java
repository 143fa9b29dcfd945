package dev.jreft.training;

import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.params.Constraint;
import dev.jreft.interventions.params.Orthogonal;
import dev.jreft.training.data.LabelledText;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Trains LoReFT + a head on MiniLM on a tiny synthetic task: the real trainer, end to end. */
class ReftClassifierTest {
    static HookedModel model;
    static List<LabelledText> data = new ArrayList<>();

    @BeforeAll
    static synchronized void load() {
        if (model != null) {
            return; // loaded by another test class of this run
        }
        model = HookedModel.minilm();
        String[] good = {"great", "wonderful", "excellent", "lovely", "superb", "fantastic", "delightful", "brilliant"};
        String[] bad = {"awful", "terrible", "horrible", "dreadful", "boring", "painful", "disappointing", "poor"};
        String[] frames = {"The film was %s.", "What a %s meal.", "Service here is %s.", "%s acting throughout."};
        for (String f : frames) {
            for (int i = 0; i < good.length; i++) {
                data.add(new LabelledText(String.format(f, good[i]), 1, "synthetic"));
                data.add(new LabelledText(String.format(f, bad[i]), 0, "synthetic"));
            }
        }
    }

    static ReftClassifier.Config config(boolean share) {
        return new ReftClassifier.Config("loreft", List.of("blocks.1.block_output", "blocks.3.block_output"), 2,
                "f1+l1", share, 2, ClassificationHead.Pooling.MEAN);
    }

    @Test
    void loreftAndHeadLearnATinyTaskAndKeepROrthonormal() {
        ReftClassifier c = ReftClassifier.create(model, config(false), 7);
        assertEquals(4 * (2 * 384 * 2 + 2) + 384 * 2 + 2, c.trainableParameters()); // 2 hooks x first/last sites
        ByteArrayOutputStream progress = new ByteArrayOutputStream();
        TrainingArguments args = new TrainingArguments(4, 8, 1e-2, 0.0, 0.1, 1.0, 3, 0, 0, "adamw", 32);
        TrainingResult r = c.train(data, data, args, new PrintStream(progress, true));
        assertEquals(4 * data.size() / 8, r.steps());
        double first = r.losses().subList(0, 4).stream().mapToDouble(Double::doubleValue).average().orElseThrow();
        double last = r.losses().subList(r.steps() - 4, r.steps()).stream().mapToDouble(Double::doubleValue)
                .average().orElseThrow();
        assertTrue(last < first * 0.7, "loss " + first + " -> " + last);
        assertTrue(c.accuracy(data, 16, 32) >= 0.9, "train accuracy " + c.accuracy(data, 16, 32));
        for (var e : c.parameters().entrySet()) {
            if (e.getKey().endsWith(".R")) {
                assertTrue(Orthogonal.deviation(e.getValue(), false) < 1e-5, e.getKey());
            }
        }
        assertTrue(progress.toString().contains("ex/s"), progress.toString());
    }

    @Test
    void everyReftTypeTrainsWithActivationAndDropout() {
        for (String type : List.of("noreft", "direft", "nodireft", "consreft", "lobireft")) {
            boolean hasW = !type.equals("consreft") && !type.equals("lobireft");
            ReftClassifier c = ReftClassifier.create(model, new ReftClassifier.Config(type,
                    List.of("blocks.2.block_output"), 2, "f1+l1", true, 2, ClassificationHead.Pooling.MEAN,
                    hasW ? "tanh" : "linear", 0.1), 9);
            TrainingArguments args = new TrainingArguments(3, 16, 1e-2, 0, 0, 1, 2, 0, 0, "adamw", 32);
            TrainingResult r = c.train(data, List.of(), args, new PrintStream(new ByteArrayOutputStream()));
            double first = r.losses().get(0);
            double last = r.losses().get(r.losses().size() - 1);
            assertTrue(last < first, type + ": loss " + first + " -> " + last);
            assertEquals(hasW, c.parameters().containsKey("site0.W"), type);
            // the declaration says which R stays orthonormal; consreft's and lobireft's do, after 3 epochs of steps
            boolean kept = c.declarations().get("site0.R").constraint() == Constraint.ORTHONORMAL_ROWS;
            assertEquals(type.equals("consreft") || type.equals("lobireft"), kept, type);
            if (kept) {
                assertTrue(Orthogonal.deviation(c.parameters().get("site0.R"), false) < 1e-5, type);
            }
            // evaluation feeds no dropout mask: two evaluations agree exactly
            var batch = c.encode(List.of("The film was great.", "What an awful meal."), 32);
            assertEquals(c.logits(batch), c.logits(batch), type);
        }
    }

    @Test
    void aHeadOnTheLastTokenTrains() {
        ReftClassifier c = ReftClassifier.create(model, new ReftClassifier.Config("loreft",
                List.of("blocks.4.block_output"), 2, "l1", true, 2, ClassificationHead.Pooling.LAST), 2);
        TrainingArguments args = new TrainingArguments(4, 16, 2e-2, 0, 0, 1, 2, 0, 0, "adamw", 32);
        TrainingResult r = c.train(data, List.of(), args, new PrintStream(new ByteArrayOutputStream()));
        assertTrue(r.losses().get(r.losses().size() - 1) < r.losses().get(0), r.losses().toString());
        assertTrue(c.accuracy(data, 16, 32) > 0.8, "accuracy " + c.accuracy(data, 16, 32));
    }

    @Test
    void sameSeedSameParameters() {
        TrainingArguments args = new TrainingArguments(1, 8, 1e-2, 0.01, 0.0, 1.0, 11, 0, 0, "adamw", 32);
        List<LabelledText> few = data.subList(0, 16);
        ReftClassifier a = ReftClassifier.create(model, config(true), 5);
        ReftClassifier b = ReftClassifier.create(model, config(true), 5);
        a.train(few, List.of(), args, new PrintStream(new ByteArrayOutputStream()));
        b.train(few, List.of(), args, new PrintStream(new ByteArrayOutputStream()));
        for (String k : a.parameters().keySet()) {
            assertEquals(a.parameters().get(k), b.parameters().get(k), k);
        }
    }

    @Test
    void earlyStoppingAfterPatienceEvaluationsWithoutImprovementKeepsTheBestParameters() {
        // the dev set has the training labels flipped: learning the task makes dev accuracy worse
        List<LabelledText> flipped = data.stream().map(t -> new LabelledText(t.text(), 1 - t.label(), "flipped"))
                .toList();
        ReftClassifier c = ReftClassifier.create(model, config(true), 5);
        TrainingArguments args = new TrainingArguments(3, 8, 2e-2, 0, 0, 1, 4, 1, 2, "adamw", 32);
        TrainingResult r = c.train(data, flipped, args, new PrintStream(new ByteArrayOutputStream()));
        assertTrue(r.stoppedEarly(), "should stop early: " + r);
        assertTrue(r.steps() < 3 * data.size() / 8, "stopped after " + r.steps() + " steps");
        // the parameters restored are those of the best dev evaluation
        assertEquals(r.bestDevAccuracy(), c.accuracy(flipped, 16, 32), 1e-12);
    }

    @Test
    void nonFiniteLossStopsTrainingNamingTheStep() {
        ReftClassifier c = ReftClassifier.create(model, config(true), 5);
        c.parameters().get(ClassificationHead.W).putScalar(0, 0, Float.NaN);
        var e = assertThrows(NonFiniteException.class, () -> c.train(data.subList(0, 8), List.of(),
                new TrainingArguments(1, 8, 1e-2, 0, 0, 1, 1, 0, 0, "adamw", 32), new PrintStream(
                        new ByteArrayOutputStream())));
        assertTrue(e.getMessage().contains("step 0"), e.getMessage());
    }

    @Test
    void parametersAreCheckedWhenLoaded() {
        ReftClassifier c = ReftClassifier.create(model, config(true), 5);
        Map<String, INDArray> p = new java.util.LinkedHashMap<>(c.parameters());
        p.remove("site0.W");
        var e = assertThrows(IllegalArgumentException.class, () -> ReftClassifier.withParameters(model, config(true), p));
        assertTrue(e.getMessage().contains("parameter 'site0.W' is missing"), e.getMessage());
        var unknown = assertThrows(IllegalArgumentException.class, () -> ReftClassifier.create(model,
                new ReftClassifier.Config("loreft", List.of("blocks.9.block_output"), 2, "f1+l1", true, 2,
                        ClassificationHead.Pooling.MEAN), 1));
        assertTrue(unknown.getMessage().contains("unknown hook"), unknown.getMessage());
    }
}
