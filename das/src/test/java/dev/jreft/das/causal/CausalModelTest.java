package dev.jreft.das.causal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Counterfactuals of small arithmetic causal models, worked out by hand, and the builder's validation. */
class CausalModelTest {

    /** X, Y inputs; S = X + Y; O = S > 5. */
    static CausalModel sumAbove5() {
        return CausalModel.builder()
                .input("X", "Y")
                .variable("S", "X", "Y", (x, y) -> (Integer) x + (Integer) y)
                .variable("O", "S", s -> (Integer) s > 5)
                .output("O")
                .build();
    }

    /** X, Y, Z inputs; S = X + Y; T = Y * Z; D = 2 * S; O = D + T. */
    static CausalModel chain() {
        return CausalModel.builder()
                .input("X", "Y", "Z")
                .variable("S", "X", "Y", (x, y) -> (Integer) x + (Integer) y)
                .variable("T", "Y", "Z", (y, z) -> (Integer) y * (Integer) z)
                .variable("D", "S", s -> 2 * (Integer) s)
                .variable("O", List.of("D", "T"), v -> (Integer) v.get(0) + (Integer) v.get(1))
                .output("O")
                .build();
    }

    private static Map<String, Object> xy(int x, int y) {
        return Map.of("X", x, "Y", y);
    }

    private static Map<String, Object> xyz(int x, int y, int z) {
        return Map.of("X", x, "Y", y, "Z", z);
    }

    @Test
    void factualRunComputesEveryVariableInTopologicalOrder() {
        CausalModel m = sumAbove5();
        Map<String, Object> v = m.run(xy(1, 2));
        assertEquals(List.of("X", "Y", "S", "O"), List.copyOf(v.keySet()));
        assertEquals(3, v.get("S"));
        assertEquals(false, v.get("O"));
        assertEquals(false, m.output(xy(1, 2)));
        assertEquals(true, m.output(xy(3, 3)));
        assertEquals(Map.of("O", true), m.outputs(xy(3, 3)));
    }

    @Test
    void accessorsDescribeTheGraph() {
        CausalModel m = chain();
        assertEquals(List.of("X", "Y", "Z", "S", "T", "D", "O"), m.variables());
        assertEquals(List.of("X", "Y", "Z"), m.inputs());
        assertEquals(List.of("O"), m.outputs());
        assertEquals(List.of("D", "T"), m.parents("O"));
        assertEquals(List.of(), m.parents("X"));
        assertTrue(m.isInput("Z"));
        assertFalse(m.isInput("S"));
        assertThrows(IllegalArgumentException.class, () -> m.parents("nope"));
    }

    @Test
    void variablesDeclaredOutOfOrderAreEvaluatedTopologically() {
        CausalModel m = CausalModel.builder()
                .output("O")
                .variable("O", "S", s -> (Integer) s > 5)
                .variable("S", "X", "Y", (x, y) -> (Integer) x + (Integer) y)
                .input("X", "Y")
                .build();
        assertEquals(List.of("X", "Y", "S", "O"), m.variables());
        assertEquals(true, m.output(xy(4, 4)));
    }

    @Test
    void interchangingTheSumTakesItsValueFromTheSourceAndRecomputesTheOutput() {
        CausalModel m = sumAbove5();
        // base 1 + 2 = 3 -> false; source 4 + 4 = 8 -> S = 8, O = true
        Map<String, Object> v = m.interchange(xy(1, 2), Map.of("S", xy(4, 4)));
        assertEquals(1, v.get("X"));
        assertEquals(2, v.get("Y"));
        assertEquals(8, v.get("S"));
        assertEquals(true, v.get("O"));
        // a source with the same sum as the base leaves the output unchanged
        assertEquals(false, m.interchangeOutput(xy(1, 2), Map.of("S", xy(2, 1))));
        // and the reverse direction flips true -> false
        assertEquals(false, m.interchangeOutput(xy(4, 4), Map.of("S", xy(0, 1))));
    }

    @Test
    void interchangingAnInputSubstitutesTheSourceValueForThatInputOnly() {
        CausalModel m = sumAbove5();
        // base X=1, Y=2; X from source (5, 0): X=5, Y=2 stays -> S=7 -> true
        Map<String, Object> v = m.interchange(xy(1, 2), Map.of("X", xy(5, 0)));
        assertEquals(5, v.get("X"));
        assertEquals(2, v.get("Y"));
        assertEquals(7, v.get("S"));
        assertEquals(true, v.get("O"));
    }

    @Test
    void twoVariablesTakeTheirValuesFromTwoDifferentSources() {
        CausalModel m = chain();
        Map<String, Object> base = xyz(1, 1, 1);      // S=2, T=1, D=4, O=5
        assertEquals(5, m.output(base));
        Map<String, Map<String, Object>> sources = new LinkedHashMap<>();
        sources.put("S", xyz(10, 0, 7));              // S=10 there (T there would be 0)
        sources.put("T", xyz(0, 3, 4));               // T=12 there (S there would be 3)
        Map<String, Object> v = m.interchange(base, sources);
        assertEquals(10, v.get("S"));
        assertEquals(12, v.get("T"));
        assertEquals(20, v.get("D"));                 // recomputed from the intervened S
        assertEquals(32, v.get("O"));                 // 20 + 12
        assertEquals(List.of(1, 1, 1), List.of(v.get("X"), v.get("Y"), v.get("Z")));
    }

    @Test
    void downstreamVariablesFollowAnInterventionAndUnrelatedOnesKeepTheirBaseValues() {
        CausalModel m = chain();
        Map<String, Object> base = xyz(1, 2, 3);      // S=3, T=6, D=6, O=12
        Map<String, Object> v = m.interchange(base, Map.of("S", xyz(5, 5, 0)));   // S=10
        assertEquals(10, v.get("S"));
        assertEquals(6, v.get("T"));                  // T does not depend on S: base value
        assertEquals(20, v.get("D"));
        assertEquals(26, v.get("O"));
        // intervening on input Y changes both of its children and everything below them
        Map<String, Object> w = m.interchange(base, Map.of("Y", xyz(0, 4, 0)));   // X=1, Y=4, Z=3
        assertEquals(5, w.get("S"));
        assertEquals(12, w.get("T"));
        assertEquals(10, w.get("D"));
        assertEquals(22, w.get("O"));
    }

    @Test
    void aFixedVariableBelowAnotherFixedVariableKeepsItsSourceValue() {
        CausalModel m = chain();
        Map<String, Map<String, Object>> sources = new LinkedHashMap<>();
        sources.put("S", xyz(5, 5, 0));               // S=10
        sources.put("D", xyz(1, 0, 0));               // D=2 there, kept despite S=10 here
        Map<String, Object> v = m.interchange(xyz(1, 2, 3), sources);
        assertEquals(10, v.get("S"));
        assertEquals(2, v.get("D"));
        assertEquals(8, v.get("O"));                  // 2 + T(base)=6
    }

    @Test
    void oneSourceMayServeSeveralVariables() {
        CausalModel m = chain();
        Map<String, Object> src = xyz(2, 2, 2);       // S=4, T=4
        Map<String, Map<String, Object>> sources = new LinkedHashMap<>();
        sources.put("S", src);
        sources.put("T", src);
        assertEquals(12, m.interchangeOutput(xyz(0, 0, 0), sources));   // D=8, T=4
        // intervening on everything the output depends on gives the source's output
        assertEquals(m.output(src), m.interchangeOutput(xyz(9, 9, 9), Map.of("D", src, "T", src)));
    }

    @Test
    void anEmptyInterchangeIsTheFactualRun() {
        CausalModel m = chain();
        assertEquals(m.run(xyz(1, 2, 3)), m.interchange(xyz(1, 2, 3), Map.of()));
    }

    @Test
    void interveneForcesValuesDirectly() {
        CausalModel m = chain();
        Map<String, Object> v = m.intervene(xyz(1, 2, 3), Map.of("T", 100));
        assertEquals(106, v.get("O"));                // D=6 + 100
    }

    @Test
    void missingExtraAndComputedInputsAreNamed() {
        CausalModel m = sumAbove5();
        IllegalArgumentException missing = assertThrows(IllegalArgumentException.class, () -> m.run(Map.of("X", 1)));
        assertTrue(missing.getMessage().contains("missing [Y]"), missing.getMessage());
        assertTrue(missing.getMessage().contains("[X, Y]"), missing.getMessage());
        IllegalArgumentException extra = assertThrows(IllegalArgumentException.class,
                () -> m.run(Map.of("X", 1, "Y", 2, "W", 3)));
        assertTrue(extra.getMessage().contains("unknown [W]"), extra.getMessage());
        IllegalArgumentException computed = assertThrows(IllegalArgumentException.class,
                () -> m.run(Map.of("X", 1, "Y", 2, "S", 3)));
        assertTrue(computed.getMessage().contains("[S] computed"), computed.getMessage());
        IllegalArgumentException badSource = assertThrows(IllegalArgumentException.class,
                () -> m.interchange(xy(1, 2), Map.of("S", Map.of("X", 1))));
        assertTrue(badSource.getMessage().contains("source inputs for 'S'"), badSource.getMessage());
        assertTrue(badSource.getMessage().contains("missing [Y]"), badSource.getMessage());
        IllegalArgumentException unknownVar = assertThrows(IllegalArgumentException.class,
                () -> m.interchange(xy(1, 2), Map.of("Q", xy(1, 2))));
        assertTrue(unknownVar.getMessage().contains("'Q'"), unknownVar.getMessage());
    }

    @Test
    void aFailingMechanismIsNamedWithItsParentValues() {
        CausalModel m = sumAbove5();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> m.run(Map.of("X", "one", "Y", 2)));
        assertTrue(e.getMessage().contains("mechanism of 'S'"), e.getMessage());
        assertTrue(e.getMessage().contains("X=one"), e.getMessage());
        assertTrue(e.getCause() instanceof ClassCastException);
    }

    @Test
    void multiOutputModelsReportAllOutputsAndRefuseTheSingleOutputShortcut() {
        CausalModel m = CausalModel.builder()
                .input("X", "Y")
                .variable("S", "X", "Y", (x, y) -> (Integer) x + (Integer) y)
                .variable("P", "X", "Y", (x, y) -> (Integer) x * (Integer) y)
                .output("S", "P")
                .build();
        assertEquals(List.of("S", "P"), List.copyOf(m.outputs(xy(2, 3)).keySet()));
        assertEquals(Map.of("S", 5, "P", 6), m.outputs(xy(2, 3)));
        assertEquals(Map.of("S", 5, "P", 6), m.label(m.run(xy(2, 3))));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> m.output(xy(2, 3)));
        assertTrue(e.getMessage().contains("[S, P]"), e.getMessage());
    }

    @Test
    void aCycleIsRejectedAndSpelledOut() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> CausalModel.builder()
                .input("X")
                .variable("A", "X", "C", (x, c) -> x)
                .variable("B", "A", a -> a)
                .variable("C", "B", b -> b)
                .variable("O", "A", a -> a)
                .output("O")
                .build());
        assertTrue(e.getMessage().contains("cycle"), e.getMessage());
        assertTrue(e.getMessage().contains("A -> B -> C -> A"), e.getMessage());
        IllegalArgumentException self = assertThrows(IllegalArgumentException.class, () -> CausalModel.builder()
                .input("X").variable("S", "S", "X", (s, x) -> x).output("S").build());
        assertTrue(self.getMessage().contains("S -> S"), self.getMessage());
    }

    @Test
    void anUnknownParentIsNamedWithTheDeclaredVariables() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> CausalModel.builder()
                .input("X", "Y")
                .variable("S", "X", "Z", (x, z) -> x)
                .output("S")
                .build());
        assertTrue(e.getMessage().contains("'S'"), e.getMessage());
        assertTrue(e.getMessage().contains("unknown parent 'Z'"), e.getMessage());
        assertTrue(e.getMessage().contains("[X, Y, S]"), e.getMessage());
    }

    @Test
    void aDuplicateNameIsRejected() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> CausalModel.builder()
                .input("X", "Y")
                .variable("X", "Y", y -> y));
        assertTrue(e.getMessage().contains("'X' is declared twice"), e.getMessage());
        assertTrue(e.getMessage().contains("an input"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> CausalModel.builder().input("X", "X"));
        assertThrows(IllegalArgumentException.class, () -> CausalModel.builder().input("X").output("X", "X"));
    }

    @Test
    void aMissingOrUnknownOutputIsRejected() {
        IllegalArgumentException none = assertThrows(IllegalArgumentException.class, () -> CausalModel.builder()
                .input("X").variable("S", "X", x -> x).build());
        assertTrue(none.getMessage().contains("no output"), none.getMessage());
        assertTrue(none.getMessage().contains("[X, S]"), none.getMessage());
        IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class, () -> CausalModel.builder()
                .input("X").variable("S", "X", x -> x).output("Q").build());
        assertTrue(unknown.getMessage().contains("output 'Q'"), unknown.getMessage());
    }

    @Test
    void aComputedVariableWithoutParentsOrANullResultIsRejected() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> CausalModel.builder()
                .variable("K", List.of(), v -> 1));
        assertTrue(e.getMessage().contains("input(\"K\")"), e.getMessage());
        CausalModel m = CausalModel.builder().input("X").variable("S", "X", x -> null).output("S").build();
        IllegalArgumentException n = assertThrows(IllegalArgumentException.class, () -> m.run(Map.of("X", 1)));
        assertTrue(n.getMessage().contains("returned null"), n.getMessage());
    }

    @Test
    void resultsAreUnmodifiable() {
        CausalModel m = sumAbove5();
        Map<String, Object> v = m.run(xy(1, 2));
        assertThrows(UnsupportedOperationException.class, () -> v.put("S", 0));
        assertThrows(UnsupportedOperationException.class, () -> m.variables().add("Q"));
        assertSame(m.inputs(), m.inputs());
        assertTrue(m.toString().contains("S <- [X, Y]"), m.toString());
    }
}
