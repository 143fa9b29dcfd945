package dev.jreft.das.mlp;

import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.hooks.runtime.OrtRuntime;
import dev.jreft.training.TrainingArguments;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MlpTest {
    /** A learnable rule on 4 inputs: label = x0 + x1 > x2 + x3. */
    static Object[] data(int n, long seed) {
        Random r = new Random(seed);
        INDArray x = Nd4j.create(DataType.FLOAT, n, 4);
        int[] y = new int[n];
        for (int i = 0; i < n; i++) {
            double[] v = {r.nextDouble(), r.nextDouble(), r.nextDouble(), r.nextDouble()};
            for (int k = 0; k < 4; k++) {
                x.putScalar(i, k, v[k]);
            }
            y[i] = v[0] + v[1] > v[2] + v[3] ? 1 : 0;
        }
        return new Object[] {x, y};
    }

    @Test
    void trainsWithTheAutodiffAndFreezesToTheSameFunction() {
        Mlp mlp = new Mlp(4, new int[] {16, 16}, 2, 1);
        Object[] train = data(4096, 1);
        Object[] test = data(1024, 2);
        TrainingArguments args = new TrainingArguments(30, 128, 1e-2, 0, 0.05, 0, 3, 0, 0, "adamw", 2);
        var losses = mlp.train((INDArray) train[0], (int[]) train[1], args, new PrintStream(new ByteArrayOutputStream()));
        assertTrue(losses.get(losses.size() - 1) < losses.get(0) * 0.3, losses.toString());
        double acc = mlp.accuracy((INDArray) test[0], (int[]) test[1]);
        assertTrue(acc > 0.95, "accuracy " + acc);
        // the frozen graph (weights as initializers) computes the same logits, and its hidden layers are hooks
        HookedModel frozen = new HookedModel(mlp.frozen(), null, OrtRuntime.shared());
        INDArray x = Mlp.input((INDArray) test[0]);
        var run = frozen.base().run(Map.of(Mlp.INPUT, x), java.util.List.of(Mlp.LOGITS));
        assertEquals(mlp.logits((INDArray) test[0]), run.get(Mlp.LOGITS));
        assertEquals(16, frozen.hook("tensor:hidden.1").tensor().equals("hidden.1") ? 16 : 0);
    }
}
