package dev.jreft.hooks.io;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * What an interrupted run must still put away (its staging folder, its lock file) when the JVM is asked to stop
 * (SIGTERM, SIGINT, {@code timeout}): each open output registers here and unregisters when it closes. A SIGKILL
 * cannot be caught; what it leaves, the next run on the same output removes.
 */
final class Cleanup {
    private static final Set<AutoCloseable> OPEN = ConcurrentHashMap.newKeySet();

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(Cleanup::closeAll, "jreft-cleanup"));
    }

    private Cleanup() {
    }

    static void register(AutoCloseable c) {
        OPEN.add(c);
    }

    static void unregister(AutoCloseable c) {
        OPEN.remove(c);
    }

    private static void closeAll() {
        for (AutoCloseable c : OPEN) {
            try {
                c.close();
            } catch (Exception | Error e) {
                // the JVM is going down: what cannot be closed now, the next run cleans
            }
        }
    }
}
