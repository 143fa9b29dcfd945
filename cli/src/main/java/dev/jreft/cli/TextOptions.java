package dev.jreft.cli;

import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code --text} (repeatable) and {@code --text-file FILE|-}: texts on the command line, or one per line from a file
 * or standard input, for inputs too long or too many for a command line.
 */
final class TextOptions {
    @Option(names = "--text", description = "a text to tokenise (repeat for a batch)")
    List<String> text;

    @Option(names = "--text-file", paramLabel = "FILE|-", description = "texts, one per line (blank lines skipped),"
            + " from a UTF-8 file or '-' for standard input")
    String textFile;

    /** The texts given, in order (command-line texts first); null when neither option was used. */
    List<String> texts() {
        if (text == null && textFile == null) {
            return null;
        }
        List<String> all = new ArrayList<>();
        if (text != null) {
            all.addAll(text);
        }
        if (textFile != null) {
            List<String> lines;
            try {
                lines = textFile.equals("-")
                        ? List.of(new String(System.in.readAllBytes(), StandardCharsets.UTF_8).split("\\R"))
                        : Files.readAllLines(Path.of(textFile), StandardCharsets.UTF_8);
            } catch (NoSuchFileException e) {
                throw new IllegalArgumentException("--text-file: found no file " + textFile + "; valid: a UTF-8 text"
                        + " file, one text per line, or '-' for standard input");
            } catch (IOException | UncheckedIOException e) {
                throw new IllegalArgumentException("--text-file: cannot read " + textFile + " as UTF-8 text ("
                        + e.getMessage() + ")");
            }
            lines.stream().filter(l -> !l.isBlank()).forEach(all::add);
            if (all.isEmpty()) {
                throw new IllegalArgumentException("--text-file: " + textFile + " holds no text; valid: one text per"
                        + " line");
            }
        }
        return all;
    }
}
