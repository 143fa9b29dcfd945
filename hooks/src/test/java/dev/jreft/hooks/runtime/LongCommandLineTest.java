package dev.jreft.hooks.runtime;

import dev.jreft.hooks.testing.JavaProcess;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * ONNX Runtime 1.29's telemetry client crashed the JVM (SIGSEGV, exit 139) on command lines over about 4 KB, and
 * wrote under ~/.cache and /tmp. A JVM with a 12 KB command line, started without ORT_DISABLE_TELEMETRY in its
 * environment, must run MiniLM and write nothing into its home.
 */
class LongCommandLineTest {
    /** Run in the second JVM: loads MiniLM, tokenises its arguments and runs them. */
    public static void main(String[] args) {
        HookedModel m = HookedModel.minilm();
        Map<String, ?> out = m.run(m.tokenize(List.of(args[0].substring(0, 200), "a short one")));
        System.out.println("ok " + out.keySet());
    }

    @Test
    void aLongCommandLineRunsAndOrtWritesNothingIntoHome(@TempDir Path tmp) throws Exception {
        String word = "word ".repeat(800); // 4,000 characters
        ProcessBuilder pb = JavaProcess.builder(LongCommandLineTest.class, List.of(word, word, word));
        Path home = Files.createDirectories(tmp.resolve("home"));
        pb.environment().put("HOME", home.toString());
        pb.environment().put("XDG_CACHE_HOME", home.resolve(".cache").toString());
        Path temp = Files.createDirectories(tmp.resolve("temp"));
        pb.command().add(1, "-Djava.io.tmpdir=" + temp);
        JavaProcess.Result r = JavaProcess.run(pb, 120);
        assertEquals(0, r.exitCode(), "exit code (139 = the native crash); stderr: " + r.err());
        assertTrue(r.out().startsWith("ok [last_hidden_state"), r.out());
        assertFalse(Files.exists(home.resolve(".cache/Microsoft")), "ORT telemetry wrote into the user's home");
        try (var left = Files.list(temp)) {
            assertEquals(List.of(), left.map(p -> p.getFileName().toString()).filter(n -> n.startsWith("onnxruntime"))
                    .toList(), "ORT's loader left a folder in the temp directory");
        }
        try (var cached = Files.walk(home.resolve(".cache/jreft/native"))) {
            assertTrue(cached.anyMatch(p -> p.getFileName().toString().equals("libonnxruntime.so")),
                    "the native libraries are cached once per user");
        }
    }
}
