package dev.jreft.cli;

import dev.jreft.hooks.io.AtomicFiles;
import dev.jreft.hooks.io.ConfigException;
import dev.jreft.training.TrainConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "train", description = "Train a ReFT classifier from a JSON config; writes the checkpoint (config"
        + " \"output\") and a metrics JSON.")
final class TrainCommand implements Callable<Integer> {
    @Option(names = "--config", required = true, description = "training config (JSON; see README)")
    Path config;

    @Option(names = "--metrics", description = "metrics JSON to write (default: metrics.json in the checkpoint"
            + " folder)")
    Path metrics;

    @Override
    public Integer call() throws Exception {
        TrainConfig c = TrainConfig.read(Jreft.configFile(config));
        Path out = metrics != null ? metrics : Path.of(c.output()).resolve("metrics.json");
        AtomicFiles.checkNotAnInput(out, "--metrics", java.util.List.of(config));
        Map<String, Object> m;
        try {
            m = c.run(Path.of(""), out, System.out);
        } catch (ConfigException e) {
            throw e.in(config.toString()); // a field of the config, found wrong against the model or the data
        }
        System.out.println(TrainConfig.toJson(m));
        System.out.println("checkpoint: " + c.output() + ", metrics: " + out);
        return 0;
    }
}
