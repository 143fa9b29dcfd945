package dev.jreft.hooks.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A folder of files written as one set (the {@code .npy} files of {@code jreft cache} and {@code jreft intervene}).
 * It is checked and locked before the work starts; files go into a temporary sibling folder; {@link #commit} swaps
 * that folder in by renames, so the path holds the previous complete set, or the new one, never half of either.
 *
 * <p>The set ends with {@code index.json}, which says which file holds which tensor under the graph's own name, so
 * a name that had to be made safe ({@link SafeNames}) stays traceable. A folder that exists must be empty or an
 * earlier output of jreft (every entry listed in its index); anything else is refused, so jreft never deletes a file
 * it did not write.
 */
public final class OutputFolder implements AutoCloseable {
    public static final String INDEX = "index.json";
    public static final String FORMAT = "jreft-output";
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private final Path dir;
    private final String command;
    private final FolderLock lock;
    private final SafeNames names = new SafeNames();
    private final ArrayNode entries = JSON.createArrayNode();
    private Path staging;
    private boolean committed;

    private OutputFolder(Path dir, String command, FolderLock lock) {
        this.dir = dir;
        this.command = command;
        this.lock = lock;
        names.unique(INDEX, ""); // reserved
        Cleanup.register(this);
    }

    /**
     * Checks and locks {@code dir} as the output of {@code command}, and puts right what a killed earlier run left.
     *
     * @throws IllegalArgumentException when {@code dir} is a file, or a folder holding files jreft did not write
     */
    public static OutputFolder prepare(Path dir, String command) throws IOException {
        return prepare(dir, command, "--out");
    }

    /** As {@link #prepare(Path, String)}; {@code what} names the option or field the folder came from. */
    public static OutputFolder prepare(Path dir, String command, String what) throws IOException {
        Path abs = AtomicFiles.checkFolder(dir, what);
        FolderLock lock = FolderLock.acquire(abs, false); // closed by this folder's own close, staging first
        try {
            recover(abs);
            checkReplaceable(what, dir, abs);
            return new OutputFolder(abs, command, lock);
        } catch (IOException | RuntimeException e) {
            lock.close();
            throw e;
        }
    }

    /** The folder the set is committed to. */
    public Path dir() {
        return dir;
    }

    /**
     * Where to write the file for tensor {@code name} (of {@code kind}: hook, output, input ...): a safe, unique
     * file name inside the staging folder. The file appears under {@link #dir} at {@link #commit}.
     */
    public Path file(String name, String extension, String kind) throws IOException {
        if (committed) {
            throw new IllegalStateException("output " + dir + " is already committed");
        }
        if (staging == null) {
            staging = AtomicFiles.createTempFolder(dir);
        }
        String file = names.unique(name, extension);
        ObjectNode e = entries.addObject();
        e.put("file", file);
        e.put("name", name);
        e.put("kind", kind);
        return staging.resolve(file);
    }

    /** Writes {@code array} as {@code <name>.npy}; returns its file name. */
    public String npy(String name, String kind, INDArray array) throws IOException {
        Path f = file(name, ".npy", kind);
        AtomicFiles.writeAndSync(Files.createFile(f), Npy.toBytes(array));
        ObjectNode e = (ObjectNode) entries.get(entries.size() - 1);
        e.set("shape", JSON.valueToTree(array.shape()));
        e.put("dtype", array.dataType().name().toLowerCase(Locale.ROOT));
        return f.getFileName().toString();
    }

    /**
     * The staging folder, for code that writes its files by path (an experiment): every file in it at {@link #commit}
     * is listed in the index.
     */
    public Path staging() throws IOException {
        if (staging == null) {
            staging = AtomicFiles.createTempFolder(dir);
        }
        return staging;
    }

    /** Writes {@code index.json} and swaps the set in; returns the paths written, under {@link #dir}. */
    public List<Path> commit() throws IOException {
        if (staging == null) {
            staging = AtomicFiles.createTempFolder(dir);
        }
        Set<String> listed = new HashSet<>();
        entries.forEach(e -> listed.add(e.get("file").asText()));
        try (Stream<Path> s = Files.list(staging)) {
            for (Path p : s.sorted().toList()) {
                String name = p.getFileName().toString();
                if (!listed.contains(name)) {
                    ObjectNode e = entries.addObject();
                    e.put("file", name);
                    e.put("kind", "file");
                }
            }
        }
        ObjectNode index = JSON.createObjectNode();
        index.put("format", FORMAT);
        index.put("command", command);
        index.set("files", entries);
        Path indexFile = Files.createFile(staging.resolve(INDEX));
        AtomicFiles.writeAndSync(indexFile, (JSON.writerWithDefaultPrettyPrinter().writeValueAsString(index) + "\n")
                .getBytes(java.nio.charset.StandardCharsets.UTF_8));
        AtomicFiles.syncFolder(staging);
        if (Files.exists(dir, LinkOption.NOFOLLOW_LINKS) && !isEmpty(dir)) {
            Path aside = dir.resolveSibling(oldPrefix(dir) + staging.getFileName().toString().substring(
                    AtomicFiles.tempPrefix(dir.getFileName().toString()).length()));
            Files.move(dir, aside);
            Files.move(staging, dir);
            try {
                AtomicFiles.deleteTree(aside); // an earlier jreft output, checked by prepare
            } catch (IOException e) {
                Warnings.warn("the new output is in " + dir + ", but the earlier one, moved to " + aside + ", could"
                        + " not be deleted (" + AtomicFiles.reason(e) + "); the next run on " + dir + " retries");
            }
        } else {
            Files.deleteIfExists(dir); // an empty folder
            Files.move(staging, dir);
        }
        AtomicFiles.syncFolder(dir.getParent());
        committed = true;
        List<Path> written = new ArrayList<>();
        entries.forEach(e -> written.add(dir.resolve(e.get("file").asText())));
        written.add(dir.resolve(INDEX));
        return written;
    }

    /** Releases the lock; an uncommitted set is discarded. */
    @Override
    public void close() throws IOException {
        Cleanup.unregister(this);
        try {
            if (!committed && staging != null) {
                AtomicFiles.deleteTree(staging);
            }
        } finally {
            lock.close();
        }
    }

    private static String oldPrefix(Path dir) {
        return "." + dir.getFileName() + ".old-";
    }

    /** Temporary folders of a killed run are deleted; an earlier output moved aside is moved back if none replaced it. */
    private static void recover(Path dir) throws IOException {
        String name = dir.getFileName().toString();
        Pattern ours = Pattern.compile("(" + Pattern.quote(AtomicFiles.tempPrefix(name)) + "|"
                + Pattern.quote(oldPrefix(dir)) + ")[0-9a-f]{12}");
        List<Path> stale;
        try (Stream<Path> s = Files.list(dir.getParent())) {
            stale = s.filter(p -> ours.matcher(p.getFileName().toString()).matches()).sorted().toList();
        }
        for (Path p : stale) {
            boolean aside = p.getFileName().toString().startsWith(oldPrefix(dir));
            if (aside && !Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
                Files.move(p, dir);
            } else {
                AtomicFiles.deleteTree(p);
            }
        }
    }

    private static void checkReplaceable(String what, Path given, Path dir) throws IOException {
        if (!Files.exists(dir, LinkOption.NOFOLLOW_LINKS) || isEmpty(dir)) {
            return;
        }
        Set<String> listed = new HashSet<>();
        Path index = dir.resolve(INDEX);
        if (Files.isRegularFile(index)) {
            try {
                JsonNode n = JSON.readTree(index.toFile());
                if (n != null && FORMAT.equals(n.path("format").asText())) {
                    listed.add(INDEX);
                    n.path("files").forEach(e -> listed.add(e.path("file").asText()));
                }
            } catch (IOException e) {
                listed.clear();
            }
        }
        List<String> foreign;
        try (Stream<Path> s = Files.list(dir)) {
            // a listed name that is now a folder (or a link) holds what someone else put there
            foreign = s.filter(p -> !listed.contains(p.getFileName().toString())
                            || !Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS))
                    .map(p -> p.getFileName().toString()).sorted().toList();
        }
        if (!foreign.isEmpty()) {
            throw new ConfigException(what, ConfigException.described("the folder " + given + " holding files jreft"
                    + " did not write (" + String.join(", ", foreign.subList(0, Math.min(3, foreign.size())))
                    + (foreign.size() > 3 ? ", and " + (foreign.size() - 3) + " more" : "") + ")"), "a new or empty"
                    + " folder, or an earlier jreft output folder (it is replaced)");
        }
        if (!Files.isWritable(dir) || !Files.isWritable(dir.getParent())) {
            throw new ConfigException(what, ConfigException.described("the folder " + given + ", which this user"
                    + " cannot replace (permission denied)"), "a folder jreft may write and replace");
        }
    }

    private static boolean isEmpty(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.findAny().isEmpty();
        }
    }
}
