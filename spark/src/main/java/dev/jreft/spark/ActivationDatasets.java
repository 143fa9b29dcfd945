package dev.jreft.spark;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jreft.hooks.io.AtomicFiles;
import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.runtime.ActivationCache;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.training.PositionSpec;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.Metadata;
import org.apache.spark.sql.types.MetadataBuilder;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.storage.StorageLevel;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.io.IOException;
import java.io.Serializable;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;

/**
 * Activation datasets on Spark: a Dataset of texts ({@code id} long, {@code text} string) becomes the activations of
 * chosen hooks at chosen positions, one row per example and position ({@code id}, {@code position}, {@code token},
 * then one float array per hook). Each hook's column carries the hook's name and the model's fingerprint as column
 * metadata, which Parquet keeps in its footer. Executors load the model once per JVM ({@link ExecutorModels}).
 */
public final class ActivationDatasets {
    /** The model name that means the embedded MiniLM. */
    public static final String EMBEDDED = "minilm";
    public static final String ID = "id";
    public static final String TEXT = "text";
    public static final String POSITION = "position";
    public static final String TOKEN = "token";
    /** The file that marks a folder as this job's output and says what it holds (checked before a resume). */
    public static final String MARKER = "jreft-activations.json";

    private ActivationDatasets() {
    }

    /**
     * What to extract: the model ({@code minilm}, or an .onnx file with its tokenizer.json), hook names, positions
     * ({@code all} real tokens, or a pyreft spec such as {@code f1+l1}) and texts per ORT run.
     */
    public record Spec(String model, String tokenizer, List<String> hooks, String positions, int batchSize)
            implements Serializable {
        public Spec {
            if (model == null || model.isBlank()) {
                throw new ConfigException("model", String.valueOf(model), dev.jreft.interventions.config.InterventionConfig
                        .EMBEDDED_NAMES + " or an .onnx file");
            }
            if (hooks == null || hooks.isEmpty()) {
                throw ConfigException.of("hooks", "found none; valid: one or more hook names (jreft hooks lists them)");
            }
            hooks = List.copyOf(hooks);
            positions = positions == null ? "all" : positions.trim();
            if (!positions.equals("all")) {
                try {
                    PositionSpec.parse(positions);
                } catch (ConfigException e) {
                    throw ConfigException.of("positions", "found '" + positions + "'; valid: all (every real token),"
                            + " or a pyreft spec such as f1+l1, f3 or l1 (the first n and last m real tokens)");
                }
            }
            if (batchSize < 1) {
                throw new ConfigException("batch_size", batchSize, "an integer >= 1");
            }
        }
    }

    /** {@code texts} as the Dataset {@link #extract} reads: {@code id} = the text's index from 0, {@code text}. */
    public static Dataset<Row> texts(SparkSession spark, List<String> texts) {
        List<Row> rows = new ArrayList<>();
        for (int i = 0; i < texts.size(); i++) {
            rows.add(RowFactory.create((long) i, texts.get(i)));
        }
        return spark.createDataFrame(rows, DataTypes.createStructType(List.of(
                DataTypes.createStructField(ID, DataTypes.LongType, false),
                DataTypes.createStructField(TEXT, DataTypes.StringType, true))));
    }

    /** A hook's column: its name with dots made underscores (Spark reads a dot as a struct field). */
    public static String column(String hook) {
        return hook.replaceAll("[^A-Za-z0-9_]", "_");
    }

    /**
     * The model, loaded on the driver: its hooks are checked here, before any task starts, and its fingerprint goes
     * into the columns' metadata.
     */
    static HookedModel checkedModel(Spec spec) {
        HookedModel m = ExecutorModels.get(spec);
        if (m.tokenizer().isEmpty()) {
            throw new ConfigException("tokenizer", "none for " + spec.model(), "the model's tokenizer.json (texts are"
                    + " tokenized on the executors)");
        }
        for (int i = 0; i < spec.hooks().size(); i++) {
            m.hook(spec.hooks().get(i), "hooks[" + i + "]");
        }
        return m;
    }

    public static StructType schema(Spec spec, String fingerprint) {
        List<StructField> fields = new ArrayList<>(List.of(
                DataTypes.createStructField(ID, DataTypes.LongType, false),
                DataTypes.createStructField(POSITION, DataTypes.IntegerType, false),
                DataTypes.createStructField(TOKEN, DataTypes.LongType, false)));
        for (String hook : spec.hooks()) {
            Metadata meta = new MetadataBuilder().putString("jreft.hook", hook).putString("jreft.model", spec.model())
                    .putString("jreft.model_fingerprint", fingerprint).putString("jreft.positions", spec.positions())
                    .build();
            fields.add(DataTypes.createStructField(column(hook), DataTypes.createArrayType(DataTypes.FloatType, false),
                    false, meta));
        }
        return DataTypes.createStructType(fields);
    }

    /**
     * The activations of {@code texts} (lazy: nothing runs until the result is written or collected). Each partition
     * keeps its input order, and a text's rows come in position order.
     */
    public static Dataset<Row> extract(Dataset<Row> texts, Spec spec) {
        checkColumns(texts);
        HookedModel m = checkedModel(spec);
        StructType schema = schema(spec, m.fingerprint());
        Dataset<Row> rows = texts.select(ID, TEXT).mapPartitions(new Extract(spec), Encoders.row(schema));
        // the encoder's plan drops field metadata: put the hooks' back, for Parquet's footer
        return rows.select(java.util.Arrays.stream(schema.fields()).map(f -> functions.col(f.name()).as(f.name(),
                f.metadata())).toArray(org.apache.spark.sql.Column[]::new));
    }

    private static void checkColumns(Dataset<Row> texts) {
        List<String> have = List.of(texts.columns());
        if (!have.contains(ID) || !have.contains(TEXT)) {
            throw new ConfigException("texts", "columns " + have, "a Dataset with columns 'id' (long) and 'text'"
                    + " (string)");
        }
    }

    /** What {@link #write} did: examples and rows in all, chunks written now and chunks kept from an earlier run. */
    public record Summary(long examples, long rows, int written, int kept) {
    }

    /**
     * Writes the activations of {@code texts} under {@code out} as Parquet, in chunks of {@code chunkSize} examples
     * by ascending id ({@code out/chunk=00000}, ...); each chunk is one Spark job whose commit writes its
     * {@code _SUCCESS}. A rerun with the same texts and spec after a failure keeps the complete chunks and writes the
     * rest, so the output is the same as one uninterrupted run. {@code out} must be new, empty, or this job's own
     * output for the same spec and model ({@link #MARKER}); anything else is refused before work starts.
     */
    public static Summary write(SparkSession spark, Dataset<Row> texts, Spec spec, Path out, int chunkSize)
            throws IOException {
        if (chunkSize < 1) {
            throw new ConfigException("chunk_size", chunkSize, "an integer >= 1");
        }
        checkColumns(texts);
        HookedModel m = checkedModel(spec);
        Map<String, Object> marker = marker(spec, m.fingerprint(), chunkSize);
        checkOut(out, marker);
        Files.createDirectories(out);
        AtomicFiles.write(out.resolve(MARKER), new ObjectMapper().writerWithDefaultPrettyPrinter()
                .writeValueAsBytes(marker));
        Dataset<Row> ordered = texts.select(functions.col(ID).cast(DataTypes.LongType).as(ID), functions.col(TEXT));
        long examples = ordered.count();
        long distinct = ordered.select(ID).distinct().count();
        if (distinct != examples) {
            throw ConfigException.of("texts.id", "found " + (examples - distinct) + " repeated ids among " + examples
                    + " texts; valid: one id per text");
        }
        // each text's chunk is its rank by id over chunkSize: the same for every run on the same texts
        var ranked = ordered.orderBy(ID).javaRDD().zipWithIndex().map(t -> RowFactory.create(t._1().getLong(0),
                t._1().getString(1), (int) (t._2() / chunkSize)));
        Dataset<Row> chunked = spark.createDataFrame(ranked, DataTypes.createStructType(List.of(
                DataTypes.createStructField(ID, DataTypes.LongType, false),
                DataTypes.createStructField(TEXT, DataTypes.StringType, true),
                DataTypes.createStructField("chunk", DataTypes.IntegerType, false))))
                .persist(StorageLevel.MEMORY_AND_DISK());
        int chunks = (int) ((examples + chunkSize - 1) / chunkSize);
        int parallelism = spark.sparkContext().defaultParallelism();
        int written = 0;
        try {
            for (int k = 0; k < chunks; k++) {
                Path dir = out.resolve(chunkName(k));
                if (Files.isRegularFile(dir.resolve("_SUCCESS"))) {
                    continue; // complete from an earlier run
                }
                // split by id ranges over the cores, each range in id order: the same files for the same texts
                Dataset<Row> part = chunked.filter(functions.col("chunk").equalTo(k))
                        .repartitionByRange(parallelism, functions.col(ID)).sortWithinPartitions(ID);
                extract(part, spec).write().mode(SaveMode.Overwrite).parquet(dir.toString());
                written++;
            }
        } finally {
            chunked.unpersist();
        }
        long rows = spark.read().parquet(out.toString()).count();
        return new Summary(examples, rows, written, chunks - written);
    }

    /** The folder name of chunk {@code k}, read back as a partition column {@code chunk}. */
    static String chunkName(int k) {
        return String.format(java.util.Locale.ROOT, "chunk=%05d", k);
    }

    private static Map<String, Object> marker(Spec spec, String fingerprint, int chunkSize) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("format", "jreft-activations");
        m.put("model", spec.model());
        m.put("model_fingerprint", fingerprint);
        m.put("hooks", spec.hooks());
        m.put("positions", spec.positions());
        m.put("chunk_size", chunkSize);
        return m;
    }

    private static void checkOut(Path out, Map<String, Object> marker) throws IOException {
        if (Files.exists(out) && !Files.isDirectory(out)) {
            throw new ConfigException("--out", out.toString(), "a folder (new, empty, or an earlier run of this job)");
        }
        if (!Files.isDirectory(out)) {
            return;
        }
        try (var entries = Files.list(out)) {
            if (entries.findAny().isEmpty()) {
                return;
            }
        }
        Path mark = out.resolve(MARKER);
        if (!Files.isRegularFile(mark)) {
            throw ConfigException.of("--out", "found " + out + " holding files jreft did not write; valid: a new or"
                    + " empty folder, or an earlier run of this job (it holds " + MARKER + ")");
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> before = new ObjectMapper().readValue(mark.toFile(), LinkedHashMap.class);
        if (!before.equals(marker)) {
            throw ConfigException.of("--out", "found an earlier run for " + before + "; valid: the same model, hooks,"
                    + " positions and chunk size to resume it (" + marker + "), or a new folder");
        }
    }

    /** One partition: texts in batches through the model, rows out as the consumer asks for them. */
    static final class Extract implements MapPartitionsFunction<Row, Row> {
        private final Spec spec;

        Extract(Spec spec) {
            this.spec = spec;
        }

        @Override
        public Iterator<Row> call(Iterator<Row> in) {
            HookedModel m = ExecutorModels.get(spec);
            PositionSpec positions = spec.positions().equals("all") ? null : PositionSpec.parse(spec.positions());
            ArrayDeque<Row> ready = new ArrayDeque<>();
            return new Iterator<>() {
                @Override
                public boolean hasNext() {
                    while (ready.isEmpty() && in.hasNext()) {
                        List<Long> ids = new ArrayList<>();
                        List<String> texts = new ArrayList<>();
                        while (in.hasNext() && ids.size() < spec.batchSize()) {
                            Row r = in.next();
                            ids.add(r.getLong(0));
                            texts.add(r.isNullAt(1) ? "" : r.getString(1));
                        }
                        run(m, positions, ids, texts, ready);
                    }
                    return !ready.isEmpty();
                }

                @Override
                public Row next() {
                    if (!hasNext()) {
                        throw new NoSuchElementException();
                    }
                    return ready.poll();
                }
            };
        }

        private void run(HookedModel m, PositionSpec positions, List<Long> ids, List<String> texts,
                         ArrayDeque<Row> out) {
            Batch batch = m.tokenize(texts);
            ActivationCache cache = m.runWithCache(batch, spec.hooks());
            List<INDArray> values = new ArrayList<>();
            for (String hook : spec.hooks()) {
                INDArray v = cache.get(hook);
                if (v.rank() != 3) {
                    throw new ConfigException("hooks", hook, "a hook of shape [batch, sequence, width] (this one is "
                            + java.util.Arrays.toString(v.shape()) + ")");
                }
                values.add(v);
            }
            int[][] at = positions != null ? positions.positions(batch) : null;
            INDArray tokenIds = batch.inputs().get(Batch.INPUT_IDS);
            for (int r = 0; r < ids.size(); r++) {
                int[] row = at != null ? at[r] : java.util.stream.IntStream.rangeClosed(batch.firstReal(r),
                        batch.lastReal(r)).toArray();
                for (int p : row) {
                    Object[] fields = new Object[3 + values.size()];
                    fields[0] = ids.get(r);
                    fields[1] = p;
                    fields[2] = tokenIds.getLong(r, p);
                    for (int h = 0; h < values.size(); h++) {
                        fields[3 + h] = values.get(h).get(NDArrayIndex.point(r), NDArrayIndex.point(p),
                                NDArrayIndex.all()).toFloatVector();
                    }
                    out.add(RowFactory.create(fields));
                }
            }
        }
    }
}
