package dev.jreft.hooks.runtime;

import java.util.Locale;

/** Where ORT runs a graph. CPU is the default; CUDA is asked for and falls back to CPU when unavailable. */
public enum Device {
    CPU, CUDA;

    /** From the {@code jreft.device} system property or the {@code JREFT_DEVICE} variable; CPU when unset. */
    public static Device fromEnvironment() {
        String property = System.getProperty("jreft.device");
        String env = System.getenv("JREFT_DEVICE");
        String v = property != null ? property : env == null || env.isBlank() ? "cpu" : env; // empty: unset
        try {
            return parse(v);
        } catch (IllegalArgumentException e) {
            throw new dev.jreft.hooks.io.ConfigException(property != null ? "-Djreft.device" : "JREFT_DEVICE", v,
                    "cpu, cuda");
        }
    }

    public static Device parse(String v) {
        return switch (v.trim().toLowerCase(Locale.ROOT)) {
            case "cpu" -> CPU;
            case "cuda", "gpu" -> CUDA;
            default -> throw new dev.jreft.hooks.io.ConfigException("device", v, "cpu, cuda (gpu is another name"
                    + " for cuda)");
        };
    }
}
