package dev.jreft.hooks.io;

import java.io.PrintStream;
import java.util.function.Consumer;

/**
 * Things a user should know that do not stop the work (a text cut to the model's length): one line each on standard
 * error, {@code jreft: warning: ...}. Tests and notebooks may send them elsewhere.
 */
public final class Warnings {
    private static volatile Consumer<String> sink = Warnings::toStderr;

    private Warnings() {
    }

    public static void warn(String message) {
        sink.accept(message);
    }

    /** Sends warnings to {@code consumer} (null: back to standard error); returns the previous sink. */
    public static Consumer<String> sendTo(Consumer<String> consumer) {
        Consumer<String> old = sink;
        sink = consumer == null ? Warnings::toStderr : consumer;
        return old;
    }

    private static void toStderr(String message) {
        PrintStream err = System.err;
        err.println("jreft: warning: " + message);
    }
}
