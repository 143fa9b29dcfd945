package dev.jreft.analysis;

import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.training.data.LabelledText;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ProbesAndPcaTest {
    /** Data spread along a known direction: the first component is it, and explains its share of the variance. */
    @Test
    void pcaFindsTheDirectionOfLargestVariance() {
        Random r = new Random(3);
        int n = 400;
        INDArray x = Nd4j.create(DataType.DOUBLE, n, 5);
        double[] u = {0.6, 0.8, 0, 0, 0};
        for (int i = 0; i < n; i++) {
            double along = 5 * r.nextGaussian();
            for (int j = 0; j < 5; j++) {
                x.putScalar(i, j, along * u[j] + 0.5 * r.nextGaussian() + 10);
            }
        }
        Pca p = Pca.fit(x, 2);
        for (int j = 0; j < 5; j++) {
            assertEquals(u[j], p.components().getDouble(j, 0), 0.02, "component 0, entry " + j);
        }
        // variance 25 along u against 0.25 in each of the 5 directions
        assertEquals(25.25 / (25 + 5 * 0.25), p.explainedVariance()[0], 0.03);
        INDArray z = p.project(x);
        assertEquals(0, z.get(org.nd4j.linalg.indexing.NDArrayIndex.all(), org.nd4j.linalg.indexing.NDArrayIndex
                .point(0)).meanNumber().doubleValue(), 1e-9, "centred");
        assertTrue(p.explainedVariance()[1] < p.explainedVariance()[0]);
    }

    /**
     * Sentences whose label is their adjective: a probe on the last block generalises to unseen adjectives; the
     * control labels are a function of the first word alone.
     */
    @Test
    void probesAtEachHookWithTheirControl() {
        HookedModel model = HookedModel.minilm();
        String[] good = {"great", "wonderful", "excellent", "lovely", "superb", "fantastic", "delightful", "brilliant"};
        String[] bad = {"awful", "terrible", "horrible", "dreadful", "boring", "painful", "disappointing", "poor"};
        String[] frames = {"The film was %s.", "What a %s meal.", "Service here is %s.", "Honestly, %s acting."};
        List<LabelledText> train = new ArrayList<>();
        List<LabelledText> test = new ArrayList<>();
        for (int f = 0; f < frames.length; f++) {
            for (int i = 0; i < good.length; i++) {
                List<LabelledText> into = i < 6 ? train : test; // unseen adjectives in test
                into.add(new LabelledText(String.format(frames[f], good[i]), 1, "synthetic"));
                into.add(new LabelledText(String.format(frames[f], bad[i]), 0, "synthetic"));
            }
        }
        int[] control = LayerProbes.controlLabels(model, train, 2, 9);
        for (int i = 0; i < train.size(); i++) { // one label per first word type
            for (int j = 0; j < train.size(); j++) {
                if (train.get(i).text().split(" ")[0].equals(train.get(j).text().split(" ")[0])) {
                    assertEquals(control[i], control[j]);
                }
            }
        }
        var rows = LayerProbes.train(model, train, test, test, List.of("blocks.0.block_output",
                "blocks.5.block_output"), 300, 1e-2, 9);
        assertEquals(2, rows.size());
        assertTrue(rows.get(1).accuracy() >= 0.8, "blocks.5 task accuracy " + rows.get(1));
        assertEquals(rows.get(1).accuracy() - rows.get(1).controlAccuracy(), rows.get(1).selectivity(), 1e-12);
    }
}
