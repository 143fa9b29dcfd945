package dev.jreft.hooks.runtime;

import com.sun.jna.Library;
import com.sun.jna.Native;

/**
 * Hands memory that the C allocator keeps after a large free back to the system ({@code malloc_trim}, glibc).
 *
 * <p>Building a session allocates and frees as much again as the model's weights (ORT's graph, its optimisers'
 * copies, the shape probe's outputs); glibc keeps much of that in its arenas, where it stays in the process's
 * resident set although nothing uses it. jreft trims after the steps that free a lot: a session built, a
 * short-lived session closed. Where there is no glibc (musl, macOS, Windows) this does nothing.
 */
public final class NativeMemory {
    /**
     * System property: collect garbage and trim after building a backward graph (default true; see
     * {@link #afterBuild}).
     */
    public static final String COLLECT_AFTER_BUILD = "jreft.collectAfterBuild";

    private interface LibC extends Library {
        int malloc_trim(long pad);

        int mallopt(int param, int value);
    }

    private static final int M_TRIM_THRESHOLD = -1;
    private static final int M_MMAP_THRESHOLD = -3;
    /** glibc's largest mmap threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX). */
    static final int MMAP_THRESHOLD = 32 << 20;
    static final int TRIM_THRESHOLD = 256 << 20;

    private static volatile LibC libc = load();

    private NativeMemory() {
    }

    private static LibC load() {
        if (!System.getProperty("os.name", "").toLowerCase(java.util.Locale.ROOT).contains("linux")) {
            return null;
        }
        try {
            return Native.load("c", LibC.class);
        } catch (UnsatisfiedLinkError | RuntimeException e) {
            return null;
        }
    }

    /**
     * After a one-off burst of allocation (a backward graph built: specialisation, shape probe, sessions and the first
     * run allocate and drop several times the model's size): a full collection, then {@link #trim}. The Java heap
     * sized itself for that burst and keeps it resident (G1 grew its young generation to hundreds of MB that then
     * only ever hold a step's garbage), and arrays that only the collector frees (ND4J buffers, direct buffers)
     * were waiting for it; after the collection G1 gives back what it no longer needs. It costs one collection
     * per graph built (tens of ms beside the seconds the build took). {@code -Djreft.collectAfterBuild=false}
     * turns it off; {@code -XX:+DisableExplicitGC} skips the collection.
     */
    public static void afterBuild() {
        if (!dev.jreft.hooks.io.SystemSettings.flag(COLLECT_AFTER_BUILD, true)) {
            return;
        }
        System.gc();
        trim();
    }

    /**
     * Lets glibc keep freed blocks for reuse instead of handing each back to the system: set once, before ONNX
     * Runtime starts (see {@link NativeStartup}).
     *
     * <p>jreft's sessions run without ORT's arena (see {@code OrtRuntime}), so a run's activations come from malloc
     * and go back to it. glibc serves a block above its mmap threshold (dynamic: 128 KB, raised to the largest block
     * freed, up to 32 MB) with a fresh mapping and unmaps it on free, and returns the free top of its heap above its
     * trim threshold: every run then faulted its activations in again (the demo's training: 6.3 million page faults,
     * 32 s of system time and a fifth of its throughput). With the mmap threshold at its 32 MB maximum and the trim
     * threshold at 256 MB, freed activations serve the next run, of whichever session. jreft trims explicitly after
     * the steps that free a lot for good ({@link #trim}). A threshold the user set ({@code MALLOC_MMAP_THRESHOLD_},
     * {@code MALLOC_TRIM_THRESHOLD_}) is left as it is.
     */
    static void keepFreedBlocks() {
        LibC c = libc;
        if (c == null) {
            return;
        }
        try {
            if (System.getenv("MALLOC_MMAP_THRESHOLD_") == null) {
                c.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            }
            if (System.getenv("MALLOC_TRIM_THRESHOLD_") == null) {
                c.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD);
            }
        } catch (UnsatisfiedLinkError | RuntimeException e) {
            libc = null;
        }
    }

    /** Returns free memory to the system; a no-op without glibc. */
    static void trim() {
        LibC c = libc;
        if (c == null) {
            return;
        }
        try {
            c.malloc_trim(0);
        } catch (UnsatisfiedLinkError | RuntimeException e) {
            libc = null; // not glibc: never asked again
        }
    }
}
