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
        for (String k : npy.keySet()) {
            if (!model.graph().inputNames().contains(k)) {
                throw new ConfigException("npy." + k, ConfigException.described("an input the graph does not have"),
                        "the graph's inputs " + model.graph().inputNames());
            }
        }
        npy.forEach((k, v) -> {
            try {
                m.put(k, Npy.read(baseDir.resolve(v)));
            } catch (IllegalArgumentException e) {
                throw ConfigException.within("npy." + k, e);
            }
        });
        return model.complete(new Batch(m));
    }

    /** Flattens a rectangular nested list of finite numbers, recording its shape. */
    private static void nested(List<?> l, String field, int depth, List<Long> shape, List<Float> flat) {
        if (shape.size() == depth) {
            shape.add((long) l.size());
        } else if (shape.get(depth) != l.size()) {
            throw new ConfigException(field, ConfigException.described("a list of " + l.size() + " at depth " + depth),
                    shape.get(depth) + " entries there, as its first list (a rectangular array)");
        }
        for (int i = 0; i < l.size(); i++) {
            Object x = l.get(i);
            String at = field + "[" + i + "]";
            if (x instanceof List<?> inner && !inner.isEmpty()) {
                if (shape.size() == depth + 1 && i > 0) { // numbers came first at this depth
                    throw new ConfigException(at, ConfigException.described("a list"), "a number, as the other"
                            + " entries at this depth");
                }
                nested(inner, at, depth + 1, shape, flat);
            } else if (x instanceof Number n && Double.isFinite(n.doubleValue())
                    && Math.abs(n.doubleValue()) <= Float.MAX_VALUE) {
                if (shape.size() != depth + 1) {
                    throw new ConfigException(at, x, "a list, as the other entries at this depth");
                }
                flat.add(n.floatValue());
            } else {
                throw new ConfigException(at, x, "a finite number (float32: |x| < 3.4e38)");
            }
        }
    }

    /** A parameter value: a .npy path, or a list of finite numbers (nested lists for a matrix). */
    static INDArray floats(Object value, Path baseDir, String field) {
        if (value instanceof String s) {
            try {
                return Npy.read(baseDir.resolve(s));
            } catch (IllegalArgumentException e) {
                throw ConfigException.within(field, e);
            }
        }
        if (value instanceof List<?> l && !l.isEmpty()) {
            List<Long> shape = new java.util.ArrayList<>();
            List<Float> flat = new java.util.ArrayList<>();
            nested(l, field, 0, shape, flat);
            float[] f = new float[flat.size()];
            for (int i = 0; i < f.length; i++) {
                f[i] = flat.get(i);
            }
            return Nd4j.create(f, shape.stream().mapToLong(Long::longValue).toArray(), 'c');
        }
        throw new ConfigException(field, value instanceof List ? ConfigException.described("an empty list")
                : value, "the path of a .npy file, or a list of numbers");
    }
}
