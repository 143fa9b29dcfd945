package dev.jreft.hooks.runtime;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The ORT environment and a cache of sessions keyed by (graph fingerprint, specialised shapes, options). A new
 * graph variant builds one session; new positions, sources or parameter values are inputs and reuse it.
 */
public final class OrtRuntime implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger("jreft.runtime");
    private static OrtRuntime shared;

    /**
     * ORT 1.29's native initialisation crashes the JVM (SIGSEGV) when one command-line argument of the process is
     * longer than about 4 KB, typically a long {@code -cp} list. Checked before ORT loads, so users get a message.
     */
    static final int MAX_ARGUMENT = 4000;

    private final OrtEnvironment env = environment();
    private final Device requested;
    private Device effective;
    private final int threads;
    private final Map<String, OrtSession> sessions;

    public OrtRuntime(Device device, int threads, int maxSessions) {
        this.requested = device;
        this.effective = device;
        this.threads = threads;
        this.sessions = new LinkedHashMap<>(16, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<String, OrtSession> eldest) {
                if (size() > maxSessions) {
                    closeQuietly(eldest.getValue());
                    return true;
                }
                return false;
            }
        };
    }

    private static OrtEnvironment environment() {
        java.nio.file.Path cmdline = java.nio.file.Path.of("/proc/self/cmdline");
        if (java.nio.file.Files.isReadable(cmdline)) {
            try {
                for (String arg : new String(java.nio.file.Files.readAllBytes(cmdline)).split("\0")) {
                    if (arg.length() > MAX_ARGUMENT) {
                        throw new IllegalStateException("a command-line argument of this JVM is " + arg.length()
                                + " characters long (" + arg.substring(0, 40) + "...); ONNX Runtime 1.29 crashes"
                                + " the JVM when one exceeds about 4000. Put a long class path in a jar manifest"
                                + " (as ./jreft does) instead of a -cp list.");
                    }
                }
            } catch (java.io.IOException ignored) {
                // not on Linux /proc: nothing to check
            }
        }
        return OrtEnvironment.getEnvironment();
    }

    /** The process-wide runtime, on the device named by the environment (see {@link Device#fromEnvironment}). */
    public static synchronized OrtRuntime shared() {
        if (shared == null) {
            shared = new OrtRuntime(Device.fromEnvironment(), 0, 24);
        }
        return shared;
    }

    /** Replaces the process-wide runtime (for example from a CLI {@code --device} flag). */
    public static synchronized void useDevice(Device device) {
        if (shared != null && shared.requested == device) {
            return;
        }
        if (shared != null) {
            shared.close();
        }
        shared = new OrtRuntime(device, 0, 24);
    }

    public OrtEnvironment env() {
        return env;
    }

    /** The device sessions actually run on (CPU after a CUDA fallback). */
    public synchronized Device device() {
        return effective;
    }

    /** A session for {@code model}, built once per key. {@code key} must identify the bytes (a fingerprint). */
    public synchronized OrtSession session(String key, java.util.function.Supplier<byte[]> model) {
        OrtSession s = sessions.get(key);
        if (s != null) {
            return s;
        }
        try {
            s = env.createSession(model.get(), options());
        } catch (OrtException e) {
            throw new IllegalStateException("ONNX Runtime could not load the graph: " + e.getMessage(), e);
        }
        sessions.put(key, s);
        return s;
    }

    public String optionsKey() {
        return effective + "/t" + threads + "/all";
    }

    private OrtSession.SessionOptions options() throws OrtException {
        OrtSession.SessionOptions o = new OrtSession.SessionOptions();
        o.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
        if (threads > 0) {
            o.setIntraOpNumThreads(threads);
        }
        if (effective == Device.CUDA) {
            try {
                o.addCUDA(0);
            } catch (OrtException | UnsatisfiedLinkError | RuntimeException e) {
                LOG.log(System.Logger.Level.WARNING, "CUDA requested but not available (" + e.getMessage()
                        + "); running on CPU");
                effective = Device.CPU;
            }
        }
        return o;
    }

    private static void closeQuietly(OrtSession s) {
        try {
            s.close();
        } catch (OrtException ignored) {
            // closing a session that failed to run is best effort
        }
    }

    @Override
    public synchronized void close() {
        sessions.values().forEach(OrtRuntime::closeQuietly);
        sessions.clear();
    }
}
