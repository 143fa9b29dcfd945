package dev.jreft.interventions;

import dev.jreft.interventions.statics.Addition;
import dev.jreft.interventions.statics.Collect;
import dev.jreft.interventions.statics.Subtraction;
import dev.jreft.interventions.statics.VanillaInterchange;
import dev.jreft.interventions.statics.ZeroAblation;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Supplier;

/** Interventions by their stable config names. */
public final class Interventions {
    private static final Map<String, Supplier<Intervention>> REGISTRY = new LinkedHashMap<>();

    static {
        register("vanilla_interchange", VanillaInterchange::new);
        register("zero_ablation", ZeroAblation::new);
        register("addition", Addition::new);
        register("subtraction", Subtraction::new);
        register("collect", Collect::new);
    }

    private Interventions() {
    }

    public static void register(String type, Supplier<Intervention> factory) {
        REGISTRY.put(type, factory);
    }

    public static boolean known(String type) {
        return REGISTRY.containsKey(type);
    }

    public static Intervention byType(String type) {
        Supplier<Intervention> f = REGISTRY.get(type);
        if (f == null) {
            throw new IllegalArgumentException("unknown intervention '" + type + "' (valid: " + REGISTRY.keySet() + ")");
        }
        return f.get();
    }
}
