package dev.jreft.spark;

import org.apache.spark.sql.SparkSession;
import picocli.CommandLine.Option;

/** The jobs' {@code --master} and the session it gives. */
final class SparkOptions {
    @Option(names = "--master", description = "Spark master when not run by spark-submit; default local[*]")
    String master;

    /** {@code --master} when given, else the master spark-submit set, else embedded {@code local[*]}; no web UI. */
    SparkSession session(String appName) {
        SparkSession.Builder b = SparkSession.builder().appName(appName).config("spark.ui.enabled", "false");
        if (master != null || !System.getProperties().containsKey("spark.master")) {
            b = b.master(master != null ? master : "local[*]");
        }
        return b.getOrCreate();
    }
}
