package dev.jreft.checkpoints;

import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.io.ConfigJson;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;

/**
 * A trained intervention on disk: a directory holding {@code config.json} (the caller's configuration plus
 * {@code format}, {@code schema_version}, {@code model_fingerprint} and {@code tensors}) and
 * {@code tensors.safetensors} (the learned tensors, with the model fingerprint repeated in its metadata).
 *
 * <p>Why a directory of two plain files: both are readable without jreft (any JSON parser, Python's
 * {@code safetensors}), the config is diffable, and the schema version lets later releases refuse or migrate old
 * checkpoints explicitly. Why the fingerprint: an intervention learned on one model's activations silently produces
 * garbage on another, so {@link #load} refuses a checkpoint trained on a different model.
 *
 * <p>{@link #save} replaces a checkpoint so that a reader sees the old one or the new one, never a mix and never
 * nothing, and keeps any other files in the directory ({@link CheckpointWriter}).
 */
public final class Checkpoint {
    /** Value of {@code "format"} in {@code config.json}. */
    public static final String FORMAT = "jreft-checkpoint";
    /** The schema version {@link #save} writes. */
    public static final int SCHEMA_VERSION = 1;
    /** The schema versions {@link #load} reads. */
    public static final Set<Integer> SUPPORTED_SCHEMA_VERSIONS = Set.of(1);
    public static final String CONFIG_FILE = "config.json";
    public static final String TENSORS_FILE = "tensors.safetensors";
    /** Key of the model fingerprint in both {@code config.json} and the safetensors metadata. */
    public static final String FINGERPRINT_KEY = "model_fingerprint";

    static final JsonMapper JSON = JsonMapper.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(SerializationFeature.INDENT_OUTPUT)
            .build();

    private final Path dir;
    private final ObjectNode config;
    private final Map<String, INDArray> tensors;
    private final String modelFingerprint;

    private Checkpoint(Path dir, ObjectNode config, Map<String, INDArray> tensors, String modelFingerprint) {
        this.dir = dir;
        this.config = config;
        this.tensors = tensors;
        this.modelFingerprint = modelFingerprint;
    }

    /** The directory it was loaded from. */
    public Path dir() {
        return dir;
    }

    /** The full {@code config.json}, including the fields {@link #save} adds; a copy, free to modify. */
    public ObjectNode config() {
        return config.deepCopy();
    }

    /** The tensors in file order; the map is unmodifiable. */
    public Map<String, INDArray> tensors() {
        return tensors;
    }

    /** The fingerprint of the model the checkpoint was trained on. */
    public String modelFingerprint() {
        return modelFingerprint;
    }

    /**
     * The tensor called {@code name}.
     *
     * @throws IllegalArgumentException naming the tensors that do exist, when there is none of that name
     */
    public INDArray tensor(String name) {
        INDArray t = tensors.get(name);
        if (t == null) {
            throw new IllegalArgumentException("checkpoint " + dir + " has no tensor '" + name + "'; it holds "
                    + tensors.keySet());
        }
        return t;
    }

    // ------------------------------------------------------------------------------------------------ saving

    /**
     * Writes a checkpoint to {@code dir}, replacing any checkpoint there. {@code config} (may be null) is copied,
     * not modified; the copy gets {@code format}, {@code schema_version}, {@code model_fingerprint} and
     * {@code tensors} set, overwriting fields of those names.
     *
     * <p>{@code dir} must be new, empty or a jreft checkpoint, so a wrong path cannot overwrite unrelated files;
     * files in it that jreft did not write are kept. Missing parent directories are created. The path holds the old
     * checkpoint or the new one at every moment (see {@link CheckpointWriter}). A run that trains for long should
     * call {@link #prepare} first, so a bad path or a second run on the same path fails before the training.
     *
     * @throws IllegalArgumentException for tensors {@link SafeTensors} cannot store, a blank fingerprint, or a
     *                                  {@code dir} that exists and is not a checkpoint
     * @throws dev.jreft.hooks.io.FolderLock.OutputLockedException when another run is writing {@code dir}
     * @throws IOException              when writing fails; the previous checkpoint (if any) is then still in place
     */
    public static void save(Path dir, ObjectNode config, Map<String, INDArray> tensors, String modelFingerprint)
            throws IOException {
        if (modelFingerprint == null || modelFingerprint.isBlank()) {
            throw new IllegalArgumentException("model fingerprint must not be blank: a checkpoint records which "
                    + "model it was trained on (HookedModel.fingerprint())");
        }
        SafeTensors.toBytes(tensors, Map.of(FINGERPRINT_KEY, modelFingerprint)); // bad tensors fail before the disk
        try (CheckpointWriter w = prepare(dir)) {
            w.save(config, tensors, modelFingerprint);
        }
    }

    /**
     * Checks {@code dir} as a checkpoint path, locks it against other runs, and removes what a killed earlier save
     * left; the writer saves there until closed. Call it before training.
     *
     * @throws IllegalArgumentException when {@code dir} is a file, or a non-empty directory holding no checkpoint
     * @throws dev.jreft.hooks.io.FolderLock.OutputLockedException when another run is writing {@code dir}
     */
    public static CheckpointWriter prepare(Path dir) throws IOException {
        return CheckpointWriter.prepare(dir);
    }

    /** {@code config.json}'s bytes: the caller's config with the format's own fields set. */
    static byte[] configBytes(ObjectNode config, String modelFingerprint, String tensorsFile) throws IOException {
        ObjectNode cfg = config == null ? JSON.createObjectNode() : config.deepCopy();
        cfg.put("format", FORMAT);
        cfg.put("schema_version", SCHEMA_VERSION);
        cfg.put(FINGERPRINT_KEY, modelFingerprint);
        cfg.put("tensors", tensorsFile);
        return JSON.writeValueAsBytes(cfg);
    }

    // ------------------------------------------------------------------------------------------------ loading

    /**
     * Reads and validates the checkpoint in {@code dir}.
     *
     * @param expectedModelFingerprint the fingerprint of the model it will be used with, or null to skip the check
     * @throws CheckpointFormatException     when {@code dir} does not hold a valid checkpoint; the message says
     *                                       what is wrong and what would be valid
     * @throws FingerprintMismatchException  when the checkpoint was trained on a different model
     * @throws UncheckedIOException          when the files exist but cannot be read (I/O error, permissions)
     */
    public static Checkpoint load(Path dir, String expectedModelFingerprint) {
        if (dir == null) {
            throw new IllegalArgumentException("checkpoint directory must not be null");
        }
        if (!Files.exists(dir)) {
            throw new CheckpointFormatException("checkpoint: found '" + dir + "'; valid: a checkpoint folder written"
                    + " by jreft train (there is no such file or folder)");
        }
        if (!Files.isDirectory(dir)) {
            throw new CheckpointFormatException(dir + " is not a directory; a checkpoint is a directory holding "
                    + CONFIG_FILE + " and " + TENSORS_FILE);
        }
        Path cfgFile = dir.resolve(CONFIG_FILE);
        if (!Files.isRegularFile(cfgFile)) {
            throw new CheckpointFormatException("checkpoint directory " + dir + " has no " + CONFIG_FILE
                    + "; a checkpoint directory holds " + CONFIG_FILE + " and " + TENSORS_FILE
                    + " (as written by Checkpoint.save)");
        }
        JsonNode root;
        try {
            root = ConfigJson.tree(Files.readString(cfgFile, java.nio.charset.StandardCharsets.UTF_8),
                    cfgFile.toString());
        } catch (ConfigException e) {
            throw new CheckpointFormatException(e.getMessage() + " (" + cfgFile.getFileName() + " is not valid JSON)", e);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + cfgFile + ": " + e.getMessage(), e);
        }
        if (root == null || !root.isObject()) {
            throw new CheckpointFormatException(cfgFile + " must hold a JSON object, found "
                    + (root == null ? "nothing" : root.getNodeType()));
        }
        ObjectNode config = (ObjectNode) root;
        JsonNode format = config.get("format");
        if (format == null || !format.isTextual()) {
            throw new CheckpointFormatException(cfgFile + " has no string \"format\" field (expected \"format\": \""
                    + FORMAT + "\"); it is not a jreft checkpoint config");
        }
        if (!format.textValue().equals(FORMAT)) {
            throw new CheckpointFormatException(cfgFile + " has \"format\": \"" + format.textValue()
                    + "\", expected \"" + FORMAT + "\"; it is not a jreft checkpoint");
        }
        int version = schemaVersion(config.get("schema_version"), cfgFile);
        String fingerprint = textField(config, FINGERPRINT_KEY, cfgFile);
        if (expectedModelFingerprint != null && !expectedModelFingerprint.equals(fingerprint)) {
            throw new FingerprintMismatchException(dir, fingerprint, expectedModelFingerprint);
        }
        String tensorsName = textField(config, "tensors", cfgFile);
        if (tensorsName.equals(".") || tensorsName.equals("..") || tensorsName.contains("/")
                || tensorsName.contains("\\") || Path.of(tensorsName).getNameCount() != 1) {
            throw new CheckpointFormatException(cfgFile + " has \"tensors\": \"" + tensorsName + "\"; it must name a "
                    + "file inside the checkpoint directory, such as \"" + TENSORS_FILE + "\"");
        }
        Path tensorsFile = dir.resolve(tensorsName);
        if (!Files.isRegularFile(tensorsFile)) {
            throw new CheckpointFormatException("checkpoint directory " + dir + " has no " + tensorsName
                    + " (named by \"tensors\" in " + CONFIG_FILE + "); the checkpoint is incomplete");
        }
        SafeTensors.Contents contents = SafeTensors.read(tensorsFile);
        String recorded = contents.metadata().get(FINGERPRINT_KEY);
        if (recorded == null) {
            throw new CheckpointFormatException(tensorsFile + " has no \"" + FINGERPRINT_KEY + "\" in its metadata; "
                    + "a schema_version " + version + " checkpoint records the model fingerprint there too");
        }
        if (!recorded.equals(fingerprint)) {
            String[] s = FingerprintMismatchException.shorten(recorded, fingerprint);
            throw new CheckpointFormatException(tensorsFile + " was written for model " + s[0] + " but " + CONFIG_FILE
                    + " says model " + s[1] + "; the two files come from different checkpoints");
        }
        return new Checkpoint(dir, config, contents.tensors(), fingerprint);
    }

    private static int schemaVersion(JsonNode v, Path cfgFile) {
        String supported = "supported: " + SUPPORTED_SCHEMA_VERSIONS.stream().sorted().toList();
        if (v == null || !v.isIntegralNumber() || !v.canConvertToInt()) {
            throw new CheckpointFormatException(cfgFile + " needs an integer \"schema_version\" (" + supported
                    + "), found " + (v == null ? "none" : v));
        }
        int version = v.intValue();
        if (!SUPPORTED_SCHEMA_VERSIONS.contains(version)) {
            int newest = SUPPORTED_SCHEMA_VERSIONS.stream().max(Integer::compare).orElseThrow();
            throw new CheckpointFormatException(cfgFile + " has schema_version " + version + ", which this version "
                    + "of jreft cannot read (" + supported + ")"
                    + (version > newest ? "; it was written by a newer jreft" : ""));
        }
        return version;
    }

    private static String textField(ObjectNode config, String field, Path cfgFile) {
        JsonNode v = config.get(field);
        if (v == null || !v.isTextual() || v.textValue().isBlank()) {
            throw new CheckpointFormatException(cfgFile + " needs a non-empty string \"" + field + "\", found "
                    + (v == null ? "none" : v));
        }
        return v.textValue();
    }
}
