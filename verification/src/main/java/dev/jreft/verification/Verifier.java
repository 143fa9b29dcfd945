package dev.jreft.verification;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jreft.hooks.autodiff.GraphGradients;
import dev.jreft.hooks.autodiff.HookGradients;
import dev.jreft.hooks.autodiff.LossGraphs;
import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.io.ConfigJson;
import dev.jreft.hooks.io.Npy;
import dev.jreft.hooks.io.SafeNames;
import dev.jreft.hooks.io.TextFiles;
import dev.jreft.hooks.runtime.ActivationCache;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.hooks.runtime.OrtRuntime;
import dev.jreft.interventions.IntervenableModel;
import dev.jreft.interventions.Intervention;
import dev.jreft.interventions.InterventionResult;
import dev.jreft.interventions.InterventionSite;
import dev.jreft.interventions.Interventions;
import dev.jreft.interventions.ModuleEdit;
import dev.jreft.interventions.ModelEdit;
import dev.jreft.interventions.ModuleSite;
import dev.jreft.interventions.SequenceEdit;
import dev.jreft.interventions.SequenceSite;
import dev.jreft.interventions.Source;
import dev.jreft.interventions.Unit;
import dev.jreft.interventions.generation.Generator;
import dev.jreft.interventions.generation.InterveneOn;
import dev.jreft.interventions.peft.DoRA;
import dev.jreft.interventions.peft.LoRA;
import dev.jreft.interventions.prompt.PTuning;
import dev.jreft.interventions.prompt.PrefixTuning;
import dev.jreft.interventions.prompt.PromptTuning;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Runs a reference bundle in the fixtures format ({@code manifest.json} + {@code cases/}): per model its hook
 * references, outputs and loss; per case the intervened outputs, hook values, source values and loss. What jreft
 * cannot run yet is reported as unsupported, never as passed.
 */
public final class Verifier {
    private final Path dir;
    private final Map<String, HookedModel> models = new HashMap<>();

    public Verifier(Path dir) {
        this.dir = dir;
        if (!Files.isRegularFile(dir.resolve("manifest.json"))) {
            throw new IllegalArgumentException("no manifest.json in " + dir.toAbsolutePath()
                    + " (expected a reference bundle in the fixtures format)");
        }
    }

    /** Runs everything, printing one line per check as it completes. */
    public List<CheckResult> runAll(PrintStream out) {
        List<CheckResult> results = new ArrayList<>();
        Consumer<CheckResult> sink = r -> {
            results.add(r);
            out.println(r.line());
            out.flush();
        };
        Path manifestFile = dir.resolve("manifest.json");
        JsonNode manifest = read(manifestFile);
        JsonNode modelsNode = manifest.get("models");
        JsonNode cases = manifest.get("cases");
        if (modelsNode == null || !modelsNode.isObject()) {
            throw new ConfigException("models", ConfigException.described(modelsNode == null ? "nothing"
                    : modelsNode.getNodeType().name().toLowerCase()), "an object of models by key").in(
                    manifestFile.toString());
        }
        if (cases == null || !cases.isArray()) {
            throw new ConfigException("cases", ConfigException.described(cases == null ? "nothing"
                    : cases.getNodeType().name().toLowerCase()), "a list of {\"name\", \"case\"} entries").in(
                    manifestFile.toString());
        }
        for (int i = 0; i < cases.size(); i++) {
            JsonNode c = cases.get(i);
            if (!c.isObject() || !c.path("name").isTextual() || !c.path("case").isTextual()) {
                throw new ConfigException("cases[" + i + "]", ConfigException.described(c.toString()),
                        "an object with string \"name\" and \"case\"").in(manifestFile.toString());
            }
            inside(c.get("case").asText(), "cases[" + i + "].case"); // before any case runs
        }
        for (Iterator<String> it = modelsNode.fieldNames(); it.hasNext(); ) {
            String key = it.next();
            checkModel(key, modelsNode.get(key)).forEach(sink);
        }
        for (int i = 0; i < cases.size(); i++) {
            JsonNode c = cases.get(i);
            sink.accept(checkCase(c.get("name").asText(), inside(c.get("case").asText(), "cases[" + i + "].case")));
        }
        return results;
    }

    /** Model-level checks: hook references, output, loss and the gradient references. */
    public List<CheckResult> checkModel(String key, JsonNode m) {
        List<CheckResult> r = new ArrayList<>();
        HookedModel model;
        try {
            model = model(m, m.hasNonNull("onnx") ? firstOnnx(m) : null);
        } catch (RuntimeException e) {
            r.add(new CheckResult(key + ": load", CheckResult.Status.FAILED, Double.NaN, reason(e)));
            return r;
        }
        Batch batch = batch(m.get("inputs"));
        Tolerances tol = Tolerances.of(m.get("tolerance"));
        List<String> hooks = new ArrayList<>();
        m.get("hook_references").fieldNames().forEachRemaining(hooks::add);
        try {
            ActivationCache cache = model.runWithCache(batch, hooks);
            double worstErr = 0;
            String worstHook = "";
            Tolerance.Comparison failed = null;
            String failedHook = null;
            for (String h : hooks) {
                Tolerance.Comparison c = tol.hook.compare(cache.get(h), npy(m.get("hook_references").get(h)));
                if (c.maxAbsError() >= worstErr) {
                    worstErr = c.maxAbsError();
                    worstHook = h;
                }
                if (!c.ok() && failed == null) {
                    failed = c;
                    failedHook = h;
                }
            }
            r.add(failed == null
                    ? pass(key + ": " + hooks.size() + " hooks", worstErr, "worst " + worstHook)
                    : fail(key + ": " + hooks.size() + " hooks", failed.maxAbsError(), failedHook + " "
                            + (failed.problem() != null ? failed.problem() : "exceeds tolerance")));
            String outName = m.get("onnx_output").asText();
            INDArray output = cache.output(outName);
            r.add(compare(key + ": " + outName, output, npy(m.get("outputs").get(outName)), tol.output));
            r.add(lossCheck(key + ": loss", m.get("loss"), m.get("inputs"), output, m.get("loss").get("value")
                    .asDouble(), tol.loss));
        } catch (RuntimeException e) {
            r.add(fail(key + ": run", Double.NaN, reason(e)));
        }
        if (m.has("grad_references") && m.get("grad_references").size() > 0) {
            r.add(gradientCheck(key, m, model, batch, tol));
        }
        return r;
    }

    /** d loss / d hook for every gradient reference of a model, from one backward graph. */
    private CheckResult gradientCheck(String key, JsonNode m, HookedModel model, Batch batch, Tolerances tol) {
        String label = key + ": " + m.get("grad_references").size() + " gradient references";
        try {
            List<String> hooks = new ArrayList<>();
            m.get("grad_references").fieldNames().forEachRemaining(hooks::add);
            JsonNode loss = m.get("loss");
            INDArray mask = npy(m.get("inputs").get("attention_mask"));
            String outName = m.get("onnx_output").asText();
            LossSetup setup = lossSetup(loss, mask, outName, model);
            GraphGradients.Result res = HookGradients.compute(model, batch, setup.append, setup.feeds, hooks);
            double worst = 0;
            for (String h : hooks) {
                Tolerance.Comparison c = tol.grad.compare(res.gradients().get(h), npy(m.get("grad_references").get(h)));
                worst = Math.max(worst, c.maxAbsError());
                if (!c.ok()) {
                    return fail(label, c.maxAbsError(), "d loss / d " + h + " "
                            + (c.problem() != null ? c.problem() : "exceeds tolerance"));
                }
            }
            Tolerance.Comparison l = tol.loss.compare(res.loss(), loss.get("value").asDouble());
            if (!l.ok()) {
                return fail(label, l.maxAbsError(), "loss in the gradient graph " + res.loss());
            }
            return pass(label, worst, "loss " + String.format("%.6f", res.loss()));
        } catch (RuntimeException e) {
            return fail(label, Double.NaN, reason(e));
        }
    }

    private record LossSetup(java.util.function.Function<OnnxGraph, String> append, Map<String, INDArray> feeds) {
    }

    /** The fixture loss as graph ops with its data as feeds (fixtures README section 5). */
    private LossSetup lossSetup(JsonNode loss, INDArray mask, String output, HookedModel model) {
        Map<String, INDArray> feeds = new LinkedHashMap<>();
        long b = mask.size(0);
        long s = mask.size(1);
        switch (loss.get("type").asText()) {
            case "masked_probe_sum" -> {
                INDArray probe = npy(loss.get("probe"));
                feeds.put(LossGraphs.PROBE, probe.castTo(org.nd4j.linalg.api.buffer.DataType.FLOAT));
                feeds.put(LossGraphs.MASK, mask.castTo(org.nd4j.linalg.api.buffer.DataType.FLOAT));
                return new LossSetup(g -> LossGraphs.maskedProbeSum(g, output, probe.length()), feeds);
            }
            case "causal_last_token_ce" -> {
                INDArray targets = npy(loss.get("targets"));
                INDArray w = org.nd4j.linalg.factory.Nd4j.zeros(org.nd4j.linalg.api.buffer.DataType.FLOAT, b, s);
                INDArray t = org.nd4j.linalg.factory.Nd4j.zeros(org.nd4j.linalg.api.buffer.DataType.LONG, b, s, 1);
                for (int i = 0; i < b; i++) {
                    int last = 0;
                    for (int j = 0; j < s; j++) {
                        if (mask.getLong(i, j) != 0) {
                            last = j;
                        }
                    }
                    w.putScalar(new long[] {i, last}, 1);
                    t.putScalar(new long[] {i, last, 0}, targets.getLong(i));
                }
                feeds.put(LossGraphs.WEIGHTS, w);
                feeds.put(LossGraphs.TARGETS, t);
                return new LossSetup(g -> LossGraphs.tokenCrossEntropy(g, output), feeds);
            }
            default -> throw new IllegalArgumentException("unknown loss type " + loss.get("type").asText());
        }
    }

    /**
     * What one case runs: module edits and hook sites, the hook tensors to compare after the run, a source run to
     * compare, and where each gradient file's parameter comes back ({@code perEdit} or {@code perSite}, index, name).
     */
    private record Plan(List<? extends ModelEdit> edits, List<InterventionSite> sites, Map<String, String> readChecks,
                        Batch source, String sourceHook, Map<String, ParamRef> gradients, int offset, Batch base) {
        Plan(List<? extends ModelEdit> edits, List<InterventionSite> sites, Map<String, String> readChecks,
             Batch source, String sourceHook, Map<String, ParamRef> gradients) {
            this(edits, sites, readChecks, source, sourceHook, gradients, 0, null);
        }
    }

    private record ParamRef(boolean edit, int index, String name) {
    }

    /** Case types that edit linear modules, by the fixtures' name. */
    private static final List<String> MODULE_EDITS = List.of("lora", "dora");

    /** Case types that put virtual tokens in front of the real ones (section 7b). */
    private static final List<String> SEQUENCE_EDITS = List.of("prompt_tuning", "p_tuning", "prefix_tuning",
            "prefix_tuning_no_past", "prefix_tuning_projection");

    /** One case of {@code cases/<name>/case.json}. */
    public CheckResult checkCase(String name, Path caseFile) {
        JsonNode c = read(caseFile);
        String type = c.get("intervention").asText();
        boolean multiSite = c.hasNonNull("sites");
        if (type.equals("full_finetune")) {
            return checkFullFinetune(name, c);
        }
        if (type.equals("greedy_generation")) {
            return checkGeneration(name, c);
        }
        if (!MODULE_EDITS.contains(type) && !SEQUENCE_EDITS.contains(type) && !multiSite
                && !Interventions.known(type)) {
            return unsupported(name, "intervention '" + type + "' is not implemented yet");
        }
        try {
            JsonNode manifestModel = read(dir.resolve("manifest.json")).get("models").get(c.get("model").asText());
            HookedModel model = model(manifestModel, c.hasNonNull("model_file") ? c.get("model_file").asText() : null);
            Tolerances tol = Tolerances.of(c.get("tolerance"));
            Plan plan = MODULE_EDITS.contains(type) ? editPlan(c, type, model)
                    : SEQUENCE_EDITS.contains(type) ? (type.startsWith("prefix") ? prefixPlan(c, type)
                    : promptPlan(c, type)) : multiSite ? sitesPlan(c) : hookPlan(c);
            Batch base = plan.base != null ? plan.base : batch(c.get("inputs"));
            // jreft's outputs and losses cover the real tokens only; the references cover the virtual ones too
            int offset = plan.offset;
            IntervenableModel intervenable = new IntervenableModel(model);
            List<String> reads = new ArrayList<>(plan.readChecks.keySet());
            InterventionResult res = intervenable.run(base, plan.edits, plan.sites, reads);
            List<Tolerance.Comparison> checks = new ArrayList<>();
            List<String> labels = new ArrayList<>();
            c.get("expected_output").fields().forEachRemaining(e -> {
                checks.add(tol.output.compare(res.output(e.getKey()), realTokens(npy(e.getValue()), offset)));
                labels.add(offset == 0 ? e.getKey() : e.getKey() + " (real tokens)");
            });
            plan.readChecks.forEach((hook, file) -> {
                checks.add(tol.hook.compare(res.hook(hook), npy(file)));
                labels.add(hook.startsWith("tensor:") ? "module output" : hook + " output");
            });
            if (c.hasNonNull("source_hook_value") && plan.source != null) {
                INDArray sv = model.runWithCache(plan.source, plan.sourceHook).get(plan.sourceHook);
                checks.add(tol.hook.compare(sv, npy(c.get("source_hook_value"))));
                labels.add("source hook value");
            }
            if (c.hasNonNull("expected_loss")) {
                String outName = c.get("expected_output").fieldNames().next();
                CheckResult l = lossCheck("", c.get("loss"), c.get("inputs"), res.output(outName),
                        c.get("expected_loss").asDouble(), tol.loss, offset);
                checks.add(new Tolerance.Comparison(l.maxAbsError(),
                        l.status() == CheckResult.Status.PASSED ? 0 : 2, null));
                labels.add("loss");
            }
            double worst = 0;
            for (int i = 0; i < checks.size(); i++) {
                Tolerance.Comparison k = checks.get(i);
                worst = Math.max(worst, k.maxAbsError());
                if (!k.ok()) {
                    return fail(name, k.maxAbsError(), labels.get(i) + " "
                            + (k.problem() != null ? k.problem() : "exceeds tolerance"));
                }
            }
            if (c.has("expected_grads") && c.get("expected_grads").size() > 0) {
                INDArray mask = c.get("loss").hasNonNull("attention_mask")
                        ? realTokens(npy(c.get("loss").get("attention_mask")), offset) : base.attentionMask();
                String outName = c.get("expected_output").fieldNames().next();
                LossSetup setup = lossSetup(c.get("loss"), mask, outName, model);
                IntervenableModel.Gradients grads = intervenable.gradients(base, plan.edits, plan.sites, null,
                        setup.append, setup.feeds, List.of());
                for (var e : (Iterable<Map.Entry<String, JsonNode>>) () -> c.get("expected_grads").fields()) {
                    ParamRef ref = plan.gradients.get(e.getKey());
                    INDArray got = ref == null ? null : (ref.edit ? grads.perEdit() : grads.perSite())
                            .get(ref.index).get(ref.name);
                    if (got == null) {
                        return fail(name, Double.NaN, "no gradient for parameter '" + e.getKey() + "'");
                    }
                    Tolerance.Comparison k = tol.grad.compare(got, npy(e.getValue()));
                    worst = Math.max(worst, k.maxAbsError());
                    if (!k.ok()) {
                        return fail(name, k.maxAbsError(), "d loss / d " + e.getKey() + " "
                                + (k.problem() != null ? k.problem() : "exceeds tolerance"));
                    }
                    labels.add("d/d" + e.getKey());
                }
            }
            return pass(name, worst, String.join(", ", labels));
        } catch (RuntimeException e) {
            return fail(name, Double.NaN, reason(e));
        }
    }

    /**
     * Full finetuning and BitFit (section 7b): the base model's loss differentiated with respect to every weight. The
     * weights become graph inputs (so no folding turns one into a constant), and each HF parameter's gradient is the
     * sum over the initializers that hold it, transposed where the exporter stored W as Wᵀ (GPT-2's tied lm_head).
     */
    /**
     * Greedy decoding with the KV cache (section 7b): the tokens exactly, each step's logits, the greedy sequence loss
     * and its gradient through every step, from the teacher-forced replay of the generated tokens.
     */
    private CheckResult checkGeneration(String name, JsonNode c) {
        try {
            JsonNode manifestModel = read(dir.resolve("manifest.json")).get("models").get(c.get("model").asText());
            IntervenableModel im = new IntervenableModel(model(manifestModel, c.get("model_file").asText()));
            Tolerances tol = Tolerances.of(c.get("tolerance"));
            JsonNode gen = c.get("generation");
            JsonNode iv = gen.get("intervene");
            List<InterventionSite> sites = new ArrayList<>();
            InterveneOn on = InterveneOn.PROMPT;
            if (iv != null && !iv.isNull()) {
                Map<String, INDArray> params = new LinkedHashMap<>();
                c.get("params").fields().forEachRemaining(e -> params.put(e.getKey(), npy(e.getValue())));
                Integer rank = params.containsKey("R") ? Integer.valueOf((int) params.get("R").size(0)) : null;
                Intervention intervention = Interventions.create(iv.get("intervention").asText(),
                        new Interventions.Options(rank, null));
                sites.add(InterventionSite.at(iv.get("hook").asText(), intervention).unit(unit(iv))
                        .positions(ints2(iv.get("prompt_positions"))).params(params).build());
                on = iv.get("decode_steps").asBoolean() ? InterveneOn.EVERY : InterveneOn.PROMPT;
            }
            Batch prompts = batch(c.get("inputs"));
            Generator g = new Generator(im);
            Generator.Generation out = g.generate(prompts, sites, on,
                    Generator.Settings.greedy(gen.get("new_tokens").asInt()));
            INDArray expected = npy(c.get("expected_output").get("tokens"));
            long[][] want = new long[(int) expected.size(0)][(int) expected.size(1)];
            for (int r = 0; r < want.length; r++) {
                for (int k = 0; k < want[r].length; k++) {
                    want[r][k] = expected.getLong(r, k);
                    if (out.steps() <= k || out.tokens()[r][k] != want[r][k]) {
                        return fail(name, Double.NaN, "token " + k + " of row " + r + ": " + (out.steps() <= k
                                ? "none" : out.tokens()[r][k]) + " against " + want[r][k]);
                    }
                }
            }
            List<String> labels = new ArrayList<>(List.of("tokens"));
            Tolerance.Comparison logits = tol.output.compare(out.stepLogits(),
                    npy(c.get("expected_output").get("step_logits")));
            double worst = logits.maxAbsError();
            if (!logits.ok()) {
                return fail(name, worst, "step logits " + (logits.problem() != null ? logits.problem()
                        : "exceed tolerance"));
            }
            labels.add("step logits");
            if (c.hasNonNull("expected_loss")) { // greedy_sequence_ce of the step logits
                double loss = 0;
                for (int r = 0; r < want.length; r++) {
                    for (int k = 0; k < want[r].length; k++) {
                        INDArray l = out.stepLogits().get(NDArrayIndex.point(r), NDArrayIndex.point(k),
                                NDArrayIndex.all()).castTo(org.nd4j.linalg.api.buffer.DataType.DOUBLE);
                        double max = l.maxNumber().doubleValue();
                        double lse = max + Math.log(org.nd4j.linalg.ops.transforms.Transforms.exp(l.sub(max), false)
                                .sumNumber().doubleValue());
                        loss += lse - l.getDouble(want[r][k]);
                    }
                }
                loss /= want.length * want[0].length;
                Tolerance.Comparison l = tol.loss.compare(loss, c.get("expected_loss").asDouble());
                if (!l.ok()) {
                    return fail(name, l.maxAbsError(), "greedy sequence loss " + loss);
                }
                labels.add("loss");
            }
            if (c.has("expected_grads") && c.get("expected_grads").size() > 0) {
                Generator.Replay replay = g.replay(prompts, sites, on, want);
                IntervenableModel.Gradients grads = im.gradients(replay.batch(), replay.sites(), null,
                        graph -> LossGraphs.tokenCrossEntropy(graph, "logits"), Map.of(LossGraphs.WEIGHTS,
                                replay.weights(), LossGraphs.TARGETS, replay.targets()));
                Tolerance.Comparison l = tol.loss.compare(grads.loss(), c.get("expected_loss").asDouble());
                if (!l.ok()) {
                    return fail(name, l.maxAbsError(), "greedy sequence loss in the replay " + grads.loss());
                }
                for (var e : (Iterable<Map.Entry<String, JsonNode>>) () -> c.get("expected_grads").fields()) {
                    Tolerance.Comparison k = tol.grad.compare(grads.perSite().get(0).get(e.getKey()),
                            npy(e.getValue()));
                    worst = Math.max(worst, k.maxAbsError());
                    if (!k.ok()) {
                        return fail(name, k.maxAbsError(), "d loss / d " + e.getKey() + " "
                                + (k.problem() != null ? k.problem() : "exceeds tolerance"));
                    }
                    labels.add("d/d" + e.getKey());
                }
            }
            return pass(name, worst, String.join(", ", labels) + " (KV cache)");
        } catch (RuntimeException e) {
            return fail(name, Double.NaN, reason(e));
        }
    }

    private CheckResult checkFullFinetune(String name, JsonNode c) {
        try {
            JsonNode manifestModel = read(dir.resolve("manifest.json")).get("models").get(c.get("model").asText());
            HookedModel frozen = model(manifestModel, c.get("model_file").asText());
            Tolerances tol = Tolerances.of(c.get("tolerance"));
            List<String> initializers = new ArrayList<>();
            for (JsonNode p : c.get("parameters")) {
                p.get("onnx_initializers").forEach(i -> {
                    if (!initializers.contains(i.get("initializer").asText())) {
                        initializers.add(i.get("initializer").asText());
                    }
                });
            }
            OnnxGraph g = frozen.graph().copy();
            Map<String, float[]> values = g.unfreeze(initializers);
            HookedModel trainable = new HookedModel(g, null, frozen.runtime());
            INDArray mask = npy(c.get("loss").get("attention_mask"));
            String outName = c.get("expected_output").fieldNames().next();
            LossSetup setup = lossSetup(c.get("loss"), mask, outName, trainable);
            // the weights are fed with the batch, as the graph's other inputs
            Map<String, INDArray> feeds = new LinkedHashMap<>();
            c.get("inputs").fields().forEachRemaining(e -> feeds.put(e.getKey(), npy(e.getValue())));
            for (String i : initializers) {
                long[] dims = g.inputs().stream().filter(v -> v.getName().equals(i)).findFirst().orElseThrow()
                        .getType().getTensorType().getShape().getDimList().stream().mapToLong(d -> d.getDimValue())
                        .toArray();
                feeds.put(i, org.nd4j.linalg.factory.Nd4j.create(values.get(i), dims, 'c'));
            }
            GraphGradients.Result grads = GraphGradients.compute(g, feeds, setup.append, setup.feeds, initializers,
                    frozen.runtime());
            double lossErr = Math.abs(grads.loss() - c.get("expected_loss").asDouble());
            if (!tol.loss.compare(grads.loss(), c.get("expected_loss").asDouble()).ok()) {
                return fail(name, lossErr, String.format("loss %.6f vs expected %.6f", grads.loss(),
                        c.get("expected_loss").asDouble()));
            }
            double worst = lossErr;
            int bitfit = 0;
            for (JsonNode p : c.get("parameters")) {
                String hf = p.get("name").asText();
                INDArray sum = null;
                for (JsonNode i : p.get("onnx_initializers")) {
                    INDArray part = grads.gradients().get(i.get("initializer").asText());
                    if (i.get("layout").asText().equals("transposed")) {
                        part = part.transpose();
                    }
                    sum = sum == null ? part.dup() : sum.addi(part);
                }
                Tolerance.Comparison k = tol.grad.compare(sum, npy(c.get("expected_grads").get(hf)));
                worst = Math.max(worst, k.maxAbsError());
                if (!k.ok()) {
                    return fail(name, k.maxAbsError(), "d loss / d " + hf + " " + (k.problem() != null ? k.problem()
                            : "exceeds tolerance"));
                }
                bitfit += p.path("bitfit").asBoolean() ? 1 : 0;
            }
            return pass(name, worst, "loss, d/d every one of " + c.get("parameters").size() + " parameters ("
                    + bitfit + " BitFit biases), tied weights summed");
        } catch (RuntimeException e) {
            return fail(name, Double.NaN, reason(e));
        }
    }

    /** A case of section 7: one intervention at one hook. */
    private Plan hookPlan(JsonNode c) {
        String type = c.get("intervention").asText();
        boolean featureSubspace = Interventions.FEATURE_SUBSPACE.contains(type);
        int[] subspace = c.hasNonNull("subspace") ? ints(c.get("subspace")) : null;
        Integer rank = c.hasNonNull("rank") ? Integer.valueOf(c.get("rank").asInt())
                : c.hasNonNull("bottleneck_size") ? Integer.valueOf(c.get("bottleneck_size").asInt()) : null;
        Intervention iv = Interventions.create(type, new Interventions.Options(rank,
                featureSubspace ? null : subspace));
        String hook = c.get("hook").asText();
        InterventionSite.Builder site = InterventionSite.at(hook, iv).unit(unit(c))
                .positions(ints2(c.get("base_positions")));
        if (everyPosition(c)) {
            site.onPadding();
        }
        if (featureSubspace && subspace != null) {
            site.subspace(subspace);
        }
        Batch source = null;
        if (iv.needsSource()) {
            source = batch(c.get("source_inputs"));
            site.source(Source.run(source), ints2(c.get("source_positions")));
        }
        Map<String, INDArray> params = new LinkedHashMap<>();
        Map<String, ParamRef> grads = new LinkedHashMap<>();
        c.get("params").fields().forEachRemaining(e -> {
            params.put(e.getKey(), npy(e.getValue()));
            grads.put(e.getKey(), new ParamRef(false, 0, e.getKey()));
        });
        site.params(params);
        Map<String, String> reads = new LinkedHashMap<>();
        if (c.hasNonNull("expected_hook_output")) {
            reads.put(hook, c.get("expected_hook_output").asText());
        }
        return new Plan(List.of(), List.of(site.build()), reads, source, hook, grads);
    }

    /** Positions rule {@code all}: every position, padded ones included (section 7b). */
    private static boolean everyPosition(JsonNode c) {
        return c.hasNonNull("positions_rule") && c.get("positions_rule").asText().equals("all");
    }

    /** A case with a {@code sites} list (IA3): hook interventions acting in one forward pass. */
    private Plan sitesPlan(JsonNode c) {
        List<InterventionSite> sites = new ArrayList<>();
        Map<String, String> reads = new LinkedHashMap<>();
        Map<String, ParamRef> grads = new LinkedHashMap<>();
        for (JsonNode s : c.get("sites")) {
            Intervention iv = Interventions.create(s.get("intervention").asText(), Interventions.Options.NONE);
            Map<String, INDArray> params = new LinkedHashMap<>();
            int index = sites.size();
            s.get("params").fields().forEachRemaining(e -> {
                params.put(e.getKey(), npy(c.get("params").get(e.getValue().asText())));
                grads.put(e.getValue().asText(), new ParamRef(false, index, e.getKey()));
            });
            String hook = s.get("hook").asText();
            InterventionSite.Builder site = InterventionSite.at(hook, iv).unit(unit(s))
                    .positions(ints2(s.get("base_positions"))).params(params);
            if (everyPosition(s)) {
                site.onPadding();
            }
            sites.add(site.build());
            if (s.hasNonNull("expected_hook_output")) {
                reads.put(hook, s.get("expected_hook_output").asText());
            }
        }
        return new Plan(List.of(), sites, reads, null, null, grads);
    }

    /**
     * A prompt-tuning or P-tuning case: one soft prompt of {@code prompt_length} tokens (P-tuning: peft's MLP encoder
     * of {@code encoder_hidden_size}), the parameters under peft's names.
     */
    private Plan promptPlan(JsonNode c, String type) {
        int length = c.get("prompt_length").asInt();
        if (c.path("placeholder_token_id").asLong(0) != 0) {
            throw new IllegalStateException("placeholder_token_id " + c.get("placeholder_token_id").asLong()
                    + ": jreft places token 0 under the virtual tokens");
        }
        SequenceEdit edit;
        if (type.equals("p_tuning")) {
            String encoder = c.path("encoder_reparameterization_type").asText("MLP");
            if (!encoder.equals("MLP")) {
                throw new IllegalStateException("encoder_reparameterization_type " + encoder + " is not implemented");
            }
            edit = new PTuning(length, c.get("encoder_hidden_size").asInt());
        } else {
            edit = new PromptTuning(length);
        }
        return new Plan(List.of(sequenceSite(c, edit)), List.of(), Map.of(), null, null, editGradients(c), length,
                null);
    }

    /**
     * A prefix-tuning case (section 7 with past inputs, 7b without, and with peft's PrefixEncoder MLP): the case's
     * attention mask already covers the P prefix positions; jreft is given the real tokens' mask and adds them.
     */
    private Plan prefixPlan(JsonNode c, String type) {
        int length = c.get("prefix_length").asInt();
        if (c.hasNonNull("position_offset") && c.get("position_offset").asInt() != length) {
            throw new IllegalStateException("position_offset " + c.get("position_offset").asInt() + " is not P = "
                    + length);
        }
        SequenceEdit edit = new PrefixTuning(length, type.equals("prefix_tuning_projection")
                ? c.get("encoder_hidden_size").asInt() : 0);
        Map<String, INDArray> in = new LinkedHashMap<>();
        c.get("inputs").fields().forEachRemaining(e -> in.put(e.getKey(), npy(e.getValue())));
        in.put(Batch.ATTENTION_MASK, realTokens(in.get(Batch.ATTENTION_MASK), length));
        return new Plan(List.of(sequenceSite(c, edit)), List.of(), Map.of(), null, null, editGradients(c), 0,
                new Batch(in));
    }

    /** The case's sequence edit with its parameter files. */
    private SequenceSite sequenceSite(JsonNode c, SequenceEdit edit) {
        Map<String, INDArray> params = new LinkedHashMap<>();
        c.get("params").fields().forEachRemaining(e -> params.put(e.getKey(), npy(e.getValue())));
        return new SequenceSite(edit, params);
    }

    /** Each parameter file's gradient comes back from edit 0 under its own name. */
    private static Map<String, ParamRef> editGradients(JsonNode c) {
        Map<String, ParamRef> grads = new LinkedHashMap<>();
        c.get("params").fieldNames().forEachRemaining(n -> grads.put(n, new ParamRef(true, 0, n)));
        return grads;
    }

    /** Positions {@code offset}.. of axis 1 (the real tokens behind {@code offset} virtual ones). */
    private static INDArray realTokens(INDArray a, int offset) {
        if (offset == 0) {
            return a;
        }
        org.nd4j.linalg.indexing.INDArrayIndex[] idx = new org.nd4j.linalg.indexing.INDArrayIndex[a.rank()];
        java.util.Arrays.fill(idx, org.nd4j.linalg.indexing.NDArrayIndex.all());
        idx[1] = org.nd4j.linalg.indexing.NDArrayIndex.interval(offset, a.size(1));
        return a.get(idx).dup('c');
    }

    /**
     * A LoRA / DoRA case: one edit per target module, all active in one pass; the module output after the edit is
     * read back through its tensor (the splice keeps the module's output name).
     */
    private Plan editPlan(JsonNode c, String type, HookedModel model) {
        int rank = c.get("lora_rank").asInt();
        double alpha = c.get("lora_alpha").asDouble();
        ModuleEdit edit = type.equals("dora") ? new DoRA(rank, alpha) : new LoRA(rank, alpha);
        if (c.hasNonNull("lora_scaling") && Math.abs(((LoRA) edit).scaling() - c.get("lora_scaling").asDouble())
                > 1e-12) {
            throw new IllegalStateException("lora_scaling " + c.get("lora_scaling").asDouble() + " is not alpha / r = "
                    + ((LoRA) edit).scaling());
        }
        List<ModuleSite> edits = new ArrayList<>();
        Map<String, String> reads = new LinkedHashMap<>();
        Map<String, ParamRef> grads = new LinkedHashMap<>();
        // section 7b lists targets; a section-7 case has one, its params named as the formula's
        record Target(String module, Map<String, String> params, String expectedOutput) {
        }
        List<Target> targets = new ArrayList<>();
        if (c.hasNonNull("targets")) {
            for (JsonNode t : c.get("targets")) {
                Map<String, String> roles = new LinkedHashMap<>();
                t.get("params").fields().forEachRemaining(e -> roles.put(e.getKey(), e.getValue().asText()));
                targets.add(new Target(t.get("module").asText(), roles, t.get("expected_module_output").asText()));
            }
        } else {
            Map<String, String> roles = new LinkedHashMap<>();
            c.get("params").fieldNames().forEachRemaining(k -> roles.put(k, k));
            targets.add(new Target(c.get("target_module").asText(), roles, c.get("expected_module_output").asText()));
        }
        for (Target t : targets) {
            Map<String, INDArray> params = new LinkedHashMap<>();
            int index = edits.size();
            t.params.forEach((role, key) -> {
                // the fixtures call DoRA's magnitude by its role; the formula (and jreft) name it m
                String name = role.equals("magnitude") ? "m" : role;
                params.put(name, npy(c.get("params").get(key)));
                grads.put(key, new ParamRef(true, index, name));
            });
            edits.add(new ModuleSite(t.module, edit, params));
            String output = model.modules().get(t.module).map(m -> "tensor:" + m.output()).orElseThrow(() ->
                    new IllegalArgumentException("no linear module '" + t.module + "'; the graph has "
                            + model.modules().describeCandidates()));
            reads.put(output, t.expectedOutput);
        }
        return new Plan(edits, List.of(), reads, null, null, grads);
    }

    private CheckResult lossCheck(String label, JsonNode loss, JsonNode inputs, INDArray output, double expected,
                                  Tolerance tol) {
        return lossCheck(label, loss, inputs, output, expected, tol, 0);
    }

    /** {@code offset}: virtual positions in front of the loss mask that {@code output} does not have. */
    private CheckResult lossCheck(String label, JsonNode loss, JsonNode inputs, INDArray output, double expected,
                                  Tolerance tol, int offset) {
        String type = loss.get("type").asText();
        INDArray mask = loss.hasNonNull("attention_mask") ? realTokens(npy(loss.get("attention_mask")), offset)
                : npy(inputs.get("attention_mask"));
        double value = switch (type) {
            case "causal_last_token_ce" -> ReferenceLosses.causalLastTokenCe(output, npy(loss.get("targets")), mask);
            case "masked_probe_sum" -> ReferenceLosses.maskedProbeSum(output, npy(loss.get("probe")), mask);
            default -> Double.NaN;
        };
        if (Double.isNaN(value)) {
            return unsupported(label, "loss type '" + type + "' is not known");
        }
        Tolerance.Comparison c = tol.compare(value, expected);
        return c.ok() ? pass(label, c.maxAbsError(), String.format("%.6f", value))
                : fail(label, c.maxAbsError(), String.format("%.6f vs expected %.6f", value, expected));
    }

    private CheckResult compare(String label, INDArray actual, INDArray expected, Tolerance tol) {
        Tolerance.Comparison c = tol.compare(actual, expected);
        return c.ok() ? pass(label, c.maxAbsError(), "")
                : fail(label, c.maxAbsError(), c.problem() != null ? c.problem() : "exceeds tolerance");
    }

    private HookedModel model(JsonNode m, String modelFile) {
        String key = modelFile != null ? modelFile : "external:" + m.get("external_onnx").get("resource").asText();
        return models.computeIfAbsent(key, k -> {
            if (modelFile != null) {
                return new HookedModel(OnnxGraph.load(inside(modelFile, "a model file")), null, OrtRuntime.shared());
            }
            JsonNode ext = m.get("external_onnx");
            String resource = ext.get("resource").asText();
            byte[] bytes;
            try (InputStream in = Verifier.class.getClassLoader().getResourceAsStream(resource)) {
                if (in == null) {
                    throw new IllegalStateException("external model " + resource + " is not on the class path (Maven "
                            + ext.get("maven").asText() + ")");
                }
                bytes = in.readAllBytes();
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
            String sha = OnnxGraph.sha256(bytes);
            if (ext.has("sha256") && !sha.equals(ext.get("sha256").asText())) {
                throw new IllegalStateException("external model " + resource + " has sha256 " + sha
                        + ", the bundle expects " + ext.get("sha256").asText());
            }
            return new HookedModel(OnnxGraph.parse(bytes, "classpath:" + resource, null), null, OrtRuntime.shared());
        });
    }

    private static String firstOnnx(JsonNode m) {
        return m.get("onnx").elements().next().asText();
    }

    private Batch batch(JsonNode inputs) {
        Map<String, INDArray> in = new LinkedHashMap<>();
        inputs.fields().forEachRemaining(e -> in.put(e.getKey(), npy(e.getValue())));
        return new Batch(in);
    }

    private static Unit unit(JsonNode c) {
        if (c.hasNonNull("unit") && c.get("unit").asText().equals("h.pos")) {
            return Unit.heads(ints(c.get("heads")));
        }
        return Unit.POS;
    }

    private INDArray npy(JsonNode path) {
        return npy(path.asText());
    }

    private INDArray npy(String path) {
        return Npy.read(inside(path, "a reference file"));
    }

    /**
     * A file the bundle names, which must lie inside the bundle's folder: a manifest cannot make the verifier read
     * anything else on the machine by its names. (Links the user put in the bundle are followed: they are the user's
     * choice, as in a bundle that links to large models instead of copying them.)
     */
    private Path inside(String relative, String what) {
        return SafeNames.inside(dir, relative, what);
    }

    /** A failure's reason for its line: the message, or the exception's name when it has none. */
    private static String reason(RuntimeException e) {
        return e.getMessage() != null ? e.getMessage().replaceAll("\\s*\\R\\s*", " ") : e.getClass().getSimpleName();
    }

    private static int[] ints(JsonNode a) {
        int[] out = new int[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.get(i).asInt();
        }
        return out;
    }

    private static int[][] ints2(JsonNode a) {
        int[][] out = new int[a.size()][];
        for (int i = 0; i < out.length; i++) {
            out[i] = ints(a.get(i));
        }
        return out;
    }

    private JsonNode read(Path p) {
        return ConfigJson.tree(TextFiles.readUtf8(p, null), p.toString());
    }

    private static CheckResult pass(String n, double err, String d) {
        return new CheckResult(n, CheckResult.Status.PASSED, err, d);
    }

    private static CheckResult fail(String n, double err, String d) {
        return new CheckResult(n, CheckResult.Status.FAILED, err, d);
    }

    private static CheckResult unsupported(String n, String d) {
        return new CheckResult(n, CheckResult.Status.UNSUPPORTED, Double.NaN, d);
    }

    /** Prints the closing summary; returns the number of failures. */
    public static long summarise(List<CheckResult> results, PrintStream out) {
        long passed = results.stream().filter(r -> r.status() == CheckResult.Status.PASSED).count();
        long failed = results.stream().filter(r -> r.status() == CheckResult.Status.FAILED).count();
        long unsupported = results.stream().filter(r -> r.status() == CheckResult.Status.UNSUPPORTED).count();
        out.println(unsupported + " unsupported (not counted as passed)");
        out.println(passed + " passed, " + failed + " failed");
        return failed;
    }

    private record Tolerances(Tolerance output, Tolerance loss, Tolerance grad, Tolerance hook) {
        static Tolerances of(JsonNode t) {
            return new Tolerances(tol(t, "output"), tol(t, "loss"), tol(t, "grad"), tol(t, "hook"));
        }

        private static Tolerance tol(JsonNode t, String k) {
            if (t == null || !t.has(k)) {
                return k.equals("grad") ? new Tolerance(1e-4, 1e-3) : Tolerance.DEFAULT;
            }
            return new Tolerance(number(t.get(k), "atol", k), number(t.get(k), "rtol", k));
        }

        /** A tolerance bound: a finite number >= 0, or the reference check means nothing. */
        private static double number(JsonNode t, String field, String k) {
            JsonNode v = t == null ? null : t.get(field);
            if (v == null || !v.isNumber() || !Double.isFinite(v.asDouble()) || v.asDouble() < 0) {
                throw new ConfigException("tolerance." + k + "." + field, v == null ? ConfigException.described(
                        "nothing") : v, "a finite number >= 0");
            }
            return v.asDouble();
        }
    }
}
