package dev.jreft.cli;

import dev.jreft.hooks.discovery.DetectionException;
import dev.jreft.hooks.graph.OnnxFormatException;
import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.runtime.Device;
import dev.jreft.hooks.runtime.OrtRuntime;
import dev.jreft.training.NonFiniteException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Path;

/** {@code jreft}: hooks, activation caching, interventions and verification on exported transformers. */
@Command(name = "jreft", mixinStandardHelpOptions = true, scope = CommandLine.ScopeType.INHERIT,
        version = "jreft 0.1.0",
        description = "Interpretability and representation finetuning on exported ONNX transformers.",
        subcommands = {HooksCommand.class, CacheCommand.class, InterveneCommand.class, VerifyCommand.class,
                DemoCommand.class, PatchCommand.class, SweepCommand.class, TrainCommand.class, EvalCommand.class, MergeCommand.class,
                ExportCommand.class, DasCommand.class, CompareCommand.class, GenerateCommand.class, Gpt2Command.class})
public final class Jreft implements Runnable {
    /** Exit code of bad input (a config, a data file, an option, a path): one line on stderr says what and where. */
    public static final int BAD_INPUT = 2;
    /** Exit code of a run that failed for another reason (training diverged, an internal error). */
    public static final int FAILED = 1;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--device", paramLabel = "cpu|cuda", description = "cpu (default) or cuda; cuda falls back to"
            + " cpu when unavailable", scope = CommandLine.ScopeType.INHERIT)
    void device(String device) {
        try {
            OrtRuntime.useDevice(Device.parse(device));
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--device: found '" + device
                    + "'; valid: cpu, cuda");
        }
    }

    @Override
    public void run() {
        CommandLine.usage(this, System.out);
    }

    public static void main(String[] args) {
        int code;
        try {
            code = commandLine().execute(args);
        } catch (OutOfMemoryError e) { // an Error passes picocli's handler
            System.err.println("jreft: failed: " + OUT_OF_MEMORY + " (" + e.getMessage() + ")");
            code = FAILED;
        }
        System.exit(code);
    }

    static final String OUT_OF_MEMORY = "ran out of memory; smaller settings (batch size, examples, classes, texts)"
            + " or a larger heap (JREFT_JAVA_OPTS=-Xmx16g) help";

    /**
     * The command line, with every failure printed as one line on stderr, never a stack trace ({@code JREFT_DEBUG=1}
     * adds it): bad input exits with {@link #BAD_INPUT}, anything else with {@link #FAILED}.
     */
    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new Jreft());
        cl.setExecutionExceptionHandler((e, cmd, parsed) -> {
            boolean bad = isBadInput(e);
            cmd.getErr().println("jreft: " + (bad ? "" : "failed: ") + oneLine(message(e)));
            if (System.getenv("JREFT_DEBUG") != null) {
                e.printStackTrace(new java.io.PrintWriter(cmd.getErr(), true));
            }
            return bad ? BAD_INPUT : FAILED;
        });
        cl.setParameterExceptionHandler((e, args) -> {
            CommandLine c = e.getCommandLine();
            String name = c.getCommandSpec().qualifiedName();
            String msg = e.getCause() instanceof CommandLine.ParameterException p ? p.getMessage() : e.getMessage();
            if (e instanceof CommandLine.UnmatchedArgumentException u && c == cl && !u.getUnmatched().isEmpty()
                    && !u.getUnmatched().get(0).startsWith("-")) { // the first word is not a command
                msg = "command: found '" + u.getUnmatched().get(0) + "'; valid: "
                        + String.join(", ", cl.getSubcommands().keySet());
            }
            c.getErr().println(name + ": " + oneLine(msg) + " (see '" + name + " --help')");
            return BAD_INPUT;
        });
        return cl;
    }

    /** What the user got wrong (and can fix) rather than what went wrong inside. */
    static boolean isBadInput(Throwable e) {
        return e instanceof IllegalArgumentException || e instanceof OnnxFormatException
                || e instanceof DetectionException || e instanceof UncheckedIOException || e instanceof IOException;
    }

    private static String message(Throwable e) {
        if (e instanceof UncheckedIOException u) {
            e = u.getCause();
        }
        if (e instanceof AccessDeniedException a) {
            return a.getFile() + ": permission denied";
        }
        if (e instanceof FileSystemException f && f.getReason() != null) {
            return f.getFile() + ": " + f.getReason();
        }
        if (e instanceof ConfigException || isBadInput(e) || e instanceof NonFiniteException) {
            return e.getMessage() != null ? e.getMessage() : e.toString(); // said in full by its own message
        }
        if (e.getMessage() != null && (e.getMessage().contains("Allocation failed")
                || e.getMessage().contains("bad_alloc"))) { // ND4J's native allocator
            return OUT_OF_MEMORY + " (" + e.getMessage() + ")";
        }
        return (e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName()) + " (" + e.getClass()
                .getSimpleName() + "; JREFT_DEBUG=1 prints where)";
    }

    /** A {@code --config} path checked before it is read: not empty, not a folder. */
    static Path configFile(Path config) {
        if (config.toString().isEmpty() || java.nio.file.Files.isDirectory(config)) {
            throw new ConfigException("--config", config.toString(), "the path of a JSON config file"
                    + (config.toString().isEmpty() ? "" : " (this is a folder)"));
        }
        return config;
    }

    /** A message on one line, whatever its source put in it. */
    static String oneLine(String s) {
        return s == null ? "" : ConfigException.printable(s.replaceAll("\\s*\\R\\s*", " ").strip());
    }
}
