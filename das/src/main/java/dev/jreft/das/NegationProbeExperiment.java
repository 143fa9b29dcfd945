package dev.jreft.das;

import dev.jreft.das.causal.CausalModel;
import dev.jreft.das.causal.CounterfactualDataset;
import dev.jreft.das.causal.CounterfactualExample;
import dev.jreft.das.train.DasTrainer;
import dev.jreft.das.train.InterchangeExample;
import dev.jreft.das.train.ModelInputs;
import dev.jreft.hooks.discovery.HookPoint;
import dev.jreft.hooks.graph.Attr;
import dev.jreft.hooks.graph.ElemTypes;
import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.hooks.io.AtomicFiles;
import dev.jreft.hooks.io.Check;
import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.hooks.runtime.OrtRuntime;
import dev.jreft.hooks.runtime.TextTokenizer;
import dev.jreft.training.ClassificationHead;
import dev.jreft.training.LinearProbe;
import dev.jreft.training.TrainingArguments;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.function.Function;

/**
 * A distributed-alignment probe of a real model: where does all-MiniLM-L6-v2 represent that a sentence is negated?
 *
 * <p>Sentences follow one template, {@code the <subject> was <filler> <adjective> .}, where the filler is a negator
 * ({@code not}, {@code never}) or an intensifier ({@code very}, {@code really}, ...). Every word is a single word
 * piece, so the filler sits at the same token position in every sentence. The causal model has inputs P (the
 * adjective is positive), N (the filler negates) and the lexical choices; its output is the sentiment O = P xor N.
 *
 * <p>The model probed is frozen MiniLM with a linear sentiment head on its mean-pooled last hidden state (trained on
 * the factual training sentences, then appended to the ONNX graph as constants, so one graph maps tokens to
 * sentiment logits). For each hook, LOW_RANK DAS looks for N in a rank-k subspace at the filler position: the
 * source sentence's subspace replaces the base's, and the intervened model should then give P_base xor N_source.
 * IIA is measured on sentences whose subjects and adjectives were held out of all training. Controls: the same
 * alignment before training (a random k-dimensional subspace), and DAS at another position ([CLS] by default).
 */
public final class NegationProbeExperiment {
    /** The causal model's variables. */
    public static final String SUBJECT = "subject";
    public static final String POLARITY = "P";
    public static final String ADJECTIVE = "adjective";
    public static final String NEGATION = "N";
    public static final String FILLER = "filler";
    public static final String SENTIMENT = "O";

    /** The graph output the appended head writes: [b, 2], class 1 = positive. */
    public static final String LOGITS = "sentiment_logits";

    public static final String CSV_HEADER = "layer,hook,position,token,method,rank,iia,iia_changed,control_iia,"
            + "control_iia_changed,train_seconds";

    /**
     * Sizes of the run. {@code hooks}: where DAS looks (MiniLM's hooks, for example {@code blocks.0.block_input},
     * the embeddings, and {@code blocks.k.block_output}); {@code controlPosition}: a second token position DAS is
     * trained at for comparison (0 = [CLS]; negative: none); {@code heldOutSubjects} and
     * {@code heldOutAdjectives} (per polarity): words kept out of all training and used only for evaluation. By
     * default no adjective is held out: a linear head on mean-pooled MiniLM does not carry negation over to unseen
     * adjectives (held-out accuracy 0.78 with 4 of 14 per polarity held out, 0.88 with 2; 0.96 with new subjects
     * only), and IIA cannot exceed what the model gets right factually.
     */
    public record Settings(List<String> hooks, DasTrainer.Method method, int rank, int controlPosition,
                           int heldOutSubjects, int heldOutAdjectives, int headExamples, int headSteps,
                           double headLearningRate, int dasExamples, int dasEpochs, int batchSize,
                           double dasLearningRate, int testExamples, long seed) {
        /** Every setting checked here or at the start of {@link #run}, so a bad one fails before any training. */
        public Settings {
            if (hooks == null || hooks.isEmpty()) {
                throw ConfigException.of("hooks", "found " + (hooks == null ? "nothing" : "an empty list") + "; valid:"
                        + " one or more MiniLM hooks, e.g. [\"blocks.0.block_output\"]");
            }
            hooks = List.copyOf(hooks);
            for (int i = 0; i < hooks.size(); i++) {
                if (hooks.indexOf(hooks.get(i)) != i) {
                    throw new ConfigException("hooks[" + i + "]", hooks.get(i), "each hook once");
                }
            }
            Check.present("method", method, Check.names(DasTrainer.Method.class));
            Check.atLeast("rank", rank, 1);
            Check.atLeast("control_position", controlPosition, -1); // -1: no control position
            int subjects = Lexicon.DEFAULT.subjects().size();
            int adjectives = Math.min(Lexicon.DEFAULT.positive().size(), Lexicon.DEFAULT.negative().size());
            Check.between("held_out_subjects", heldOutSubjects, 1, subjects - 1);
            Check.between("held_out_adjectives", heldOutAdjectives, 0, adjectives - 1);
            Check.between("head_examples", headExamples, 1, 1 << 17);
            Check.between("head_steps", headSteps, 1, 1_000_000);
            TrainingArguments.checkLearningRate("head_learning_rate", headLearningRate);
            Check.between("das_epochs", dasEpochs, 1, 1000);
            Check.between("batch_size", batchSize, 1, 4096);
            if (dasExamples < batchSize || dasExamples > 1 << 20) {
                throw new ConfigException("das_examples", dasExamples, "an integer in batch_size (" + batchSize + ").."
                        + (1 << 20));
            }
            TrainingArguments.checkLearningRate("das_learning_rate", dasLearningRate);
            Check.between("test_examples", testExamples, 1, 1 << 17);
        }

        public static Settings defaults() {
            List<String> hooks = new ArrayList<>();
            hooks.add("blocks.0.block_input");
            for (int k = 0; k < 6; k++) {
                hooks.add("blocks." + k + ".block_output");
            }
            return new Settings(hooks, DasTrainer.Method.LOW_RANK, 16, 0, 4, 0, 1_500, 300, 1e-2, 1_280, 1, 32, 1e-2,
                    512, 11);
        }
    }

    /**
     * One alignment: hook and position, IIA on all held-out examples and on those whose label the interchange
     * changes, the same for the untrained (random subspace) control. {@code layer} is the depth in the residual
     * stream: 0 for a block's input at block 0 (the embeddings), k + 1 for hooks of block k otherwise.
     */
    public record Row(int layer, String hook, int position, String token, String method, int rank, double iia,
                      double iiaChanged, double controlIia, double controlIiaChanged, double trainSeconds) {
        String csv() {
            return String.format(Locale.ROOT, "%d,%s,%d,%s,%s,%d,%.4f,%.4f,%.4f,%.4f,%.2f", layer, hook, position,
                    token, method, rank, iia, iiaChanged, controlIia, controlIiaChanged, trainSeconds);
        }
    }

    /** What the run measured. */
    public record Report(double factualAccuracy, double headTrainAccuracy, int slotPosition, List<Row> rows, Path csv,
                         double seconds) {
    }

    /** The words of the template; all must be single word pieces of the tokenizer. */
    public record Lexicon(List<String> subjects, List<String> positive, List<String> negative, List<String> negators,
                          List<String> intensifiers) {
        public static final Lexicon DEFAULT = new Lexicon(
                List.of("movie", "film", "book", "meal", "food", "show", "play", "game", "hotel", "trip", "story",
                        "service", "song", "album", "concert", "dinner"),
                List.of("good", "great", "nice", "excellent", "wonderful", "lovely", "amazing", "fantastic",
                        "pleasant", "brilliant", "superb", "perfect", "beautiful", "enjoyable"),
                List.of("bad", "terrible", "awful", "horrible", "poor", "boring", "dull", "ugly", "nasty",
                        "disappointing", "dreadful", "weak", "annoying", "sad"),
                List.of("not", "never"),
                List.of("very", "really", "quite", "truly", "so", "extremely"));

        /** The training part: all but the last {@code subjects} subjects and {@code adjectives} of each polarity. */
        public Lexicon train(int subjects, int adjectives) {
            check(subjects, adjectives);
            return new Lexicon(head(this.subjects, subjects), head(positive, adjectives), head(negative, adjectives),
                    negators, intensifiers);
        }

        /**
         * The held-out part: the last subjects and adjectives. Fillers are shared: they carry the variable. With no
         * adjectives held out, the held-out sentences use all adjectives (new subjects only).
         */
        public Lexicon heldOut(int subjects, int adjectives) {
            check(subjects, adjectives);
            return adjectives == 0
                    ? new Lexicon(tail(this.subjects, subjects), positive, negative, negators, intensifiers)
                    : new Lexicon(tail(this.subjects, subjects), tail(positive, adjectives), tail(negative, adjectives),
                            negators, intensifiers);
        }

        private void check(int subjects, int adjectives) {
            if (subjects < 1 || subjects >= this.subjects.size() || adjectives < 0
                    || adjectives >= Math.min(positive.size(), negative.size())) {
                throw new IllegalArgumentException("hold out between 1 and all but one of the " + this.subjects.size()
                        + " subjects, and between 0 and all but one of the " + Math.min(positive.size(),
                        negative.size()) + " adjectives per polarity; got " + subjects + " and " + adjectives);
            }
        }

        private static List<String> head(List<String> l, int drop) {
            return List.copyOf(l.subList(0, l.size() - drop));
        }

        private static List<String> tail(List<String> l, int keep) {
            return List.copyOf(l.subList(l.size() - keep, l.size()));
        }

        List<String> all() {
            List<String> words = new ArrayList<>(subjects);
            words.addAll(positive);
            words.addAll(negative);
            words.addAll(negators);
            words.addAll(intensifiers);
            return words;
        }
    }

    private NegationProbeExperiment() {
    }

    /** The causal model: O = P xor N; subject, adjective and filler are lexical inputs O does not depend on. */
    public static CausalModel causalModel() {
        return CausalModel.builder()
                .input(SUBJECT, POLARITY, ADJECTIVE, NEGATION, FILLER)
                .variable(SENTIMENT, POLARITY, NEGATION, (p, n) -> (Boolean) p ^ (Boolean) n)
                .output(SENTIMENT)
                .build();
    }

    /** Draws P and N uniformly, then a subject, an adjective of polarity P and a filler that negates iff N. */
    public static Function<Random, Map<String, Object>> sampler(Lexicon lexicon) {
        return r -> {
            boolean p = r.nextBoolean();
            boolean n = r.nextBoolean();
            return Map.of(SUBJECT, pick(lexicon.subjects(), r), POLARITY, p,
                    ADJECTIVE, pick(p ? lexicon.positive() : lexicon.negative(), r), NEGATION, n,
                    FILLER, pick(n ? lexicon.negators() : lexicon.intensifiers(), r));
        };
    }

    private static String pick(List<String> words, Random r) {
        return words.get(r.nextInt(words.size()));
    }

    /** The sentence of an input assignment. */
    public static String sentence(Map<String, Object> inputs) {
        return "the " + inputs.get(SUBJECT) + " was " + inputs.get(FILLER) + " " + inputs.get(ADJECTIVE) + " .";
    }

    /**
     * The token position of the filler, after checking that every word of {@code lexicon} is one word piece in its
     * slot, so that the position is the same in every sentence.
     */
    public static int slotPosition(TextTokenizer tokenizer, Lexicon lexicon) {
        Map<String, Object> probe = sampler(lexicon).apply(new Random(0));
        List<String> reference = tokenizer.tokens(sentence(probe));
        int slot = reference.indexOf((String) probe.get(FILLER));
        if (slot < 0) {
            throw new IllegalArgumentException("the filler '" + probe.get(FILLER) + "' is not a token of " + reference);
        }
        List<String> bad = new ArrayList<>();
        for (String w : lexicon.all()) {
            // each word in the slot it takes in the template, the other slots as in the reference sentence
            Map<String, Object> in = new java.util.HashMap<>(probe);
            if (lexicon.subjects().contains(w)) {
                in.put(SUBJECT, w);
            } else if (lexicon.negators().contains(w) || lexicon.intensifiers().contains(w)) {
                in.put(FILLER, w);
            } else {
                in.put(ADJECTIVE, w);
            }
            List<String> tokens = tokenizer.tokens(sentence(in));
            if (tokens.size() != reference.size() || !tokens.contains(w)) {
                bad.add(w + " " + tokens);
            }
        }
        if (!bad.isEmpty()) {
            throw new IllegalArgumentException("these words are not single word pieces, so the slot would move: "
                    + bad);
        }
        return slot;
    }

    /** The template's tokens, slots named: [CLS], the, {@code <subject>}, was, {@code <filler>}, ... */
    static List<String> templateTokens(TextTokenizer tokenizer, Map<String, Object> example) {
        List<String> tokens = new ArrayList<>(tokenizer.tokens(sentence(example)));
        for (String slot : List.of(SUBJECT, FILLER, ADJECTIVE)) {
            tokens.set(tokens.indexOf((String) example.get(slot)), "<" + slot + ">");
        }
        return tokens;
    }

    /** Sentences as model inputs, intervened at one fixed token position. */
    public static ModelInputs<String> sentences(TextTokenizer tokenizer, int position) {
        return new ModelInputs<>() {
            @Override
            public Batch batch(List<String> inputs) {
                return tokenizer.encode(inputs);
            }

            @Override
            public int[] positions(String input) {
                return new int[] {position};
            }
        };
    }

    /**
     * A copy of {@code encoder} with mean pooling over real tokens and the linear head {@code w} [d, 2],
     * {@code b} [2] as constants appended: one graph from tokens to {@link #LOGITS}.
     */
    public static OnnxGraph withSentimentHead(OnnxGraph encoder, INDArray w, INDArray b) {
        OnnxGraph g = encoder.copy();
        String hidden = g.outputNames().get(0);
        long d = w.size(0);
        long classes = w.size(1);
        g.append("sentiment", s -> {
            String mask = s.op("Cast", List.of(Batch.ATTENTION_MASK), Attr.i("to", ElemTypes.FLOAT));
            String mask3 = s.op("Reshape", List.of(mask, s.constantInts(new long[] {0, 0, 1}, 3)));
            String sum = s.reduceSum(s.op("Mul", List.of(hidden, mask3)), new long[] {1}, false);
            String pooled = s.op("Div", List.of(sum, s.reduceSum(mask3, new long[] {1}, false)));
            String weights = s.constantFloats(w.dup('c').data().asFloat(), d, classes);
            String bias = s.constantFloats(b.dup('c').data().asFloat(), classes);
            s.opTo(LOGITS, "Add", List.of(s.op("MatMul", List.of(pooled, weights)), bias));
            s.expose(LOGITS);
        });
        return g;
    }

    /**
     * The hooks exist in MiniLM and are [batch, seq, width] tensors, the rank fits their width, the control
     * position lies in the template. Returns each hook's width; a raw {@code tensor:} hook's shape is only known
     * from a run, so one template sentence is run to read it.
     */
    static Map<String, Integer> checkAgainstModel(Settings s, HookedModel minilm, String templateSentence,
                                                  int templateLength) {
        Map<String, Integer> widths = new LinkedHashMap<>();
        for (int i = 0; i < s.hooks().size(); i++) {
            String name = s.hooks().get(i);
            String field = "settings.hooks[" + i + "]";
            HookPoint point;
            try {
                point = minilm.hook(name);
            } catch (IllegalArgumentException e) {
                throw ConfigException.within(field, e);
            }
            var layout = point.layout();
            long width;
            if (layout.kind() == dev.jreft.hooks.discovery.HookLayout.Kind.RAW) {
                Batch probe = minilm.tokenizer().orElseThrow().encode(List.of(templateSentence));
                long[] shape = minilm.runWithCache(probe, point.name()).get(point.name()).shape();
                if (shape.length != 3 || shape[0] != 1 || shape[1] != probe.seqLen()) {
                    throw new ConfigException(field, ConfigException.described(name + " of shape "
                            + java.util.Arrays.toString(shape) + " for one sentence of " + probe.seqLen()
                            + " tokens"), "a [batch, seq, width] tensor such as blocks.L.block_output");
                }
                width = shape[2];
            } else if (!layout.positional()) {
                throw new ConfigException(field, ConfigException.described(name + " of shape " + layout.shape()),
                        "a [batch, seq, width] hook such as blocks.L.block_output");
            } else {
                width = layout.width();
            }
            if (s.rank() > width) {
                throw new ConfigException("settings.rank", s.rank(), "an integer in 1.." + width + " (the width of "
                        + name + ")");
            }
            widths.put(name, (int) width);
        }
        if (s.controlPosition() >= templateLength) {
            throw new ConfigException("settings.control_position", s.controlPosition(), "a token position in 0.."
                    + (templateLength - 1) + " of the template, or -1 for none");
        }
        return widths;
    }

    public static Report run(Settings s, Path outDir, PrintStream out) throws IOException {
        long t0 = System.nanoTime();
        Lexicon train = Lexicon.DEFAULT.train(s.heldOutSubjects(), s.heldOutAdjectives());
        Lexicon test = Lexicon.DEFAULT.heldOut(s.heldOutSubjects(), s.heldOutAdjectives());
        CausalModel causal = causalModel();
        try (HookedModel minilm = HookedModel.minilm()) {
            TextTokenizer tokenizer = minilm.tokenizer().orElseThrow();
            int slot = slotPosition(tokenizer, Lexicon.DEFAULT);
            Map<String, Object> template = draw(sampler(test), 1, s.seed()).get(0);
            Map<String, Integer> widths = checkAgainstModel(s, minilm, sentence(template),
                    templateTokens(tokenizer, template).size());

            // 1. the sentiment head on frozen MiniLM, trained on factual sentences of the training words
            List<Map<String, Object>> headTrain = draw(sampler(train), s.headExamples(), s.seed() + 1);
            List<Map<String, Object>> headDev = draw(sampler(train), Math.max(1, s.headExamples() / 4), s.seed() + 2);
            List<Map<String, Object>> factualTest = draw(sampler(test), s.testExamples(), s.seed() + 3);
            INDArray trainFeatures = features(minilm, headTrain, s.batchSize());
            LinearProbe head = LinearProbe.train(trainFeatures, labels(causal, headTrain),
                    features(minilm, headDev, s.batchSize()), labels(causal, headDev), 2, s.headSteps(),
                    s.headLearningRate(), ClassificationHead.Pooling.MEAN);
            double headTrainAccuracy = head.accuracy(trainFeatures, labels(causal, headTrain));
            HookedModel probed = new HookedModel(withSentimentHead(minilm.graph(), head.weights(), head.bias()),
                    tokenizer, OrtRuntime.shared());
            double factual = accuracy(probed, causal, factualTest, s.batchSize());
            out.printf("sentiment head on frozen MiniLM: train accuracy %.4f, held-out words %.4f (%.1f s)%n",
                    headTrainAccuracy, factual, (System.nanoTime() - t0) / 1e9);

            // 2. DAS for N at each hook, at the filler and at the control position
            List<InterchangeExample<String>> dasTrain = interchanges(
                    CounterfactualDataset.sample(causal, sampler(train), List.of(NEGATION), s.dasExamples(),
                            s.seed() + 10));
            List<CounterfactualExample> heldOut = CounterfactualDataset.sample(causal, sampler(test),
                    List.of(NEGATION), s.testExamples(), s.seed() + 11);
            List<InterchangeExample<String>> changed = interchanges(heldOut.stream()
                    .filter(CounterfactualExample::changed).toList());
            List<InterchangeExample<String>> unchanged = interchanges(heldOut.stream()
                    .filter(e -> !e.changed()).toList());
            List<Integer> positions = new ArrayList<>(List.of(slot));
            if (s.controlPosition() >= 0 && s.controlPosition() != slot) {
                positions.add(s.controlPosition());
            }
            List<String> tokens = templateTokens(tokenizer, heldOut.get(0).baseInputs());
            List<Row> rows = new ArrayList<>();
            for (String hook : s.hooks()) {
                HookPoint point = probed.hook(hook);
                // the residual layer the hook reads; a raw tensor has none (-1)
                int layer = point.layer() < 0 ? -1
                        : point.component().equals("block_input") ? point.layer() : point.layer() + 1;
                for (int position : positions) {
                    DasTrainer<String> das = new DasTrainer<>(probed, sentences(tokenizer, position), hook, LOGITS,
                            s.method(), Map.of(NEGATION, s.rank()), widths.get(hook), s.seed() + 20);
                    double[] control = iia(das, changed, unchanged, s.batchSize());
                    long t = System.nanoTime();
                    das.train(dasTrain, new TrainingArguments(s.dasEpochs(), s.batchSize(), s.dasLearningRate(), 0,
                            0.1, 0, s.seed() + 21, 0, 0, "adamw", tokens.size()), null);
                    double seconds = (System.nanoTime() - t) / 1e9;
                    double[] trained = iia(das, changed, unchanged, s.batchSize());
                    Row row = new Row(layer, hook, position, tokens.get(position), s.method().name(), s.rank(),
                            trained[0], trained[1], control[0], control[1], seconds);
                    rows.add(row);
                    out.printf("%-22s pos %d %-8s IIA %.3f (changed %.3f)   control %.3f (changed %.3f)   %.1f s%n",
                            hook, position, row.token(), row.iia(), row.iiaChanged(), row.controlIia(),
                            row.controlIiaChanged(), seconds);
                }
            }
            Path csv = outDir.resolve("negation-probe.csv");
            StringBuilder text = new StringBuilder(CSV_HEADER).append('\n');
            rows.forEach(r -> text.append(r.csv()).append('\n'));
            AtomicFiles.write(csv, text.toString().getBytes(StandardCharsets.UTF_8));
            return new Report(factual, headTrainAccuracy, slot, List.copyOf(rows), csv,
                    (System.nanoTime() - t0) / 1e9);
        }
    }

    public static void print(Report r, PrintStream out) {
        out.println();
        out.printf("factual accuracy, sentences with held-out words       %.4f  (training sentences %.4f)%n",
                r.factualAccuracy(), r.headTrainAccuracy());
        out.printf("negation slot: token position %d%n", r.slotPosition());
        out.printf("%-5s %-22s %-4s %-8s %-9s %-5s %-7s %-9s %-8s %-9s%n", "layer", "hook", "pos", "token", "method",
                "rank", "IIA", "IIA chg", "control", "ctrl chg");
        for (Row row : r.rows()) {
            out.printf("%-5d %-22s %-4d %-8s %-9s %-5d %-7.3f %-9.3f %-8.3f %-9.3f%n", row.layer(), row.hook(),
                    row.position(), row.token(), row.method(), row.rank(), row.iia(), row.iiaChanged(),
                    row.controlIia(), row.controlIiaChanged());
        }
        out.printf("(IIA over held-out interchanges, half of which change the label; 'chg': only those; control: the"
                + " same subspace before training; CSV %s; %.1f s)%n", r.csv(), r.seconds());
    }

    public static void main(String[] args) throws IOException {
        Path outDir = Path.of(args.length > 0 ? args[0] : "target/negation-probe");
        print(run(Settings.defaults(), outDir, System.out), System.out);
    }

    private static List<Map<String, Object>> draw(Function<Random, Map<String, Object>> sampler, int n, long seed) {
        Random r = new Random(seed);
        List<Map<String, Object>> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            out.add(sampler.apply(r));
        }
        return out;
    }

    private static int[] labels(CausalModel causal, List<Map<String, Object>> inputs) {
        return inputs.stream().mapToInt(in -> (Boolean) causal.output(in) ? 1 : 0).toArray();
    }

    /** Mean-pooled last hidden states [n, d] of the frozen encoder. */
    private static INDArray features(HookedModel model, List<Map<String, Object>> inputs, int batchSize) {
        String hidden = model.graph().outputNames().get(0);
        TextTokenizer tokenizer = model.tokenizer().orElseThrow();
        List<INDArray> rows = new ArrayList<>();
        for (int i = 0; i < inputs.size(); i += batchSize) {
            Batch batch = tokenizer.encode(inputs.subList(i, Math.min(inputs.size(), i + batchSize)).stream()
                    .map(NegationProbeExperiment::sentence).toList());
            rows.add(ClassificationHead.pool(model.run(batch).get(hidden), batch, ClassificationHead.Pooling.MEAN));
        }
        return Nd4j.concat(0, rows.toArray(new INDArray[0]));
    }

    /** Accuracy of the graph's own logits: checks the appended head as well as the probe. */
    private static double accuracy(HookedModel probed, CausalModel causal, List<Map<String, Object>> inputs,
                                   int batchSize) {
        int[] y = labels(causal, inputs);
        TextTokenizer tokenizer = probed.tokenizer().orElseThrow();
        int ok = 0;
        for (int i = 0; i < inputs.size(); i += batchSize) {
            List<Map<String, Object>> chunk = inputs.subList(i, Math.min(inputs.size(), i + batchSize));
            INDArray pred = probed.run(tokenizer.encode(chunk.stream().map(NegationProbeExperiment::sentence)
                    .toList())).get(LOGITS).argMax(1);
            for (int j = 0; j < chunk.size(); j++) {
                if (pred.getInt(j) == y[i + j]) {
                    ok++;
                }
            }
        }
        return (double) ok / inputs.size();
    }

    static List<InterchangeExample<String>> interchanges(List<CounterfactualExample> examples) {
        List<InterchangeExample<String>> out = new ArrayList<>();
        for (CounterfactualExample e : examples) {
            out.add(new InterchangeExample<>(sentence(e.baseInputs()), Map.of(NEGATION, sentence(e.sourceFor(NEGATION))),
                    (Boolean) e.counterfactualOutput() ? 1 : 0));
        }
        return out;
    }

    /** IIA over all examples and over those whose label the interchange changes. */
    private static double[] iia(DasTrainer<String> das, List<InterchangeExample<String>> changed,
                                List<InterchangeExample<String>> unchanged, int batchSize) {
        double onChanged = changed.isEmpty() ? Double.NaN : das.iia(changed, batchSize);
        double onUnchanged = unchanged.isEmpty() ? Double.NaN : das.iia(unchanged, batchSize);
        int n = changed.size() + unchanged.size();
        double all = ((changed.isEmpty() ? 0 : onChanged * changed.size())
                + (unchanged.isEmpty() ? 0 : onUnchanged * unchanged.size())) / n;
        return new double[] {all, onChanged};
    }
}
