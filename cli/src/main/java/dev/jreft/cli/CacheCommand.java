package dev.jreft.cli;

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
        try (OutputFolder folder = OutputFolder.prepare(out, "cache")) {
            HookedModel m = model.load();
            Batch batch = texts != null ? m.tokenize(texts)
                    : new InputSpec(null, idRows, mask(idRows), null).toBatch(m, Path.of(""));
            List<String> names = hooks.equals(List.of("all")) ? m.hooks().names() : hooks;
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
                parsed.add(Arrays.stream(rows[r].trim().split(",")).map(String::trim).mapToLong(Long::parseLong)
                        .toArray());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--ids row " + r + ": found '" + rows[r] + "'; valid: token ids"
                        + " separated by ',' (rows separated by ';')");
            }
        }
        return parsed.toArray(long[][]::new);
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
