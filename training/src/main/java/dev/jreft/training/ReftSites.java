package dev.jreft.training;

import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.IntervenableModel;
import dev.jreft.interventions.InterventionSite;
import dev.jreft.interventions.Interventions;
import dev.jreft.interventions.params.Dropout;
import dev.jreft.interventions.params.Parameter;
import org.nd4j.linalg.api.ndarray.INDArray;

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
final class ReftSites implements TrainableSites {
    private record SiteDef(String hook, String prefix, Part part) {
    }

    private enum Part { ALL, FIRST, LAST }

    private final String intervention;
    private final Interventions.Options options;
    private final double dropout;
    private final PositionSpec positions;
    private final List<SiteDef> defs = new ArrayList<>();
    private final List<Parameter> declared;
    private final long width;
    private Random dropoutRandom;

    ReftSites(HookedModel model, String intervention, List<String> hooks, int rank, String positions,
              boolean shareWeights, String activation, double dropout) {
        this.intervention = intervention;
        this.options = new Interventions.Options(rank, null).withActivation(activation).withDropout(dropout);
        this.dropout = dropout;
        this.positions = PositionSpec.parse(positions);
        // unknown types, ranks or activations fail here
        this.width = model.hooks().config().hidden();
        this.declared = Interventions.create(intervention, options).parameters(width);
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

    @Override
    public boolean isEmpty() {
        return defs.isEmpty();
    }

    /** Every site parameter by its prefixed name ({@code site0.R}) with its declaration. */
    @Override
    public Map<String, Parameter> declarations() {
        Map<String, Parameter> m = new LinkedHashMap<>();
        for (SiteDef s : defs) {
            declared.forEach(p -> m.put(s.prefix + "." + p.name(), p));
        }
        return m;
    }

    /** Training mode: sites get fresh dropout masks from {@code random}; null switches back to evaluation. */
    @Override
    public void training(Random random) {
        this.dropoutRandom = random;
    }

    /** The interventions for this batch with the current parameter values. */
    @Override
    public List<InterventionSite> sites(Batch batch, Map<String, INDArray> params) {
        List<InterventionSite> sites = new ArrayList<>();
        for (SiteDef s : defs) {
            int[][] pos = switch (s.part) {
                case ALL -> positions.positions(batch);
                case FIRST -> positions.firstPositions(batch);
                case LAST -> positions.lastPositions(batch);
            };
            Map<String, INDArray> p = new LinkedHashMap<>();
            for (Parameter d : declared) {
                p.put(d.name(), params.get(s.prefix + "." + d.name()));
            }
            if (dropout > 0 && dropoutRandom != null) { // evaluation feeds no mask: the default of ones
                p.put("dropout_mask", Dropout.mask(batch.size(), batch.seqLen(), width, dropout, dropoutRandom));
            }
            sites.add(InterventionSite.at(s.hook, Interventions.create(intervention, options)).positions(pos)
                    .params(p).build());
        }
        return sites;
    }


    /** Gradients by parameter name: the sites' (prefixed) and the extra ones (a head's). */
    @Override
    public List<PositionSpec> exportPositions() {
        return defs.stream().map(d -> switch (d.part) {
            case ALL -> positions;
            case FIRST -> new PositionSpec(positions.first(), 0);
            case LAST -> new PositionSpec(0, positions.last());
        }).toList();
    }

    @Override
    public Map<String, INDArray> collect(IntervenableModel.Gradients g) {
        return TrainableSites.prefixed(defs.stream().map(t -> t.prefix).toList(), g.perSite(), g.extra());
    }
}
