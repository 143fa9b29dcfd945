package dev.jreft.interventions;

import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.params.Parameter;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A {@link SequenceEdit} ready to splice: the batch as the edited graph reads it, the edit's parameter feeds, and the
 * graph changes; {@link PromptSplice} for soft prompts, {@link PrefixSplice} for key / value prefixes.
 */
abstract class SequenceSplice {
    final SequenceSite site;
    final String ns;
    final int length;
    final SequenceShape shape;
    final Map<String, String> paramInputs = new LinkedHashMap<>();
    final Map<String, long[]> declaredShapes = new LinkedHashMap<>();
    final Map<String, INDArray> feeds = new LinkedHashMap<>();
    /** The completed batch the edited graph runs on. */
    Batch extended;

    SequenceSplice(SequenceSite site, int index, SequenceShape shape) {
        this.site = site;
        this.ns = "jreft.seq" + index;
        this.length = site.edit().length();
        this.shape = shape;
    }

    /** {@code base}: the user's batch, real tokens only. */
    static SequenceSplice prepare(HookedModel model, int index, SequenceSite site, Batch base) {
        String where = "edit " + index + " (" + site.edit().type() + ")";
        SequenceSplice s = site.edit() instanceof SoftPrompt ? new PromptSplice(site, index, SequenceShape.of(model), model,
                base, where) : new PrefixSplice(site, index, SequenceShape.of(model), model, base, where);
        Map<String, INDArray> given = site.params();
        List<Parameter> declared = site.edit().parameters(s.shape, () -> SequenceShape.tokenTable(model));
        for (String name : given.keySet()) {
            if (declared.stream().noneMatch(d -> d.name().equals(name))) {
                throw new IllegalArgumentException(where + ": params." + name + ": found a value for a parameter "
                        + site.edit().type() + " does not have; valid: " + String.join(", ",
                        declared.stream().map(Parameter::name).toList()));
            }
        }
        for (Parameter d : declared) {
            INDArray v = IntervenableModel.parameterValue(given.get(d.name()), d.name(), d.shape(), where);
            String input = s.ns + "." + d.name();
            s.paramInputs.put(d.name(), input);
            s.declaredShapes.put(input, d.shape());
            s.feeds.put(input, v);
        }
        return s;
    }

    /** P + s against the model's positions. */
    static void checkPositions(HookedModel model, int p, int seqLen) {
        long limit = model.inputLimits().maxPositions().orElse(Long.MAX_VALUE);
        if (p + seqLen > limit) {
            throw new ConfigException("num_virtual_tokens", p + " virtual tokens + " + seqLen + " tokens = "
                    + (p + seqLen) + " positions", "at most the model's " + limit + " positions in all");
        }
    }

    /** Hidden-state positions the edit puts in front of the real tokens (what hook sites are shifted by). */
    abstract int offset();

    abstract void splice(OnnxGraph g);

    /** A hook value read from the edited run, as the user's positions index it. */
    INDArray trim(INDArray hook) {
        return hook;
    }

    /** Part of the graph variant's key: the formula and every declared shape. */
    String key() {
        StringBuilder k = new StringBuilder("|seq:").append(site.edit().structureKey()).append(":P=").append(length);
        declaredShapes.forEach((name, dims) -> k.append(':').append(name).append(Arrays.toString(dims)));
        return k.toString();
    }
}
