package dev.jreft.training.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jreft.hooks.io.AtomicFiles;
import dev.jreft.hooks.io.ConfigException;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.apache.commons.compress.compressors.gzip.GzipCompressorInputStream;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * The UCI Sentiment Labelled Sentences (Kotzias et al. 2015): 3 × 1,000 sentences from IMDb, Yelp and Amazon
 * reviews, labelled 0 (negative) / 1 (positive), as shipped in npm {@code sentiment@5.0.2}
 * ({@code test/fixtures/{imdb,yelp,amazon}.json}). Fetched at set-up time with {@code npm pack}; never committed.
 */
public final class SentimentData {
    public static final String PACKAGE = "sentiment@5.0.2";
    public static final List<String> SOURCES = List.of("imdb", "yelp", "amazon");

    /** A fixed three-way split. */
    public record Split(List<LabelledText> train, List<LabelledText> dev, List<LabelledText> test) {
    }

    private SentimentData() {
    }

    /** {@link #ensure(Path, String)} for a folder given as {@code data.sentiment}. */
    public static Path ensure(Path dir) {
        return ensure(dir, "data.sentiment");
    }

    /**
     * Fetches the package into {@code dir} (with npm) unless its three files are already there; returns dir. Only
     * a new or empty folder is fetched into: a folder holding other files is refused ({@code what} names the option
     * or field it came from), so the fetch never replaces a file jreft did not write.
     */
    public static Path ensure(Path dir, String what) {
        if (Files.exists(dir) && !Files.isDirectory(dir)) {
            throw new ConfigException(what, ConfigException.described("the file " + dir), "a folder for the sentiment"
                    + " data (it is fetched there when missing)");
        }
        if (SOURCES.stream().allMatch(s -> Files.isRegularFile(dir.resolve(s + ".json")))) {
            return dir;
        }
        if (Files.isDirectory(dir)) {
            List<String> other;
            try (var files = Files.list(dir)) {
                other = files.map(p -> p.getFileName().toString()).filter(n -> !n.startsWith(".npm-")
                        && !n.matches("\\.(imdb|yelp|amazon)\\.json\\.tmp-.*")).sorted().toList();
            } catch (IOException e) {
                throw ConfigException.of(what, "cannot list " + dir + " (" + AtomicFiles.reason(e) + ")");
            }
            if (!other.isEmpty()) {
                throw new ConfigException(what, ConfigException.described("the folder " + dir + " holding "
                        + String.join(", ", other.subList(0, Math.min(3, other.size()))) + (other.size() > 3
                        ? ", ..." : "") + " but not all of imdb.json, yelp.json, amazon.json"), "a new or empty folder"
                        + " (the data set is fetched there) or one holding the three files");
            }
        }
        try {
            Files.createDirectories(dir);
            Path work = Files.createTempDirectory(dir, ".npm-");
            try {
                Process p = new ProcessBuilder("npm", "pack", PACKAGE, "--silent").directory(work.toFile())
                        .redirectErrorStream(true).start();
                String log = new String(p.getInputStream().readAllBytes());
                if (!p.waitFor(300, TimeUnit.SECONDS) || p.exitValue() != 0) {
                    throw new IllegalStateException("npm pack " + PACKAGE + " failed: " + log.strip());
                }
                Path tgz;
                try (var files = Files.list(work)) {
                    tgz = files.filter(f -> f.toString().endsWith(".tgz")).findFirst().orElseThrow(
                            () -> new IllegalStateException("npm pack " + PACKAGE + " wrote no .tgz: " + log.strip()));
                }
                extract(tgz, dir);
            } finally {
                try (var walk = Files.walk(work)) {
                    walk.sorted(Collections.reverseOrder()).forEach(f -> f.toFile().delete());
                }
            }
            return dir;
        } catch (IOException e) {
            throw new IllegalStateException("could not fetch " + PACKAGE + " into " + dir + " (needs npm and the npm"
                    + " registry): " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while fetching " + PACKAGE, e);
        }
    }

    private static void extract(Path tgz, Path dir) throws IOException {
        try (InputStream in = new TarArchiveInputStream(new GzipCompressorInputStream(
                new BufferedInputStream(Files.newInputStream(tgz))))) {
            TarArchiveInputStream tar = (TarArchiveInputStream) in;
            TarArchiveEntry e;
            while ((e = tar.getNextEntry()) != null) {
                for (String s : SOURCES) {
                    if (e.getName().endsWith("test/fixtures/" + s + ".json")) {
                        Path target = dir.resolve(s + ".json");
                        Path tmp = AtomicFiles.createTempFile(target); // the user's umask, not 0600
                        try {
                            Files.copy(tar, tmp, StandardCopyOption.REPLACE_EXISTING);
                            AtomicFiles.move(tmp, target);
                        } finally {
                            Files.deleteIfExists(tmp);
                        }
                    }
                }
            }
        }
        for (String s : SOURCES) {
            if (!Files.isRegularFile(dir.resolve(s + ".json"))) {
                throw new IOException(tgz + " has no test/fixtures/" + s + ".json");
            }
        }
    }

    /** All sentences of the three sources (after {@link #ensure}). */
    public static List<LabelledText> load(Path dir) {
        ObjectMapper json = new ObjectMapper();
        List<LabelledText> all = new ArrayList<>();
        for (String s : SOURCES) {
            Path f = dir.resolve(s + ".json");
            JsonNode arr;
            try {
                arr = json.readTree(f.toFile());
            } catch (IOException e) {
                throw new IllegalArgumentException("cannot read " + f + ": " + e.getMessage(), e);
            }
            if (arr == null || !arr.isArray()) {
                throw new IllegalArgumentException(f + " is not a JSON array of {text, class} objects");
            }
            int before = all.size();
            for (JsonNode n : arr) {
                String text = n.hasNonNull("text") ? n.get("text").asText().strip() : "";
                if (text.isEmpty() && !n.hasNonNull("class")) {
                    continue; // each file ends with an empty placeholder record {"text": "", "class": null}
                }
                if (text.isEmpty() || !n.hasNonNull("class") || !n.get("class").canConvertToInt()) {
                    throw new IllegalArgumentException(f + ": entry without a text or an integer class: " + n);
                }
                all.add(new LabelledText(text, n.get("class").asInt(), s));
            }
            if (all.size() == before) {
                throw ConfigException.of(f.toString(), "found no sentences; valid: the labelled sentences of npm "
                        + PACKAGE + " (delete the folder to fetch them again)");
            }
        }
        return all;
    }

    /** A seeded shuffle split into train / dev / test by fractions (the rest is test). */
    public static Split split(List<LabelledText> all, long seed, double trainFraction, double devFraction) {
        List<LabelledText> shuffled = new ArrayList<>(all);
        Collections.shuffle(shuffled, new Random(seed));
        int nTrain = (int) Math.round(shuffled.size() * trainFraction);
        int nDev = (int) Math.round(shuffled.size() * devFraction);
        return new Split(List.copyOf(shuffled.subList(0, nTrain)), List.copyOf(shuffled.subList(nTrain, nTrain + nDev)),
                List.copyOf(shuffled.subList(nTrain + nDev, shuffled.size())));
    }
}
