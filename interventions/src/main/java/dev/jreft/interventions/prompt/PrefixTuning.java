package dev.jreft.interventions.prompt;

import dev.jreft.hooks.graph.Attr;
import dev.jreft.hooks.graph.SubgraphBuilder;
import dev.jreft.interventions.KeyValuePrefix;
import dev.jreft.interventions.SequenceShape;
import dev.jreft.interventions.params.Init;
import dev.jreft.interventions.params.Parameter;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Prefix tuning (Li and Liang 2021) as peft's {@code PrefixEncoder}: P trained key and value vectors in front of every
 * layer's own. Without {@code prefix_projection} they are the parameters {@code past.<i>.key} and
 * {@code past.<i>.value} [1, heads, P, head dim] (N(0, 1), peft's {@code nn.Embedding}). With it (the paper's
 * reparameterisation) they are computed, {@code pkv = transform(E)} with {@code transform = Linear(d, h) → Tanh →
 * Linear(h, layers·2·d)} on trained E [P, d], viewed as [P, layers·2, heads, head dim] and split per layer as peft's
 * {@code get_prompt} does; a checkpoint can then keep the computed prefixes and drop the MLP.
 */
public final class PrefixTuning implements KeyValuePrefix {
    private final int length;
    private final int projectionHidden;

    /** {@code projectionHidden} 0: no projection (the prefixes are the parameters). */
    public PrefixTuning(int length, int projectionHidden) {
        if (length < 1) {
            throw new dev.jreft.hooks.io.ConfigException("num_virtual_tokens", length, "an integer >= 1");
        }
        if (projectionHidden < 0) {
            throw new dev.jreft.hooks.io.ConfigException("encoder_hidden_size", projectionHidden, "an integer >= 1"
                    + " (with prefix_projection)");
        }
        this.length = length;
        this.projectionHidden = projectionHidden;
    }

    @Override
    public String type() {
        return "prefix_tuning";
    }

    /** With or without the projection MLP: two formulas. */
    @Override
    public String structureKey() {
        return type() + (projectionHidden > 0 ? "[projection]" : "");
    }

    @Override
    public int length() {
        return length;
    }

    @Override
    public List<Parameter> parameters(SequenceShape s, Supplier<INDArray> table) {
        if (s.layers() < 1 || s.heads() < 1 || s.headDim() < 1) {
            throw new IllegalArgumentException("prefix tuning needs the model's layers, heads and head size; the graph"
                    + " gives " + s.layers() + " layers, " + s.heads() + " heads of " + s.headDim());
        }
        List<Parameter> p = new ArrayList<>();
        if (projectionHidden == 0) {
            for (int i = 0; i < s.layers(); i++) {
                p.add(Parameter.of("past." + i + ".key", Init.normal(1), 1, s.heads(), length, s.headDim()));
                p.add(Parameter.of("past." + i + ".value", Init.normal(1), 1, s.heads(), length, s.headDim()));
            }
            return p;
        }
        long d = s.width();
        long out = (long) s.layers() * 2 * s.heads() * s.headDim();
        p.add(Parameter.of("embedding.weight", Init.normal(1), length, d));
        p.add(Parameter.of("transform.0.weight", Init.kaimingUniform(), projectionHidden, d));
        p.add(Parameter.of("transform.0.bias", Init.uniform(1 / Math.sqrt(d)), projectionHidden));
        p.add(Parameter.of("transform.2.weight", Init.kaimingUniform(), out, projectionHidden));
        p.add(Parameter.of("transform.2.bias", Init.uniform(1 / Math.sqrt(projectionHidden)), out));
        return p;
    }

    /** True when the prefixes are computed by the projection MLP rather than being the parameters. */
    public boolean projected() {
        return projectionHidden > 0;
    }

    public int projectionHidden() {
        return projectionHidden;
    }

    /**
     * The prefixes {@code params} give, {@code past.<i>.key} and {@code past.<i>.value} [1, heads, P, head dim] per
     * layer: the parameters themselves without the projection, the MLP's output with it (as {@link #emitPrefixes}
     * computes them). What a checkpoint keeps for inference, as the paper and peft's saved prompt embeddings do.
     */
    public Map<String, INDArray> prefixes(SequenceShape s, Map<String, INDArray> params) {
        Map<String, INDArray> out = new java.util.LinkedHashMap<>();
        if (projectionHidden == 0) {
            for (int i = 0; i < s.layers(); i++) {
                out.put("past." + i + ".key", params.get("past." + i + ".key").dup());
                out.put("past." + i + ".value", params.get("past." + i + ".value").dup());
            }
            return out;
        }
        INDArray h = org.nd4j.linalg.ops.transforms.Transforms.tanh(params.get("embedding.weight")
                .mmul(params.get("transform.0.weight").transpose()).addRowVector(params.get("transform.0.bias")),
                false);
        INDArray pkv = h.mmul(params.get("transform.2.weight").transpose()).addRowVector(params.get(
                "transform.2.bias"));
        INDArray split = pkv.reshape('c', length, 2L * s.layers(), s.heads(), s.headDim()).permute(1, 2, 0, 3)
                .dup('c'); // [layers·2, heads, P, dh]
        for (int j = 0; j < 2 * s.layers(); j++) {
            out.put("past." + j / 2 + (j % 2 == 0 ? ".key" : ".value"), split.get(
                    org.nd4j.linalg.indexing.NDArrayIndex.point(j), org.nd4j.linalg.indexing.NDArrayIndex.all(),
                    org.nd4j.linalg.indexing.NDArrayIndex.all(), org.nd4j.linalg.indexing.NDArrayIndex.all())
                    .reshape('c', 1, s.heads(), length, s.headDim()).dup('c'));
        }
        return out;
    }

    @Override
    public List<String> emitPrefixes(SubgraphBuilder b, SequenceShape s, Map<String, String> params) {
        List<String> kv = new ArrayList<>();
        if (projectionHidden == 0) {
            for (int i = 0; i < s.layers(); i++) {
                kv.add(params.get("past." + i + ".key"));
                kv.add(params.get("past." + i + ".value"));
            }
            return kv;
        }
        String h = b.op("Tanh", List.of(b.linear(params.get("embedding.weight"), params.get("transform.0.weight"),
                params.get("transform.0.bias"))));
        // [P, layers·2·heads·dh]
        String pkv = b.linear(h, params.get("transform.2.weight"), params.get("transform.2.bias"));
        // [P, layers·2, heads, dh] -> [layers·2, heads, P, dh]; entry j is layer j/2's key (even j) or value
        String split = b.op("Transpose", List.of(b.op("Reshape", List.of(pkv, b.constantInts(new long[] {length, -1,
                s.heads(), s.headDim()}, 4)))), Attr.ints("perm", 1, 2, 0, 3));
        for (int j = 0; j < 2 * s.layers(); j++) {
            kv.add(b.op("Slice", List.of(split, b.constantInts(new long[] {j}, 1), b.constantInts(new long[] {j + 1},
                    1), b.constantInts(new long[] {0}, 1))));
        }
        return kv;
    }
}
