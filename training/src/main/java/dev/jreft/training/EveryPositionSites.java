package dev.jreft.training;

import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.IntervenableModel;
import dev.jreft.interventions.Intervention;
import dev.jreft.interventions.InterventionSite;
import dev.jreft.interventions.params.Parameter;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A module-like intervention (bottleneck adapter, IA3 scale) at each of its hooks, at every position of every
 * example, padded ones included, as the module it stands for would act; parameters {@code site<k>.<name>}.
 */
final class EveryPositionSites implements TrainableSites {
    private record Site(String hook, Intervention intervention, String prefix, List<Parameter> declared) {
    }

    private final List<Site> sites = new ArrayList<>();

    /** {@code interventions.get(i)} acts at {@code hooks.get(i)}. */
    EveryPositionSites(HookedModel model, List<String> hooks, List<Intervention> interventions) {
        for (int i = 0; i < hooks.size(); i++) {
            var point = model.hook(hooks.get(i));
            sites.add(new Site(hooks.get(i), interventions.get(i), "site" + i,
                    interventions.get(i).parameters(point.layout().width())));
        }
    }

    @Override
    public Map<String, Parameter> declarations() {
        return TrainableSites.prefixedDeclarations(sites.stream().map(t -> t.prefix).toList(),
                sites.stream().map(t -> t.declared).toList());
    }

    @Override
    public List<InterventionSite> sites(Batch batch, Map<String, INDArray> params) {
        List<InterventionSite> out = new ArrayList<>();
        for (Site s : sites) {
            out.add(InterventionSite.at(s.hook, s.intervention).everyPosition(batch.size(), batch.seqLen())
                    .params(TrainableSites.unprefixed(s.prefix, s.declared, params)).build());
        }
        return out;
    }

    /** Every site acts at every position. */
    @Override
    public List<PositionSpec> exportPositions() {
        List<PositionSpec> all = new ArrayList<>();
        sites.forEach(s -> all.add(null));
        return all;
    }

    @Override
    public Map<String, INDArray> collect(IntervenableModel.Gradients g) {
        return TrainableSites.prefixed(sites.stream().map(t -> t.prefix).toList(), g.perSite(), g.extra());
    }
}
