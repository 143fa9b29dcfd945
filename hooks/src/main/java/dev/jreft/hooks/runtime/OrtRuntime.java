package dev.jreft.hooks.runtime;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtLoggingLevel;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.jreft.hooks.graph.OnnxGraph;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The ORT environment and a cache of sessions keyed by (graph fingerprint, specialised shapes, options). A new
 * graph variant builds one session; new positions, sources or parameter values are inputs and reuse it.
 */
public final class OrtRuntime implements AutoCloseable {
    private static OrtRuntime shared;

    private final OrtEnvironment env = environment();
    private final Device requested;
    private Device effective;
    private final Map<String, OrtSession> sessions;
    /** The shared initializers each cached session uses, released when it closes. */
    private final Map<OrtSession, SharedInitializers.Lease> leases = new java.util.IdentityHashMap<>();

    public OrtRuntime(Device device, int maxSessions) {
        this.requested = device;
        this.effective = device;
        this.sessions = new LinkedHashMap<>(16, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<String, OrtSession> eldest) {
                if (size() > maxSessions) {
                    closeQuietly(eldest.getValue());
                    release(eldest.getValue());
                    return true;
                }
                return false;
            }
        };
    }

    /**
     * The ORT environment, created after {@link NativeStartup#prepare}. ORT's own log is limited to fatal messages:
     * every failure reaches the caller as an exception that jreft words itself, and ORT's console lines (kernel
     * names, source paths) only repeat it. {@code JREFT_ORT_LOG=warning} (or verbose, info, error) shows them.
     */
    private static OrtEnvironment environment;

    /** System property: the shared pool's threads spin while idle (default true; false lets them sleep). */
    public static final String SPIN = "jreft.ort.spin";

    private static synchronized OrtEnvironment environment() {
        if (environment != null) {
            return environment; // ORT allows one environment per process, and its thread pool is set once
        }
        NativeStartup.prepare();
        // One intra-op thread pool for every session. Per-session pools spinning after each run stole the cores the
        // next session needed (a training step runs the frozen prefix, then the backward graph: a third slower on 2
        // cores). The one shared pool's threads spin between ops and runs: they pick up the next op at once instead
        // of being woken for it (hundreds of ops a step). On 2 cores, MiniLM 16 x 32, 4 runs each way in turn: the
        // plain forward 59-63 ms against 65-70 asleep, the LoRA step 148-155 against 163-173, LoReFT's 123-128
        // against 128-137. -Djreft.ort.spin=false lets them sleep (a machine shared with other busy work).
        try (OrtEnvironment.ThreadingOptions threads = new OrtEnvironment.ThreadingOptions()) {
            threads.setGlobalSpinControl(dev.jreft.hooks.io.SystemSettings.flag(SPIN, true));
            // when another library created the environment first, ORT keeps that one (and its level)
            environment = OrtEnvironment.getEnvironment(logLevel(System.getenv("JREFT_ORT_LOG")), "jreft", threads);
            return environment;
        } catch (OrtException e) {
            throw new IllegalStateException("ONNX Runtime could not start: " + e.getMessage(), e);
        }
    }

    static OrtLoggingLevel logLevel(String name) {
        if (name == null || name.isBlank()) {
            return OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL;
        }
        return switch (name.trim().toLowerCase(java.util.Locale.ROOT)) {
            case "verbose" -> OrtLoggingLevel.ORT_LOGGING_LEVEL_VERBOSE;
            case "info" -> OrtLoggingLevel.ORT_LOGGING_LEVEL_INFO;
            case "warning" -> OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING;
            case "error" -> OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR;
            case "fatal" -> OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL;
            default -> throw new IllegalArgumentException("JREFT_ORT_LOG: found '" + name + "'; valid: verbose, info,"
                    + " warning, error, fatal");
        };
    }

    /** The process-wide runtime, on the device named by the environment (see {@link Device#fromEnvironment}). */
    public static synchronized OrtRuntime shared() {
        if (shared == null) {
            shared = new OrtRuntime(Device.fromEnvironment(), 24);
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
        shared = new OrtRuntime(device, 24);
    }

    public OrtEnvironment env() {
        return env;
    }

    /** The device sessions actually run on (CPU after a CUDA fallback). */
    public synchronized Device device() {
        return effective;
    }

    /**
     * A session for {@code graph}, built once per key ({@code key} must identify the graph: a fingerprint). Its large
     * initializers are shared with every other session that holds the same values ({@link SharedInitializers}), so
     * a graph variant costs its own weights only, not the model's again. Backward graphs get the same options as
     * forward ones: ORT prepacks their weights and folds their {@code Transpose(W)} into constants, which costs
     * memory (MiniLM LoRA's peak RSS: about 600 MB against 580 MB without either) and saves time (its step: 149
     * against 165 ms).
     */
    public synchronized OrtSession session(String key, OnnxGraph graph) {
        OrtSession s = sessions.get(key);
        if (s != null) {
            return s;
        }
        SharedInitializers.Lease lease = SharedInitializers.lease(env, graph);
        try (OrtSession.SessionOptions o = options()) {
            lease.addTo(o);
            s = env.createSession(lease.model(), o);
        } catch (OrtException | RuntimeException e) {
            lease.close();
            if (e instanceof RuntimeException r) {
                throw r;
            }
            throw new IllegalStateException("ONNX Runtime could not load the graph: " + e.getMessage(), e);
        }
        leases.put(s, lease);
        sessions.put(key, s);
        NativeMemory.trim(); // what building it allocated and freed (ORT's parse, its optimisers' copies)
        return s;
    }

    /** A session used once and closed by the caller (shape probing, specialisation), sharing initializers. */
    public static final class Transient implements AutoCloseable {
        private final OrtSession session;
        private final SharedInitializers.Lease lease;

        private Transient(OrtSession session, SharedInitializers.Lease lease) {
            this.session = session;
            this.lease = lease;
        }

        public OrtSession session() {
            return session;
        }

        @Override
        public void close() throws OrtException {
            try {
                session.close();
            } finally {
                lease.close();
                NativeMemory.trim();
            }
        }
    }

    /**
     * A session for {@code graph} with the caller's {@code options} (which it keeps), not cached. It does not
     * prepack weights: that copies every MatMul weight into the session, for runs it will never make.
     */
    public Transient open(OnnxGraph graph, OrtSession.SessionOptions options) throws OrtException {
        SharedInitializers.Lease lease = SharedInitializers.lease(env, graph);
        try {
            lease.addTo(options);
            options.addConfigEntry("session.disable_prepacking", "1");
            return new Transient(env.createSession(lease.model(), options), lease);
        } catch (OrtException | RuntimeException e) {
            lease.close();
            throw e;
        }
    }

    private void release(OrtSession s) {
        SharedInitializers.Lease lease = leases.remove(s);
        if (lease != null) {
            lease.close();
        }
    }

    public String optionsKey() {
        return effective + "/all";
    }

    /** ORT's name of its MatMul + Add -> Gemm fusion, disabled in every session and in specialisation. */
    static final String MATMUL_ADD_FUSION = "MatMulAddFusion";

    /** Sessions made so far, naming their profiles. */
    private int profiled;

    private OrtSession.SessionOptions options() throws OrtException {
        OrtSession.SessionOptions o = new OrtSession.SessionOptions();
        o.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
        // MatMul + Add stay two kernels: ORT fuses them into Gemm once shapes are static (specialised and backward
        // graphs), and its Gemm ran MiniLM's linear layers about 1.5x slower than MatMul (prepacked weights both)
        o.addConfigEntry("optimization.disable_specified_optimizers", MATMUL_ADD_FUSION);
        // No CPU arena and no memory pattern. The arena keeps the largest run's activations of every session for the
        // session's lifetime (the forward's, the prefix's and the backward's, all at once; rounded up to powers of
        // two), and with a memory pattern the second run adds one block the size of all of them beside what the first
        // run left there. Without them a run's tensors come from malloc and go back to it, where the next run of any
        // session finds them (glibc is told to keep them: NativeMemory.keepFreedBlocks, else the demo's larger
        // batches paid in page faults); on MiniLM (batch 16 x 32) training steps and forwards took the same time
        // within this machine's noise, and the process held 100-300 MB less.
        o.setCPUArenaAllocator(false);
        o.setMemoryPatternOptimization(false);
        // JREFT_ORT_PROFILE=<existing folder>: ORT's per-op trace of every session, written when it closes
        String profile = System.getenv("JREFT_ORT_PROFILE");
        if (profile != null && !profile.isBlank()) {
            if (java.nio.file.Files.isDirectory(java.nio.file.Path.of(profile))) {
                o.enableProfiling(java.nio.file.Path.of(profile, "session" + profiled++).toString());
            } else if (profiled++ == 0) { // said once, not per session
                dev.jreft.hooks.io.Warnings.warn("JREFT_ORT_PROFILE: found '" + profile + "'; valid: an existing"
                        + " folder for ORT's traces (profiling is off)");
            }
        }
        o.disablePerSessionThreads(); // the environment's shared pool
        if (effective == Device.CUDA) {
            try {
                o.addCUDA(0);
            } catch (OrtException | UnsatisfiedLinkError | RuntimeException e) {
                // ORT's own "Error code - ORT_EP_FAIL - message:" framing says nothing to a user; its reason does
                String why = oneLine(e.getMessage()).replaceFirst("^Error code - \\w+ - message:\\s*", "");
                dev.jreft.hooks.io.Warnings.warn("--device cuda: CUDA is not available here (" + why
                        + "); running on CPU");
                effective = Device.CPU;
            }
        }
        return o;
    }

    private static String oneLine(String s) {
        return s == null ? "" : s.replaceAll("\\s*\\R\\s*", " ").strip();
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
        sessions.values().forEach(this::release);
        sessions.clear();
    }
}
