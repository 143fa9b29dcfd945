package dev.jreft.hooks.runtime;

import com.sun.jna.Library;
import com.sun.jna.Native;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * What must hold in the process before ONNX Runtime's native library creates its environment.
 *
 * <p>ONNX Runtime 1.29's Linux build starts a telemetry client (its {@code PosixTelemetry}, on Microsoft's 1DS
 * SDK) when the first environment is created. The client reads {@code /proc/self/cmdline}; when the whole command
 * line is longer than about 4 KB (eight {@code --text} arguments of 700 characters, one long {@code -cp} list) it
 * recurses until its thread's stack overflows, and the JVM dies with SIGSEGV and no crash report (exit 139). The
 * same client writes {@code ~/.cache/Microsoft/DeveloperTools/.onnxruntime/} and {@code /tmp/mat-debug-<pid>.log},
 * files outside anything the user chose. ORT skips the client when {@code ORT_DISABLE_TELEMETRY} is set in the C
 * environment. The JVM cannot change its own environment ({@link System#getenv} is a read-only copy), so it is set
 * with libc's {@code setenv} through JNA, before any environment exists; the {@code ./jreft} launcher exports it too.
 */
final class NativeStartup {
    static final String TELEMETRY_SWITCH = "ORT_DISABLE_TELEMETRY";
    /** Below the length at which the telemetry client crashes (measured: 3,900 bytes run, 4,000 crash). */
    static final int SAFE_COMMAND_LINE = 3_500;

    private interface LibC extends Library {
        int setenv(String name, String value, int overwrite);
    }

    private NativeStartup() {
    }

    /**
     * Turns ORT's telemetry off for this process (if that is impossible, refuses a command line long enough to crash),
     * points ORT at its cached native libraries ({@link NativeLibraries}) and sets glibc's thresholds for the
     * activations runs allocate and free ({@link NativeMemory#keepFreedBlocks}).
     */
    static synchronized void prepare() {
        NativeLibraries.useCache();
        idleThreadsSleep();
        NativeMemory.keepFreedBlocks();
        if (disableTelemetry()) {
            return;
        }
        long length = commandLineLength();
        if (length > SAFE_COMMAND_LINE) {
            throw new IllegalStateException("this JVM's command line is " + length + " bytes long and " + TELEMETRY_SWITCH
                    + " could not be set (no JNA native library for this platform); ONNX Runtime 1.29 crashes the JVM"
                    + " above about 4,000. Export " + TELEMETRY_SWITCH + "=1 before starting java, or pass long inputs"
                    + " in a file (--text-file).");
        }
    }

    /**
     * ND4J's OpenMP threads (libgomp) spin after every small op (AdamW, masks) and take the cores ORT's pool needs
     * next; asleep they cost nothing. A user's own {@code OMP_WAIT_POLICY} is kept. This takes effect only if ND4J
     * has not started yet; the {@code ./jreft} launcher exports it too.
     */
    private static void idleThreadsSleep() {
        try {
            Native.load("c", LibC.class).setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
        } catch (UnsatisfiedLinkError | RuntimeException e) {
            // only a speed matter
        }
    }

    private static boolean disableTelemetry() {
        try {
            LibC c = Native.load("c", LibC.class);
            return c.setenv(TELEMETRY_SWITCH, "1", 1) == 0;
        } catch (UnsatisfiedLinkError | RuntimeException e) {
            return "1".equals(System.getenv(TELEMETRY_SWITCH));
        }
    }

    private static long commandLineLength() {
        Path cmdline = Path.of("/proc/self/cmdline");
        try {
            return Files.isReadable(cmdline) ? Files.readAllBytes(cmdline).length : 0; // /proc reports size 0
        } catch (IOException e) {
            return 0; // not Linux: the crash is Linux-only
        }
    }
}
