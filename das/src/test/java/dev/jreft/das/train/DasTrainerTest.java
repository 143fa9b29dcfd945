package dev.jreft.das.train;

import dev.jreft.hooks.graph.ElemTypes;
import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.hooks.runtime.OrtRuntime;
import dev.jreft.interventions.params.Orthogonal;
import dev.jreft.training.TrainingArguments;
import dev.jreft.training.TrainingResult;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The causal model O = A OR B over inputs x = [A, B, noise, noise]. The network computes h = x Q (hook {@code hidden},
 * Q orthogonal), then logits = [2, 4·(h Qᵀ)·(1, 1, 0, 0)], i.e. exactly the causal model: A lives along Q's row 0 and
 * B along row 1.
 */
public class DasTrainerTest {
    /** The A-OR-B network described above, with hook {@code hidden} and output {@code logits}. */
    public static HookedModel network(INDArray q) {
        OnnxGraph g = OnnxGraph.create(17, "a-or-b");
        g.append("net", b -> {
            String x = b.input("x", ElemTypes.FLOAT, -1, 1, 4);
            String qc = b.constantFloats(q.dup('c').data().asFloat(), 4, 4);
            String h = b.opTo("hidden", "MatMul", List.of(x, qc));
            String back = b.op("MatMul", List.of(h, b.op("Transpose", List.of(qc), dev.jreft.hooks.graph.Attr.ints(
                    "perm", 1, 0))));
            String w = b.constantFloats(new float[] {0, 4, 0, 4, 0, 0, 0, 0}, 4, 2);
            String bias = b.constantFloats(new float[] {2, 0}, 2);
            b.opTo("logits", "Reshape", List.of(b.op("Add", List.of(b.op("MatMul", List.of(back, w)), bias)),
                    b.constantInts(new long[] {-1, 2}, 2)));
            b.expose("logits");
        });
        return new HookedModel(g, null, OrtRuntime.shared());
    }

    /** The input [A, B, noise, noise]. */
    public static float[] input(int a, int bb, Random r) {
        return new float[] {a, bb, (float) (0.5 * r.nextGaussian()), (float) (0.5 * r.nextGaussian())};
    }

    /** Interchanges of A (and of B, separately) with their counterfactual labels. */
    static List<InterchangeExample<float[]>> examples(int n, long seed) {
        Random r = new Random(seed);
        List<InterchangeExample<float[]>> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int a = r.nextInt(2);
            int b = r.nextInt(2);
            int a2 = r.nextInt(2);
            int b2 = r.nextInt(2);
            out.add(new InterchangeExample<>(input(a, b, r), Map.of("A", input(a2, b2, r)), a2 | b));
        }
        return out;
    }

    @Test
    void iiaIsExactlyOneOnANetworkThatComputesTheCausalModel() {
        INDArray identity = Nd4j.eye(4).castTo(DataType.FLOAT);
        HookedModel net = network(identity);
        DasTrainer<float[]> das = new DasTrainer<>(net, ModelInputs.features("x"), "tensor:hidden", "logits", Map.of("A", new int[] {0}), identity);
        assertEquals(1.0, das.iia(examples(512, 1), 64), 0.0);
        // control: aligning A with the wrong coordinate breaks the interchanges
        DasTrainer<float[]> wrong = new DasTrainer<>(net, ModelInputs.features("x"), "tensor:hidden", "logits", Map.of("A", new int[] {2}), identity);
        assertTrue(wrong.iia(examples(512, 1), 64) < 0.9);
    }

    @Test
    void dasRecoversAPlantedSubspaceFromARandomRotation() {
        INDArray q = Orthogonal.randomRows(4, 4, new Random(7));
        HookedModel net = network(q);
        DasTrainer<float[]> das = new DasTrainer<>(net, ModelInputs.features("x"), "tensor:hidden", "logits", Map.of("A", new int[] {0}),
                DasTrainer.randomRotation(4, 3));
        List<InterchangeExample<float[]>> test = examples(1024, 2);
        double before = das.iia(test, 128);
        TrainingArguments args = new TrainingArguments(20, 64, 2e-2, 0, 0.05, 0, 5, 0, 0, "adamw", 2);
        das.train(examples(2048, 1), args, new PrintStream(new ByteArrayOutputStream()));
        double after = das.iia(test, 128);
        assertTrue(after >= 0.99 && after > before, "IIA " + before + " -> " + after);
        assertTrue(Orthogonal.deviation(das.rotation(), true) < 1e-5);
        // the learned coordinate 0 points along A's direction: the first row of Q (up to sign)
        double cos = Math.abs(das.rotation().getColumn(0).castTo(DataType.DOUBLE).mul(q.getRow(0)
                .castTo(DataType.DOUBLE)).sumNumber().doubleValue());
        assertTrue(cos > 0.9, "alignment with the planted direction: |cos| = " + cos);
    }

    @Test
    void dasOnTheOneTrainerKeepsTheBestDevIiaAndStopsEarly() {
        INDArray q = Orthogonal.randomRows(4, 4, new Random(7));
        DasTrainer<float[]> das = new DasTrainer<>(network(q), ModelInputs.features("x"), "tensor:hidden", "logits",
                Map.of("A", new int[] {0}), DasTrainer.randomRotation(4, 3));
        List<InterchangeExample<float[]>> dev = examples(512, 2);
        // evaluated every epoch, stopped after 2 epochs without gain: IIA reaches 1 long before 20 epochs end
        TrainingResult r = das.train(examples(2048, 1), dev, new TrainingArguments(20, 64, 2e-2, 0, 0.05, 0, 5, 0, 2,
                "adamw", 2), new PrintStream(new ByteArrayOutputStream()));
        assertTrue(r.stoppedEarly() && r.steps() < 20 * 32, "steps " + r.steps());
        // the parameters left are the best evaluation's: their IIA on dev is the reported best
        assertEquals(r.bestDevAccuracy(), das.iia(dev, 128), 0.0);
        assertTrue(r.bestDevAccuracy() >= 0.99, "best dev IIA " + r.bestDevAccuracy());
        assertEquals(r.steps() / 32, r.epochLosses().size());
    }

    @Test
    void lowRankDasRecoversThePlantedDirection() {
        INDArray q = Orthogonal.randomRows(4, 4, new Random(7));
        DasTrainer<float[]> das = new DasTrainer<>(network(q), ModelInputs.features("x"), "tensor:hidden", "logits",
                DasTrainer.Method.LOW_RANK, Map.of("A", 1), 4, 3);
        das.train(examples(2048, 1), new TrainingArguments(20, 64, 2e-2, 0, 0.05, 0, 5, 0, 0, "adamw", 2),
                new PrintStream(new ByteArrayOutputStream()));
        assertTrue(das.iia(examples(1024, 2), 128) >= 0.99);
        INDArray r = das.parameters().get("A.R");
        assertEquals(4, r.size(0));
        assertEquals(1, r.size(1));
        assertTrue(Orthogonal.deviation(r, true) < 1e-5);
        double cos = Math.abs(r.reshape(4).castTo(DataType.DOUBLE).mul(q.getRow(0).reshape(4).castTo(DataType.DOUBLE))
                .sumNumber().doubleValue());
        assertTrue(cos > 0.9, "|cos| with the planted direction = " + cos);
    }

    @Test
    void boundlessDasLearnsABoundaryAndReachesHighIia() {
        INDArray q = Orthogonal.randomRows(4, 4, new Random(7));
        DasTrainer<float[]> das = new DasTrainer<>(network(q), ModelInputs.features("x"), "tensor:hidden", "logits",
                DasTrainer.Method.BOUNDLESS, Map.of("A", 0), 4, 3).annealing(2, 0.1);
        List<InterchangeExample<float[]>> test = examples(1024, 2);
        double before = das.iia(test, 128);
        das.train(examples(2048, 1), new TrainingArguments(20, 64, 2e-2, 0, 0.05, 0, 5, 0, 0, "adamw", 2),
                new PrintStream(new ByteArrayOutputStream()));
        double after = das.iia(test, 128);
        assertTrue(after >= 0.97 && after > before, "IIA " + before + " -> " + after);
        double boundary = das.boundaryCoordinates("A");
        assertTrue(boundary > 0 && boundary < 4, "boundary " + boundary);
    }

    @Test
    void subspacesThatDoNotFitTheHookAreRejected() {
        HookedModel net = network(Nd4j.eye(4).castTo(DataType.FLOAT));
        var e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> new DasTrainer<>(
                net, ModelInputs.features("x"), "tensor:hidden", "logits", DasTrainer.Method.ROTATED,
                new java.util.LinkedHashMap<>(Map.of("A", 3, "B", 2)), 4, 1));
        assertTrue(e.getMessage().contains("width 4"), e.getMessage());
    }
}
