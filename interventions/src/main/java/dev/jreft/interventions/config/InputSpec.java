package dev.jreft.interventions.config;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
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
@JsonIgnoreProperties(ignoreUnknown = false)
public record InputSpec(List<String> texts, long[][] input_ids, long[][] attention_mask, Map<String, String> npy) {
    public Batch toBatch(HookedModel model, Path baseDir) {
        int given = (texts != null ? 1 : 0) + (input_ids != null ? 1 : 0) + (npy != null ? 1 : 0);
        if (given != 1) {
            throw new IllegalArgumentException("an input needs exactly one of 'texts', 'input_ids' or 'npy'");
        }
        if (texts != null) {
            return model.tokenize(texts);
        }
        if (input_ids != null) {
            long[][] mask = attention_mask;
            if (mask == null) {
                mask = new long[input_ids.length][];
                for (int i = 0; i < mask.length; i++) {
                    mask[i] = new long[input_ids[i].length];
                    java.util.Arrays.fill(mask[i], 1);
                }
            }
            for (int i = 0; i < input_ids.length; i++) {
                if (input_ids[i].length != input_ids[0].length || mask[i].length != input_ids[i].length) {
                    throw new IllegalArgumentException("input_ids and attention_mask must be rectangular and of equal"
                            + " shape (row " + i + " differs); pad on the right");
                }
            }
            return model.complete(Batch.of(input_ids, mask));
        }
        Map<String, INDArray> m = new LinkedHashMap<>();
        npy.forEach((k, v) -> m.put(k, Npy.read(baseDir.resolve(v))));
        return model.complete(new Batch(m));
    }

    static INDArray floats(Object value, Path baseDir) {
        if (value instanceof String s) {
            return Npy.read(baseDir.resolve(s));
        }
        if (value instanceof List<?> l) {
            float[] f = new float[l.size()];
            for (int i = 0; i < f.length; i++) {
                f[i] = ((Number) l.get(i)).floatValue();
            }
            return Nd4j.createFromArray(f);
        }
        throw new IllegalArgumentException("a parameter value must be a .npy path or a list of numbers; got " + value);
    }
}
