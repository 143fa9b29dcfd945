package dev.jreft.das.causal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

/** Sampling counterfactual datasets: determinism, correct labels, the changing-only option and its guard. */
class CounterfactualDatasetTest {

    private static final Function<Random, Map<String, Object>> DIGITS =
            r -> Map.of("X", r.nextInt(10), "Y", r.nextInt(10));

    /** S = X + Y, O = S > 5, plus U = X * 0, which nothing depends on. */
    private static CausalModel model() {
        return CausalModel.builder()
                .input("X", "Y")
                .variable("S", "X", "Y", (x, y) -> (Integer) x + (Integer) y)
                .variable("U", "X", x -> 0 * (Integer) x)
                .variable("O", "S", s -> (Integer) s > 5)
                .output("O")
                .build();
    }

    @Test
    void aSeedReproducesTheDatasetAndAnotherSeedDoesNot() {
        List<CounterfactualExample> a = CounterfactualDataset.sample(model(), DIGITS, List.of("S", "X"), 200, 17);
        List<CounterfactualExample> b = CounterfactualDataset.sample(model(), DIGITS, List.of("S", "X"), 200, 17);
        List<CounterfactualExample> c = CounterfactualDataset.sample(model(), DIGITS, List.of("S", "X"), 200, 18);
        assertEquals(a, b);
        assertNotEquals(a, c);
    }

    @Test
    void aSeedReproducesDatasetsWithArrayValues() {
        double[][] pool = HierarchicalEquality.pool(6, 3, new Random(0));
        Function<Random, Map<String, Object>> s = HierarchicalEquality.sampler(pool);
        CausalModel m = HierarchicalEquality.model();
        List<CounterfactualExample> a = CounterfactualDataset.sample(m, s, List.of("WX", "YZ"), 100, 3);
        List<CounterfactualExample> b = CounterfactualDataset.sample(m, s, List.of("WX", "YZ"), 100, 3);
        assertEquals(a, b);
        assertEquals(a.hashCode(), b.hashCode());
        assertEquals(CounterfactualDataset.sampleChanging(m, s, List.of("WX"), 50, 4),
                CounterfactualDataset.sampleChanging(m, s, List.of("WX"), 50, 4));
    }

    @Test
    void examplesCarryTheirSourcesAndTheModelsLabels() {
        CausalModel m = model();
        List<CounterfactualExample> data = CounterfactualDataset.sample(m, DIGITS, List.of("S", "X"), 300, 1);
        assertEquals(300, data.size());
        int baseEqualsSource = 0;
        for (CounterfactualExample e : data) {
            assertEquals(List.of("S", "X"), e.intervenedVariables());
            assertEquals(List.of("S", "X"), List.copyOf(e.sourceInputs().keySet()));
            assertEquals(m.output(e.baseInputs()), e.baseOutput());
            assertEquals(m.interchangeOutput(e.baseInputs(), e.sourceInputs()), e.counterfactualOutput());
            // by hand: S from its source, X is irrelevant once S is fixed
            Map<String, Object> s = e.sourceFor("S");
            assertEquals((Integer) s.get("X") + (Integer) s.get("Y") > 5, e.counterfactualOutput());
            if (e.baseInputs().equals(e.sourceFor("S"))) {
                baseEqualsSource++;
            }
        }
        assertTrue(baseEqualsSource < 30, "base and sources are independent draws: " + baseEqualsSource);
        assertTrue(CounterfactualDataset.changedFraction(data) > 0.2);
    }

    @Test
    void sampleChangingReturnsOnlyChangingExamples() {
        List<CounterfactualExample> data = CounterfactualDataset.sampleChanging(model(), DIGITS, List.of("S"), 250, 2, 10_000);
        assertEquals(250, data.size());
        for (CounterfactualExample e : data) {
            assertTrue(e.changed());
            assertNotEquals(e.baseOutput(), e.counterfactualOutput());
        }
        assertEquals(1.0, CounterfactualDataset.changedFraction(data));
    }

    @Test
    void sampleChangingGivesUpWithAClearErrorWhenTheOutputNeverChanges() {
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> CounterfactualDataset.sampleChanging(model(), DIGITS, List.of("U"), 10, 2, 500));
        assertTrue(e.getMessage().contains("only 0 of 10"), e.getMessage());
        assertTrue(e.getMessage().contains("500 draws"), e.getMessage());
        assertTrue(e.getMessage().contains("[U]"), e.getMessage());
        assertTrue(e.getMessage().contains("raise maxTries"), e.getMessage());
        assertThrows(IllegalStateException.class,
                () -> CounterfactualDataset.sampleChanging(model(), DIGITS, List.of("U"), 10, 2));
    }

    @Test
    void argumentsAreValidated() {
        CausalModel m = model();
        IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class,
                () -> CounterfactualDataset.sample(m, DIGITS, List.of("Q"), 5, 0));
        assertTrue(unknown.getMessage().contains("'Q'"), unknown.getMessage());
        assertThrows(IllegalArgumentException.class, () -> CounterfactualDataset.sample(m, DIGITS, List.of(), 5, 0));
        assertThrows(IllegalArgumentException.class, () -> CounterfactualDataset.sample(m, DIGITS, List.of("S", "S"), 5, 0));
        assertThrows(IllegalArgumentException.class, () -> CounterfactualDataset.sample(m, DIGITS, List.of("S"), -1, 0));
        assertThrows(IllegalArgumentException.class,
                () -> CounterfactualDataset.sampleChanging(m, DIGITS, List.of("S"), 10, 0, 5));
        IllegalArgumentException badSampler = assertThrows(IllegalArgumentException.class,
                () -> CounterfactualDataset.sample(m, r -> Map.of("X", 1), List.of("S"), 5, 0));
        assertTrue(badSampler.getMessage().contains("missing [Y]"), badSampler.getMessage());
        assertEquals(List.of(), CounterfactualDataset.sample(m, DIGITS, List.of("S"), 0, 0));
    }

    @Test
    void multiOutputModelsLabelWithTheMapOfOutputs() {
        CausalModel m = CausalModel.builder()
                .input("X", "Y")
                .variable("S", "X", "Y", (x, y) -> (Integer) x + (Integer) y)
                .variable("P", "X", "Y", (x, y) -> (Integer) x * (Integer) y)
                .output("S", "P")
                .build();
        CounterfactualExample e = CounterfactualDataset.sample(m, DIGITS, List.of("X"), 1, 9).get(0);
        assertEquals(m.outputs(e.baseInputs()), e.baseOutput());
        assertEquals(List.of("S", "P"), List.copyOf(((Map<?, ?>) e.counterfactualOutput()).keySet()));
    }

    @Test
    void theExampleRecordChecksItsVariablesAndIsUnmodifiable() {
        Map<String, Map<String, Object>> sources = new LinkedHashMap<>();
        sources.put("S", Map.of("X", 4, "Y", 4));
        Map<String, Object> base = new LinkedHashMap<>(Map.of("X", 1, "Y", 2));
        CounterfactualExample e = new CounterfactualExample(base, sources, List.of("S"), false, true);
        assertTrue(e.changed());
        base.put("X", 99);                                            // the record copied the map
        assertEquals(1, e.baseInputs().get("X"));
        assertThrows(UnsupportedOperationException.class, () -> e.baseInputs().put("X", 0));
        assertThrows(UnsupportedOperationException.class, () -> e.sourceFor("S").put("X", 0));
        assertThrows(IllegalArgumentException.class, () -> e.sourceFor("X"));
        assertThrows(IllegalArgumentException.class,
                () -> new CounterfactualExample(base, sources, List.of("T"), false, true));
        // equality compares array values element-wise
        CounterfactualExample a1 = new CounterfactualExample(Map.of("v", new double[] {1, 2}),
                Map.of("v", Map.of("v", new double[] {3})), List.of("v"), new double[] {1}, new double[] {1});
        CounterfactualExample a2 = new CounterfactualExample(Map.of("v", new double[] {1, 2}),
                Map.of("v", Map.of("v", new double[] {3})), List.of("v"), new double[] {1}, new double[] {1});
        assertEquals(a1, a2);
        assertEquals(a1.hashCode(), a2.hashCode());
        assertTrue(!a1.changed());
        assertTrue(a1.toString().contains("[1.0, 2.0]"), a1.toString());
    }
}
