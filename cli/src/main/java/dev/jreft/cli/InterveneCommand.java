package dev.jreft.cli;

import dev.jreft.hooks.io.ConfigException;
import dev.jreft.interventions.config.InterventionConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "intervene", description = "Run a JSON intervention config; write outputs, read hooks and"
        + " collected values as .npy.")
final class InterveneCommand implements Callable<Integer> {
    @Option(names = "--config", required = true, description = "intervention config (JSON; see README)")
    Path config;

    @Option(names = "--out", required = true, description = "output folder")
    Path out;

    @Override
    public Integer call() throws Exception {
        InterventionConfig c = InterventionConfig.read(Jreft.configFile(config));
        List<Path> written;
        try {
            written = c.runAndWrite(Path.of(""), out);
        } catch (ConfigException e) {
            throw e.in(config.toString()); // a field of the config, found wrong against the model
        }
        written.forEach(p -> System.out.println("wrote " + p));
        return 0;
    }
}
