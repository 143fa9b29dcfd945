package dev.jreft.hooks.testing;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import dev.jreft.hooks.runtime.OrtRuntime;

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;

/** Graphs as onnxruntime's own optimiser saves them ({@code SessionOptions.setOptimizedModelFilePath}). */
public final class OrtOptimised {
    private OrtOptimised() {
    }

    /** The class-path resource {@code resource} optimised at onnxruntime's extended level, written into {@code dir}. */
    public static Path write(String resource, Path dir) throws Exception {
        Path plain = dir.resolve(resource);
        try (InputStream in = OrtOptimised.class.getResourceAsStream("/" + resource)) {
            Files.copy(in, plain);
        }
        Path out = dir.resolve("optimised-" + resource);
        OrtRuntime.shared(); // jreft's native start-up first
        try (OrtSession.SessionOptions o = new OrtSession.SessionOptions()) {
            o.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.EXTENDED_OPT);
            o.setOptimizedModelFilePath(out.toString());
            OrtEnvironment.getEnvironment().createSession(plain.toString(), o).close();
        }
        return out;
    }
}
