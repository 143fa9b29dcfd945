package dev.jreft.interventions.config;

import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import dev.jreft.hooks.io.Check;
import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.InterventionSite;
import dev.jreft.interventions.Interventions;
import dev.jreft.interventions.Source;
import dev.jreft.interventions.Unit;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One site in a JSON config. {@code positions} is per example, or {@code "all"} for every real token;
 * {@code source} is an input spec run in the same call; {@code params} maps names to .npy paths or number lists.
 */
public record SiteSpec(String hook, String intervention, String unit, int[] heads,
                       @JsonPropertyDescription(POSITIONS) Object positions,
                       int[][] sourcePositions, int[] subspace, Integer rank, InputSpec source,
                       Map<String, Object> params) {
    static final String POSITIONS = "\"all\", or one list of positions per example, e.g. [[1, 2], [3]]";

    public SiteSpec {
        Check.present("hook", hook, "a hook name (blocks.L.component or tensor:<name>)");
        Check.oneOf("intervention", Check.present("intervention", intervention, Interventions.names().toString()),
                Interventions.names());
        if (positions != null && !"all".equals(positions)) {
            positionLists(positions);
        }
        if (sourcePositions != null) {
            for (int i = 0; i < sourcePositions.length; i++) {
                if (sourcePositions[i] == null || sourcePositions[i].length == 0) {
                    throw ConfigException.of("source_positions[" + i + "]", "found an empty list; valid: the source"
                            + " positions paired with that example's positions");
                }
            }
        }
        if (unit != null) {
            new Unit(unit, heads);
        } else if (heads != null) {
            new Unit("pos", heads); // heads without unit h.pos: refused, saying so
        }
        if (rank != null && !Interventions.RANKED.contains(intervention)) {
            throw new ConfigException("rank", rank, "nothing for " + intervention + " (it has no rank)");
        }
        if (subspace != null) {
            if (!Interventions.WITH_SUBSPACE.contains(intervention)) {
                throw new ConfigException("subspace", java.util.Arrays.toString(subspace), "nothing for " + intervention
                        + " (it takes no subspace)");
            }
            if (subspace.length == 0) {
                throw ConfigException.of("subspace", "found an empty list; valid: one or more indices (leave it out"
                        + " for the whole vector)");
            }
            if (java.util.Arrays.stream(subspace).distinct().count() != subspace.length) {
                throw new ConfigException("subspace", java.util.Arrays.toString(subspace), "each index once");
            }
        }
    }

    public InterventionSite toSite(HookedModel model, Batch base, Path baseDir) {
        model.hook(hook); // an unknown hook fails here, with suggestions
        boolean featureSubspace = Interventions.FEATURE_SUBSPACE.contains(intervention);
        int[][] pos = positions(base);
        InterventionSite.Builder b = InterventionSite.at(hook, Interventions.create(intervention,
                        new Interventions.Options(rank, featureSubspace ? null : subspace)))
                .unit("h.pos".equals(unit) ? Unit.heads(heads) : new Unit(unit == null ? "pos" : unit, heads))
                .positions(pos);
        if (subspace != null && featureSubspace) {
            b.subspace(subspace);
        }
        if (source != null) {
            Batch src;
            try {
                src = source.toBatch(model, baseDir);
            } catch (IllegalArgumentException e) {
                throw ConfigException.within("source", e);
            }
            b.source(Source.run(src), sourcePositions != null ? sourcePositions : pos);
        } else if (sourcePositions != null) {
            throw new ConfigException("source_positions", ConfigException.described("positions"), "nothing without"
                    + " a \"source\"");
        }
        Map<String, INDArray> p = new LinkedHashMap<>();
        if (params != null) {
            params.forEach((k, v) -> p.put(k, InputSpec.floats(v, baseDir, "params." + k)));
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
        int[][] lists = positionLists(positions);
        if (lists.length != base.size()) {
            throw new ConfigException("positions", ConfigException.described(lists.length + (lists.length == 1
                    ? " list" : " lists")), base.size() + (base.size() == 1 ? " list" : " lists") + ", one per example"
                    + " of the batch (or \"all\")");
        }
        return lists;
    }

    /** {@code positions} as integer lists: integral numbers only (1.9 is an error, not 1), none empty. */
    private static int[][] positionLists(Object positions) {
        if (!(positions instanceof List<?> rows) || rows.isEmpty()) {
            throw new ConfigException("positions", positions instanceof List ? ConfigException.described("an empty"
                    + " list") : positions, POSITIONS);
        }
        int[][] out = new int[rows.size()][];
        for (int i = 0; i < out.length; i++) {
            if (!(rows.get(i) instanceof List<?> row)) {
                throw new ConfigException("positions[" + i + "]", rows.get(i), "a list of positions");
            }
            if (row.isEmpty()) {
                throw ConfigException.of("positions[" + i + "]", "found an empty list; valid: one or more positions"
                        + " (every example of the batch is intervened on)");
            }
            out[i] = new int[row.size()];
            for (int j = 0; j < row.size(); j++) {
                Object x = row.get(j);
                if (!(x instanceof Integer n)) {
                    throw new ConfigException("positions[" + i + "][" + j + "]", x, "an integer position");
                }
                out[i][j] = n;
            }
        }
        return out;
    }
}
