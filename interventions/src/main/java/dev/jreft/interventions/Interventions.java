package dev.jreft.interventions;

import dev.jreft.interventions.das.LowRankRotatedSpaceInterchange;
import dev.jreft.interventions.das.RotatedSpaceInterchange;
import dev.jreft.interventions.reft.DiReFT;
import dev.jreft.interventions.reft.LoReFT;
import dev.jreft.interventions.reft.NoReFT;
import dev.jreft.interventions.statics.Addition;
import dev.jreft.interventions.statics.Collect;
import dev.jreft.interventions.statics.Subtraction;
import dev.jreft.interventions.statics.VanillaInterchange;
import dev.jreft.interventions.statics.ZeroAblation;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;

/** Interventions by their stable config names, built from options ({@code rank}, {@code subspace}). */
public final class Interventions {
    /** Types whose {@code subspace} selects features of the unit (for DAS it is the rotated coordinates). */
    public static final Set<String> FEATURE_SUBSPACE = Set.of("vanilla_interchange", "zero_ablation", "addition",
            "subtraction", "collect");

    private static final Map<String, Function<Options, Intervention>> REGISTRY = new LinkedHashMap<>();

    /** Construction options from a config: the rank of low-rank interventions, DAS's rotated subspace. */
    public record Options(Integer rank, int[] subspace) {
        public static final Options NONE = new Options(null, null);

        int requireRank(String type) {
            if (rank == null) {
                throw new IllegalArgumentException(type + " needs 'rank'");
            }
            return rank;
        }

        int[] requireSubspace(String type) {
            if (subspace == null) {
                throw new IllegalArgumentException(type + " needs 'subspace' (the rotated coordinates to interchange)");
            }
            return subspace;
        }
    }

    static {
        register("vanilla_interchange", o -> new VanillaInterchange());
        register("zero_ablation", o -> new ZeroAblation());
        register("addition", o -> new Addition());
        register("subtraction", o -> new Subtraction());
        register("collect", o -> new Collect());
        register("loreft", o -> new LoReFT(o.requireRank("loreft")));
        register("noreft", o -> new NoReFT(o.requireRank("noreft")));
        register("direft", o -> new DiReFT(o.requireRank("direft")));
        register("rotated_space_interchange",
                o -> new RotatedSpaceInterchange(o.requireSubspace("rotated_space_interchange")));
        register("low_rank_rotated_space_interchange",
                o -> new LowRankRotatedSpaceInterchange(o.requireRank("low_rank_rotated_space_interchange")));
    }

    private Interventions() {
    }

    public static void register(String type, Function<Options, Intervention> factory) {
        REGISTRY.put(type, factory);
    }

    public static boolean known(String type) {
        return REGISTRY.containsKey(type);
    }

    public static Intervention byType(String type) {
        return create(type, Options.NONE);
    }

    public static Intervention create(String type, Options options) {
        Function<Options, Intervention> f = REGISTRY.get(type);
        if (f == null) {
            throw new IllegalArgumentException("unknown intervention '" + type + "' (valid: " + REGISTRY.keySet() + ")");
        }
        return f.apply(options);
    }
}
