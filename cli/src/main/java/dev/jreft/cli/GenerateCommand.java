package dev.jreft.cli;

import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.IntervenableModel;
import dev.jreft.interventions.generation.Generator;
import dev.jreft.interventions.generation.InterveneOn;
import dev.jreft.interventions.generation.Sampling;
import dev.jreft.training.ReftCheckpoint;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;

@Command(name = "generate", description = "Decode after prompts with a causal export (its KV cache when it has past"
        + " inputs), optionally with a trained causal LM checkpoint's method acting on the prompt, the generated tokens"
        + " or both; prints token ids and, with a tokenizer, text.")
final class GenerateCommand implements Callable<Integer> {
    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--prompt", description = "a prompt text (repeat for a batch; prompts of unequal token length are"
            + " left-padded, which needs an export with a position_ids input)")
    List<String> prompts;

    @Option(names = "--ids", description = "prompt token ids instead of texts, rows separated by ';' (unequal lengths are"
            + " left-padded, as --prompt)")
    String ids;

    @Option(names = "--checkpoint", description = "a causal LM checkpoint trained on this model (jreft's"
            + " \"task\": \"causal_lm\")")
    Path checkpoint;

    @Option(names = "--intervene-on", defaultValue = "prompt", description = "where the checkpoint's interventions"
            + " act: prompt (its positions in the prompt; the generated tokens see them through the cache), generated"
            + " (each generated token), every (both); default ${DEFAULT-VALUE}")
    String interveneOn;

    @Option(names = "--max-new-tokens", defaultValue = "20", description = "default ${DEFAULT-VALUE}")
    int maxNewTokens;

    @Option(names = "--sample", description = "sample instead of greedy decoding")
    boolean sample;

    @Option(names = "--temperature", defaultValue = "1.0", description = "sampling temperature > 0")
    double temperature;

    @Option(names = "--top-k", defaultValue = "0", description = "sample from the k most likely tokens (0: all)")
    int topK;

    @Option(names = "--top-p", defaultValue = "1.0", description = "nucleus: the smallest set reaching p, in (0, 1]")
    double topP;

    @Option(names = "--seed", defaultValue = "42", description = "sampling seed")
    long seed;

    @Option(names = "--stop", split = ",", description = "token ids that end a row, comma separated")
    List<Long> stop;

    @Override
    public Integer call() throws Exception {
        if ((prompts == null) == (ids == null)) {
            throw ConfigException.of("--prompt / --ids", "found " + (prompts == null ? "neither" : "both")
                    + "; valid: prompt texts (--prompt, repeatable) or token ids (--ids)");
        }
        InterveneOn on = switch (interveneOn.toLowerCase(Locale.ROOT)) {
            case "prompt" -> InterveneOn.PROMPT;
            case "generated" -> InterveneOn.GENERATED;
            case "every" -> InterveneOn.EVERY;
            default -> throw new ConfigException("--intervene-on", interveneOn, "prompt, generated, every");
        };
        if (!sample && (temperature != 1.0 || topK != 0 || topP != 1.0)) {
            throw ConfigException.of("--temperature / --top-k / --top-p", "found sampling settings without --sample;"
                    + " valid: --sample with them, or none for greedy decoding");
        }
        Sampling sampling = sample ? Sampling.sample(temperature, topK, topP, seed) : Sampling.greedy();
        Set<Long> stops = stop == null ? Set.of() : new LinkedHashSet<>(stop);
        Generator.Settings settings = new Generator.Settings(maxNewTokens, sampling, stops);
        if (checkpoint != null && !Files.isDirectory(checkpoint)) {
            throw new ConfigException("--checkpoint", checkpoint.toString(), "a checkpoint folder written by jreft");
        }
        HookedModel model = modelOptions.load();
        Generator plain = new Generator(new IntervenableModel(model)); // refuses a model that cannot generate
        Batch batch;
        if (prompts != null) {
            if (model.tokenizer().isEmpty()) {
                throw new ConfigException("--tokenizer", "none for " + modelOptions.model, "the model's tokenizer.json"
                        + " (--prompt is text; give --ids otherwise)");
            }
            batch = Generator.leftPadded(model.tokenizer().get().encode(prompts));
        } else {
            long[][] rows = CacheCommand.parseIds(ids);
            int len = Arrays.stream(rows).mapToInt(r -> r.length).max().orElse(0);
            long[][] padded = new long[rows.length][len];
            long[][] mask = new long[rows.length][len];
            for (int r = 0; r < rows.length; r++) {
                System.arraycopy(rows[r], 0, padded[r], 0, rows[r].length);
                Arrays.fill(mask[r], 0, rows[r].length, 1);
            }
            batch = Generator.leftPadded(Batch.of(padded, mask));
        }
        long t0 = System.nanoTime();
        Generator.Generation out;
        try {
            if (checkpoint != null) {
                out = ReftCheckpoint.loadLanguageModel(checkpoint, model).generate(batch, on, settings, null);
            } else {
                out = plain.generate(batch, List.of(), List.of(), on, settings, null);
            }
        } catch (ConfigException e) { // the batch as the user gave it
            throw e.renamed("prompts", prompts != null ? "--prompt" : "--ids");
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        long[][] promptIds = new long[batch.size()][];
        for (int r = 0; r < batch.size(); r++) {
            long[] row = batch.inputs().get(Batch.INPUT_IDS).getRow(r).toLongVector();
            promptIds[r] = Arrays.copyOfRange(row, batch.firstReal(r), row.length); // without the left padding
        }
        for (int r = 0; r < out.tokens().length; r++) {
            long[] generated = Arrays.copyOf(out.tokens()[r], out.lengths()[r]);
            System.out.println("prompt " + r + ": " + ids(promptIds[r]) + " -> " + ids(generated));
            if (model.tokenizer().isPresent()) {
                System.out.println("  " + model.tokenizer().get().decode(promptIds[r]) + " | "
                        + model.tokenizer().get().decode(generated));
            }
        }
        System.out.printf(Locale.ROOT, "%d tokens per row in %.2f s (%s, %s)%n", out.steps(), seconds,
                plain.usesCache() ? "KV cache" : "recomputed each step",
                sample ? "sampled" : "greedy");
        return 0;
    }

    private static String ids(long[] row) {
        return Arrays.stream(row).mapToObj(Long::toString).collect(Collectors.joining(","));
    }
}
