package dev.jreft.analysis;

import dev.jreft.hooks.io.ConfigException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The comparison table's arithmetic and files (the training runs themselves are the trainer's tests). */
class MethodComparisonTest {
    @Test
    void rowsSummariseTheSeedsAsMeanAndSampleSd(@TempDir Path tmp) throws Exception {
        MethodComparison.Method lora = MethodComparison.methods().get("lora");
        var runs = List.of(new MethodComparison.Run("lora", 42, 0.90, 0.91, 1000, 10, 50, 2.0),
                new MethodComparison.Run("lora", 43, 0.80, 0.85, 1000, 20, 70, 3.0));
        MethodComparison.Row row = MethodComparison.summarise(lora, runs, 100_000, 5_000_000).on("minilm-q", 23_000_000);
        assertEquals(0.85, row.meanAccuracy(), 1e-12);
        assertEquals(Math.sqrt(0.005), row.sdAccuracy(), 1e-12); // sample sd: ((0.05² + 0.05²) / 1)^½
        assertEquals(1.0, row.percentOfModel(), 1e-12);
        assertEquals(15, row.trainSeconds(), 1e-12);
        String md = MethodComparison.markdown(List.of(row), 2);
        assertTrue(md.contains("| LoRA r=8 (query, value) | minilm-q (23.0 MB) | 1,000 | 1.000% | 0.8500 ± 0.0707 | 0.004 | 15.0 s | 60.0"
                + " | 2.50 ms | 5 MB |"),
                md);
        String csv = MethodComparison.csv(List.of(row));
        assertTrue(csv.lines().skip(1).findFirst().orElseThrow().endsWith(",\"0.9000 0.8000\",\"\",minilm-q,23000000,2.500"),
                csv);
        String searched = MethodComparison.markdown(List.of(row.searched("0.004: 0.9100")), 2);
        assertTrue(searched.contains("- LoRA r=8 (query, value): 0.004: 0.9100"), searched);
        Path png = tmp.resolve("plot.png");
        MethodComparison.plot(List.of(row), png, "test");
        byte[] head = java.util.Arrays.copyOf(Files.readAllBytes(png), 4);
        assertEquals("\u0089PNG", new String(head, java.nio.charset.StandardCharsets.ISO_8859_1));
    }

    /** The search keeps the rate with the best dev accuracy, and the documented one among equals. */
    @Test
    void theSearchPicksTheBestDevAccuracy() {
        assertEquals(3e-3, MethodComparison.bestRate(List.of(1e-3, 3e-3, 9e-3), List.of(0.90, 0.92, 0.91), 3e-3));
        assertEquals(9e-3, MethodComparison.bestRate(List.of(1e-3, 3e-3, 9e-3), List.of(0.90, 0.91, 0.92), 3e-3));
        assertEquals(3e-3, MethodComparison.bestRate(List.of(1e-3, 3e-3, 9e-3), List.of(0.92, 0.92, 0.92), 3e-3));
        assertEquals(1e-3, MethodComparison.bestRate(List.of(1e-3, 3e-3, 9e-3), List.of(0.93, 0.92, 0.93), 3e-3));
        var lora = MethodComparison.methods().get("lora");
        assertEquals(List.of(4e-3 / 3, 4e-3, 1.2e-2), MethodComparison.searchGrid(lora));
    }

    /** The search steps past its grid while the best dev accuracy is at an end, twice at most, and stops inside. */
    @Test
    void theSearchExtendsItsGridTowardsTheBestRate() {
        var lora = MethodComparison.methods().get("lora"); // documented 4e-3: grid 4e-3/3, 4e-3, 1.2e-2
        java.util.function.Function<java.util.function.DoubleUnaryOperator, MethodComparison.Search> search = dev ->
                MethodComparison.search(lora, 42, lr -> new MethodComparison.Run("lora", 42, 0.5, dev.applyAsDouble(lr),
                        10, 1, 1, 1), new java.io.PrintStream(java.io.OutputStream.nullOutputStream()));
        // dev accuracy rising with the rate: two steps up, to 1.08e-1, then it stops however high the best is
        var rising = search.apply(lr -> lr);
        assertEquals(5, rising.rates().size());
        assertEquals(4e-3 * 27, rising.chosen().learningRate(), 1e-12);
        assertEquals(4e-3 * 27, rising.rates().get(4), 1e-12);
        // peaked at 4e-3 / 9: two steps down (the first lands on the peak, still at the end), then inside
        var low = search.apply(lr -> -Math.abs(Math.log(lr / (4e-3 / 9))));
        assertEquals(5, low.rates().size());
        assertEquals(4e-3 / 9, low.chosen().learningRate(), 1e-12);
        assertEquals(4e-3 / 27, low.rates().get(0), 1e-12); // ascending
        // peaked at 3 × 4e-3 = the grid's top: one step up shows it is the peak
        var top = search.apply(lr -> -Math.abs(Math.log(lr / 1.2e-2)));
        assertEquals(4, top.rates().size());
        assertEquals(1.2e-2, top.chosen().learningRate(), 1e-12);
        // peaked inside the first grid: three runs
        var inside = search.apply(lr -> -Math.abs(Math.log(lr / 4e-3)));
        assertEquals(List.of(4e-3 / 3, 4e-3, 1.2e-2), inside.rates());
        assertEquals(0.5, inside.chosenRun().testAccuracy()); // the chosen run is kept for the table
        assertTrue(inside.trace().startsWith("0.00133: "), inside.trace());
    }

    @Test
    void theTwelveMethodsAreKnownAndOthersAreOneLineErrors() {
        assertEquals(List.of("probe", "full", "bitfit", "lora", "dora", "adapter", "ia3", "prefix", "prompt",
                "ptuning", "direft", "loreft"), List.copyOf(MethodComparison.methods().keySet()));
        var e = assertThrows(ConfigException.class, () -> MethodComparison.pick(List.of("lora", "qlora"), "--methods"));
        assertTrue(e.getMessage().startsWith("--methods: found 'qlora'; valid: probe, full,"), e.getMessage());
        var twice = assertThrows(ConfigException.class, () -> MethodComparison.pick(List.of("lora", "lora"),
                "--methods"));
        assertTrue(twice.getMessage().contains("each method once"), twice.getMessage());
    }
}
