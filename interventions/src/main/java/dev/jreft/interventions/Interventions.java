package dev.jreft.interventions;

import dev.jreft.interventions.das.BoundlessRotatedSpaceInterchange;
import dev.jreft.interventions.das.LowRankRotatedSpaceInterchange;
import dev.jreft.interventions.das.RotatedSpaceInterchange;
import dev.jreft.interventions.das.SigmoidMaskInterchange;
import dev.jreft.interventions.peft.BottleneckAdapter;
import dev.jreft.interventions.peft.ElementwiseScale;
import dev.jreft.interventions.reft.Activation;
import dev.jreft.interventions.reft.ConsReFT;
import dev.jreft.interventions.reft.DiReFT;
import dev.jreft.interventions.reft.LoReFT;
import dev.jreft.interventions.reft.LobiReFT;
import dev.jreft.interventions.reft.NoReFT;
import dev.jreft.interventions.reft.NodiReFT;
import dev.jreft.interventions.statics.Addition;
import dev.jreft.interventions.statics.Collect;
import dev.jreft.interventions.statics.Subtraction;
import dev.jreft.interventions.statics.VanillaInterchange;
import dev.jreft.interventions.statics.ZeroAblation;

import dev.jreft.hooks.io.Check;
import dev.jreft.hooks.io.ConfigException;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;

/**
 * Interventions by their stable config names, built from options ({@code rank}, {@code subspace},
 * {@code activation}, {@code dropout}).
 */
public final class Interventions {
    /** Types whose {@code subspace} selects features of the unit (for DAS it is the rotated coordinates). */
    public static final Set<String> FEATURE_SUBSPACE = Set.of("vanilla_interchange", "zero_ablation", "addition",
            "subtraction", "collect");

    /** Types built with a {@code rank}. */
    public static final Set<String> RANKED = Set.of("loreft", "noreft", "direft", "nodireft", "consreft", "lobireft",
            "low_rank_rotated_space_interchange", "bottleneck_adapter");
    /** Types that take a {@code subspace}: feature indices, or DAS's rotated coordinates. */
    public static final Set<String> WITH_SUBSPACE = Set.of("vanilla_interchange", "zero_ablation", "addition",
            "subtraction", "collect", "rotated_space_interchange");

    /** The trainable ReFT family (the types a ReFT classifier or language model trains). */
    public static final List<String> REFT = List.of("loreft", "noreft", "direft", "nodireft", "consreft", "lobireft");

    private static final Map<String, Function<Options, Intervention>> REGISTRY = new LinkedHashMap<>();

    /**
     * Construction options from a config: the rank of low-rank interventions, DAS's rotated subspace, and for the
     * ReFT family pyreft's {@code act_fn} on {@code h Wᵀ + b} (LoReFT, NoReFT, DiReFT, NodiReFT; default linear)
     * and its output dropout p in [0, 1) (default 0). Types that have no use for an option ignore it, except that
     * ConsReFT and LobiReFT (no W) reject a non-linear activation.
     */
    public record Options(Integer rank, int[] subspace, Activation activation, double dropout) {
        public static final Options NONE = new Options(null, null);

        public Options {
            if (activation == null) {
                activation = Activation.LINEAR;
            }
            Check.between("dropout", dropout, 0, 1, true);
            if (rank != null) {
                Check.atLeast("rank", rank, 1);
            }
        }

        /** Rank and subspace only: linear activation, no dropout. */
        public Options(Integer rank, int[] subspace) {
            this(rank, subspace, Activation.LINEAR, 0);
        }

        /** These options with the activation of this config name (linear, relu, tanh, sigmoid, gelu). */
        public Options withActivation(String name) {
            return new Options(rank, subspace, Activation.named(name), dropout);
        }

        /** These options with output dropout p. */
        public Options withDropout(double p) {
            return new Options(rank, subspace, activation, p);
        }

        int requireRank(String type) {
            if (rank == null) {
                throw ConfigException.of("rank", "found nothing; valid: an integer >= 1 (" + type + " needs a rank)");
            }
            return rank;
        }

        int[] requireSubspace(String type) {
            if (subspace == null) {
                throw ConfigException.of("subspace", "found nothing; valid: a list of coordinates (" + type
                        + " interchanges these rotated coordinates)");
            }
            return subspace;
        }

        void requireLinear(String type) {
            if (activation != Activation.LINEAR) {
                throw new ConfigException("activation", activation.configName(), "linear (" + type + " has no"
                        + " learned projection W, so no activation applies)");
            }
        }
    }

    static {
        register("vanilla_interchange", o -> new VanillaInterchange());
        register("zero_ablation", o -> new ZeroAblation());
        register("addition", o -> new Addition());
        register("subtraction", o -> new Subtraction());
        register("collect", o -> new Collect());
        register("loreft", o -> new LoReFT(o.requireRank("loreft"), o.activation(), o.dropout()));
        register("noreft", o -> new NoReFT(o.requireRank("noreft"), o.activation(), o.dropout()));
        register("direft", o -> new DiReFT(o.requireRank("direft"), o.activation(), o.dropout()));
        register("nodireft", o -> new NodiReFT(o.requireRank("nodireft"), o.activation(), o.dropout()));
        register("consreft", o -> {
            o.requireLinear("consreft");
            return new ConsReFT(o.requireRank("consreft"), o.dropout());
        });
        register("lobireft", o -> {
            o.requireLinear("lobireft");
            return new LobiReFT(o.requireRank("lobireft"), o.dropout());
        });
        register("rotated_space_interchange",
                o -> new RotatedSpaceInterchange(o.requireSubspace("rotated_space_interchange")));
        register("low_rank_rotated_space_interchange",
                o -> new LowRankRotatedSpaceInterchange(o.requireRank("low_rank_rotated_space_interchange")));
        register("boundless_rotated_space_interchange", o -> new BoundlessRotatedSpaceInterchange());
        register("sigmoid_mask_interchange", o -> new SigmoidMaskInterchange());
        register("bottleneck_adapter", o -> new BottleneckAdapter(o.requireRank("bottleneck_adapter")));
        register("elementwise_scale", o -> new ElementwiseScale());
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
            throw new ConfigException("intervention", type, String.join(", ", REGISTRY.keySet()));
        }
        return f.apply(options);
    }

    /** Every registered type name, in registration order. */
    public static List<String> names() {
        return List.copyOf(REGISTRY.keySet());
    }
}
