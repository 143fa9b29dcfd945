package dev.jreft.interventions.config;

import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.io.Npy;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A batch in a JSON config: {@code texts} (tokenised with the model's tokenizer), or {@code input_ids} with an
 * optional {@code attention_mask} (right padding), or {@code npy}: graph input name → .npy file.
 */
public record InputSpec(List<String> texts, long[][] inputIds, long[][] attentionMask, Map<String, String> npy) {
    public InputSpec {
        int given = (texts != null ? 1 : 0) + (inputIds != null ? 1 : 0) + (npy != null ? 1 : 0);
        if (given != 1) {
            throw ConfigException.of("", "found " + (given == 0 ? "none" : given) + " of \"texts\", \"input_ids\","
                    + " \"npy\"; valid: exactly one");
        }
        if (attentionMask != null && inputIds == null) {
            throw new ConfigException("attention_mask", ConfigException.described("a mask"), "a mask only beside"
                    + " \"input_ids\"");
        }
        if (texts != null && texts.isEmpty()) {
            throw ConfigException.of("texts", "found an empty list; valid: one or more texts");
        }
        if (inputIds != null) {
            if (inputIds.length == 0) {
                throw ConfigException.of("input_ids", "found an empty list; valid: one row of token ids per example");
            }
            for (int i = 0; i < inputIds.length; i++) {
                if (inputIds[i] == null || inputIds[i].length == 0) {
                    throw ConfigException.of("input_ids[" + i + "]", "found an empty row; valid: one or more token ids");
                }
                if (inputIds[i].length != inputIds[0].length) {
                    throw new ConfigException("input_ids[" + i + "]", ConfigException.described(inputIds[i].length
                            + " ids"), inputIds[0].length + " ids, as row 0 (pad on the right, with attention_mask 0"
                            + " there)");
                }
                if (attentionMask != null && (i >= attentionMask.length || attentionMask[i] == null
                        || attentionMask[i].length != inputIds[i].length)) {
                    throw ConfigException.of("attention_mask", "found a shape unlike input_ids' (row " + i + ");"
                            + " valid: one 0/1 entry per token id");
                }
            }
            if (attentionMask != null && attentionMask.length != inputIds.length) {
                throw new ConfigException("attention_mask", ConfigException.described(attentionMask.length + " rows"),
                        inputIds.length + " rows, as input_ids");
            }
        }
    }

    /** The batch, checked against the model (token ids in its vocabulary, mask of 0/1 with a real token per row). */
    public Batch toBatch(HookedModel model, Path baseDir) {
        if (texts != null) {
            return model.tokenize(texts);
        }
        if (inputIds != null) {
            long[][] mask = attentionMask;
            if (mask == null) {
                mask = new long[inputIds.length][];
                for (int i = 0; i < mask.length; i++) {
                    mask[i] = new long[inputIds[i].length];
                    java.util.Arrays.fill(mask[i], 1);
                }
            }
            return model.complete(Batch.of(inputIds, mask));
        }
        Map<String, INDArray> m = new LinkedHashMap<>();
        npy.forEach((k, v) -> {
            try {
                m.put(k, Npy.read(baseDir.resolve(v)));
            } catch (IllegalArgumentException e) {
                throw ConfigException.within("npy." + k, e);
            }
        });
        return model.complete(new Batch(m));
    }

    /** A parameter value: a .npy path or a list of finite numbers. */
    static INDArray floats(Object value, Path baseDir, String field) {
        if (value instanceof String s) {
            try {
                return Npy.read(baseDir.resolve(s));
            } catch (IllegalArgumentException e) {
                throw ConfigException.within(field, e);
            }
        }
        if (value instanceof List<?> l && !l.isEmpty()) {
            float[] f = new float[l.size()];
            for (int i = 0; i < f.length; i++) {
                if (!(l.get(i) instanceof Number n) || !Double.isFinite(n.doubleValue())) {
                    throw new ConfigException(field + "[" + i + "]", l.get(i), "a finite number");
                }
                f[i] = n.floatValue();
            }
            return Nd4j.createFromArray(f);
        }
        throw new ConfigException(field, value instanceof List ? ConfigException.described("an empty list")
                : value, "the path of a .npy file, or a list of numbers");
    }
}
