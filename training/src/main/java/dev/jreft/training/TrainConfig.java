package dev.jreft.training;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.jreft.checkpoints.Checkpoint;
import dev.jreft.checkpoints.CheckpointWriter;
import dev.jreft.hooks.io.AtomicFiles;
import dev.jreft.hooks.io.Check;
import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.io.ConfigJson;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.hooks.runtime.MemoryBudget;
import dev.jreft.interventions.Interventions;
import dev.jreft.interventions.config.InterventionConfig;
import dev.jreft.training.data.Datasets;
import dev.jreft.training.data.LabelledText;
import dev.jreft.training.data.SentimentData;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A JSON training run ({@code jreft train --config}): the model, the data (the sentiment set with a split seed, or
 * JSON Lines train/dev/test files), the ReFT setup, the training arguments (any subset, over the defaults) and the
 * output checkpoint directory. Everything is checked before the training starts: the settings when read, the
 * output path (and its lock), the hooks and sizes against the model, every example's label against the classes.
 */
public record TrainConfig(String model, String tokenizer, DataSpec data, String method, JsonNode methodSection,
                          ReftSpec reft, HeadSpec head, TrainingArguments training, String output) {
    private static final ObjectMapper OUT = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    /** More classes than any classification task here needs; the head is [width, classes]. */
    static final int MAX_CLASSES = 65_536;

    /** The config as written: {@code training} is any subset of the training arguments. */
    private record Written(String model, String tokenizer, DataSpec data, String method, ReftSpec reft,
                           JsonNode lora, JsonNode adapter, JsonNode ia3, JsonNode prompt, HeadSpec head,
                           JsonNode training,
                           String output) {
    }

    /** The methods {@code "method"} names, the ReFT family first; each has its section (reft, lora, adapter, ia3, prompt). */
    public static final List<String> METHODS;

    static {
        List<String> m = new java.util.ArrayList<>(Interventions.REFT);
        m.addAll(List.of("lora", "dora", "adapter", "ia3", "bitfit", "full", "prompt_tuning", "p_tuning",
                "prefix_tuning"));
        METHODS = List.copyOf(m);
    }

    /** The config section of a method's settings. */
    public static String sectionOf(String method) {
        Check.oneOf("method", method, METHODS);
        return switch (method) {
            case "lora", "dora" -> "lora";
            case "adapter" -> "adapter";
            case "ia3" -> "ia3";
            case "bitfit", "full" -> "weights";
            case "prompt_tuning", "p_tuning", "prefix_tuning" -> "prompt";
            default -> "reft";
        };
    }

    /** The classification head: how many classes, how the last hidden states are pooled. */
    public record HeadSpec(Integer classes, String pooling) {
        public HeadSpec {
            if (classes != null) {
                Check.between("classes", classes, 2, MAX_CLASSES);
            }
            if (pooling != null) {
                Check.choice("pooling", pooling, ClassificationHead.Pooling.class);
            }
        }

        int classesOr2() {
            return classes == null ? 2 : classes;
        }

        ClassificationHead.Pooling poolingOrMean() {
            return pooling == null ? ClassificationHead.Pooling.MEAN
                    : Check.choice("pooling", pooling, ClassificationHead.Pooling.class);
        }
    }

    /**
     * LoRA / DoRA settings with peft's names: {@code target_modules} (a list of names or paths, or one string: a
     * regular expression over module paths or all-linear; default peft's for the family), {@code r} (8),
     * {@code lora_alpha} (8), {@code lora_dropout} (0), {@code use_rslora} (false).
     */
    public record LoraSpec(JsonNode targetModules, Integer r, Double loraAlpha, Double loraDropout,
                           Boolean useRslora) {
        public LoraSpec {
            if (targetModules != null && !targetModules.isTextual() && !targetModules.isArray()) {
                throw new ConfigException("target_modules", ConfigException.described(targetModules.toString()),
                        "a list of module names or paths, a regular expression, or all-linear");
            }
            if (targetModules != null && targetModules.isTextual()) {
                try {
                    dev.jreft.hooks.discovery.ModuleMap.TargetModules.parse(targetModules.asText());
                } catch (IllegalArgumentException e) {
                    throw ConfigException.within("target_modules", e);
                }
            }
            if (targetModules != null && targetModules.isArray()) {
                if (targetModules.isEmpty()) {
                    throw ConfigException.of("target_modules", "found an empty list; valid: one or more module names");
                }
                for (int i = 0; i < targetModules.size(); i++) {
                    if (!targetModules.get(i).isTextual() || targetModules.get(i).asText().isBlank()) {
                        throw new ConfigException("target_modules[" + i + "]", ConfigException.described(
                                targetModules.get(i).toString()), "a module name or path such as query");
                    }
                }
            }
            if (r != null) {
                Check.between("r", r, 1, 65_536);
            }
            if (loraAlpha != null && !(loraAlpha > 0 && loraAlpha <= 65_536)) {
                throw new ConfigException("lora_alpha", loraAlpha, "a number in (0, 65536]");
            }
            if (loraDropout != null) {
                Check.between("lora_dropout", loraDropout, 0, 1, true);
            }
        }

        MethodSpec.Lora toMethod(String type, HookedModel m) {
            Object targets;
            if (targetModules == null) {
                targets = dev.jreft.hooks.discovery.ModuleMap.peftDefaultTargets(m.hooks().config().family());
            } else if (targetModules.isTextual()) {
                targets = targetModules.asText();
            } else {
                List<String> names = new java.util.ArrayList<>();
                targetModules.forEach(n -> names.add(n.asText()));
                targets = List.copyOf(names);
            }
            return new MethodSpec.Lora(type, targets, r == null ? 8 : r, loraAlpha == null ? 8 : loraAlpha,
                    loraDropout == null ? 0 : loraDropout, useRslora != null && useRslora);
        }
    }

    /**
     * Bottleneck adapters: {@code hooks}, or by {@code placement} every layer's mlp_output ({@code pfeiffer}, the
     * default) or its attention_output and mlp_output ({@code houlsby}); {@code bottleneck_size} (default d / 16).
     */
    public record AdapterSpec(List<String> hooks, String placement, Integer bottleneckSize) {
        public AdapterSpec {
            checkHookList(hooks);
            if (placement != null) {
                Check.oneOf("placement", placement, List.of("pfeiffer", "houlsby"));
                if (hooks != null) {
                    throw ConfigException.of("placement", "found '" + placement + "' beside hooks; valid: one of"
                            + " the two (the placement names hooks)");
                }
            }
            if (bottleneckSize != null) {
                Check.between("bottleneck_size", bottleneckSize, 1, 65_536);
            }
        }

        MethodSpec.Adapter toMethod(HookedModel m) {
            var c = m.hooks().config();
            List<String> at = hooks != null ? hooks : "houlsby".equals(placement)
                    ? everyLayer(c.layers(), "attention_output", "mlp_output") : everyLayer(c.layers(), "mlp_output");
            return new MethodSpec.Adapter(at, bottleneckSize != null ? bottleneckSize
                    : (int) Math.max(1, c.hidden() / 16));
        }
    }

    /**
     * Sequence-method settings with peft's names: {@code num_virtual_tokens} (default 20); prompt tuning's
     * {@code prompt_tuning_init} (random, the default; sample_vocab; text) and {@code prompt_tuning_init_text};
     * P-tuning's {@code encoder_hidden_size} (default the model's width); prefix tuning's {@code prefix_projection}
     * (default false) with its {@code encoder_hidden_size} (default the model's width).
     */
    public record PromptSpec(Integer numVirtualTokens, String promptTuningInit, String promptTuningInitText,
                             Integer encoderHiddenSize, Boolean prefixProjection) {
        public PromptSpec {
            if (numVirtualTokens != null) {
                Check.between("num_virtual_tokens", numVirtualTokens, 1, 65_536);
            }
            if (promptTuningInit != null) {
                Check.oneOf("prompt_tuning_init", promptTuningInit, List.of("random", "sample_vocab", "text"));
            }
            if ("text".equals(promptTuningInit) && (promptTuningInitText == null || promptTuningInitText.isBlank())) {
                throw ConfigException.of("prompt_tuning_init_text", "found nothing; valid: the text whose tokens"
                        + " start the prompt (prompt_tuning_init is text)");
            }
            if (promptTuningInitText != null && !"text".equals(promptTuningInit)) {
                throw ConfigException.of("prompt_tuning_init_text", "found a text with prompt_tuning_init "
                        + (promptTuningInit == null ? "random (the default)" : promptTuningInit)
                        + "; valid: prompt_tuning_init text, or no init text");
            }
            if (encoderHiddenSize != null) {
                Check.between("encoder_hidden_size", encoderHiddenSize, 1, 65_536);
            }
        }

        MethodSpec.Prompt toMethod(String type, HookedModel m) {
            boolean tokens = type.equals("prompt_tuning");
            boolean projection = type.equals("prefix_tuning") && Boolean.TRUE.equals(prefixProjection);
            boolean encoder = type.equals("p_tuning") || projection;
            if (!tokens && (promptTuningInit != null || promptTuningInitText != null)) {
                throw ConfigException.of("prompt.prompt_tuning_init", "found an init for " + type + "; valid: none"
                        + " (only prompt_tuning starts from token embeddings)");
            }
            if (!encoder && encoderHiddenSize != null) {
                throw ConfigException.of("prompt.encoder_hidden_size", "found an encoder size for " + type
                        + (type.equals("prefix_tuning") ? " without prefix_projection" : "") + "; valid: none (only"
                        + " p_tuning and prefix_tuning with prefix_projection have an encoder)");
            }
            if (!type.equals("prefix_tuning") && prefixProjection != null) {
                throw ConfigException.of("prompt.prefix_projection", "found it for " + type + "; valid: none (a"
                        + " prefix_tuning setting)");
            }
            return new MethodSpec.Prompt(type, numVirtualTokens != null ? numVirtualTokens : 20,
                    promptTuningInit != null ? promptTuningInit : "random", promptTuningInitText,
                    !encoder ? 0 : encoderHiddenSize != null ? encoderHiddenSize : (int) m.hooks().config().hidden(),
                    projection);
        }
    }

    /** IA3 scales: {@code hooks} (default every layer's key_output, value_output and mlp_activation). */
    public record Ia3Spec(List<String> hooks) {
        public Ia3Spec {
            checkHookList(hooks);
        }

        MethodSpec.Ia3 toMethod(HookedModel m) {
            return new MethodSpec.Ia3(hooks != null ? hooks : everyLayer(m.hooks().config().layers(), "key_output",
                    "value_output", "mlp_activation"));
        }
    }

    private static void checkHookList(List<String> hooks) {
        if (hooks == null) {
            return;
        }
        if (hooks.isEmpty()) {
            throw ConfigException.of("hooks", "found an empty list; valid: one or more hook names (or leave the field"
                    + " out for the default)");
        }
        for (int i = 0; i < hooks.size(); i++) {
            Check.present("hooks[" + i + "]", hooks.get(i), "a hook name");
            if (hooks.indexOf(hooks.get(i)) != i) {
                throw new ConfigException("hooks[" + i + "]", hooks.get(i), "each hook once (it is also hooks["
                        + hooks.indexOf(hooks.get(i)) + "])");
            }
        }
    }

    private static List<String> everyLayer(int layers, String... components) {
        List<String> hooks = new java.util.ArrayList<>();
        for (int l = 0; l < layers; l++) {
            for (String c : components) {
                hooks.add("blocks." + l + "." + c);
            }
        }
        return List.copyOf(hooks);
    }

    /**
     * The classifier a non-ReFT method's section and the head describe; {@code source} names the file in errors.
     * The section is read strictly, as the config or the checkpoint wrote it.
     */
    public static ReftClassifier.Config methodConfig(String method, JsonNode section, JsonNode head, String source,
                                                     HookedModel m) {
        String name = sectionOf(method);
        JsonNode settings = section == null ? ConfigJson.MAPPER.createObjectNode() : section;
        if (settings.isObject() && settings.has("parameters")) {
            settings = ((com.fasterxml.jackson.databind.node.ObjectNode) settings).deepCopy();
            ((com.fasterxml.jackson.databind.node.ObjectNode) settings).remove("parameters");
        }
        MethodSpec spec = switch (name) {
            case "lora" -> ConfigJson.convert(settings, LoraSpec.class, source, name).toMethod(method, m);
            case "adapter" -> ConfigJson.convert(settings, AdapterSpec.class, source, name).toMethod(m);
            case "ia3" -> ConfigJson.convert(settings, Ia3Spec.class, source, name).toMethod(m);
            case "prompt" -> ConfigJson.convert(settings, PromptSpec.class, source, name).toMethod(method, m);
            case "weights" -> {
                if (settings.size() > 0) { // only a checkpoint writes this section, with the parameter list
                    throw ConfigException.of(name, "found settings " + settings + "; valid: none (" + method
                            + " trains the model's own weights)").in(source);
                }
                yield new MethodSpec.Weights(method);
            }
            default -> throw new IllegalArgumentException(method + " is a ReFT method: its settings are in reft");
        };
        HeadSpec h = head == null ? new HeadSpec(null, null) : ConfigJson.convert(head, HeadSpec.class, source,
                "head");
        return new ReftClassifier.Config(spec, h.classesOr2(), h.poolingOrMean());
    }

    /** A method's settings as a config writes them (what the checkpoint stores, so it loads back as it was). */
    static Object written(MethodSpec spec) {
        if (spec instanceof MethodSpec.Lora l) {
            JsonNode targets = l.targetModules() instanceof String t ? ConfigJson.MAPPER.getNodeFactory().textNode(t)
                    : ConfigJson.MAPPER.valueToTree(l.targetModules());
            return new LoraSpec(targets, l.r(), l.loraAlpha(), l.loraDropout(), l.useRslora());
        }
        if (spec instanceof MethodSpec.Adapter a) {
            return new AdapterSpec(a.hooks(), null, a.bottleneckSize());
        }
        if (spec instanceof MethodSpec.Ia3 i) {
            return new Ia3Spec(i.hooks());
        }
        if (spec instanceof MethodSpec.Weights) {
            return Map.of();
        }
        if (spec instanceof MethodSpec.Prompt p) {
            boolean tokens = p.type().equals("prompt_tuning");
            return new PromptSpec(p.numVirtualTokens(), tokens ? p.promptTuningInit() : null, p.promptTuningInitText(),
                    p.encoderHiddenSize() > 0 ? p.encoderHiddenSize() : null,
                    p.type().equals("prefix_tuning") ? p.prefixProjection() : null);
        }
        throw new IllegalArgumentException("ReFT settings are written as the reft section");
    }

    /** {@code sentiment}: folder of the sentiment set (fetched if missing) split by {@code split_seed}; or files. */
    public record DataSpec(String sentiment, Long splitSeed, String train, String dev, String test) {
        public DataSpec {
            if ((sentiment == null) == (train == null)) {
                throw ConfigException.of("", "found " + (sentiment == null ? "neither" : "both") + " \"sentiment\""
                        + " and \"train\"; valid: \"sentiment\" (a folder), or \"train\" (a .jsonl file) with optional"
                        + " \"dev\" and \"test\"");
            }
            if (sentiment == null && splitSeed != null) {
                throw new ConfigException("split_seed", splitSeed, "nothing with .jsonl files (it splits the"
                        + " sentiment set)");
            }
        }

        public Split load(Path base) {
            return load(base, "data.sentiment");
        }

        /** The splits; {@code what} names the sentiment folder's option or field in errors. */
        public Split load(Path base, String what) {
            if (sentiment != null) {
                var s = SentimentData.split(SentimentData.load(SentimentData.ensure(base.resolve(sentiment), what)),
                        splitSeed == null ? 42 : splitSeed, 0.7, 0.15);
                return new Split(s.train(), s.dev(), s.test());
            }
            return new Split(Datasets.jsonl(base.resolve(train)), dev == null ? List.of() : Datasets.jsonl(
                    base.resolve(dev)), test == null ? List.of() : Datasets.jsonl(base.resolve(test)));
        }
    }

    /** Train / dev / test examples. */
    public record Split(List<LabelledText> train, List<LabelledText> dev, List<LabelledText> test) {
        /** Every label of every split in {@code [0, classes)}, else an error naming the example's file and line. */
        public void checkLabels(int classes) {
            for (List<LabelledText> part : List.of(train, dev, test)) {
                Datasets.checkLabels(part, classes);
            }
        }
    }

    /** The ReFT setup, as in the checkpoint's {@code "reft"} section; each field is checked when read. */
    public record ReftSpec(String intervention, List<String> hooks, Integer rank, String positions,
                           Boolean shareWeights, Integer classes, String pooling, String activation, Double dropout) {
        public ReftSpec {
            if (intervention != null) {
                Check.oneOf("intervention", intervention, Interventions.REFT);
            }
            if (hooks == null || hooks.isEmpty()) {
                throw ConfigException.of("hooks", "found " + (hooks == null ? "nothing" : "an empty list")
                        + "; valid: a list of hook names, e.g. [\"blocks.2.block_output\"]");
            }
            checkHookList(hooks);
            if (rank != null) {
                Check.atLeast("rank", rank, 1);
            }
            if (positions != null) {
                PositionSpec.parse(positions);
            }
            if (classes != null) {
                Check.between("classes", classes, 2, MAX_CLASSES);
            }
            if (pooling != null) {
                Check.choice("pooling", pooling, ClassificationHead.Pooling.class);
            }
            if (activation != null) {
                dev.jreft.interventions.reft.Activation.named(activation);
                if (!activation.equals("linear") && List.of("consreft", "lobireft").contains(intervention)) {
                    throw new ConfigException("activation", activation, "linear for " + intervention + " (it has no"
                            + " learned projection W for an activation to act on)");
                }
            }
            if (dropout != null) {
                Check.between("dropout", dropout, 0, 1, true);
            }
        }

        /** The setup with pyreft's defaults for what is not given (loreft, rank 4, f1+l1, 2 classes, mean). */
        public ReftClassifier.Config toConfig() {
            return new ReftClassifier.Config(intervention == null ? "loreft" : intervention, hooks,
                    rank == null ? 4 : rank, positions == null ? "f1+l1" : positions,
                    shareWeights != null && shareWeights, classes == null ? 2 : classes,
                    pooling == null ? ClassificationHead.Pooling.MEAN
                            : Check.choice("pooling", pooling, ClassificationHead.Pooling.class),
                    activation == null ? "linear" : activation, dropout == null ? 0 : dropout);
        }
    }

    public static TrainConfig read(Path file) {
        return parse(ConfigJson.text(file), file.toString());
    }

    /** The config in {@code json}, errors naming {@code source}; checked as {@link #read} checks a file. */
    public static TrainConfig parse(String json, String source) {
        Written w = ConfigJson.parse(json, source, Written.class);
        TrainingArguments args = ConfigJson.overDefaults(TrainingArguments.defaults(), w.training(),
                TrainingArguments.class, source, "training");
        for (var required : Map.of("data", w.data() == null, "output", w.output() == null || w.output().isBlank())
                .entrySet()) {
            if (required.getValue()) {
                throw ConfigException.of(required.getKey(), "found nothing; valid: a training config needs \"data\","
                        + " a method and \"output\" (see the README)").in(source);
            }
        }
        // the method: named, or the ReFT type of a reft section (the first configs had no "method")
        String method = w.method();
        try {
            if (method == null && w.reft() == null) {
                throw ConfigException.of("method", "found nothing; valid: one of " + String.join(", ", METHODS)
                        + " (with its section: reft, lora, adapter or ia3)");
            }
            if (method == null) {
                method = w.reft().intervention() == null ? "loreft" : w.reft().intervention();
            }
            String section = sectionOf(method);
            Map<String, Object> sections = new LinkedHashMap<>();
            sections.put("reft", w.reft());
            sections.put("lora", w.lora());
            sections.put("adapter", w.adapter());
            sections.put("ia3", w.ia3());
            sections.put("prompt", w.prompt());
            for (var e : sections.entrySet()) {
                if (e.getValue() != null && !e.getKey().equals(section)) {
                    throw ConfigException.of(e.getKey(), "found settings for a method this config does not train;"
                            + " valid: " + (section.equals("weights") ? "no method section (" + method + " has no"
                            + " settings)" : "only the \"" + section + "\" section (method " + method + ")"));
                }
            }
            if (section.equals("reft")) {
                if (w.reft() == null) {
                    throw ConfigException.of("reft", "found nothing; valid: the ReFT settings, e.g. {\"hooks\":"
                            + " [\"blocks.2.block_output\"]} (method " + method + ")");
                }
                if (w.reft().intervention() != null && !w.reft().intervention().equals(method)) {
                    throw new ConfigException("reft.intervention", w.reft().intervention(), method + " (the"
                            + " \"method\"), or leave it out");
                }
                if (w.head() != null && (w.reft().classes() != null || w.reft().pooling() != null)) {
                    throw ConfigException.of("head", "found a head beside reft.classes / reft.pooling; valid: the"
                            + " classes and pooling in one place");
                }
            }
        } catch (ConfigException e) {
            throw e.in(source);
        }
        JsonNode methodSection = switch (sectionOf(method)) {
            case "lora" -> w.lora();
            case "adapter" -> w.adapter();
            case "ia3" -> w.ia3();
            case "prompt" -> w.prompt();
            default -> null;
        };
        if (methodSection != null) { // its fields are checked now, against the model when it is loaded
            Class<?> spec = switch (sectionOf(method)) {
                case "lora" -> LoraSpec.class;
                case "adapter" -> AdapterSpec.class;
                case "prompt" -> PromptSpec.class;
                default -> Ia3Spec.class;
            };
            ConfigJson.convert(methodSection, spec, source, sectionOf(method));
        }
        return new TrainConfig(w.model(), w.tokenizer(), w.data(), method, methodSection, w.reft(), w.head(), args,
                w.output());
    }

    /**
     * Trains, saves the checkpoint to {@code output} and writes {@code metricsFile}; returns the metrics. The
     * output paths, the model, the hooks and the data are all checked before the first step.
     */
    public Map<String, Object> run(Path base, Path metricsFile, PrintStream out) throws IOException {
        return run(base, metricsFile, out, (classifier, split, args, progress) -> classifier.train(split.train(),
                split.dev(), args, progress));
    }

    /** How a checked run trains its fresh classifier: in this process, or data-parallel on workers. */
    @FunctionalInterface
    public interface Training {
        TrainingResult train(ReftClassifier classifier, Split split, TrainingArguments args, PrintStream out)
                throws IOException;
    }

    /** Runs as {@link #run(Path, Path, PrintStream)} with the training itself done by {@code training}. */
    public Map<String, Object> run(Path base, Path metricsFile, PrintStream out, Training training)
            throws IOException {
        TrainingArguments args = arguments();
        Path outDir = AtomicFiles.checkFolder(base.resolve(output), "output");
        checkMetricsTarget(metricsFile, "--metrics", inputs(base));
        if (metricsFile.toAbsolutePath().normalize().startsWith(outDir) && CHECKPOINT_FILES.contains(
                metricsFile.getFileName().toString()) || metricsFile.toAbsolutePath().normalize().equals(outDir)) {
            throw new ConfigException("--metrics", metricsFile.toString(), "a file that is not the checkpoint folder or"
                    + " one of its files (" + String.join(", ", CHECKPOINT_FILES) + ")");
        }
        try (CheckpointWriter checkpoint = Checkpoint.prepare(outDir)) {
            HookedModel m = loadModel(base);
            ReftClassifier.Config config = classifierConfig(m);
            checkAgainstModel(m, config, args);
            Split split = data.load(base);
            split.checkLabels(config.classes());
            if (split.train().size() < args.batchSize()) {
                throw new ConfigException("training.batch_size", args.batchSize(), "at most the " + split.train().size()
                        + " training examples");
            }
            ReftClassifier c = ReftClassifier.create(m, config, args.seed());
            TrainingResult r = training.train(c, split, args, out);
            Map<String, Object> metrics = new LinkedHashMap<>();
            metrics.put("train_examples", split.train().size());
            metrics.put("steps", r.steps());
            metrics.put("train_seconds", r.seconds());
            metrics.put("examples_per_second", r.examplesPerSecond());
            metrics.put("final_loss", r.losses().get(r.losses().size() - 1));
            metrics.put("stopped_early", r.stoppedEarly());
            if (!split.dev().isEmpty()) {
                metrics.put("dev_accuracy", r.bestDevAccuracy());
            }
            if (!split.test().isEmpty()) {
                metrics.put("test_accuracy", c.accuracy(split.test(), 32, args.maxLength()));
            }
            metrics.put("trainable_parameters", c.trainableParameters());
            metrics.put("model_parameters", m.graph().parameterCount());
            ReftCheckpoint.save(checkpoint, c, model == null ? "minilm" : model, args, metrics);
            writeMetrics(metricsFile, metrics);
            return metrics;
        }
    }

    /** The config's model with its tokenizer (training tokenises the texts); paths relative to {@code base}. */
    public HookedModel loadModel(Path base) {
        HookedModel m = InterventionConfig.loadModel(model, tokenizer, base);
        if (m.tokenizer().isEmpty()) {
            throw ConfigException.of("tokenizer", "found nothing; valid: the model's tokenizer.json (training"
                    + " tokenises the texts; " + model + " carries none)");
        }
        return m;
    }

    /** The training arguments: the config's over the defaults. */
    public TrainingArguments arguments() {
        return training == null ? TrainingArguments.defaults() : training;
    }

    /** What this config trains on {@code m}: the method's settings over their defaults, and the head. */
    public ReftClassifier.Config classifierConfig(HookedModel m) {
        if (sectionOf(method).equals("reft")) {
            ReftClassifier.Config c = new ReftSpec(method, reft.hooks(), reft.rank(), reft.positions(),
                    reft.shareWeights(), reft.classes(), reft.pooling(), reft.activation(), reft.dropout()).toConfig();
            if (head == null) {
                return c;
            }
            return new ReftClassifier.Config(c.method(), head.classesOr2(), head.poolingOrMean());
        }
        JsonNode headNode = head == null ? null : ConfigJson.MAPPER.valueToTree(head);
        return methodConfig(method, methodSection, headNode, null, m); // the caller names the file
    }

    /** The files of a checkpoint folder, which a metrics file must not replace. */
    static final List<String> CHECKPOINT_FILES = List.of(Checkpoint.CONFIG_FILE, Checkpoint.TENSORS_FILE,
            CheckpointWriter.STAGED_TENSORS_FILE);

    /** The files and folders this run reads, which no output of it may replace. */
    private List<Path> inputs(Path base) {
        List<Path> in = new java.util.ArrayList<>();
        if (model != null && !HookedModel.isEmbedded(model)) {
            in.add(base.resolve(model));
        }
        if (tokenizer != null) {
            in.add(base.resolve(tokenizer));
        }
        for (String f : java.util.Arrays.asList(data.sentiment(), data.train(), data.dev(), data.test())) {
            if (f != null) {
                in.add(base.resolve(f));
            }
        }
        return in;
    }

    /**
     * Hooks the model has, of its width and [batch, seq, width] layout; a rank that fits the width; a max length
     * within its positions; position counts within the max length.
     */
    static void checkAgainstModel(HookedModel m, ReftClassifier.Config c, TrainingArguments args) {
        if (c.method() instanceof MethodSpec.Reft r) {
            checkReft(m, r, args);
        } else {
            c.method().sites(m); // hooks, modules and sizes are checked as the sites are made
        }
        m.inputLimits().maxPositions().ifPresent(max -> {
            if (args.maxLength() > max) {
                throw new ConfigException("training.max_length", args.maxLength(), "an integer in 2.." + max
                        + " (the model's position limit)");
            }
        });
        MemoryBudget.check("training.batch_size", args.batchSize(), MemoryBudget.training(m.hooks().config(),
                args.batchSize(), args.maxLength()), "a training step of " + args.batchSize() + " x " + args.maxLength()
                + " tokens", "a smaller batch_size or max_length");
    }

    private static void checkReft(HookedModel m, MethodSpec.Reft c, TrainingArguments args) {
        long hidden = m.hooks().config().hidden();
        for (int i = 0; i < c.hooks().size(); i++) {
            var point = m.hook(c.hooks().get(i), "reft.hooks[" + i + "]");
            var layout = point.layout();
            if (layout.kind() != dev.jreft.hooks.discovery.HookLayout.Kind.RAW
                    && (!layout.positional() || layout.width() != hidden)) {
                throw new ConfigException("reft.hooks[" + i + "]", ConfigException.described(c.hooks().get(i)
                        + " of shape " + layout.shape()), "a [batch, seq, " + hidden + "] hook such as blocks.L"
                        + ".block_output (ReFT interventions act on the model's " + hidden + "-wide states)");
            }
        }
        long width = m.hooks().config().hidden();
        if (c.rank() > width) {
            throw new ConfigException("reft.rank", c.rank(), "an integer in 1.." + width + " (the model's width)");
        }
        PositionSpec p = PositionSpec.parse(c.positions());
        if (p.first() > args.maxLength() || p.last() > args.maxLength()) {
            throw new ConfigException("reft.positions", c.positions(), "n and m at most training.max_length ("
                    + args.maxLength() + "): no example has more tokens");
        }
    }

    /** Accuracy of a saved checkpoint on labelled data (labels checked against the checkpoint's classes). */
    public static Map<String, Object> evaluate(Path checkpoint, HookedModel model, List<LabelledText> data) {
        ReftClassifier c = ReftCheckpoint.load(checkpoint, model);
        if (model.tokenizer().isEmpty()) {
            throw ConfigException.of("--tokenizer", "found nothing; valid: the model's tokenizer.json (evaluation"
                    + " tokenises the texts)");
        }
        Datasets.checkLabels(data, c.config().classes());
        TrainingArguments args = ReftCheckpoint.trainingArguments(checkpoint, model);
        int maxLength = args == null ? TrainingArguments.defaults().maxLength() : args.maxLength();
        Map<String, Object> metrics = new LinkedHashMap<>();
        metrics.put("examples", data.size());
        metrics.put("accuracy", c.accuracy(data, 32, maxLength));
        return metrics;
    }

    /** Value of {@code "format"} in a metrics file: what marks it as jreft's, so a later run may replace it. */
    public static final String METRICS_FORMAT = "jreft-metrics";

    /**
     * Checks a metrics path before the run: a file path, not one of the run's {@code inputs}, and either new or a
     * metrics file jreft wrote (any other existing file is the user's and is not replaced).
     */
    public static void checkMetricsTarget(Path target, String what, List<Path> inputs) {
        AtomicFiles.checkTarget(target, what);
        AtomicFiles.checkNotAnInput(target, what, inputs);
        if (java.nio.file.Files.exists(target)) {
            boolean ours;
            try {
                var n = OUT.readTree(target.toFile());
                ours = n != null && METRICS_FORMAT.equals(n.path("format").asText());
            } catch (IOException e) {
                ours = false;
            }
            if (!ours) {
                throw new ConfigException(what, ConfigException.described("the existing file " + target + ", which"
                        + " jreft did not write"), "a new file, or a metrics file of an earlier run (it is replaced)");
            }
        }
    }

    /** Writes metrics as JSON, marked as jreft's, atomically. */
    public static void writeMetrics(Path target, Map<String, Object> metrics) throws IOException {
        AtomicFiles.write(target, (toJson(metrics) + "\n").getBytes(java.nio.charset.StandardCharsets.UTF_8));
    }

    /** The metrics as the JSON a file holds: {@code "format": "jreft-metrics"} first. */
    public static String toJson(Map<String, Object> metrics) {
        Map<String, Object> marked = new LinkedHashMap<>();
        marked.put("format", METRICS_FORMAT);
        marked.putAll(metrics);
        return json(marked);
    }

    private static String json(Map<String, Object> metrics) {
        try {
            return OUT.writeValueAsString(metrics);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
