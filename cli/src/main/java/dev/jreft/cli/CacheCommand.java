package dev.jreft.cli;

import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.io.OutputFolder;
import dev.jreft.hooks.runtime.ActivationCache;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.config.InputSpec;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "cache", description = "Run a batch once and write the chosen hooks, the model outputs and the"
        + " inputs as .npy files into --out, with index.json naming what each file holds.")
final class CacheCommand implements Callable<Integer> {
    @Mixin
    ModelOptions model;

    @Mixin
    TextOptions text;

    @Option(names = "--ids", description = "token ids, rows separated by ';', e.g. '101,2023,102;101,102'"
            + " (shorter rows are right-padded)")
    String ids;

    @Option(names = "--hooks", split = ",", required = true,
            description = "hook names (blocks.L.component or tensor:<name>), comma separated; 'all' for every hook")
    List<String> hooks;

    @Option(names = "--out", required = true, description = "output folder: new, empty, or an earlier jreft output"
            + " (replaced as a whole)")
    Path out;

    @Override
    public Integer call() throws Exception {
        List<String> texts = text.texts();
        if ((texts == null) == (ids == null)) {
            throw new IllegalArgumentException("--text / --text-file / --ids: give texts (--text, repeatable, or"
                    + " --text-file FILE|-) or token ids (--ids), not both and not neither");
        }
        long[][] idRows = ids == null ? null : parseIds(ids);
        if (hooks.contains("all") && hooks.size() > 1) {
            throw new ConfigException("--hooks", String.join(",", hooks), "'all' alone, or a list of hook names");
        }
        try (OutputFolder folder = OutputFolder.prepare(out, "cache")) {
            HookedModel m = model.load();
            List<String> names = hooks.equals(List.of("all")) ? m.hooks().names() : hooks;
            for (int i = 0; i < names.size(); i++) {
                m.hook(names.get(i), "--hooks[" + i + "]");
            }
            Batch batch;
            try {
                batch = texts != null ? m.tokenize(texts)
                        : new InputSpec(null, idRows, mask(idRows), null).toBatch(m, Path.of(""));
            } catch (ConfigException e) { // the batch's fields, named as the user gave them
                throw e.renamed("texts", text.textFile == null ? "--text" : "--text/--text-file text", true)
                        .renamed("input_ids", "--ids");
            }
            ActivationCache c = m.runWithCache(batch, names);
            c.save(folder);
            folder.npy(Batch.INPUT_IDS, "input", batch.inputs().get(Batch.INPUT_IDS));
            folder.npy(Batch.ATTENTION_MASK, "input", batch.attentionMask());
            folder.commit();
            System.out.println("wrote " + names.size() + " hooks and " + c.outputs().size() + " outputs to " + out
                    + " (index.json lists the files)");
        }
        return 0;
    }

    /** {@code --ids}: rows of comma-separated integers, separated by ';'. */
    static long[][] parseIds(String ids) {
        List<long[]> parsed = new ArrayList<>();
        String[] rows = ids.split(";", -1);
        for (int r = 0; r < rows.length; r++) {
            try {
                parsed.add(Arrays.stream(rows[r].trim().split(",")).map(String::trim).mapToLong(CacheCommand::asciiLong)
                        .toArray());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--ids row " + r + ": found '" + rows[r] + "'; valid: token ids"
                        + " separated by ',' (rows separated by ';')");
            }
        }
        return parsed.toArray(long[][]::new);
    }

    /** A decimal integer in ASCII digits only (Long.parseLong also reads other scripts' digits). */
    private static long asciiLong(String s) {
        if (!s.matches("-?[0-9]{1,18}")) {
            throw new NumberFormatException(s);
        }
        return Long.parseLong(s);
    }

    /** Right-pads rows of different lengths with id 0 (and mask 0) in place; returns the mask. */
    private static long[][] mask(long[][] rows) {
        int len = Arrays.stream(rows).mapToInt(r -> r.length).max().orElse(0);
        long[][] mask = new long[rows.length][len];
        for (int i = 0; i < rows.length; i++) {
            Arrays.fill(mask[i], 0, rows[i].length, 1);
            rows[i] = Arrays.copyOf(rows[i], len);
        }
        return mask;
    }
}
