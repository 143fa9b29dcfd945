package dev.jreft.training;

import dev.jreft.hooks.runtime.Batch;
import dev.jreft.interventions.params.Orthogonal;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TrainingPartsTest {
    static final Batch PADDED = Batch.of(new long[][] {{1, 2, 3, 4, 5, 6}, {1, 2, 3, 0, 0, 0}, {1, 0, 0, 0, 0, 0}},
            new long[][] {{1, 1, 1, 1, 1, 1}, {1, 1, 1, 0, 0, 0}, {1, 0, 0, 0, 0, 0}});

    @Test
    void positionSpecsRespectPadding() {
        PositionSpec f1l1 = PositionSpec.parse("f1+l1");
        assertArrayEquals(new int[][] {{0, 5}, {0, 2}, {0}}, f1l1.positions(PADDED));
        assertArrayEquals(new int[][] {{0, 1, 3, 4, 5}, {0, 1, 2}, {0}}, PositionSpec.parse("f2+l3").positions(PADDED));
        assertArrayEquals(new int[][] {{0}, {0}, {0}}, f1l1.firstPositions(PADDED));
        assertArrayEquals(new int[][] {{5}, {2}, {0}}, f1l1.lastPositions(PADDED));
        assertArrayEquals(new int[][] {{4, 5}, {1, 2}, {0}}, PositionSpec.parse("l2").positions(PADDED));
        // left padding (generation's batches): the same tokens, counted from each row's first real one
        Batch left = dev.jreft.interventions.generation.Generator.leftPadded(PADDED);
        assertArrayEquals(new int[][] {{0, 5}, {3, 5}, {5}}, f1l1.positions(left));
        assertArrayEquals(new int[][] {{0, 1, 3, 4, 5}, {3, 4, 5}, {5}}, PositionSpec.parse("f2+l3").positions(left));
        assertArrayEquals(new int[][] {{0}, {3}, {5}}, f1l1.firstPositions(left));
        assertEquals("f3+l3", PositionSpec.parse("f3+l3").toString());
        var e = assertThrows(IllegalArgumentException.class, () -> PositionSpec.parse("first+last"));
        assertTrue(e.getMessage().startsWith("positions: found 'first+last'; valid: f<n>+l<m>"), e.getMessage());
    }

    @Test
    void poolingWeightsCoverRealTokensOnly() {
        var mean = ClassificationHead.poolWeights(PADDED, ClassificationHead.Pooling.MEAN);
        assertEquals(1.0, mean.getRow(1).sumNumber().doubleValue(), 1e-6);
        assertEquals(0.0, mean.getDouble(1, 3), 0.0);
        assertEquals(1.0 / 3, mean.getDouble(1, 2), 1e-6);
        var last = ClassificationHead.poolWeights(PADDED, ClassificationHead.Pooling.LAST);
        assertEquals(1.0, last.getDouble(0, 5), 0.0);
        assertEquals(1.0, last.getDouble(1, 2), 0.0);
        assertEquals(1.0, last.getDouble(2, 0), 0.0);
        assertEquals(3.0, last.sumNumber().doubleValue(), 0.0);
        var first = ClassificationHead.poolWeights(PADDED, ClassificationHead.Pooling.FIRST);
        assertEquals(3.0, first.getColumn(0).sumNumber().doubleValue(), 0.0);
    }

    @Test
    void adamWMatchesTheFormula() {
        INDArray p = Nd4j.createFromArray(1.0f, -2.0f);
        INDArray g = Nd4j.createFromArray(0.5f, 0.25f);
        AdamW opt = new AdamW(0.9, 0.999, 1e-8, 0.1);
        opt.step(Map.of("p", p), Map.of("p", g), 0.01);
        // step 1: m̂ = g, v̂ = g², update = lr·g/(|g|+eps) = lr·sign(g); decay first: p·(1 − lr·λ)
        assertEquals(1.0 * (1 - 0.001) - 0.01, p.getDouble(0), 1e-6);
        assertEquals(-2.0 * (1 - 0.001) - 0.01, p.getDouble(1), 1e-6);
    }

    /**
     * Five AdamW and SGD steps against the formulas in double precision, on a tensor large enough to be updated in
     * parallel chunks and on a transposed view (updated through a copy that must reach the viewed memory).
     */
    @Test
    void optimisersFollowTheirFormulasOverStepsOnLargeTensorsAndViews() {
        java.util.Random random = new java.util.Random(3);
        INDArray storage = Nd4j.rand(org.nd4j.linalg.api.buffer.DataType.FLOAT, 4, 3).subi(0.5);
        Map<String, INDArray> params = Map.of("big", Nd4j.rand(org.nd4j.linalg.api.buffer.DataType.FLOAT, 600, 500),
                "view", storage.transpose());
        for (Optimizer opt : new Optimizer[] {new AdamW(0.9, 0.999, 1e-8, 0.1), new Sgd(0.9, 0.1)}) {
            Map<String, double[]> p = new java.util.HashMap<>();
            Map<String, double[]> m = new java.util.HashMap<>();
            Map<String, double[]> v = new java.util.HashMap<>();
            params.forEach((k, a) -> {
                p.put(k, a.dup('c').castTo(org.nd4j.linalg.api.buffer.DataType.DOUBLE).data().asDouble());
                m.put(k, new double[(int) a.length()]);
                v.put(k, new double[(int) a.length()]);
            });
            double lr = 0.01;
            for (int t = 1; t <= 5; t++) {
                Map<String, INDArray> grads = new java.util.HashMap<>();
                for (var e : params.entrySet()) {
                    INDArray g = Nd4j.randn(org.nd4j.linalg.api.buffer.DataType.FLOAT, e.getValue().shape());
                    grads.put(e.getKey(), g);
                    double[] gd = g.dup('c').castTo(org.nd4j.linalg.api.buffer.DataType.DOUBLE).data().asDouble();
                    double[] pk = p.get(e.getKey());
                    double[] mk = m.get(e.getKey());
                    double[] vk = v.get(e.getKey());
                    for (int i = 0; i < pk.length; i++) {
                        if (opt instanceof AdamW) {
                            mk[i] = 0.9 * mk[i] + 0.1 * gd[i];
                            vk[i] = 0.999 * vk[i] + 0.001 * gd[i] * gd[i];
                            pk[i] = pk[i] * (1 - lr * 0.1) - lr * (mk[i] / (1 - Math.pow(0.9, t)))
                                    / (Math.sqrt(vk[i] / (1 - Math.pow(0.999, t))) + 1e-8);
                        } else {
                            mk[i] = 0.9 * mk[i] + gd[i];
                            pk[i] = pk[i] * (1 - lr * 0.1) - lr * mk[i];
                        }
                    }
                }
                opt.step(params, grads, lr);
            }
            for (var e : params.entrySet()) {
                double[] got = e.getValue().dup('c').castTo(org.nd4j.linalg.api.buffer.DataType.DOUBLE).data()
                        .asDouble();
                double[] want = p.get(e.getKey());
                double worst = 0;
                for (int i = 0; i < want.length; i++) {
                    worst = Math.max(worst, Math.abs(got[i] - want[i]));
                }
                assertTrue(worst < 1e-5, opt.getClass().getSimpleName() + " " + e.getKey() + ": max |diff| " + worst);
            }
            assertEquals(params.get("view").getDouble(2, 1), storage.getDouble(1, 2), 0.0); // the viewed memory moved
        }
    }

    @Test
    void clippingScalesToTheGlobalNormAndReportsIt() {
        Map<String, INDArray> grads = new java.util.LinkedHashMap<>();
        grads.put("a", Nd4j.createFromArray(3.0f, 0.0f));
        grads.put("b", Nd4j.createFromArray(new float[][] {{0.0f, 4.0f}}).transpose()); // a view
        assertEquals(5.0, ParameterUpdate.clip(grads, 1.0), 1e-6);
        assertEquals(0.6, grads.get("a").getDouble(0), 1e-6);
        assertEquals(0.8, grads.get("b").getDouble(1, 0), 1e-6);
        assertEquals(1.0, ParameterUpdate.clip(grads, 0), 1e-6);
    }

    @Test
    void sgdWithMomentum() {
        INDArray p = Nd4j.createFromArray(1.0f);
        Sgd opt = new Sgd(0.5, 0);
        opt.step(Map.of("p", p), Map.of("p", Nd4j.createFromArray(1.0f)), 0.1);
        opt.step(Map.of("p", p), Map.of("p", Nd4j.createFromArray(1.0f)), 0.1);
        assertEquals(1.0 - 0.1 - 0.15, p.getDouble(0), 1e-6);
    }

    @Test
    void linearWarmupAndDecay() {
        LinearSchedule s = new LinearSchedule(1.0, 4, 12);
        assertEquals(0.25, s.at(0), 1e-12);
        assertEquals(1.0, s.at(3), 1e-12);
        assertEquals(1.0, s.at(4), 1e-12);
        assertEquals(0.5, s.at(8), 1e-12);
        assertEquals(0.0, s.at(12), 1e-12);
    }

    @Test
    void temperatureAnnealsLinearlyAndHolds() {
        TemperatureSchedule t = new TemperatureSchedule(50, 0.1, 5);
        assertEquals(50, t.at(0), 1e-12);
        assertEquals(25.05, t.at(2), 1e-9);
        assertEquals(0.1, t.at(4), 1e-12);
        assertEquals(0.1, t.at(100), 1e-12);
        assertEquals(50f, t.tensorAt(0).getFloat(0), 0f);
        assertThrows(IllegalArgumentException.class, () -> new TemperatureSchedule(0, 1, 3));
    }

    @Test
    void retractionKeepsRowsOrthonormal() {
        INDArray r = Orthogonal.randomRows(4, 32, new Random(1));
        assertTrue(Orthogonal.deviation(r, false) < 1e-6);
        r.addi(Nd4j.rand(DataType.FLOAT, 4, 32).muli(0.3));
        assertTrue(Orthogonal.deviation(r, false) > 1e-2);
        Orthogonal.retractRows(r);
        assertTrue(Orthogonal.deviation(r, false) < 1e-6, "deviation " + Orthogonal.deviation(r, false));
        INDArray c = Nd4j.rand(DataType.FLOAT, 16, 3);
        Orthogonal.retractColumns(c);
        assertTrue(Orthogonal.deviation(c, true) < 1e-6);
    }

    @Test
    void clippingScalesToTheGlobalNorm() {
        Map<String, INDArray> g = new LinkedHashMap<>();
        g.put("a", Nd4j.createFromArray(3.0f));
        g.put("b", Nd4j.createFromArray(4.0f));
        assertEquals(5.0, ParameterUpdate.clip(g, 1.0), 1e-6);
        assertEquals(0.6, g.get("a").getDouble(0), 1e-6);
        assertEquals(0.8, g.get("b").getDouble(0), 1e-6);
    }
}
