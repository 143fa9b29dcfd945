package dev.jreft.spark;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import dev.jreft.das.DasSweep;
import dev.jreft.das.HierarchicalEqualityExperiment.Settings;
import dev.jreft.das.HierarchicalEqualitySweep;
import dev.jreft.das.train.DasTrainer;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.api.java.function.Function;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;

import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;

/**
 * DAS sweeps as Spark jobs: one task per cell of hooks × methods × sizes. A task trains and scores its cell exactly
 * as the single-machine sweep does ({@link HierarchicalEqualitySweep#run} on that one cell: the same examples, from
 * the same seeds, the same starting rotation), so the table is the single-machine one, row for row, in its order;
 * only each cell's {@code seconds} differ.
 */
public final class DasSweeps {
    private static final ObjectMapper SNAKE = new ObjectMapper()
            .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE);

    private DasSweeps() {
    }

    /** One cell of the grid. */
    record Cell(String hook, DasTrainer.Method method, int size) implements Serializable {
    }

    /** One cell's row, in a form Spark can send back. */
    record CellResult(String hook, String position, DasTrainer.Method method, int size, double iia, double controlIia,
                      LinkedHashMap<String, Double> iiaBySet, double seconds) implements Serializable {
        DasSweep.Row row() {
            return new DasSweep.Row(hook, position, method, size, iia, controlIia, iiaBySet, seconds);
        }
    }

    /**
     * The hierarchical-equality sweep over the MLP saved at {@code model}
     * ({@code HierarchicalEqualityExperiment.Report#model()}); hooks empty: every hidden layer. The model file is
     * shipped to the executors ({@code SparkContext.addFile}); the settings travel as JSON.
     */
    public static DasSweep.Table hierarchicalEquality(SparkSession spark, Settings s, Path model, List<String> hooks,
                                                      List<Integer> sizes, List<DasTrainer.Method> methods) {
        HierarchicalEqualitySweep.check(s, hooks, sizes, methods); // before any task starts
        List<Cell> cells = new ArrayList<>();
        for (DasSweep.Hook h : HierarchicalEqualitySweep.hooks(s, hooks)) {
            for (DasTrainer.Method m : methods) {
                for (int size : sizes) {
                    cells.add(new Cell(h.name(), m, size));
                }
            }
        }
        String settings;
        try {
            settings = SNAKE.writeValueAsString(s);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        spark.sparkContext().addFile(model.toAbsolutePath().toString());
        JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
        // one partition per cell: collect() returns them in the grid's order
        List<CellResult> results = jsc.parallelize(cells, cells.size()).map(new RunCell(settings,
                model.toAbsolutePath().toString())).collect();
        List<DasSweep.Row> rows = results.stream().map(CellResult::row).toList();
        return new DasSweep.Table(List.copyOf(results.get(0).iiaBySet().keySet()), rows);
    }

    /** The table as a DataFrame, with the CSV's columns. */
    public static Dataset<Row> toDataFrame(SparkSession spark, DasSweep.Table t) {
        List<StructField> fields = new ArrayList<>(List.of(
                DataTypes.createStructField("hook", DataTypes.StringType, false),
                DataTypes.createStructField("position", DataTypes.StringType, false),
                DataTypes.createStructField("method", DataTypes.StringType, false),
                DataTypes.createStructField("size", DataTypes.IntegerType, false),
                DataTypes.createStructField("iia", DataTypes.DoubleType, false),
                DataTypes.createStructField("control_iia", DataTypes.DoubleType, false),
                DataTypes.createStructField("seconds", DataTypes.DoubleType, false)));
        boolean perSet = t.sets().size() > 1;
        if (perSet) {
            t.sets().forEach(set -> fields.add(DataTypes.createStructField("iia[" + set + "]", DataTypes.DoubleType,
                    false)));
        }
        List<Row> rows = new ArrayList<>();
        for (DasSweep.Row r : t.rows()) {
            List<Object> v = new ArrayList<>(List.of(r.hook(), r.position(), r.method().name().toLowerCase(
                    java.util.Locale.ROOT), r.size(), r.iia(), r.controlIia(), r.seconds()));
            if (perSet) {
                t.sets().forEach(set -> v.add(r.iiaBySet().get(set)));
            }
            rows.add(RowFactory.create(v.toArray()));
        }
        return spark.createDataFrame(rows, DataTypes.createStructType(fields));
    }

    /** A task: its cell through the single-machine sweep. */
    static final class RunCell implements Function<Cell, CellResult> {
        private final String settings;
        private final String model;

        RunCell(String settings, String model) {
            this.settings = settings;
            this.model = model;
        }

        @Override
        public CellResult call(Cell c) throws Exception {
            Settings s = SNAKE.readValue(settings, Settings.class);
            Path file = ExecutorModels.local(model, "model");
            DasSweep.Row r = HierarchicalEqualitySweep.run(s, file, List.of(c.hook()), List.of(c.size()),
                    List.of(c.method()), null).rows().get(0);
            return new CellResult(r.hook(), r.position(), r.method(), r.size(), r.iia(), r.controlIia(),
                    new LinkedHashMap<>(r.iiaBySet()), r.seconds());
        }
    }
}
