package dev.jreft.hooks.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * Text that jreft reads (configs, JSON Lines, text files, standard input), decoded strictly as UTF-8: bytes that
 * are not UTF-8 are an error naming the line, never replacement characters in a training text.
 */
public final class TextFiles {
    private TextFiles() {
    }

    /** The file's text; {@code what} names it in errors (defaults to the path). */
    public static String readUtf8(Path file, String what) {
        String shown = file.toString().isEmpty() ? "''" : file.toString();
        String name = what == null ? shown : what;
        if (file.toString().isEmpty()) {
            throw ConfigException.of(what == null ? "file" : what, "found an empty path; valid: the path of a file");
        }
        if (Files.isDirectory(file)) {
            throw new ConfigException(name, ConfigException.described("the folder " + shown), "a text file");
        }
        AtomicFiles.requireRegularFile(file, name);
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw ConfigException.of(name, "found no such file " + shown + "; valid: an existing file");
        } catch (IOException e) {
            throw ConfigException.of(name, "cannot read " + shown + " (" + AtomicFiles.reason(e) + ")");
        }
        return decode(bytes, name);
    }

    /** {@code bytes} as UTF-8; an invalid sequence is an error naming its line in {@code what}. */
    public static String decode(byte[] bytes, String what) {
        int start = bytes.length >= 3 && (bytes[0] & 0xff) == 0xef && (bytes[1] & 0xff) == 0xbb
                && (bytes[2] & 0xff) == 0xbf ? 3 : 0; // a byte-order mark is allowed and dropped
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes, start, bytes.length - start)).toString();
        } catch (CharacterCodingException e) {
            int line = 1;
            int bad = firstInvalid(bytes, start);
            for (int i = start; i < bad && i < bytes.length; i++) {
                if (bytes[i] == '\n') {
                    line++;
                }
            }
            throw ConfigException.of(what, "line " + line + ": found bytes that are not UTF-8 (at byte " + bad
                    + "); valid: UTF-8 text");
        }
    }

    /** The offset of the first byte that does not start or continue a valid UTF-8 sequence. */
    private static int firstInvalid(byte[] b, int from) {
        int i = from;
        while (i < b.length) {
            int c = b[i] & 0xff;
            int n = c < 0x80 ? 0 : c >= 0xc2 && c < 0xe0 ? 1 : c >= 0xe0 && c < 0xf0 ? 2 : c >= 0xf0 && c < 0xf5 ? 3 : -1;
            if (n < 0) {
                return i;
            }
            for (int k = 1; k <= n; k++) {
                if (i + k >= b.length || (b[i + k] & 0xc0) != 0x80) {
                    return i;
                }
            }
            i += n + 1;
        }
        return b.length;
    }
}
