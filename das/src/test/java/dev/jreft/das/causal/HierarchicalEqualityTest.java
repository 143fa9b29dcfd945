package dev.jreft.das.causal;

import static dev.jreft.das.causal.HierarchicalEquality.A;
import static dev.jreft.das.causal.HierarchicalEquality.B;
import static dev.jreft.das.causal.HierarchicalEquality.C;
import static dev.jreft.das.causal.HierarchicalEquality.D;
import static dev.jreft.das.causal.HierarchicalEquality.O;
import static dev.jreft.das.causal.HierarchicalEquality.WX;
import static dev.jreft.das.causal.HierarchicalEquality.YZ;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The hierarchical equality model: factual labels, interchanges of WX / YZ, the sampler's balance. */
class HierarchicalEqualityTest {

    private static final double[] P = {0.1, 0.2};
    private static final double[] Q = {0.3, 0.4};

    private static Map<String, Object> in(double[] a, double[] b, double[] c, double[] d) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put(A, a.clone());
        m.put(B, b.clone());
        m.put(C, c.clone());
        m.put(D, d.clone());
        return m;
    }

    @Test
    void factualLabelsFollowTheDefinitionOnAllFourCases() {
        CausalModel m = HierarchicalEquality.model();
        assertEquals(List.of(A, B, C, D), m.inputs());
        assertEquals(List.of(O), m.outputs());
        assertEquals(List.of(WX, YZ), m.parents(O));
        // (a==b, c==d) -> O
        Map<String, Object> tt = m.run(in(P, P, Q, Q));
        assertEquals(true, tt.get(WX));
        assertEquals(true, tt.get(YZ));
        assertEquals(true, tt.get(O));
        assertEquals(false, m.output(in(P, P, P, Q)));
        assertEquals(false, m.output(in(P, Q, Q, Q)));
        assertEquals(true, m.output(in(P, Q, Q, P)));
        // equality is element-wise, not identity: separate arrays with equal contents are equal
        assertEquals(true, m.run(in(new double[] {1, 2}, new double[] {1, 2}, P, Q)).get(WX));
    }

    @Test
    void factualLabelsOnSampledInputs() {
        CausalModel m = HierarchicalEquality.model();
        Random r = new Random(3);
        double[][] pool = HierarchicalEquality.pool(5, 3, r);
        for (int i = 0; i < 500; i++) {
            Map<String, Object> x = HierarchicalEquality.sample(r, pool);
            boolean ab = Arrays.equals((double[]) x.get(A), (double[]) x.get(B));
            boolean cd = Arrays.equals((double[]) x.get(C), (double[]) x.get(D));
            assertEquals(ab == cd, m.output(x));
        }
    }

    @Test
    void interchangingWxFlipsTheOutputExactlyWhenWxDiffersBetweenBaseAndSource() {
        CausalModel m = HierarchicalEquality.model();
        Random r = new Random(11);
        double[][] pool = HierarchicalEquality.pool(4, 2, r);
        int flips = 0;
        int keeps = 0;
        for (int i = 0; i < 1000; i++) {
            Map<String, Object> base = HierarchicalEquality.sample(r, pool);
            Map<String, Object> source = HierarchicalEquality.sample(r, pool);
            boolean wxBase = (Boolean) m.run(base).get(WX);
            boolean wxSource = (Boolean) m.run(source).get(WX);
            Map<String, Object> cf = m.interchange(base, Map.of(WX, source));
            assertEquals(wxSource, cf.get(WX));
            assertEquals(m.run(base).get(YZ), cf.get(YZ));
            boolean flipped = !m.output(base).equals(cf.get(O));
            assertEquals(wxBase != wxSource, flipped);
            if (flipped) {
                flips++;
            } else {
                keeps++;
            }
        }
        assertTrue(flips > 100 && keeps > 100, "both cases occur: " + flips + " flips, " + keeps + " keeps");
    }

    @Test
    void interchangingWxAndYzFromTwoSourcesComparesTheSourcesVariables() {
        CausalModel m = HierarchicalEquality.model();
        Map<String, Object> base = in(P, P, Q, Q);                  // WX=true, YZ=true, O=true
        Map<String, Object> s1 = in(P, Q, P, P);                    // WX=false there
        Map<String, Object> s2 = in(Q, Q, P, Q);                    // YZ=false there
        Map<String, Map<String, Object>> sources = new LinkedHashMap<>();
        sources.put(WX, s1);
        sources.put(YZ, s2);
        Map<String, Object> cf = m.interchange(base, sources);
        assertEquals(false, cf.get(WX));
        assertEquals(false, cf.get(YZ));
        assertEquals(true, cf.get(O));                             // false == false
        assertEquals(false, m.interchangeOutput(base, Map.of(WX, s1)));
        // intervening on an input vector: b from s1 is Q, so WX becomes false
        assertEquals(false, m.interchange(base, Map.of(B, s1)).get(WX));
    }

    @Test
    void poolHoldsDistinctVectorsInRange() {
        double[][] pool = HierarchicalEquality.pool(20, 4, new Random(1));
        assertEquals(20, pool.length);
        for (int i = 0; i < pool.length; i++) {
            assertEquals(4, pool[i].length);
            for (double v : pool[i]) {
                assertTrue(v >= -1 && v < 1);
            }
            for (int j = 0; j < i; j++) {
                assertFalse(Arrays.equals(pool[i], pool[j]));
            }
        }
        assertArrayEquals(pool[7], HierarchicalEquality.pool(20, 4, new Random(1))[7]);
        assertThrows(IllegalArgumentException.class, () -> HierarchicalEquality.pool(1, 4, new Random(1)));
        assertThrows(IllegalArgumentException.class, () -> HierarchicalEquality.pool(3, 0, new Random(1)));
    }

    @Test
    void samplesAreCopiesOfPoolVectors() {
        double[][] pool = HierarchicalEquality.pool(3, 2, new Random(5));
        Map<String, Object> x = HierarchicalEquality.sample(new Random(6), pool);
        assertEquals(List.of(A, B, C, D), List.copyOf(x.keySet()));
        for (Object v : x.values()) {
            double[] arr = (double[]) v;
            assertTrue(Arrays.stream(pool).anyMatch(p -> Arrays.equals(p, arr)));
            assertTrue(Arrays.stream(pool).noneMatch(p -> p == arr));
        }
        assertNotSame(x.get(A), x.get(B));
    }

    @Test
    void featuresConcatenateABCDAsFloats() {
        double[] a = {1, 2};
        double[] b = {3, 4};
        double[] c = {5, 6};
        double[] d = {7, 8.5};
        assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6, 7, 8.5f}, HierarchicalEquality.features(in(a, b, c, d)));
        Map<String, Object> x = HierarchicalEquality.sample(new Random(2), HierarchicalEquality.pool(10, 16, new Random(2)));
        assertEquals(64, HierarchicalEquality.features(x).length);
        assertThrows(IllegalArgumentException.class,
                () -> HierarchicalEquality.features(in(a, b, c, new double[] {1})));
        assertThrows(IllegalArgumentException.class, () -> HierarchicalEquality.features(Map.of(A, a)));
    }

    @Test
    void labelsAreRoughlyBalancedOver2000Samples() {
        double[][] pool = HierarchicalEquality.pool(20, 4, new Random(7));
        List<CounterfactualExample> data = CounterfactualDataset.sample(HierarchicalEquality.model(),
                HierarchicalEquality.sampler(pool), List.of(WX), 2000, 42);
        double base = data.stream().filter(e -> (Boolean) e.baseOutput()).count() / 2000.0;
        double cf = data.stream().filter(e -> (Boolean) e.counterfactualOutput()).count() / 2000.0;
        assertTrue(base >= 0.4 && base <= 0.6, "base label balance " + base);
        assertTrue(cf >= 0.4 && cf <= 0.6, "counterfactual label balance " + cf);
        // WX changes between two independent draws about half the time, and so does the label
        double changed = CounterfactualDataset.changedFraction(data);
        assertTrue(changed >= 0.4 && changed <= 0.6, "changed fraction " + changed);
    }

    @Test
    void changingExamplesOfWxHaveDifferentWxOnBaseAndSource() {
        CausalModel m = HierarchicalEquality.model();
        double[][] pool = HierarchicalEquality.pool(10, 3, new Random(9));
        List<CounterfactualExample> data = CounterfactualDataset.sampleChanging(m, HierarchicalEquality.sampler(pool),
                List.of(WX), 300, 5);
        assertEquals(300, data.size());
        for (CounterfactualExample e : data) {
            assertTrue(e.changed());
            assertEquals(!(Boolean) m.run(e.baseInputs()).get(WX), m.run(e.sourceFor(WX)).get(WX));
        }
    }
}
