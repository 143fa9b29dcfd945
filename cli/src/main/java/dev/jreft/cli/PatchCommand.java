package dev.jreft.cli;

import dev.jreft.analysis.PatchingSweep;
import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.runtime.HookedModel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "patch", description = "Activation patching on the embedded MiniLM. Interchanges each"
        + " layer's block output from the source sentence into the base sentence and prints how far the base's"
        + " sentence embedding moves.")
final class PatchCommand implements Callable<Integer> {
    @Option(names = "--base", defaultValue = "The movie was absolutely wonderful.", description = "base sentence")
    String base;

    @Option(names = "--source", defaultValue = "The movie was absolutely terrible.", description = "source sentence")
    String source;

    @Option(names = "--all-positions", description = "patch every shared position, not only those that differ")
    boolean allPositions;

    @Override
    public Integer call() {
        long t0 = System.nanoTime();
        HookedModel m = HookedModel.minilm();
        System.out.println("model: all-MiniLM-L6-v2 (" + m.hooks().config().layers() + " layers, d="
                + m.hooks().config().hidden() + ", " + m.graph().parameterCount() + " parameters), device "
                + m.runtime().device());
        for (var text : java.util.Map.of("--base", base, "--source", source).entrySet()) {
            int tokens = m.tokenizer().orElseThrow().tokens(text.getValue()).size();
            if (text.getValue().isBlank()) {
                throw new ConfigException(text.getKey(), text.getValue(), "a sentence with at least one non-space"
                        + " character");
            }
            long max = m.inputLimits().maxPositions().orElse(Long.MAX_VALUE);
            if (tokens > max) {
                throw new ConfigException(text.getKey(), ConfigException.described("a text of " + tokens + " tokens"),
                        "at most " + max + " tokens (the model's positions; a cut text could hide the difference)");
            }
        }
        System.out.println("base:   " + base + "  " + m.tokenizer().orElseThrow().tokens(base));
        System.out.println("source: " + source + "  " + m.tokenizer().orElseThrow().tokens(source));
        List<PatchingSweep.LayerEffect> fx = PatchingSweep.blockOutputInterchange(m, base, source,
                allPositions ? PatchingSweep.Positions.ALL_SHARED : PatchingSweep.Positions.DIFFERING);
        System.out.println("patched positions: " + java.util.Arrays.toString(fx.get(0).positions()));
        System.out.println();
        System.out.println("patched hook              cos dist to base   cos dist to source");
        for (PatchingSweep.LayerEffect e : fx) {
            System.out.printf("blocks.%d.block_output    %16.5f   %18.5f%n", e.layer(), e.distanceFromBase(),
                    e.distanceToSource());
        }
        System.out.println();
        System.out.println("clean distance base↔source: " + String.format("%.5f", PatchingSweep.embeddingDistance(m, base, source))
                + "   (embedding = mean over real tokens of last_hidden_state)");
        System.out.printf("done in %.1f s%n", (System.nanoTime() - t0) / 1e9);
        return 0;
    }
}
