package dev.jreft.hooks.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A second JVM on the test class path, for what one JVM cannot test on itself: a native crash, a kill in the
 * middle of a write. The class path travels in {@code CLASSPATH}, so the command line holds only what a test puts
 * there.
 */
public final class JavaProcess {
    public record Result(int exitCode, String out, String err) {
    }

    private JavaProcess() {
    }

    /** {@code java <main> <args>} with the test class path and no {@code ORT_DISABLE_TELEMETRY} inherited. */
    public static ProcessBuilder builder(Class<?> main, List<String> args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-Xmx1g");
        cmd.add(main.getName());
        cmd.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().put("CLASSPATH", System.getProperty("java.class.path"));
        pb.environment().remove("ORT_DISABLE_TELEMETRY");
        return pb;
    }

    /** Runs to the end (at most {@code timeoutSeconds}) and returns the exit code, stdout and stderr. */
    public static Result run(ProcessBuilder pb, long timeoutSeconds) throws IOException, InterruptedException {
        Path out = Files.createTempFile("jreft-proc", ".out");
        Path err = Files.createTempFile("jreft-proc", ".err");
        try {
            Process p = pb.redirectOutput(out.toFile()).redirectError(err.toFile()).start();
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.destroyForcibly().waitFor();
                throw new AssertionError("subprocess " + pb.command() + " did not finish in " + timeoutSeconds + " s");
            }
            return new Result(p.exitValue(), Files.readString(out), Files.readString(err));
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        }
    }
}
