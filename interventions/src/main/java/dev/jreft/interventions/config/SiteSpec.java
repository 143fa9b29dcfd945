package dev.jreft.interventions.config;

import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.InterventionSite;
import dev.jreft.interventions.Interventions;
import dev.jreft.interventions.Source;
import dev.jreft.interventions.Unit;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One site in a JSON config. {@code positions} is per example, or {@code "all"} for every real token;
 * {@code source} is an input spec run in the same call; {@code params} maps names to .npy paths or number lists.
 */
public record SiteSpec(String hook, String intervention, String unit, int[] heads, Object positions,
                       int[][] source_positions, int[] subspace, Integer rank, InputSpec source,
                       Map<String, Object> params) {
    public InterventionSite toSite(HookedModel model, Batch base, Path baseDir) {
        if (hook == null || intervention == null) {
            throw new IllegalArgumentException("a site needs 'hook' and 'intervention'");
        }
        boolean featureSubspace = Interventions.FEATURE_SUBSPACE.contains(intervention);
        InterventionSite.Builder b = InterventionSite.at(hook, Interventions.create(intervention,
                        new Interventions.Options(rank, featureSubspace ? null : subspace)))
                .unit("h.pos".equals(unit) ? Unit.heads(heads) : new Unit(unit == null ? "pos" : unit, heads))
                .positions(positions(base));
        if (subspace != null && featureSubspace) {
            b.subspace(subspace);
        }
        if (source != null) {
            Batch src = source.toBatch(model, baseDir);
            int[][] sp = source_positions != null ? source_positions : positions(base);
            b.source(Source.run(src), sp);
        }
        Map<String, INDArray> p = new LinkedHashMap<>();
        if (params != null) {
            params.forEach((k, v) -> p.put(k, InputSpec.floats(v, baseDir)));
        }
        return b.params(p).build();
    }

    private int[][] positions(Batch base) {
        if (positions == null || "all".equals(positions)) {
            int[][] all = new int[base.size()][];
            for (int i = 0; i < all.length; i++) {
                all[i] = java.util.stream.IntStream.rangeClosed(0, base.lastReal(i)).toArray();
            }
            return all;
        }
        if (positions instanceof java.util.List<?> rows) {
            int[][] out = new int[rows.size()][];
            for (int i = 0; i < out.length; i++) {
                out[i] = ((java.util.List<?>) rows.get(i)).stream().mapToInt(x -> ((Number) x).intValue()).toArray();
            }
            return out;
        }
        throw new IllegalArgumentException("'positions' must be \"all\" or a list of position lists, one per example;"
                + " got " + positions);
    }
}
