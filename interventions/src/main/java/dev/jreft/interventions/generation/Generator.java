package dev.jreft.interventions.generation;

import dev.jreft.hooks.discovery.TokenEmbedding;
import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.IntervenableModel;
import dev.jreft.interventions.InterventionResult;
import dev.jreft.interventions.InterventionSite;
import dev.jreft.interventions.ModelEdit;
import dev.jreft.interventions.SequenceSite;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;

/**
 * Decoding from a causal export, with interventions and module edits acting on the tokens {@link InterveneOn} names.
 * An export with past inputs ({@code past.<i>.key}, {@code past_key_values.<i>.value}) decodes with its KV cache: the
 * prompt pass feeds an empty past, each later pass feeds one token and the previous pass's {@code present.*}. An
 * export without them recomputes the whole sequence each step; both give the same tokens (the fixtures' generation
 * cases check the cached path, a test checks one against the other). The prompt pass's empty past is the one
 * {@link HookedModel#complete} gives a past input the batch leaves out.
 * <p>
 * Prompts of unequal length come as one left-padded batch (pads before each prompt, Hugging Face's
 * {@code padding_side="left"}), and only to an export that takes {@code position_ids}: each row's positions then count
 * from its first real token ({@code cumsum(mask) - 1}), so a padded row generates what it generates alone. An export
 * that derives positions itself ({@code arange}, as GPT-2's does) would shift them by the pad count; it is refused.
 */
public final class Generator {
    /** How many tokens at most, how they are chosen, and which end a row. */
    public record Settings(int maxNewTokens, Sampling sampling, Set<Long> stopTokens) {
        public Settings {
            if (maxNewTokens < 1) {
                throw new ConfigException("max_new_tokens", maxNewTokens, "an integer >= 1");
            }
            sampling = sampling == null ? Sampling.greedy() : sampling;
            stopTokens = stopTokens == null ? Set.of() : Set.copyOf(stopTokens);
        }

        public static Settings greedy(int maxNewTokens) {
            return new Settings(maxNewTokens, Sampling.greedy(), Set.of());
        }
    }

    /**
     * What was generated: {@code tokens[b][k]} (after a row's stop token, the stop token again), how many each row
     * generated ({@code lengths}, its stop token included), and the logits each step chose from, [b, steps, vocab].
     */
    public record Generation(long[][] tokens, int[] lengths, INDArray stepLogits) {
        public int steps() {
            return tokens.length == 0 ? 0 : tokens[0].length;
        }
    }

    /** Called after every step with the tokens just chosen, one per row (streaming). */
    public interface Listener {
        void step(int step, long[] tokens);
    }

    private final IntervenableModel model;
    private final HookedModel hooked;
    private final Map<String, String> presentOf = new LinkedHashMap<>();
    private final String logits;
    private final long vocab;

    public Generator(IntervenableModel model) {
        this.model = model;
        this.hooked = model.model();
        var g = hooked.graph();
        for (String in : g.inputNames()) {
            if (in.contains("past")) {
                String key = layerKey(in);
                String present = g.outputNames().stream().filter(o -> o.contains("present") && layerKey(o).equals(key))
                        .findFirst().orElseThrow(() -> new ConfigException("model", "past input " + in + " with no"
                                + " present output of the same layer", "an export whose present.<i>.key / value outputs"
                                + " match its past inputs"));
                presentOf.put(in, present);
            }
        }
        long v = TokenEmbedding.of(g).map(TokenEmbedding::vocab).orElse(-1L);
        String out = g.outputNames().stream().filter(o -> !presentOf.containsValue(o)).findFirst().orElse(null);
        long last = out == null ? -1 : g.lastDim(out);
        if (v <= 0 || last != v) {
            throw new ConfigException("model", hooked.graph().origin() + " with outputs " + g.outputNames(),
                    "a causal LM export whose first output is logits over its vocabulary (" + (v > 0 ? v + " tokens"
                    : "no token embedding found") + "); this one cannot generate");
        }
        this.logits = out;
        this.vocab = v;
    }

    /** True when the export has past inputs and decoding reuses its KV cache. */
    public boolean usesCache() {
        return !presentOf.isEmpty();
    }

    public Generation generate(Batch prompts, List<InterventionSite> sites, InterveneOn on, Settings settings) {
        return generate(prompts, List.of(), sites, on, settings, null);
    }

    /**
     * Generates up to {@code settings.maxNewTokens()} tokens after each prompt, with the module edits made to the
     * model on every pass and the sites acting on the tokens {@code on} names: their own positions in the prompt
     * (relative to its first token) and / or each generated token.
     */
    public Generation generate(Batch prompts, List<? extends ModelEdit> edits, List<InterventionSite> sites,
                               InterveneOn on, Settings settings, Listener listener) {
        int b = prompts.size();
        int s = prompts.seqLen();
        int[] pads = check(prompts, edits, sites, on, settings);
        Random random = new Random(settings.sampling().seed());
        long[][] tokens = new long[b][settings.maxNewTokens()];
        int[] lengths = new int[b];
        boolean[] done = new boolean[b];
        INDArray stepLogits = Nd4j.create(DataType.FLOAT, b, settings.maxNewTokens(), vocab);
        Map<String, INDArray> past = new LinkedHashMap<>(); // none on the prompt pass: the empty past
        INDArray sequence = prompts.inputs().get(Batch.INPUT_IDS).castTo(DataType.LONG);
        int steps = 0;
        for (int k = 0; k < settings.maxNewTokens(); k++) {
            Batch step;
            List<InterventionSite> active = new ArrayList<>();
            int read; // the position whose logits choose the next token
            if (usesCache()) {
                INDArray ids = k == 0 ? sequence : column(tokens, k - 1);
                Map<String, INDArray> in = new LinkedHashMap<>();
                in.put(Batch.INPUT_IDS, ids);
                in.put(Batch.ATTENTION_MASK, mask(prompts, k));
                if (takesPositions()) {
                    in.put("position_ids", k == 0 ? positionIds(pads, 0, s) : positionIds(pads, s + k - 1, 1));
                }
                in.putAll(past);
                step = new Batch(in);
                for (InterventionSite site : sites) {
                    int[][] at = new int[b][];
                    for (int r = 0; r < b; r++) {
                        at[r] = k == 0 ? (on.prompt() ? site.basePositions()[r] : new int[0])
                                : (on.generated() ? new int[] {0} : new int[0]);
                    }
                    addIfAny(active, site, at);
                }
                read = (int) ids.size(1) - 1;
            } else {
                INDArray ids = k == 0 ? sequence : Nd4j.concat(1, sequence, generated(tokens, k));
                Map<String, INDArray> in = new LinkedHashMap<>();
                in.put(Batch.INPUT_IDS, ids);
                in.put(Batch.ATTENTION_MASK, mask(prompts, k));
                if (takesPositions()) {
                    in.put("position_ids", positionIds(pads, 0, s + k));
                }
                step = new Batch(in);
                for (InterventionSite site : sites) {
                    addIfAny(active, site, positions(site, on, b, s, k));
                }
                read = s + k - 1;
            }
            InterventionResult res = model.run(step, edits, active, List.of());
            INDArray full = res.output(logits);
            INDArray l = stepLogits.get(NDArrayIndex.all(), NDArrayIndex.point(k), NDArrayIndex.all())
                    .assign(full.get(NDArrayIndex.all(), NDArrayIndex.point(read), NDArrayIndex.all()));
            full.close(); // [b, s, vocab] on the prompt pass: 6.4 MB for GPT-2 small's 32 tokens
            long[] chosen = new long[b];
            for (int r = 0; r < b; r++) {
                chosen[r] = done[r] ? tokens[r][k - 1] : settings.sampling().next(l.getRow(r).toFloatVector(), random);
                tokens[r][k] = chosen[r];
                if (!done[r]) {
                    lengths[r]++;
                    done[r] = settings.stopTokens().contains(chosen[r]);
                }
            }
            for (String in : presentOf.keySet()) {
                INDArray previous = past.put(in, res.output(presentOf.get(in)));
                if (previous != null) {
                    previous.close(); // freed now, not at a GC: a GPT-2 small's cache grows by 72 KB a token
                }
            }
            steps = k + 1;
            if (listener != null) {
                listener.step(k, chosen);
            }
            boolean all = true;
            for (boolean d : done) {
                all &= d;
            }
            if (all) {
                break;
            }
        }
        if (steps < settings.maxNewTokens()) { // every row stopped early
            long[][] cut = new long[b][];
            for (int r = 0; r < b; r++) {
                cut[r] = Arrays.copyOf(tokens[r], steps);
            }
            return new Generation(cut, lengths, stepLogits.get(NDArrayIndex.all(), NDArrayIndex.interval(0, steps),
                    NDArrayIndex.all()).dup());
        }
        return new Generation(tokens, lengths, stepLogits);
    }

    /**
     * A generation replayed in one pass, teacher-forced: the prompt followed by every generated token but the last,
     * the sites at the positions their choice of tokens covered (prompt positions and / or the fed-back tokens
     * {@code s .. s+n-2}), and the token cross-entropy's data: weight 1 and the generated token as the target at
     * positions {@code s-1 .. s+n-2}. Its logits there are the generation's step logits, so the mean cross-entropy of
     * this pass is the generation's sequence loss, and its gradient (through the cached keys and values, here the
     * same pass's) is the loss's gradient.
     */
    public record Replay(Batch batch, List<InterventionSite> sites, INDArray weights, INDArray targets) {
    }

    /** {@link Replay} of {@code tokens} generated after {@code prompts} with {@code sites} acting {@code on}. */
    public Replay replay(Batch prompts, List<InterventionSite> sites, InterveneOn on, long[][] tokens) {
        int b = prompts.size();
        int s = prompts.seqLen();
        int n = tokens[0].length;
        INDArray ids = Nd4j.concat(1, prompts.inputs().get(Batch.INPUT_IDS).castTo(DataType.LONG),
                generated(tokens, n - 1));
        Map<String, INDArray> in = new LinkedHashMap<>();
        in.put(Batch.INPUT_IDS, ids);
        in.put(Batch.ATTENTION_MASK, mask(prompts, n - 1));
        if (takesPositions()) {
            in.put("position_ids", positionIds(pads(prompts), 0, s + n - 1));
        }
        List<InterventionSite> active = new ArrayList<>();
        for (InterventionSite site : sites) {
            addIfAny(active, site, positions(site, on, b, s, n - 1));
        }
        INDArray weights = Nd4j.zeros(DataType.FLOAT, b, s + n - 1);
        INDArray targets = Nd4j.zeros(DataType.LONG, b, s + n - 1, 1);
        for (int r = 0; r < b; r++) {
            for (int k = 0; k < n; k++) {
                weights.putScalar(r, s - 1 + k, 1);
                targets.putScalar(new long[] {r, s - 1 + k, 0}, tokens[r][k]);
            }
        }
        return new Replay(new Batch(in), active, weights, targets);
    }

    /**
     * Each row's positions of {@code site} in one pass over the prompt ({@code s} tokens) and the first {@code fed}
     * generated tokens: its prompt positions and / or the generated ones, as {@code on} says.
     */
    private static int[][] positions(InterventionSite site, InterveneOn on, int rows, int s, int fed) {
        int[][] at = new int[rows][];
        for (int r = 0; r < rows; r++) {
            TreeSet<Integer> p = new TreeSet<>();
            if (on.prompt()) {
                Arrays.stream(site.basePositions()[r]).forEach(p::add);
            }
            if (on.generated()) {
                for (int j = 0; j < fed; j++) {
                    p.add(s + j);
                }
            }
            at[r] = p.stream().mapToInt(Integer::intValue).toArray();
        }
        return at;
    }

    private static void addIfAny(List<InterventionSite> active, InterventionSite site, int[][] at) {
        if (Arrays.stream(at).anyMatch(row -> row.length > 0)) {
            active.add(new InterventionSite(site.hook(), site.intervention(), site.unit(), at,
                    site.sourcePositions(), site.subspace(), site.source(), site.params(), site.onPadding()));
        }
    }

    /** Refuses what cannot be generated; returns each row's left pads. */
    private int[] check(Batch prompts, List<? extends ModelEdit> edits, List<InterventionSite> sites, InterveneOn on,
                       Settings settings) {
        int[] pads = pads(prompts); // checks that any padding is on the left
        if (Arrays.stream(pads).anyMatch(p -> p > 0) && !takesPositions()) {
            throw ConfigException.of("prompts", "found prompts of unequal length (left-padded) for "
                    + hooked.graph().origin() + ", which takes no position_ids and derives each token's position"
                    + " itself, so padding would shift them; valid: prompts of one token length, or an export with a"
                    + " position_ids input (jreft gpt2 --position-ids builds one)");
        }
        var max = hooked.inputLimits().maxPositions();
        if (max.isPresent() && prompts.seqLen() + settings.maxNewTokens() > max.get()) {
            throw new ConfigException("max_new_tokens", settings.maxNewTokens(), "at most " + (max.get()
                    - prompts.seqLen()) + ": the prompt's " + prompts.seqLen() + " tokens plus the new ones must fit"
                    + " the model's " + max.get() + " positions");
        }
        for (long t : settings.stopTokens()) {
            if (t < 0 || t >= vocab) {
                throw new ConfigException("stop_tokens", t, "token ids in 0.." + (vocab - 1) + " (the vocabulary)");
            }
        }
        if (usesCache() && edits.stream().anyMatch(e -> e instanceof SequenceSite)) {
            throw ConfigException.of("edits", "found a soft prompt or prefix with an export that has a KV cache;"
                    + " valid: the export without past inputs, which recomputes each step with the virtual tokens");
        }
        for (int i = 0; i < sites.size(); i++) {
            InterventionSite site = sites.get(i);
            if (on.prompt() && (site.basePositions() == null || site.basePositions().length != prompts.size())) {
                throw ConfigException.of("sites[" + i + "].positions", "found " + (site.basePositions() == null
                        ? "none" : site.basePositions().length + " rows") + "; valid: one row of prompt positions per"
                        + " prompt (" + prompts.size() + ")");
            }
            if (on.prompt()) {
                for (int r = 0; r < site.basePositions().length; r++) {
                    for (int p : site.basePositions()[r]) {
                        if (p < pads[r] || p >= prompts.seqLen()) {
                            throw new ConfigException("sites[" + i + "].positions", p, "row " + r + "'s prompt"
                                    + " positions " + pads[r] + ".." + (prompts.seqLen() - 1) + (pads[r] > 0
                                    ? " (before them: " + pads[r] + " pads)" : ""));
                        }
                    }
                }
            }
            if (on.generated() && site.source() != null) {
                throw ConfigException.of("sites[" + i + "]", "found a source with intervene_on " + on.name()
                        .toLowerCase() + "; valid: sources only on the prompt (a source has no generated tokens)");
            }
        }
        return pads;
    }

    /**
     * {@code batch} (ids and mask, padded on the right as tokenizers pad) with each row's real tokens moved to its
     * end: the left padding generation needs. Pads get id 0; other inputs are left out (the generator derives them).
     */
    public static Batch leftPadded(Batch batch) {
        INDArray ids = batch.inputs().get(Batch.INPUT_IDS).castTo(DataType.LONG);
        INDArray mask = batch.attentionMask().castTo(DataType.LONG);
        int s = batch.seqLen();
        long[][] outIds = new long[batch.size()][s];
        long[][] outMask = new long[batch.size()][s];
        for (int r = 0; r < batch.size(); r++) {
            List<Long> real = new ArrayList<>();
            for (int t = 0; t < s; t++) {
                if (mask.getLong(r, t) != 0) {
                    real.add(ids.getLong(r, t));
                }
            }
            for (int j = 0; j < real.size(); j++) {
                outIds[r][s - real.size() + j] = real.get(j);
                outMask[r][s - real.size() + j] = 1;
            }
        }
        return Batch.of(outIds, outMask);
    }

    private boolean takesPositions() {
        return hooked.graph().inputNames().contains("position_ids");
    }

    /**
     * Each row's pads before its prompt; refuses a row padded on the right or inside, or with no real token (the
     * generated tokens follow the last column, so every prompt must end there).
     */
    private static int[] pads(Batch prompts) {
        INDArray mask = prompts.attentionMask();
        int[] pads = new int[prompts.size()];
        for (int r = 0; r < pads.length; r++) {
            int t = 0;
            while (t < prompts.seqLen() && mask.getLong(r, t) == 0) {
                t++;
            }
            pads[r] = t;
            for (; t < prompts.seqLen(); t++) {
                if (mask.getLong(r, t) == 0) {
                    throw ConfigException.of("prompts", "found row " + r + " padded after its first token; valid:"
                            + " left padding (pads before each prompt, so that every prompt ends in the last column,"
                            + " where the generated tokens follow; Hugging Face's padding_side=\"left\")");
                }
            }
            if (pads[r] == prompts.seqLen()) {
                throw ConfigException.of("prompts", "found row " + r + " with no real token; valid: prompts of at"
                        + " least one token");
            }
        }
        return pads;
    }

    /** The attention mask after {@code k} generated tokens: the prompts' mask, then ones. */
    private static INDArray mask(Batch prompts, int k) {
        INDArray m = prompts.attentionMask().castTo(DataType.LONG);
        return k == 0 ? m : Nd4j.concat(1, m, Nd4j.ones(DataType.LONG, prompts.size(), k));
    }

    /**
     * Positions of columns {@code from .. from+len-1}, counted from each row's first real token (Hugging Face's
     * {@code cumsum(mask) - 1}); a pad gets 1, as there, and is masked anyway.
     */
    private static INDArray positionIds(int[] pads, int from, int len) {
        INDArray p = Nd4j.create(DataType.LONG, pads.length, len);
        for (int r = 0; r < pads.length; r++) {
            for (int t = 0; t < len; t++) {
                int column = from + t;
                p.putScalar(r, t, column < pads[r] ? 1 : column - pads[r]);
            }
        }
        return p;
    }

    /** {@code past.0.key} and {@code present.0.key} share {@code 0.key}: the name from its first digit on. */
    private static String layerKey(String name) {
        for (int i = 0; i < name.length(); i++) {
            if (Character.isDigit(name.charAt(i))) {
                return name.substring(i);
            }
        }
        return name;
    }

    private static INDArray column(long[][] tokens, int k) {
        INDArray c = Nd4j.create(DataType.LONG, tokens.length, 1);
        for (int r = 0; r < tokens.length; r++) {
            c.putScalar(r, 0, tokens[r][k]);
        }
        return c;
    }

    private static INDArray generated(long[][] tokens, int k) {
        INDArray c = Nd4j.create(DataType.LONG, tokens.length, k);
        for (int r = 0; r < tokens.length; r++) {
            for (int j = 0; j < k; j++) {
                c.putScalar(r, j, tokens[r][j]);
            }
        }
        return c;
    }
}
