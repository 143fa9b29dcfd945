package dev.jreft.training;

import dev.jreft.hooks.discovery.HookLayout;
import dev.jreft.hooks.discovery.LinearModule;
import dev.jreft.hooks.discovery.ModuleMap;
import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.Intervention;
import dev.jreft.interventions.ModuleEdit;
import dev.jreft.interventions.peft.BottleneckAdapter;
import dev.jreft.interventions.peft.DoRA;
import dev.jreft.interventions.peft.ElementwiseScale;
import dev.jreft.interventions.peft.LoRA;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * What a classifier trains beside its head: one method's settings, a record as a training config writes it (under
 * the method's section) and as the checkpoint stores it. Each builds its {@link TrainableSites} on a model, checking
 * that its hooks or modules exist and its sizes fit.
 */
public sealed interface MethodSpec permits MethodSpec.Reft, MethodSpec.Lora, MethodSpec.Adapter, MethodSpec.Ia3,
        MethodSpec.Weights, MethodSpec.Prompt {
    /** The method's config name: loreft ... lobireft, lora, dora, adapter, ia3. */
    String type();

    /** The config section holding the settings: reft, lora, adapter, ia3. */
    String section();

    TrainableSites sites(HookedModel model);

    /** The ReFT family at hooks (pyreft): an intervention type, hooks, rank, positions, weight sharing. */
    record Reft(String intervention, List<String> hooks, int rank, String positions, boolean shareWeights,
                String activation, double dropout) implements MethodSpec {
        @Override
        public String type() {
            return intervention;
        }

        @Override
        public String section() {
            return "reft";
        }

        @Override
        public TrainableSites sites(HookedModel model) {
            return new ReftSites(model, intervention, hooks, rank, positions, shareWeights, activation, dropout);
        }
    }

    /**
     * LoRA or DoRA on the linear modules {@code target_modules} selects (peft's LoraConfig names: r, lora_alpha,
     * lora_dropout, use_rslora; targets by name suffix, full path, a regular expression or all-linear).
     */
    record Lora(String type, Object targetModules, int r, double loraAlpha, double loraDropout, boolean useRslora)
            implements MethodSpec {
        @Override
        public String section() {
            return "lora";
        }

        public ModuleEdit edit() {
            return type.equals("dora") ? new DoRA(r, loraAlpha, loraDropout, useRslora)
                    : new LoRA(r, loraAlpha, loraDropout, useRslora);
        }

        /** The modules the targets select, each checked to fit the rank. */
        public List<LinearModule> modules(HookedModel model) {
            ModuleMap.TargetModules t = targetModules instanceof String s ? ModuleMap.TargetModules.parse(s)
                    : ModuleMap.TargetModules.names(names(targetModules));
            List<LinearModule> picked;
            try {
                picked = model.modules().select(t);
            } catch (IllegalArgumentException e) {
                throw ConfigException.within("lora.target_modules", e);
            }
            for (LinearModule m : picked) {
                if (r > Math.min(m.in(), m.out())) {
                    throw new ConfigException("lora.r", r, "an integer in 1.." + Math.min(m.in(), m.out())
                            + " (module " + m.path() + " is " + m.in() + " -> " + m.out() + ")");
                }
            }
            return picked;
        }

        @SuppressWarnings("unchecked")
        private static List<String> names(Object targets) {
            return Collections.unmodifiableList((List<String>) targets);
        }

        @Override
        public TrainableSites sites(HookedModel model) {
            return new EditSites(model, edit(), modules(model), loraDropout);
        }
    }

    /** A bottleneck adapter at each hook (default: every layer's mlp_output, Pfeiffer's placement). */
    record Adapter(List<String> hooks, int bottleneckSize) implements MethodSpec {
        @Override
        public String type() {
            return "adapter";
        }

        @Override
        public String section() {
            return "adapter";
        }

        @Override
        public TrainableSites sites(HookedModel model) {
            return everyPosition(model, hooks, "adapter.hooks", () -> new BottleneckAdapter(bottleneckSize));
        }
    }

    /** IA3 scales at each hook (default: every layer's key_output, value_output and mlp_activation). */
    record Ia3(List<String> hooks) implements MethodSpec {
        @Override
        public String type() {
            return "ia3";
        }

        @Override
        public String section() {
            return "ia3";
        }

        @Override
        public TrainableSites sites(HookedModel model) {
            return everyPosition(model, hooks, "ia3.hooks", ElementwiseScale::new);
        }
    }

    /** The model's own weights: {@code bitfit} (the biases) or {@code full} (every weight). No settings. */
    record Weights(String type) implements MethodSpec {
        @Override
        public String section() {
            return "weights";
        }

        @Override
        public TrainableSites sites(HookedModel model) {
            return new WeightSites(model, type.equals("bitfit"));
        }
    }

    /**
     * A sequence method with peft's names: {@code prompt_tuning} ({@code prompt_tuning_init} random, sample_vocab or
     * text with {@code prompt_tuning_init_text} of exactly P tokens), {@code p_tuning} (MLP encoder of
     * {@code encoder_hidden_size}, default the model's width) or {@code prefix_tuning} (with
     * {@code prefix_projection}: the PrefixEncoder MLP of {@code encoder_hidden_size}); P = {@code num_virtual_tokens};
     * {@code encoderHiddenSize} is 0 where the method has no encoder.
     */
    record Prompt(String type, int numVirtualTokens, String promptTuningInit, String promptTuningInitText,
                  int encoderHiddenSize, boolean prefixProjection) implements MethodSpec {
        public Prompt(String type, int numVirtualTokens, String promptTuningInit, String promptTuningInitText,
                      int encoderHiddenSize) {
            this(type, numVirtualTokens, promptTuningInit, promptTuningInitText, encoderHiddenSize, false);
        }

        @Override
        public String section() {
            return "prompt";
        }

        public dev.jreft.interventions.SequenceEdit edit(HookedModel model) {
            if (type.equals("p_tuning")) {
                return new dev.jreft.interventions.prompt.PTuning(numVirtualTokens, encoderHiddenSize);
            }
            if (type.equals("prefix_tuning")) {
                return new dev.jreft.interventions.prompt.PrefixTuning(numVirtualTokens, prefixProjection
                        ? encoderHiddenSize : 0);
            }
            return new dev.jreft.interventions.prompt.PromptTuning(numVirtualTokens, switch (promptTuningInit) {
                case "sample_vocab" -> dev.jreft.interventions.prompt.PromptTuning.Start.sampleVocab();
                case "text" -> dev.jreft.interventions.prompt.PromptTuning.Start.tokens(textIds(model));
                default -> dev.jreft.interventions.prompt.PromptTuning.Start.random();
            });
        }

        /** The init text's token ids as the model's tokenizer writes them (special tokens included, as peft's). */
        private int[] textIds(HookedModel model) {
            var tokenizer = model.tokenizer().orElseThrow(() -> ConfigException.of("prompt.prompt_tuning_init",
                    "found text for a model without a tokenizer; valid: random or sample_vocab"));
            return tokenizer.encode(List.of(promptTuningInitText), Integer.MAX_VALUE, 1).inputs()
                    .get(dev.jreft.hooks.runtime.Batch.INPUT_IDS).toIntVector();
        }

        @Override
        public TrainableSites sites(HookedModel model) {
            return new PromptSites(model, edit(model));
        }
    }

    /** One intervention from {@code each} at every one of {@code hooks}, at every position. */
    private static TrainableSites everyPosition(HookedModel model, List<String> hooks, String field,
                                                java.util.function.Supplier<Intervention> each) {
        checkHooks(model, hooks, field);
        List<Intervention> interventions = new ArrayList<>();
        hooks.forEach(h -> interventions.add(each.get()));
        return new EveryPositionSites(model, hooks, interventions);
    }

    /** Hooks that exist and are [batch, seq, width] tensors of known width. */
    private static void checkHooks(HookedModel model, List<String> hooks, String field) {
        for (int i = 0; i < hooks.size(); i++) {
            HookLayout layout = model.hook(hooks.get(i), field + "[" + i + "]").layout();
            if (!layout.positional()) {
                throw new ConfigException(field + "[" + i + "]", ConfigException.described(hooks.get(i) + " of shape "
                        + layout.shape()), "a named [batch, seq, width] hook such as blocks.L.mlp_output");
            }
        }
    }
}
