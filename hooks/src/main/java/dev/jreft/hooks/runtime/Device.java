package dev.jreft.hooks.runtime;

import java.util.Locale;

/** Where ORT runs a graph. CPU is the default; CUDA is asked for and falls back to CPU when unavailable. */
public enum Device {
    CPU, CUDA;

    /** From the {@code jreft.device} system property or the {@code JREFT_DEVICE} variable; CPU when unset. */
    public static Device fromEnvironment() {
        String v = System.getProperty("jreft.device", System.getenv().getOrDefault("JREFT_DEVICE", "cpu"));
        return parse(v);
    }

    public static Device parse(String v) {
        return switch (v.trim().toLowerCase(Locale.ROOT)) {
            case "cpu" -> CPU;
            case "cuda", "gpu" -> CUDA;
            default -> throw new IllegalArgumentException("unknown device '" + v + "' (valid: cpu, cuda)");
        };
    }
}
