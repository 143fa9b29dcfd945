package dev.jreft.verification;

import dev.jreft.hooks.autodiff.LossGraphs;
import dev.jreft.hooks.io.FixturesLocation;
import dev.jreft.hooks.io.Npy;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.IntervenableModel;
import dev.jreft.interventions.Intervention;
import dev.jreft.interventions.InterventionSite;
import dev.jreft.interventions.Interventions;
import dev.jreft.interventions.Source;
import dev.jreft.interventions.das.BoundlessRotatedSpaceInterchange;
import dev.jreft.interventions.das.SigmoidMaskInterchange;
import dev.jreft.interventions.params.Orthogonal;
import dev.jreft.interventions.reft.Activation;
import dev.jreft.interventions.reft.ConsReFT;
import dev.jreft.interventions.reft.DiReFT;
import dev.jreft.interventions.reft.LoReFT;
import dev.jreft.interventions.reft.LobiReFT;
import dev.jreft.interventions.reft.NoReFT;
import dev.jreft.interventions.reft.NodiReFT;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.strict.Erf;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.nd4j.linalg.ops.transforms.Transforms;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.function.BiFunction;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The pyreft family (ConsReFT, LobiReFT, NodiReFT, activations, dropout) and pyvene's boundless and sigmoid-mask
 * DAS on the BERT fixture: the intervened hook against the formula computed on the host from the unintervened hook
 * values, and the autodiff gradients against central finite differences of the masked probe loss.
 */
class FamilyTest {
    static final String HOOK = "blocks.0.block_output";
    static final int WIDTH = 32;
    static final int RANK = 4;
    static final int[][] BASE_POSITIONS = {{0, 5}, {0, 3}};
    /** Paired source positions (source example 0 has 5 real tokens, so its position 5 is padding). */
    static final int[][] SOURCE_POSITIONS = {{0, 4}, {0, 3}};
    static final double FORWARD_ATOL = 1e-5;

    static HookedModel bert;
    static IntervenableModel model;
    static Batch base;
    static Batch source;
    static INDArray baseHook;
    static INDArray sourceHook;
    static INDArray probe;
    static INDArray lossMask;

    @BeforeAll
    static void load() {
        var dir = FixturesLocation.find();
        Assumptions.assumeTrue(dir.isPresent(), "fixtures not found at " + FixturesLocation.configured());
        Path fixtures = dir.get();
        bert = HookedModel.load(fixtures.resolve("models/bert/bert_op14.onnx"));
        model = new IntervenableModel(bert);
        base = batch(fixtures.resolve("models/bert/inputs"));
        source = batch(fixtures.resolve("models/bert/source_inputs"));
        baseHook = bert.runWithCache(base, HOOK).get(HOOK);
        sourceHook = bert.runWithCache(source, HOOK).get(HOOK);
        probe = Npy.read(fixtures.resolve("models/bert/probe.npy")).castTo(DataType.FLOAT);
        lossMask = base.attentionMask().castTo(DataType.FLOAT);
    }

    static Batch batch(Path dir) {
        Map<String, INDArray> m = new LinkedHashMap<>();
        for (String n : List.of("input_ids", "attention_mask", "token_type_ids")) {
            m.put(n, Npy.read(dir.resolve(n + ".npy")));
        }
        return new Batch(m);
    }

    // ---------------------------------------------------------------- host formulas (float64, row form)

    /** The formula on one row: h and s are [1, d] float64, params are float64. */
    interface RowFormula {
        INDArray apply(INDArray h, INDArray s, Map<String, INDArray> p);
    }

    /** One intervention with parameter values and its host formula; the name labels the parameterised test. */
    record Case(String name, Intervention intervention, Map<String, INDArray> params, RowFormula formula) {
        @Override
        public String toString() {
            return name;
        }

        Case withParams(Map<String, INDArray> replaced) {
            return new Case(name, intervention, replaced, formula);
        }
    }

    static INDArray act(Activation a, INDArray x) {
        return switch (a) {
            case LINEAR -> x;
            case RELU -> Transforms.relu(x, true);
            case TANH -> Transforms.tanh(x, true);
            case SIGMOID -> Transforms.sigmoid(x, true);
            case GELU -> {
                INDArray erf = x.div(Math.sqrt(2));
                Nd4j.getExecutioner().exec(new Erf(erf));
                yield x.mul(0.5).mul(erf.add(1));
            }
        };
    }

    static INDArray row(INDArray v) {
        return v.reshape(1, v.length());
    }

    /** {@code act(h Wᵀ + b)}. */
    static INDArray learned(Activation a, INDArray h, Map<String, INDArray> p) {
        return act(a, h.mmul(p.get("W").transpose()).add(row(p.get("b"))));
    }

    /** LoReFT and NoReFT: {@code h + (act(h Wᵀ + b) − h Rᵀ) R}. */
    static RowFormula loreft(Activation a) {
        return (h, s, p) -> h.add(learned(a, h, p).sub(h.mmul(p.get("R").transpose())).mmul(p.get("R")));
    }

    /** DiReFT and NodiReFT: {@code h + act(h Wᵀ + b) R}. */
    static RowFormula direft(Activation a) {
        return (h, s, p) -> h.add(learned(a, h, p).mmul(p.get("R")));
    }

    /** ConsReFT: {@code h + (b − h Rᵀ) R}. */
    static final RowFormula CONSREFT = (h, s, p) -> h.add(row(p.get("b")).sub(h.mmul(p.get("R").transpose()))
            .mmul(p.get("R")));

    /** LobiReFT: {@code h + b R}. */
    static final RowFormula LOBIREFT = (h, s, p) -> h.add(row(p.get("b")).mmul(p.get("R")));

    /** Boundless DAS: {@code ((1 − m)⊙hR + m⊙sR) Rᵀ}, {@code m_k = σ(k/T)·σ((c − k)/T)}, c = clip(boundary)·d. */
    static final RowFormula BOUNDLESS = (h, s, p) -> {
        INDArray r = p.get("R");
        double t = p.get("temperature").getDouble(0);
        double c = Math.min(1, Math.max(1e-3, p.get("boundary").getDouble(0))) * WIDTH;
        INDArray k = Nd4j.arange(0, WIDTH).castTo(DataType.DOUBLE).reshape(1, WIDTH);
        INDArray m = Transforms.sigmoid(k.div(t)).mul(Transforms.sigmoid(k.rsub(c).div(t)));
        return m.rsub(1).mul(h.mmul(r)).add(m.mul(s.mmul(r))).mmul(r.transpose());
    };

    /** Sigmoid mask: {@code (1 − m)⊙h + m⊙s}, {@code m = σ(mask / T)}. */
    static final RowFormula SIGMOID_MASK = (h, s, p) -> {
        INDArray m = row(Transforms.sigmoid(p.get("mask").div(p.get("temperature").getDouble(0))));
        return m.rsub(1).mul(h).add(m.mul(s));
    };

    static INDArray gaussian(Random rnd, double scale, long... shape) {
        int n = (int) java.util.Arrays.stream(shape).reduce(1, (a, b) -> a * b);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (rnd.nextGaussian() * scale);
        }
        return Nd4j.create(v, shape, 'c');
    }

    static INDArray scalar1(double v) {
        return Nd4j.createFromArray(new float[] {(float) v});
    }

    /** R (orthonormal rows where the type keeps them), W and b for the ReFT family. */
    static Map<String, INDArray> reftParams(long seed, boolean orthonormal, boolean withW) {
        Random rnd = new Random(seed);
        Map<String, INDArray> p = new LinkedHashMap<>();
        p.put("R", orthonormal ? Orthogonal.randomRows(RANK, WIDTH, rnd) : gaussian(rnd, 0.3, RANK, WIDTH));
        if (withW) {
            p.put("W", gaussian(rnd, 0.3, RANK, WIDTH));
        }
        p.put("b", gaussian(rnd, 0.5, RANK));
        return p;
    }

    static Map<String, INDArray> boundlessParams(double boundary, double temperature) {
        Map<String, INDArray> p = new LinkedHashMap<>();
        p.put("R", Orthogonal.randomRows(WIDTH, WIDTH, new Random(31)));
        p.put("boundary", scalar1(boundary));
        p.put("temperature", scalar1(temperature));
        return p;
    }

    static Map<String, INDArray> sigmoidMaskParams() {
        Map<String, INDArray> p = new LinkedHashMap<>();
        p.put("mask", gaussian(new Random(41), 1.0, WIDTH));
        p.put("temperature", scalar1(0.5));
        return p;
    }

    static Case reft(String type, Activation a, double dropout, long seed) {
        return switch (type) {
            case "loreft" -> new Case("loreft/" + a.configName(), new LoReFT(RANK, a, dropout),
                    reftParams(seed, true, true), loreft(a));
            case "noreft" -> new Case("noreft/" + a.configName(), new NoReFT(RANK, a, dropout),
                    reftParams(seed, false, true), loreft(a));
            case "direft" -> new Case("direft/" + a.configName(), new DiReFT(RANK, a, dropout),
                    reftParams(seed, true, true), direft(a));
            case "nodireft" -> new Case("nodireft/" + a.configName(), new NodiReFT(RANK, a, dropout),
                    reftParams(seed, false, true), direft(a));
            case "consreft" -> new Case("consreft", new ConsReFT(RANK, dropout), reftParams(seed, true, false),
                    CONSREFT);
            case "lobireft" -> new Case("lobireft", new LobiReFT(RANK, dropout), reftParams(seed, false, false),
                    LOBIREFT);
            default -> throw new IllegalArgumentException(type);
        };
    }

    static final List<String> REFT_TYPES = List.of("loreft", "noreft", "direft", "nodireft", "consreft", "lobireft");
    static final List<String> WITH_ACTIVATION = List.of("loreft", "noreft", "direft", "nodireft");

    static Stream<Case> forwardCases() {
        List<Case> cases = new ArrayList<>();
        long seed = 100;
        for (String type : WITH_ACTIVATION) {
            for (Activation a : Activation.values()) {
                cases.add(reft(type, a, 0, seed++));
            }
        }
        cases.add(reft("consreft", Activation.LINEAR, 0, seed++));
        cases.add(reft("lobireft", Activation.LINEAR, 0, seed));
        cases.add(new Case("boundless", new BoundlessRotatedSpaceInterchange(), boundlessParams(0.4, 2.0), BOUNDLESS));
        cases.add(new Case("boundless/clipped boundary", new BoundlessRotatedSpaceInterchange(),
                boundlessParams(1.3, 2.0), BOUNDLESS));
        cases.add(new Case("sigmoid mask", new SigmoidMaskInterchange(), sigmoidMaskParams(), SIGMOID_MASK));
        return cases.stream();
    }

    static Stream<Case> gradientCases() {
        List<Case> cases = new ArrayList<>();
        cases.add(reft("consreft", Activation.LINEAR, 0, 200));
        cases.add(reft("lobireft", Activation.LINEAR, 0, 201));
        cases.add(reft("nodireft", Activation.LINEAR, 0, 202));
        cases.add(reft("nodireft", Activation.GELU, 0, 203));
        cases.add(reft("loreft", Activation.RELU, 0, 204));
        cases.add(reft("loreft", Activation.TANH, 0, 205));
        cases.add(reft("noreft", Activation.SIGMOID, 0, 206));
        cases.add(reft("direft", Activation.GELU, 0, 207));
        cases.add(new Case("boundless", new BoundlessRotatedSpaceInterchange(), boundlessParams(0.4, 2.0), BOUNDLESS));
        cases.add(new Case("sigmoid mask", new SigmoidMaskInterchange(), sigmoidMaskParams(), SIGMOID_MASK));
        return cases.stream();
    }

    // ---------------------------------------------------------------- helpers

    static InterventionSite site(Intervention iv, Map<String, INDArray> params) {
        InterventionSite.Builder b = InterventionSite.at(HOOK, iv).positions(BASE_POSITIONS).params(params);
        if (iv.needsSource()) {
            b.source(Source.run(source), SOURCE_POSITIONS);
        }
        return b.build();
    }

    static INDArray hookAfter(Intervention iv, Map<String, INDArray> params) {
        return model.run(base, List.of(site(iv, params)), List.of(HOOK)).hook(HOOK);
    }

    static INDArray vector(INDArray t, int b, int pos) {
        return t.get(NDArrayIndex.point(b), NDArrayIndex.point(pos), NDArrayIndex.all()).castTo(DataType.DOUBLE)
                .reshape(1, t.size(2));
    }

    static Map<String, INDArray> doubles(Map<String, INDArray> params) {
        Map<String, INDArray> d = new LinkedHashMap<>();
        params.forEach((k, v) -> d.put(k, v.castTo(DataType.DOUBLE)));
        return d;
    }

    static boolean selected(int b, int pos) {
        for (int p : BASE_POSITIONS[b]) {
            if (p == pos) {
                return true;
            }
        }
        return false;
    }

    /**
     * At each selected (b, p): {@code actual[b, p] ≈ expected(b, p)}; everywhere else actual equals the unintervened
     * hook bitwise.
     */
    static void assertSelectedRows(INDArray actual, BiFunction<Integer, Integer, INDArray> expected, String label) {
        for (int b = 0; b < baseHook.size(0); b++) {
            for (int pos = 0; pos < baseHook.size(1); pos++) {
                INDArray got = vector(actual, b, pos);
                if (selected(b, pos)) {
                    INDArray want = expected.apply(b, pos);
                    double err = got.sub(want).amaxNumber().doubleValue();
                    assertTrue(err <= FORWARD_ATOL, label + ": row (" + b + ", " + pos + ") off by " + err);
                    assertTrue(want.sub(vector(baseHook, b, pos)).amaxNumber().doubleValue() > 1e-3,
                            label + ": the intervention must move row (" + b + ", " + pos + ")");
                } else {
                    assertEquals(baseHook.get(NDArrayIndex.point(b), NDArrayIndex.point(pos), NDArrayIndex.all()),
                            actual.get(NDArrayIndex.point(b), NDArrayIndex.point(pos), NDArrayIndex.all()),
                            label + ": unselected row (" + b + ", " + pos + ") must stay unchanged");
                }
            }
        }
    }

    /** The formula on the host from the unintervened hook values of base and (paired) source. */
    static INDArray hostRow(Case c, int b, int pos) {
        INDArray s = null;
        for (int i = 0; i < BASE_POSITIONS[b].length; i++) {
            if (BASE_POSITIONS[b][i] == pos) {
                s = vector(sourceHook, b, SOURCE_POSITIONS[b][i]);
            }
        }
        return c.formula.apply(vector(baseHook, b, pos), s, doubles(c.params));
    }

    static double loss(Intervention iv, Map<String, INDArray> params) {
        INDArray out = model.run(base, List.of(site(iv, params))).output("last_hidden_state");
        return ReferenceLosses.maskedProbeSum(out, probe, lossMask);
    }

    static IntervenableModel.Gradients gradients(Intervention iv, Map<String, INDArray> params) {
        return model.gradients(base, List.of(site(iv, params)),
                g -> LossGraphs.maskedProbeSum(g, "last_hidden_state", WIDTH),
                Map.of(LossGraphs.PROBE, probe, LossGraphs.MASK, lossMask));
    }

    /** Entries checked per gradient case, and how many of them must have a non-negligible derivative. */
    static final int ENTRIES = 10;
    static final int NONZERO_ENTRIES = 6;

    /**
     * d loss / d every parameter from {@link IntervenableModel#gradients} against central differences over
     * {@value #ENTRIES} distinct random entries (every parameter at least once; a one-entry parameter such as the
     * boundary only once): the float32 forward re-run with the entry at ± eps, the loss summed on the host. At least
     * {@value #NONZERO_ENTRIES} entries must have |d loss / d entry| > 1e-2, so a dead unit cannot make the check
     * vacuous. Float32 noise in the loss difference is about 1e-5, i.e. 1e-3 in the derivative at eps = 1e-2.
     */
    static void checkGradients(Case c, long seed) {
        IntervenableModel.Gradients g = gradients(c.intervention, c.params);
        Map<String, INDArray> grads = g.perSite().get(0);
        assertEquals(c.intervention.parameterShapes(WIDTH).keySet(), grads.keySet(),
                c + ": a gradient for every trained parameter and nothing else");
        assertEquals(loss(c.intervention, c.params), g.loss(), 1e-3, c + ": loss of the gradient graph");
        List<String> names = new ArrayList<>(grads.keySet());
        Random rnd = new Random(seed);
        double eps = 1e-2;
        Set<String> chosen = new HashSet<>();
        int nonzero = 0;
        for (int i = 0; chosen.size() < ENTRIES; i++) {
            String name = names.get(i % names.size());
            INDArray value = c.params.get(name);
            long index = rnd.nextInt((int) value.length());
            if (!chosen.add(name + "[" + index + "]")) {
                continue;
            }
            double[] at = new double[2];
            for (int side = 0; side < 2; side++) {
                Map<String, INDArray> moved = new LinkedHashMap<>(c.params);
                INDArray v = value.dup('c');
                v.putScalar(index, value.getDouble(index) + (side == 0 ? eps : -eps));
                moved.put(name, v);
                at[side] = loss(c.intervention, moved);
            }
            double fd = (at[0] - at[1]) / (2 * eps);
            double ad = grads.get(name).dup('c').getDouble(index);
            assertTrue(Math.abs(ad - fd) <= 2e-3 + 2e-2 * Math.abs(fd),
                    c + ": d loss / d " + name + "[" + index + "] autodiff " + ad + " vs finite difference " + fd);
            if (Math.abs(fd) > 1e-2) {
                nonzero++;
            }
        }
        assertTrue(nonzero >= NONZERO_ENTRIES, c + ": only " + nonzero + " of the checked entries move the loss");
    }

    // ---------------------------------------------------------------- forward

    @ParameterizedTest(name = "{0}")
    @MethodSource("forwardCases")
    void interventionMatchesItsFormulaOnTheHost(Case c) {
        INDArray after = hookAfter(c.intervention, c.params);
        assertSelectedRows(after, (b, pos) -> hostRow(c, b, pos), c.name);
    }

    // ---------------------------------------------------------------- gradients

    @ParameterizedTest(name = "{0}")
    @MethodSource("gradientCases")
    void gradientsMatchFiniteDifferences(Case c) {
        checkGradients(c, c.name.hashCode());
    }

    @Test
    void gradientsThroughADropoutMaskMatchFiniteDifferencesAndTheMaskGetsNone() {
        LoReFT iv = new LoReFT(RANK, Activation.RELU, 0.25);
        INDArray mask = iv.sampleDropoutMask(base.size(), base.seqLen(), WIDTH, new Random(7));
        Map<String, INDArray> params = new LinkedHashMap<>(reftParams(300, true, true));
        params.put("dropout_mask", mask);
        Case c = new Case("loreft/relu/dropout", iv, params, loreft(Activation.RELU));
        checkGradients(c, 301);
        assertFalse(gradients(iv, params).perSite().get(0).containsKey("dropout_mask"));
    }

    // ---------------------------------------------------------------- dropout

    @Test
    void aMaskOfKeepScaleScalesTheOutputAndNoMaskIsEvaluationMode() {
        double p = 0.25;
        float keep = (float) (1 / (1 - p));
        long seed = 400;
        for (String type : REFT_TYPES) {
            Case undropped = reft(type, Activation.LINEAR, 0, seed);
            Case dropped = reft(type, Activation.LINEAR, p, seed++);
            assertNotEquals(undropped.intervention.structureKey(), dropped.intervention.structureKey());
            assertEquals(Set.of("dropout_mask"), dropped.intervention.inputShapes(WIDTH).keySet());
            assertTrue(undropped.intervention.inputShapes(WIDTH).isEmpty());
            INDArray reference = hookAfter(undropped.intervention, undropped.params);

            Map<String, INDArray> scaled = new LinkedHashMap<>(dropped.params);
            scaled.put("dropout_mask", Nd4j.ones(DataType.FLOAT, base.size(), base.seqLen(), WIDTH).muli(keep));
            assertSelectedRows(hookAfter(dropped.intervention, scaled),
                    (b, pos) -> vector(reference, b, pos).mul(keep), type + " with a mask of 1/(1-p)");

            INDArray evaluation = hookAfter(dropped.intervention, dropped.params);
            assertSelectedRows(evaluation, (b, pos) -> vector(reference, b, pos), type + " without a mask");
            assertSelectedRows(evaluation, (b, pos) -> hostRow(undropped, b, pos), type + " without a mask (host)");
        }
    }

    @Test
    void aSampledMaskDropsEntriesAndScalesTheRest() {
        double p = 0.5;
        NodiReFT iv = new NodiReFT(RANK, Activation.SIGMOID, p);
        INDArray mask = iv.sampleDropoutMask(base.size(), base.seqLen(), WIDTH, new Random(11));
        double zeros = mask.eq(0).castTo(DataType.DOUBLE).sumNumber().doubleValue();
        assertTrue(zeros > 0.35 * mask.length() && zeros < 0.65 * mask.length(), "about p of the entries dropped");
        assertEquals(0, mask.neq(0).castTo(DataType.DOUBLE).mul(mask.sub(2)).amaxNumber().doubleValue(), 0,
                "kept entries are 1/(1-p)");
        Map<String, INDArray> params = new LinkedHashMap<>(reftParams(500, false, true));
        Case undropped = new Case("nodireft/sigmoid", new NodiReFT(RANK, Activation.SIGMOID, 0), params,
                direft(Activation.SIGMOID));
        params.put("dropout_mask", mask);
        INDArray after = hookAfter(iv, params);
        for (int b = 0; b < 2; b++) {
            for (int pos : BASE_POSITIONS[b]) {
                INDArray want = hostRow(undropped, b, pos).mul(vector(mask, b, pos));
                double err = vector(after, b, pos).sub(want).amaxNumber().doubleValue();
                assertTrue(err <= FORWARD_ATOL, "row (" + b + ", " + pos + ") off by " + err);
            }
        }
    }

    @Test
    void aDropoutMaskOfTheWrongShapeIsRejected() {
        Map<String, INDArray> params = new LinkedHashMap<>(reftParams(600, true, true));
        params.put("dropout_mask", Nd4j.ones(DataType.FLOAT, 2, 6, 16));
        var e = assertThrows(IllegalArgumentException.class,
                () -> hookAfter(new LoReFT(RANK, Activation.LINEAR, 0.1), params));
        assertTrue(e.getMessage().contains("params.dropout_mask: found shape [2, 6, 16]; valid: shape [any, any, 32]"),
                e.getMessage());
    }

    // ---------------------------------------------------------------- options, registry, errors

    @Test
    void unknownActivationListsTheValidNames() {
        var e = assertThrows(IllegalArgumentException.class, () -> Activation.named("swish"));
        assertEquals("activation: found 'swish'; valid: linear, relu, tanh, sigmoid, gelu", e.getMessage());
        var viaOptions = assertThrows(IllegalArgumentException.class,
                () -> Interventions.create("loreft", new Interventions.Options(4, null).withActivation("Relu")));
        assertTrue(viaOptions.getMessage().contains("valid: linear, relu, tanh, sigmoid, gelu"),
                viaOptions.getMessage());
    }

    @Test
    void optionsReachTheInterventionsAndTheStructureKey() {
        Interventions.Options plain = new Interventions.Options(4, null);
        assertEquals(Activation.LINEAR, plain.activation());
        assertEquals(0, plain.dropout());
        Intervention nodi = Interventions.create("nodireft", plain.withActivation("gelu").withDropout(0.1));
        NodiReFT n = assertInstanceOf(NodiReFT.class, nodi);
        assertEquals(Activation.GELU, n.activation());
        assertEquals(0.1, n.dropout());
        assertEquals(4, n.rank());
        Set<String> keys = new HashSet<>();
        for (Activation a : Activation.values()) {
            keys.add(Interventions.create("loreft", plain.withActivation(a.configName())).structureKey());
        }
        assertEquals(Activation.values().length, keys.size(), "each activation builds its own graph");
        assertInstanceOf(ConsReFT.class, Interventions.create("consreft", plain));
        assertInstanceOf(LobiReFT.class, Interventions.create("lobireft", plain.withDropout(0.2)));
        assertInstanceOf(BoundlessRotatedSpaceInterchange.class,
                Interventions.create("boundless_rotated_space_interchange", Interventions.Options.NONE));
        assertInstanceOf(SigmoidMaskInterchange.class,
                Interventions.create("sigmoid_mask_interchange", Interventions.Options.NONE));
        var cons = assertThrows(IllegalArgumentException.class,
                () -> Interventions.create("consreft", plain.withActivation("relu")));
        assertTrue(cons.getMessage().contains("consreft has no learned projection W"), cons.getMessage());
        var rank = assertThrows(IllegalArgumentException.class,
                () -> Interventions.create("lobireft", Interventions.Options.NONE));
        assertEquals("rank: found nothing; valid: an integer >= 1 (lobireft needs a rank)", rank.getMessage());
        var p = assertThrows(IllegalArgumentException.class, () -> plain.withDropout(1.0));
        assertEquals("dropout: found 1.0; valid: a number in [0, 1)", p.getMessage());
        assertEquals(Map.of("R", List.of(4L, 32L), "b", List.of(4L)),
                shapes(new ConsReFT(4).parameterShapes(32)));
        assertEquals(Map.of("R", List.of(32L, 32L), "boundary", List.of(1L)),
                shapes(new BoundlessRotatedSpaceInterchange().parameterShapes(32)));
        assertEquals(Map.of("temperature", List.of(1L)), shapes(new SigmoidMaskInterchange().inputShapes(32)));
    }

    static Map<String, List<Long>> shapes(Map<String, long[]> m) {
        Map<String, List<Long>> out = new LinkedHashMap<>();
        m.forEach((k, v) -> out.put(k, java.util.Arrays.stream(v).boxed().toList()));
        return out;
    }

    @Test
    void aTemperatureMustBeFedAndGetsNoGradient() {
        Map<String, INDArray> params = new LinkedHashMap<>(sigmoidMaskParams());
        params.remove("temperature");
        var e = assertThrows(IllegalArgumentException.class, () -> hookAfter(new SigmoidMaskInterchange(), params));
        assertTrue(e.getMessage().contains("params.temperature: found nothing; valid: a tensor of shape [1]"), e.getMessage());
        assertEquals(Set.of("R", "boundary"), gradients(new BoundlessRotatedSpaceInterchange(),
                boundlessParams(0.4, 2.0)).perSite().get(0).keySet());
    }
}
