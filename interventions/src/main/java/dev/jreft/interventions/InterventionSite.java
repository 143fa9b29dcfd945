package dev.jreft.interventions;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Map;

/**
 * One intervention at one hook: which positions of each example ({@code basePositions[b]}), the paired source
 * positions ({@code sourcePositions[b][i]} pairs with {@code basePositions[b][i]}), the unit, an optional subspace
 * (feature indices; within each head's slice for {@code h.pos}), the source and the parameter values. Base
 * positions on padding are refused (a list that reaches them is usually a mistake) unless {@code onPadding}: an
 * adapter or IA3 acts like a module, at every position, padded ones included.
 */
public record InterventionSite(String hook, Intervention intervention, Unit unit, int[][] basePositions,
                               int[][] sourcePositions, int[] subspace, Source source,
                               Map<String, INDArray> params, boolean onPadding) {
    public InterventionSite {
        params = params == null ? Map.of() : Map.copyOf(params);
        if (unit == null) {
            unit = Unit.POS;
        }
    }

    /**
     * The same site with its base positions {@code offset} later: where the user's positions are in a sequence that
     * a soft prompt made longer by {@code offset} virtual tokens in front.
     */
    InterventionSite shifted(int offset) {
        if (offset == 0 || basePositions == null) {
            return this;
        }
        int[][] moved = new int[basePositions.length][];
        for (int b = 0; b < moved.length; b++) {
            moved[b] = java.util.Arrays.stream(basePositions[b]).map(p -> p + offset).toArray();
        }
        return new InterventionSite(hook, intervention, unit, moved, sourcePositions, subspace, source, params,
                onPadding);
    }

    public static Builder at(String hook, Intervention intervention) {
        return new Builder(hook, intervention);
    }

    /** Builder: many optional fields. */
    public static final class Builder {
        private final String hook;
        private final Intervention intervention;
        private Unit unit = Unit.POS;
        private int[][] base;
        private int[][] sourcePositions;
        private int[] subspace;
        private Source source;
        private Map<String, INDArray> params = Map.of();
        private boolean onPadding;

        private Builder(String hook, Intervention intervention) {
            this.hook = hook;
            this.intervention = intervention;
        }

        public Builder unit(Unit u) {
            this.unit = u;
            return this;
        }

        public Builder positions(int[][] basePositions) {
            this.base = basePositions;
            return this;
        }

        public Builder source(Source s, int[][] sourcePositions) {
            this.source = s;
            this.sourcePositions = sourcePositions;
            return this;
        }

        public Builder subspace(int... indices) {
            this.subspace = indices;
            return this;
        }

        public Builder params(Map<String, INDArray> p) {
            this.params = p;
            return this;
        }

        /** Every position of every example, padded ones included: where a module-like intervention acts. */
        public Builder everyPosition(int batch, int seqLen) {
            int[][] all = new int[batch][seqLen];
            for (int[] row : all) {
                for (int p = 0; p < seqLen; p++) {
                    row[p] = p;
                }
            }
            return positions(all).onPadding();
        }

        /** Base positions may lie on padding. */
        public Builder onPadding() {
            this.onPadding = true;
            return this;
        }

        public InterventionSite build() {
            return new InterventionSite(hook, intervention, unit, base, sourcePositions, subspace, source, params,
                    onPadding);
        }
    }
}
