package dev.jreft.hooks.runtime;

import dev.jreft.hooks.io.AtomicFiles;

import java.io.IOException;
import java.io.InputStream;
import java.net.JarURLConnection;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;

/**
 * ONNX Runtime's native libraries, unpacked once per user into a cache and loaded from there.
 *
 * <p>Left to itself, ORT's Java loader copies its libraries (28 MB) into a new {@code onnxruntime-java*} folder of
 * the temp directory at every start and leaves the folder behind: hundreds accumulate, and a killed JVM leaves the
 * libraries too. ORT loads from a folder named by {@code onnxruntime.native.path} instead, so jreft unpacks the
 * jar's libraries for this platform into {@code $JREFT_CACHE} (default {@code $XDG_CACHE_HOME/jreft}, else
 * {@code ~/.cache/jreft}), under a name that changes with the ORT jar, as DJL and JavaCPP cache theirs. Anything
 * that goes wrong (no jar, an unwritable cache) leaves ORT's own loader in charge.
 */
final class NativeLibraries {
    static final String PATH_PROPERTY = "onnxruntime.native.path";

    private NativeLibraries() {
    }

    /** Points ORT at the cached libraries, unpacking them first when needed; silent when it cannot. */
    static synchronized void useCache() {
        if (System.getProperty(PATH_PROPERTY) != null) {
            return; // the user chose
        }
        try {
            Path dir = unpack();
            if (dir != null) {
                System.setProperty(PATH_PROPERTY, dir.toString());
            }
        } catch (IOException | RuntimeException e) {
            // ORT's loader extracts to the temp directory as before
        }
    }

    /** The platform folder name ORT's jar uses: linux-x64, osx-aarch64, win-x64 ... */
    static String osArch() {
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
        String o = os.contains("mac") || os.contains("darwin") ? "osx" : os.contains("win") ? "win"
                : os.contains("nux") ? "linux" : null;
        String a = arch.equals("amd64") || arch.equals("x86_64") ? "x64" : arch.equals("aarch64")
                || arch.equals("arm64") ? "aarch64" : null;
        return o == null || a == null ? null : o + "-" + a;
    }

    private static Path unpack() throws IOException {
        String platform = osArch();
        if (platform == null) {
            return null;
        }
        String prefix = "ai/onnxruntime/native/" + platform + "/";
        URL url = NativeLibraries.class.getClassLoader().getResource(prefix);
        if (url == null || !url.getProtocol().equals("jar")) {
            return null;
        }
        JarURLConnection connection = (JarURLConnection) url.openConnection();
        connection.setUseCaches(false);
        Path jar;
        try {
            jar = Path.of(connection.getJarFileURL().toURI());
        } catch (java.net.URISyntaxException e) {
            return null;
        }
        try (JarFile jf = new JarFile(jar.toFile())) {
            List<JarEntry> libs = new ArrayList<>();
            jf.stream().filter(e -> !e.isDirectory() && e.getName().startsWith(prefix)
                    && e.getName().indexOf('/', prefix.length()) < 0).forEach(libs::add);
            if (libs.isEmpty()) {
                return null;
            }
            String version = jar.getFileName().toString().replaceFirst("\\.jar$", "") + "-" + Files.size(jar);
            Path dir = cacheRoot().resolve("native").resolve(version).resolve(platform);
            if (complete(dir, libs)) {
                return dir;
            }
            Files.createDirectories(dir.getParent());
            Path tmp = AtomicFiles.createTempFolder(dir);
            try {
                for (JarEntry e : libs) {
                    try (InputStream in = jf.getInputStream(e)) {
                        Files.copy(in, tmp.resolve(e.getName().substring(prefix.length())));
                    }
                }
                try {
                    Files.move(tmp, dir);
                } catch (IOException raced) {
                    // another JVM unpacked the same libraries first: use its copy
                }
            } finally {
                AtomicFiles.deleteTree(tmp);
            }
            return complete(dir, libs) ? dir : null;
        }
    }

    private static boolean complete(Path dir, List<JarEntry> libs) throws IOException {
        for (JarEntry e : libs) {
            Path f = dir.resolve(e.getName().substring(e.getName().lastIndexOf('/') + 1));
            if (!Files.isRegularFile(f) || Files.size(f) != e.getSize()) {
                return false;
            }
        }
        return true;
    }

    private static Path cacheRoot() {
        String jreft = System.getenv("JREFT_CACHE");
        if (jreft != null && !jreft.isBlank()) {
            return Path.of(jreft);
        }
        String xdg = System.getenv("XDG_CACHE_HOME");
        if (xdg != null && !xdg.isBlank()) {
            return Path.of(xdg, "jreft");
        }
        return Path.of(System.getProperty("user.home"), ".cache", "jreft");
    }
}
