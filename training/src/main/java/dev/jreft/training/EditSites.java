package dev.jreft.training;

import dev.jreft.hooks.discovery.LinearModule;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.IntervenableModel;
import dev.jreft.interventions.ModuleEdit;
import dev.jreft.interventions.ModuleSite;
import dev.jreft.interventions.params.Dropout;
import dev.jreft.interventions.params.Parameter;
import dev.jreft.interventions.peft.LoRA;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * One module edit (LoRA, DoRA) at each target module, parameters {@code <module path>.<name>}; in training mode each gets a
 * fresh input dropout mask per batch when its p is above 0.
 */
final class EditSites implements TrainableSites {
    private record Target(LinearModule module, String prefix, List<Parameter> declared) {
    }

    private final ModuleEdit edit;
    private final double dropout;
    private final List<Target> targets = new ArrayList<>();
    private Random dropoutRandom;

    EditSites(HookedModel model, ModuleEdit edit, List<LinearModule> modules, double dropout) {
        this.edit = edit;
        this.dropout = dropout;
        for (LinearModule m : modules) {
            // parameters named by the module they edit: encoder.layer.0.attention.self.query.A
            targets.add(new Target(m, m.path(), edit.parameters(m, () -> model.modules().weight(m))));
        }
    }

    @Override
    public Map<String, Parameter> declarations() {
        return TrainableSites.prefixedDeclarations(targets.stream().map(t -> t.prefix).toList(),
                targets.stream().map(t -> t.declared).toList());
    }

    @Override
    public List<ModuleSite> edits(Batch batch, Map<String, INDArray> params) {
        List<ModuleSite> sites = new ArrayList<>();
        for (Target t : targets) {
            Map<String, INDArray> p = TrainableSites.unprefixed(t.prefix, t.declared, params);
            if (dropout > 0 && dropoutRandom != null) {
                p.put(LoRA.DROPOUT_MASK, Dropout.mask(batch.size(), batch.seqLen(), t.module.in(), dropout,
                        dropoutRandom));
            }
            sites.add(new ModuleSite(t.module.path(), edit, p));
        }
        return sites;
    }

    @Override
    public void training(Random random) {
        this.dropoutRandom = random;
    }


    @Override
    public Map<String, INDArray> collect(IntervenableModel.Gradients g) {
        return TrainableSites.prefixed(targets.stream().map(t -> t.prefix).toList(), g.perEdit(), g.extra());
    }
}
