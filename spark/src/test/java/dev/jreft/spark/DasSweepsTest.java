package dev.jreft.spark;

import dev.jreft.das.DasSweep;
import dev.jreft.das.HierarchicalEqualityExperiment;
import dev.jreft.das.HierarchicalEqualitySweep;
import dev.jreft.das.train.DasTrainer;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The hierarchical-equality DAS sweep as a Spark job in local[2] gives the single-machine table, row for row. */
class DasSweepsTest {
    @Test
    void theSparkSweepIsTheSingleMachineSweep(@TempDir Path tmp) throws Exception {
        var s = new HierarchicalEqualityExperiment.Settings(4, 16, 60_000, 4, 256, 3e-3, 4_000, 3, 256, 1e-2, 400, 4, 3);
        var report = HierarchicalEqualityExperiment.run(s, tmp, new PrintStream(new ByteArrayOutputStream()));
        List<String> hooks = List.of("tensor:hidden.0", "tensor:hidden.2");
        List<Integer> sizes = List.of(2);
        List<DasTrainer.Method> methods = List.of(DasTrainer.Method.ROTATED, DasTrainer.Method.LOW_RANK);
        DasSweep.Table single = HierarchicalEqualitySweep.run(s, report.model(), hooks, sizes, methods, null);
        try (SparkSession spark = SparkSession.builder().master("local[2]").appName("jreft-das")
                .config("spark.ui.enabled", "false").getOrCreate()) {
            DasSweep.Table distributed = DasSweeps.hierarchicalEquality(spark, s, report.model(), hooks, sizes,
                    methods);
            assertEquals(4, distributed.rows().size());
            assertEquals(withoutSeconds(single.csv()), withoutSeconds(distributed.csv()));
            assertTrue(distributed.rows().stream().anyMatch(r -> r.iia() != r.controlIia()), "training moved IIA:\n"
                    + distributed.csv());
            List<Row> frame = DasSweeps.toDataFrame(spark, distributed).collectAsList();
            assertEquals(single.rows().get(3).iia(), frame.get(3).getDouble(frame.get(3).fieldIndex("iia")), 0.0);
            assertEquals(single.header(), Arrays.asList(DasSweeps.toDataFrame(spark, distributed).columns()));
            var bad = assertThrows(IllegalArgumentException.class, () -> DasSweeps.hierarchicalEquality(spark, s,
                    report.model(), List.of("tensor:hidden.7"), sizes, methods));
            assertTrue(bad.getMessage().contains("tensor:hidden.7"), bad.getMessage());
        }
    }

    /** The CSV without its seconds column (the only one a run's timing changes). */
    static String withoutSeconds(String csv) {
        List<String> lines = csv.lines().toList();
        int col = Arrays.asList(lines.get(0).split(",")).indexOf("seconds");
        return lines.stream().map(l -> {
            List<String> c = new java.util.ArrayList<>(Arrays.asList(l.split(",", -1)));
            c.remove(col);
            return String.join(",", c);
        }).collect(Collectors.joining("\n"));
    }
}
