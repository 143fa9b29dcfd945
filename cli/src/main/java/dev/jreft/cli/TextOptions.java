package dev.jreft.cli;

import picocli.CommandLine.Option;

import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.io.TextFiles;

import java.io.IOException;
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
            String content;
            if (textFile.equals("-")) {
                try {
                    content = TextFiles.decode(System.in.readAllBytes(), "--text-file - (standard input)");
                } catch (IOException e) {
                    throw ConfigException.of("--text-file -", "cannot read standard input (" + e.getMessage() + ")");
                }
            } else {
                content = TextFiles.readUtf8(Path.of(textFile), "--text-file " + textFile);
            }
            List<String> lines = content.lines().toList();
            lines.stream().filter(l -> !l.isBlank()).forEach(all::add);
            if (all.isEmpty()) {
                throw ConfigException.of("--text-file " + textFile, "found no text; valid: one text per line");
            }
        }
        return all;
    }
}
