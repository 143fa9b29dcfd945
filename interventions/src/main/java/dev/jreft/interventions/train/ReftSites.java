package dev.jreft.interventions.train;

import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.IntervenableModel;
import dev.jreft.interventions.InterventionSite;
import dev.jreft.interventions.Interventions;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * The trainable interventions of a ReFT model: one site per hook (two when first and last positions do not share
 * weights), their parameters {@code site<k>.R|W|b} and the per-step mechanics every objective shares: sites for a
 * batch, gradient collection, the NaN/Inf check, clipping and LoReFT's retraction.
 */
final class ReftSites {
    private record SiteDef(String hook, String prefix, Part part) {
    }

    private enum Part { ALL, FIRST, LAST }

    private final String intervention;
    private final int rank;
    private final PositionSpec positions;
    private final List<SiteDef> defs = new ArrayList<>();

    ReftSites(HookedModel model, String intervention, List<String> hooks, int rank, String positions,
              boolean shareWeights) {
        this.intervention = intervention;
        this.rank = rank;
        this.positions = PositionSpec.parse(positions);
        Interventions.create(intervention, new Interventions.Options(rank, null)); // unknown types fail here
        int k = 0;
        boolean split = !shareWeights && this.positions.first() > 0 && this.positions.last() > 0;
        for (String hook : hooks) {
            model.hook(hook); // unknown hooks fail here, with suggestions
            if (split) {
                defs.add(new SiteDef(hook, "site" + k++, Part.FIRST));
                defs.add(new SiteDef(hook, "site" + k++, Part.LAST));
            } else {
                defs.add(new SiteDef(hook, "site" + k++, Part.ALL));
            }
        }
    }

    boolean isEmpty() {
        return defs.isEmpty();
    }

    /** Fresh parameters: R with orthonormal rows, W uniform ±1/√d, b = 0. */
    void initialise(Map<String, INDArray> params, long width, Random random) {
        double bound = 1 / Math.sqrt(width);
        for (SiteDef s : defs) {
            params.put(s.prefix + ".R", Orthogonal.randomRows(rank, (int) width, random));
            params.put(s.prefix + ".W", uniform(random, bound, rank, width));
            params.put(s.prefix + ".b", Nd4j.zeros(DataType.FLOAT, rank));
        }
    }

    static INDArray uniform(Random r, double bound, long... shape) {
        INDArray a = Nd4j.create(DataType.FLOAT, shape);
        for (long i = 0; i < a.length(); i++) {
            a.putScalar(i, (r.nextDouble() * 2 - 1) * bound);
        }
        return a;
    }

    /** The interventions for this batch with the current parameter values. */
    List<InterventionSite> sites(Batch batch, Map<String, INDArray> params) {
        List<InterventionSite> sites = new ArrayList<>();
        for (SiteDef s : defs) {
            int[][] pos = switch (s.part) {
                case ALL -> positions.positions(batch);
                case FIRST -> positions.firstPositions(batch);
                case LAST -> positions.lastPositions(batch);
            };
            Map<String, INDArray> p = new LinkedHashMap<>();
            for (String name : List.of("R", "W", "b")) {
                p.put(name, params.get(s.prefix + "." + name));
            }
            sites.add(InterventionSite.at(s.hook, Interventions.create(intervention,
                    new Interventions.Options(rank, null))).positions(pos).params(p).build());
        }
        return sites;
    }

    /** Gradients by parameter name: the sites' (prefixed) and the extra ones (a head's). */
    Map<String, INDArray> collect(IntervenableModel.Gradients g) {
        Map<String, INDArray> grads = new LinkedHashMap<>();
        for (int i = 0; i < defs.size(); i++) {
            String prefix = defs.get(i).prefix;
            g.perSite().get(i).forEach((k, v) -> grads.put(prefix + "." + k, v));
        }
        grads.putAll(g.extra());
        return grads;
    }

    /** Check, clip, update, retract: the common tail of an optimisation step. */
    void apply(Map<String, INDArray> params, Map<String, INDArray> grads, double loss, Optimizer opt, double lr,
               double maxGradNorm, int step) {
        checkFinite(step, loss, grads);
        clip(grads, maxGradNorm);
        opt.step(params, grads, lr);
        if (intervention.equals("loreft")) { // R keeps orthonormal rows: a retraction after every step
            for (SiteDef s : defs) {
                Orthogonal.retractRows(params.get(s.prefix + ".R"));
            }
        }
    }

    static void checkFinite(int step, double loss, Map<String, INDArray> grads) {
        if (!Double.isFinite(loss)) {
            throw new NonFiniteException("training stopped at step " + step + ": the loss is " + loss);
        }
        for (var e : grads.entrySet()) {
            double n = e.getValue().norm2Number().doubleValue();
            if (!Double.isFinite(n)) {
                throw new NonFiniteException("training stopped at step " + step + ": the gradient of '" + e.getKey()
                        + "' contains NaN or Inf (loss " + loss + ")");
            }
        }
    }

    /** Scales all gradients so their global L2 norm is at most {@code max} (no-op for max ≤ 0); returns the norm. */
    static double clip(Map<String, INDArray> grads, double max) {
        double sq = 0;
        for (INDArray g : grads.values()) {
            double n = g.norm2Number().doubleValue();
            sq += n * n;
        }
        double norm = Math.sqrt(sq);
        if (max > 0 && norm > max) {
            grads.values().forEach(g -> g.muli(max / norm));
        }
        return norm;
    }
}
