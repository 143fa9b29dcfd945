package dev.jreft.cli;

import dev.jreft.hooks.io.Npy;
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

@Command(name = "cache", description = "Run a batch once and write the chosen hooks (and the model outputs) as .npy.")
final class CacheCommand implements Callable<Integer> {
    @Mixin
    ModelOptions model;

    @Option(names = "--text", description = "a text to tokenise (repeat for a batch)")
    List<String> texts;

    @Option(names = "--ids", description = "token ids, rows separated by ';', e.g. '101,2023,102;101,102'"
            + " (shorter rows are right-padded)")
    String ids;

    @Option(names = "--hooks", split = ",", required = true,
            description = "hook names (blocks.L.component or tensor:<name>), comma separated; 'all' for every hook")
    List<String> hooks;

    @Option(names = "--out", required = true, description = "output folder")
    Path out;

    @Override
    public Integer call() throws Exception {
        HookedModel m = model.load();
        Batch batch = batch(m);
        List<String> names = hooks.equals(List.of("all")) ? m.hooks().names() : hooks;
        ActivationCache c = m.runWithCache(batch, names);
        c.save(out);
        for (var e : c.outputs().entrySet()) {
            Npy.write(out.resolve(e.getKey() + ".npy"), e.getValue());
        }
        Npy.write(out.resolve("input_ids.npy"), batch.inputs().get(Batch.INPUT_IDS));
        Npy.write(out.resolve("attention_mask.npy"), batch.attentionMask());
        System.out.println("wrote " + names.size() + " hooks and " + c.outputs().size() + " outputs to " + out);
        return 0;
    }

    private Batch batch(HookedModel m) {
        if ((texts == null) == (ids == null)) {
            throw new IllegalArgumentException("give either --text (one or more) or --ids");
        }
        if (texts != null) {
            return m.tokenize(texts);
        }
        String[] rows = ids.split(";");
        List<long[]> parsed = new ArrayList<>();
        int len = 0;
        for (String r : rows) {
            long[] row;
            try {
                row = Arrays.stream(r.trim().split(",")).map(String::trim).mapToLong(Long::parseLong).toArray();
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--ids: '" + r + "' is not a comma-separated list of integers");
            }
            parsed.add(row);
            len = Math.max(len, row.length);
        }
        long[][] idArr = new long[parsed.size()][len];
        long[][] mask = new long[parsed.size()][len];
        for (int i = 0; i < idArr.length; i++) {
            System.arraycopy(parsed.get(i), 0, idArr[i], 0, parsed.get(i).length);
            Arrays.fill(mask[i], 0, parsed.get(i).length, 1);
        }
        return new InputSpec(null, idArr, mask, null).toBatch(m, Path.of(""));
    }
}
