package dev.jreft.cli;

import dev.jreft.hooks.runtime.Device;
import dev.jreft.hooks.runtime.OrtRuntime;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code jreft}: hooks, activation caching, interventions and verification on exported transformers. */
@Command(name = "jreft", mixinStandardHelpOptions = true, version = "jreft 0.1.0",
        description = "Interpretability and representation finetuning on exported ONNX transformers.",
        subcommands = {HooksCommand.class, CacheCommand.class, InterveneCommand.class, VerifyCommand.class,
                DemoCommand.class, PatchCommand.class, TrainCommand.class, EvalCommand.class, DasCommand.class})
public final class Jreft implements Runnable {
    @Option(names = "--device", description = "cpu (default) or cuda; cuda falls back to cpu when unavailable",
            scope = CommandLine.ScopeType.INHERIT)
    void device(String device) {
        OrtRuntime.useDevice(Device.parse(device));
    }

    @Override
    public void run() {
        CommandLine.usage(this, System.out);
    }

    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }

    /** The command line with errors printed as one clear message (no stack trace) and exit code 2. */
    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new Jreft());
        cl.setExecutionExceptionHandler((e, cmd, parsed) -> {
            Throwable t = e;
            cmd.getErr().println("jreft: " + (t.getMessage() != null ? t.getMessage() : t.toString()));
            return 2;
        });
        return cl;
    }
}
