package dev.jreft.spark;

import dev.jreft.analysis.ActivationPatching;
import dev.jreft.analysis.SweepConfig;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;

/**
 * {@code jreft sweep} as a Spark job: activation patching in one task per task slot, each over a contiguous group of
 * hooks (rows of the grid), every position (or head) patched exactly as the single-machine sweep does, and one
 * attribution task for the whole grid (one forward and one backward cover every hook), on the model each executor
 * loads once.
 */
public final class PatchingSweeps {
    private PatchingSweeps() {
    }

    /** Both grids of a sweep (either null where the config does not ask for it). */
    public record Result(ActivationPatching.Grid activation, ActivationPatching.Grid attribution) {
    }

    /** One task's part: the activation rows of its group of hooks, or the whole attribution grid. */
    record Part(boolean attribution, double[][] effect, double baseMetric, double sourceMetric, int graphs)
            implements Serializable {
    }

    /**
     * Runs {@code config}'s sweep over {@code hooks} of {@code model} ({@code minilm} and a null tokenizer for the
     * embedded one); the grids list the hooks in the given order.
     */
    public static Result run(SparkSession spark, String model, String tokenizer, SweepConfig config,
                             List<String> hooks) {
        String which = config.patchingOrBoth();
        // a task per task slot, each patching a contiguous group of hooks: a task compiles its patched graph once
        // for its group, which costs more than a hook's runs; task -1 is the attribution of every hook
        int groups = Math.min(hooks.size(), spark.sparkContext().defaultParallelism());
        List<Integer> tasks = new ArrayList<>();
        if (!which.equals("attribution")) {
            IntStream.range(0, groups).forEach(tasks::add);
        }
        if (!which.equals("activation")) {
            tasks.add(-1);
        }
        JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
        List<Part> parts = jsc.parallelize(tasks, tasks.size()).map(task -> {
            HookedModel m = ExecutorModels.get(model, tokenizer);
            Batch base = m.tokenize(List.of(config.base()));
            Batch source = m.tokenize(List.of(config.source()));
            ActivationPatching.Metric metric = config.metricOf(m, base, source);
            boolean attribution = task < 0;
            List<String> on = attribution ? hooks : hooks.subList(task * hooks.size() / groups, (task + 1)
                    * hooks.size() / groups);
            ActivationPatching.Grid g = attribution ? config.byHead()
                    ? ActivationPatching.attributionByHead(m, base, source, on, metric)
                    : ActivationPatching.attribution(m, base, source, on, metric) : config.byHead()
                    ? ActivationPatching.activationByHead(m, base, source, on, metric)
                    : ActivationPatching.activation(m, base, source, on, metric);
            return new Part(attribution, g.effect(), g.baseMetric(), g.sourceMetric(), g.graphsCompiled());
        }).collect();
        ActivationPatching.Across across = config.byHead() ? ActivationPatching.Across.HEAD
                : ActivationPatching.Across.POSITION;
        List<Part> rows = parts.stream().filter(p -> !p.attribution()).toList(); // in task order: hook order
        Part first = parts.get(0);
        ActivationPatching.Grid activation = rows.isEmpty() ? null : new ActivationPatching.Grid(hooks,
                rows.stream().flatMap(p -> java.util.Arrays.stream(p.effect())).toArray(double[][]::new),
                first.baseMetric(),
                first.sourceMetric(), rows.stream().mapToInt(Part::graphs).sum(), across);
        ActivationPatching.Grid attribution = parts.stream().filter(Part::attribution).findFirst()
                .map(p -> new ActivationPatching.Grid(hooks, p.effect(), p.baseMetric(), p.sourceMetric(),
                        p.graphs(), across)).orElse(null);
        return new Result(activation, attribution);
    }

    /**
     * The sweep as a DataFrame with {@code sweep.csv}'s columns: hook, position and token (or head), activation and
     * attribution (null where not run), one row per hook and column in the CSV's order, at full precision.
     */
    public static Dataset<Row> toDataFrame(SparkSession spark, Result r, List<String> hooks, List<String> tokens,
                                           boolean byHead) {
        List<StructField> fields = new ArrayList<>();
        fields.add(DataTypes.createStructField("hook", DataTypes.StringType, false));
        fields.add(DataTypes.createStructField(byHead ? "head" : "position", DataTypes.IntegerType, false));
        if (!byHead) {
            fields.add(DataTypes.createStructField("token", DataTypes.StringType, false));
        }
        fields.add(DataTypes.createStructField("activation", DataTypes.DoubleType, true));
        fields.add(DataTypes.createStructField("attribution", DataTypes.DoubleType, true));
        ActivationPatching.Grid any = r.activation() != null ? r.activation() : r.attribution();
        List<Row> rows = new ArrayList<>();
        for (int h = 0; h < hooks.size(); h++) {
            for (int t = 0; t < any.positions(); t++) {
                List<Object> v = new ArrayList<>(List.of(hooks.get(h), t));
                if (!byHead) {
                    v.add(t < tokens.size() ? tokens.get(t) : "");
                }
                v.add(r.activation() == null ? null : r.activation().effect()[h][t]);
                v.add(r.attribution() == null ? null : r.attribution().effect()[h][t]);
                rows.add(RowFactory.create(v.toArray()));
            }
        }
        return spark.createDataFrame(rows, DataTypes.createStructType(fields));
    }
}
