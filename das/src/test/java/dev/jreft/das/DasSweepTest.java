package dev.jreft.das;

import dev.jreft.das.train.DasTrainer;
import dev.jreft.das.train.DasTrainerTest;
import dev.jreft.das.train.InterchangeExample;
import dev.jreft.das.train.ModelInputs;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.params.Orthogonal;
import dev.jreft.training.TrainingArguments;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The causal model O = A OR B over x = [A, B, noise, noise], computed exactly by h = x Q (hook {@code hidden}, Q a
 * random rotation) and logits = [2, 4·(h Qᵀ)·(1, 1, 0, 0)]: A lives along Q's row 0 and B along row 1, so DAS with a
 * coordinate per variable can reach IIA 1 and a random rotation cannot.
 */
class DasSweepTest {
    /** Equal numbers of interchanges of A, of B, and of both (from two sources), with the counterfactual labels. */
    static List<InterchangeExample<float[]>> examples(int perSet, long seed) {
        Random r = new Random(seed);
        List<InterchangeExample<float[]>> out = new ArrayList<>();
        for (int set = 0; set < 3; set++) {
            for (int i = 0; i < perSet; i++) {
                int a = r.nextInt(2);
                int b = r.nextInt(2);
                int sa = r.nextInt(2);
                int sb = r.nextInt(2);
                Map<String, float[]> sources = new LinkedHashMap<>();
                if (set != 1) {
                    sources.put("A", DasTrainerTest.input(sa, r.nextInt(2), r));
                }
                if (set != 0) {
                    sources.put("B", DasTrainerTest.input(r.nextInt(2), sb, r));
                }
                int label = (set != 1 ? sa : a) | (set != 0 ? sb : b);
                out.add(new InterchangeExample<>(DasTrainerTest.input(a, b, r), sources, label));
            }
        }
        return out;
    }

    static final TrainingArguments ARGS = new TrainingArguments(4, 32, 3e-2, 0, 0.05, 0, 5, 0, 0, "adamw", 2);

    @Test
    void trainedAlignmentsReachFullIiaAndBeatTheirUntrainedControls(@TempDir Path tmp) throws Exception {
        HookedModel net = DasTrainerTest.network(Orthogonal.randomRows(4, 4, new Random(7)));
        DasSweep<float[]> sweep = new DasSweep<>(net, "logits", examples(256, 1), examples(200, 2));
        DasSweep.Table t = sweep.run(List.of(new DasSweep.Hook("tensor:hidden", 4)),
                Map.of("0", ModelInputs.features("x")), List.of(1, 2),
                List.of(DasTrainer.Method.ROTATED, DasTrainer.Method.LOW_RANK), ARGS, 3, null);

        assertEquals(List.of("A", "B", "A+B"), t.sets());
        assertEquals(4, t.rows().size());
        for (DasSweep.Row r : t.rows()) {
            assertTrue(r.iia() >= 0.99, r.toString());
            assertTrue(r.controlIia() < r.iia() - 0.05, r.toString());
            assertEquals(3, r.iiaBySet().size());
            // the overall IIA is the mean over the three equally large sets
            double mean = r.iiaBySet().values().stream().mapToDouble(Double::doubleValue).average().orElseThrow();
            assertEquals(mean, r.iia(), 1e-9);
        }
        // one coordinate per variable is where A and B live: a random one misses them
        assertTrue(t.rows().get(0).controlIia() < 0.9, t.rows().get(0).toString());

        Path csv = tmp.resolve("out/sweep.csv");
        t.writeCsv(csv);
        List<String> lines = Files.readAllLines(csv);
        assertEquals("hook,position,method,size,iia,control_iia,seconds,iia[A],iia[B],iia[A+B]", lines.get(0));
        assertEquals(1 + 4, lines.size());
        assertTrue(lines.get(1).startsWith("tensor:hidden,0,rotated,1,"), lines.get(1));
        assertTrue(lines.get(4).startsWith("tensor:hidden,0,low_rank,2,"), lines.get(4));
        try (var files = Files.list(csv.getParent())) {
            assertEquals(List.of(csv), files.toList(), "no temporary file is left next to the table");
        }
        String aligned = t.aligned();
        assertEquals(5, aligned.strip().split("\n").length);
        assertTrue(aligned.startsWith("hook           position  method    size"), aligned);
    }

    @Test
    void cellsThatCannotFitAreRejectedBeforeAnyTraining() {
        HookedModel net = DasTrainerTest.network(Orthogonal.randomRows(4, 4, new Random(7)));
        DasSweep<float[]> sweep = new DasSweep<>(net, "logits", examples(8, 1), examples(8, 2));
        var tooBig = assertThrows(IllegalArgumentException.class, () -> sweep.run(
                List.of(new DasSweep.Hook("tensor:hidden", 4)), Map.of("0", ModelInputs.features("x")),
                List.of(1, 3), List.of(DasTrainer.Method.ROTATED), ARGS, 3, null));
        assertEquals("sizes[1]: found 3; valid: 1..2 for hook tensor:hidden of width 4 with method rotated (2"
                + " variables of 3 coordinates each)", tooBig.getMessage());
        var unknown = assertThrows(IllegalArgumentException.class, () -> sweep.run(
                List.of(new DasSweep.Hook("tensor:hiden", 4)), Map.of("0", ModelInputs.features("x")),
                List.of(1), List.of(DasTrainer.Method.ROTATED), ARGS, 3, null));
        assertTrue(unknown.getMessage().contains("hiden") && unknown.getMessage().contains("hidden"),
                unknown.getMessage());
        var boundless = assertThrows(IllegalArgumentException.class, () -> sweep.run(
                List.of(new DasSweep.Hook("tensor:hidden", 4)), Map.of("0", ModelInputs.features("x")),
                List.of(1), List.of(DasTrainer.Method.BOUNDLESS), ARGS, 3, null));
        assertTrue(boundless.getMessage().contains("rotated or low_rank"), boundless.getMessage());
    }
}
