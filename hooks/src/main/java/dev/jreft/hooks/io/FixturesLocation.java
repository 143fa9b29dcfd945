package dev.jreft.hooks.io;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/**
 * The one setting that locates the PyTorch reference fixtures: system property {@code jreft.fixtures}, else the
 * environment variable {@code JREFT_FIXTURES}, else {@code ../shared/fixtures}.
 */
public final class FixturesLocation {
    public static final String PROPERTY = "jreft.fixtures";
    public static final String ENV = "JREFT_FIXTURES";
    public static final String DEFAULT = "../shared/fixtures";

    private FixturesLocation() {
    }

    public static Path configured() {
        String v = System.getProperty(PROPERTY);
        if (v == null || v.isBlank()) {
            v = System.getenv(ENV);
        }
        return Path.of(v == null || v.isBlank() ? DEFAULT : v);
    }

    /** The fixtures folder when it holds a manifest; empty (with the reason printed once) otherwise. */
    public static Optional<Path> find() {
        Path p = configured();
        if (Files.isRegularFile(p.resolve("manifest.json"))) {
            return Optional.of(p);
        }
        System.err.println("[jreft] reference fixtures not found at " + p.toAbsolutePath() + " (set -D" + PROPERTY
                + " or " + ENV + "): fixture tests are SKIPPED");
        return Optional.empty();
    }
}
