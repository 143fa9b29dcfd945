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
        var runs = List.of(new MethodComparison.Run("lora", 42, 0.90, 0.91, 1000, 10, 50),
                new MethodComparison.Run("lora", 43, 0.80, 0.85, 1000, 20, 70));
        MethodComparison.Row row = MethodComparison.summarise(lora, runs, 100_000, 5_000_000);
        assertEquals(0.85, row.meanAccuracy(), 1e-12);
        assertEquals(Math.sqrt(0.005), row.sdAccuracy(), 1e-12); // sample sd: ((0.05² + 0.05²) / 1)^½
        assertEquals(1.0, row.percentOfModel(), 1e-12);
        assertEquals(15, row.trainSeconds(), 1e-12);
        String md = MethodComparison.markdown(List.of(row), 2);
        assertTrue(md.contains("| LoRA r=8 (query, value) | 1,000 | 1.000% | 0.8500 ± 0.0707 | 0.004 | 15.0 s | 60.0 | 5 MB |"),
                md);
        String csv = MethodComparison.csv(List.of(row));
        assertTrue(csv.lines().skip(1).findFirst().orElseThrow().endsWith(",\"0.9000 0.8000\""), csv);
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
