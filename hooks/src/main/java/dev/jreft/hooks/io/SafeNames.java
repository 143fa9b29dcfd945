package dev.jreft.hooks.io;

import java.nio.file.Path;
import java.util.HashSet;
import java.util.Locale;
import java.util.Set;

/**
 * File names made from names jreft does not control (graph outputs, hook and tensor names, config values). A graph
 * output called {@code ../../x} or {@code /tmp/victim} must not become a path outside the folder the user chose: each
 * name becomes exactly one plain file name, and {@link #inside} refuses any path that would leave its folder.
 */
public final class SafeNames {
    /** Longest file name produced (most file systems allow 255 bytes; room is left for suffixes). */
    static final int MAX_LENGTH = 160;

    private final Set<String> used = new HashSet<>();

    /**
     * One file name for {@code name}: letters, digits and {@code . _ - + =} are kept, anything else (path separators,
     * {@code :}, spaces, control characters) becomes {@code _}; a leading dot becomes {@code _} (no hidden files, no
     * {@code .} or {@code ..}); long names are cut. The same name always gives the same file name.
     */
    public static String fileName(String name) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < name.length() && b.length() < MAX_LENGTH; i++) {
            char c = name.charAt(i);
            boolean plain = c < 128 && (Character.isLetterOrDigit(c) || c == '.' || c == '_' || c == '-' || c == '+'
                    || c == '=');
            b.append(plain ? c : '_');
        }
        if (b.length() == 0 || b.charAt(0) == '.') {
            b.insert(0, '_');
        }
        return b.toString();
    }

    /**
     * A file name for {@code name} + {@code extension} that no earlier call on this instance returned: when two names
     * map to the same file name ({@code a/b} and {@code a_b}) the later one gets {@code ~2}, {@code ~3} ... Names
     * are compared ignoring case, for case-insensitive file systems.
     */
    public String unique(String name, String extension) {
        String base = fileName(name);
        String candidate = base + extension;
        for (int k = 2; !used.add(candidate.toLowerCase(Locale.ROOT)); k++) {
            candidate = base + "~" + k + extension;
        }
        return candidate;
    }

    /**
     * {@code dir.resolve(relative)}, refused unless it stays inside {@code dir} (no absolute paths, no {@code ..}
     * that climbs out). Links are not followed; see {@link #insideReal} for that.
     *
     * @param what names the field or entry the path came from, for the message
     */
    public static Path inside(Path dir, String relative, String what) {
        Path base = dir.toAbsolutePath().normalize();
        Path rel;
        try {
            rel = Path.of(relative);
        } catch (java.nio.file.InvalidPathException e) {
            throw new IllegalArgumentException(what + ": found '" + relative + "', not a usable path (" + e.getReason()
                    + "); valid: a path inside " + base);
        }
        Path p = base.resolve(rel).normalize();
        if (rel.isAbsolute() || !p.startsWith(base) || p.equals(base)) {
            throw new IllegalArgumentException(what + ": found '" + relative + "'; valid: a path inside " + base
                    + " (no absolute path, no '..' leaving it)");
        }
        return p;
    }

    /** As {@link #inside}, and the file, with links resolved, must also lie inside {@code dir} (links resolved). */
    public static Path insideReal(Path dir, String relative, String what) throws java.io.IOException {
        Path p = inside(dir, relative, what);
        if (java.nio.file.Files.exists(p)) {
            Path real = p.toRealPath();
            Path realBase = dir.toRealPath();
            if (!real.startsWith(realBase)) {
                throw new IllegalArgumentException(what + ": found '" + relative + "', a link to " + real
                        + "; valid: a file inside " + realBase);
            }
        }
        return p;
    }
}
