package dev.jreft.interventions.generation;

import dev.jreft.hooks.io.ConfigException;

import java.util.Arrays;
import java.util.Random;

/**
 * How the next token is chosen from a step's logits: greedy (the arg max, first index on ties), or sampled from the
 * softmax of {@code logits / temperature} restricted to the {@code topK} most likely tokens (0: all) and then to the
 * smallest set whose probability reaches {@code topP} (nucleus sampling, Holtzman et al. 2020), from {@code seed}.
 */
public record Sampling(boolean sample, double temperature, int topK, double topP, long seed) {
    public Sampling {
        if (sample) {
            if (!(temperature > 0) || Double.isInfinite(temperature)) {
                throw new ConfigException("temperature", temperature, "a number > 0 when sampling (greedy decoding"
                        + " takes no temperature)");
            }
            if (topK < 0) {
                throw new ConfigException("top_k", topK, "an integer >= 0 (0: no top-k filter)");
            }
            if (!(topP > 0 && topP <= 1)) {
                throw new ConfigException("top_p", topP, "a number in (0, 1] (1: no nucleus filter)");
            }
        }
    }

    public static Sampling greedy() {
        return new Sampling(false, 1, 0, 1, 0);
    }

    public static Sampling sample(double temperature, int topK, double topP, long seed) {
        return new Sampling(true, temperature, topK, topP, seed);
    }

    /** The next token of one row from its logits. */
    long next(float[] logits, Random random) {
        if (!sample) {
            int best = 0;
            for (int v = 1; v < logits.length; v++) {
                if (logits[v] > logits[best]) {
                    best = v;
                }
            }
            return best;
        }
        Integer[] order = new Integer[logits.length];
        for (int v = 0; v < order.length; v++) {
            order[v] = v;
        }
        Arrays.sort(order, (a, b) -> Float.compare(logits[b], logits[a])); // stable: ties keep the lower id first
        int kept = topK == 0 ? order.length : Math.min(topK, order.length);
        double max = logits[order[0]] / temperature;
        double[] p = new double[kept];
        double total = 0;
        for (int i = 0; i < kept; i++) {
            p[i] = Math.exp(logits[order[i]] / temperature - max);
            total += p[i];
        }
        double mass = 0;
        int nucleus = 0;
        while (nucleus < kept) { // the smallest prefix whose probability reaches top_p
            mass += p[nucleus++] / total;
            if (mass >= topP) {
                break;
            }
        }
        double sum = 0;
        for (int i = 0; i < nucleus; i++) {
            sum += p[i];
        }
        double u = random.nextDouble() * sum;
        for (int i = 0; i < nucleus; i++) {
            u -= p[i];
            if (u <= 0) {
                return order[i];
            }
        }
        return order[nucleus - 1];
    }
}
