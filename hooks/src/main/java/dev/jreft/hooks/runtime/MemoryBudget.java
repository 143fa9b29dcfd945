package dev.jreft.hooks.runtime;

import dev.jreft.hooks.discovery.ModelConfig;
import dev.jreft.hooks.io.ConfigException;

import java.lang.management.ManagementFactory;
import java.util.Locale;

/**
 * Refuses, before it starts, a run whose tensors cannot fit in this machine's memory. Past that point the kernel's
 * out-of-memory killer ends the process with no message at all (exit 137), after minutes of work.
 *
 * <p>The estimates are deliberately simple, from the model's sizes: per token and layer, a transformer holds about a
 * dozen hidden-sized and two MLP-sized float vectors, plus its attention scores (heads × sequence); inference keeps
 * about one layer alive at a time, training (the backward graph) keeps every layer's. A run is refused when its
 * estimate passes half the memory the JVM sees (the machine's, or the container's limit).
 */
public final class MemoryBudget {
    private MemoryBudget() {
    }

    /** Bytes one layer holds for {@code batch} sequences of {@code seq} tokens. */
    static long perLayer(ModelConfig c, long batch, long seq) {
        long perToken = 4L * (12 * c.hidden() + 2 * Math.max(c.mlpWidth(), c.hidden())) + 4L * 4 * c.heads() * seq;
        return batch * seq * perToken;
    }

    /** Peak bytes of an inference run (one layer alive at a time, with a margin of two). */
    public static long inference(ModelConfig c, long batch, long seq) {
        return 2 * perLayer(c, batch, seq);
    }

    /** Peak bytes of a training step: the backward graph keeps every layer's activations. */
    public static long training(ModelConfig c, long batch, long seq) {
        return Math.max(1, c.layers()) * perLayer(c, batch, seq) + inference(c, batch, seq);
    }

    /** Half the memory the JVM's host (or container) has. */
    public static long budget() {
        long total;
        try {
            total = ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
                    .getTotalMemorySize();
        } catch (ClassCastException | UnsupportedOperationException e) {
            total = Runtime.getRuntime().maxMemory() * 4;
        }
        return total / 2;
    }

    /**
     * Throws when {@code bytes} exceed the budget: {@code field} is what to change (a setting, an option),
     * {@code what} describes the run, {@code valid} what would fit.
     */
    public static void check(String field, Object found, long bytes, String what, String valid) {
        long budget = budget();
        if (bytes > budget) {
            throw new ConfigException(field, found, valid + " (" + what + " would hold about " + gib(bytes)
                    + " of tensors; half this machine's memory is " + gib(budget) + ")");
        }
    }

    static String gib(long bytes) {
        return String.format(Locale.ROOT, "%.1f GiB", bytes / (double) (1L << 30));
    }
}
