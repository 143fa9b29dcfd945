package dev.jreft.das;

import dev.jreft.das.NegationProbeExperiment.Lexicon;
import dev.jreft.das.causal.CausalModel;
import dev.jreft.das.causal.CounterfactualDataset;
import dev.jreft.das.causal.CounterfactualExample;
import dev.jreft.das.train.DasTrainer;
import dev.jreft.das.train.InterchangeExample;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.hooks.runtime.OrtRuntime;
import dev.jreft.hooks.runtime.TextTokenizer;
import dev.jreft.training.ClassificationHead;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The negation probe on the embedded MiniLM: template alignment, counterfactual labels, the head graph, a tiny run. */
class NegationProbeExperimentTest {
    private static HookedModel minilm;
    private static TextTokenizer tokenizer;

    @BeforeAll
    static void load() {
        minilm = HookedModel.minilm();
        tokenizer = minilm.tokenizer().orElseThrow();
    }

    @AfterAll
    static void close() {
        minilm.close();
    }

    @Test
    void everySentenceHasItsFillerAtTheSamePosition() {
        int slot = NegationProbeExperiment.slotPosition(tokenizer, Lexicon.DEFAULT);
        assertEquals(4, slot, "[CLS] the <subject> was <filler>: the filler is token 4");
        Lexicon l = Lexicon.DEFAULT;
        // every word in its slot, with the other slots varied too
        Random r = new Random(1);
        List<String> fillers = new ArrayList<>(l.negators());
        fillers.addAll(l.intensifiers());
        List<String> adjectives = new ArrayList<>(l.positive());
        adjectives.addAll(l.negative());
        int n = Math.max(l.subjects().size(), Math.max(fillers.size(), adjectives.size()));
        for (int i = 0; i < n; i++) {
            String filler = fillers.get(i % fillers.size());
            String sentence = NegationProbeExperiment.sentence(Map.of(
                    NegationProbeExperiment.SUBJECT, l.subjects().get(i % l.subjects().size()),
                    NegationProbeExperiment.FILLER, filler,
                    NegationProbeExperiment.ADJECTIVE, adjectives.get((i + r.nextInt(3)) % adjectives.size())));
            List<String> tokens = tokenizer.tokens(sentence);
            assertEquals(8, tokens.size(), sentence + " -> " + tokens);
            assertEquals(filler, tokens.get(slot), sentence + " -> " + tokens);
        }
    }

    @Test
    void aWordOfSeveralPiecesIsRejected() {
        Lexicon withLongWord = new Lexicon(Lexicon.DEFAULT.subjects(), Lexicon.DEFAULT.positive(),
                List.of("bad", "mediocre"), Lexicon.DEFAULT.negators(), Lexicon.DEFAULT.intensifiers());
        var e = assertThrows(IllegalArgumentException.class,
                () -> NegationProbeExperiment.slotPosition(tokenizer, withLongWord));
        assertTrue(e.getMessage().contains("mediocre"), e.getMessage());
    }

    @Test
    void heldOutWordsNeverAppearInTraining() {
        Lexicon train = Lexicon.DEFAULT.train(4, 3);
        Lexicon test = Lexicon.DEFAULT.heldOut(4, 3);
        assertEquals(4, test.subjects().size());
        assertEquals(3, test.positive().size());
        assertTrue(Collections.disjoint(train.subjects(), test.subjects()));
        assertTrue(Collections.disjoint(train.positive(), test.positive()));
        assertTrue(Collections.disjoint(train.negative(), test.negative()));
        // no adjective held out: new subjects with all adjectives
        assertEquals(Lexicon.DEFAULT.positive(), Lexicon.DEFAULT.heldOut(4, 0).positive());
        assertThrows(IllegalArgumentException.class, () -> Lexicon.DEFAULT.train(0, 2));
    }

    @Test
    void counterfactualLabelsArePolarityOfTheBaseXorNegationOfTheSource() {
        CausalModel causal = NegationProbeExperiment.causalModel();
        List<CounterfactualExample> examples = CounterfactualDataset.sample(causal,
                NegationProbeExperiment.sampler(Lexicon.DEFAULT), List.of(NegationProbeExperiment.NEGATION), 200, 5);
        List<InterchangeExample<String>> interchanges = NegationProbeExperiment.interchanges(examples);
        int changed = 0;
        for (int i = 0; i < examples.size(); i++) {
            CounterfactualExample e = examples.get(i);
            boolean p = (Boolean) e.baseInputs().get(NegationProbeExperiment.POLARITY);
            boolean baseN = (Boolean) e.baseInputs().get(NegationProbeExperiment.NEGATION);
            Map<String, Object> source = e.sourceFor(NegationProbeExperiment.NEGATION);
            boolean sourceN = Lexicon.DEFAULT.negators().contains((String) source.get(NegationProbeExperiment.FILLER));
            assertEquals(sourceN, source.get(NegationProbeExperiment.NEGATION), "the filler says whether N holds");
            assertEquals(p ^ baseN, e.baseOutput());
            assertEquals(p ^ sourceN, e.counterfactualOutput());
            assertEquals(p ^ sourceN ? 1 : 0, interchanges.get(i).label());
            assertTrue(interchanges.get(i).base().contains(" " + e.baseInputs().get(NegationProbeExperiment.FILLER)
                    + " "));
            changed += e.changed() ? 1 : 0;
        }
        // N is drawn uniformly for base and source: about half the interchanges change the label
        assertTrue(changed > 70 && changed < 130, "changed " + changed);
    }

    @Test
    void theAppendedHeadComputesMeanPoolingAndTheLinearHeadOnPaddedBatches() {
        Nd4j.getRandom().setSeed(3);
        INDArray w = Nd4j.randn(DataType.FLOAT, 384, 2);
        INDArray b = Nd4j.createFromArray(0.3f, -0.2f);
        HookedModel probed = new HookedModel(NegationProbeExperiment.withSentimentHead(minilm.graph(), w, b),
                tokenizer, OrtRuntime.shared());
        // different lengths: the padding must stay out of the mean
        Batch batch = tokenizer.encode(List.of("the movie was good .", "the film was not very good at all , sadly ."));
        Map<String, INDArray> out = probed.run(batch);
        INDArray expected = ClassificationHead.logits(ClassificationHead.pool(out.get("last_hidden_state"), batch,
                ClassificationHead.Pooling.MEAN), w, b);
        INDArray logits = out.get(NegationProbeExperiment.LOGITS);
        assertEquals(0, logits.sub(expected).amaxNumber().doubleValue(), 1e-3, "graph " + logits + " host "
                + expected);
    }

    @Test
    void aTinyRunWritesOneCsvRowPerHookAndPosition(@TempDir Path dir) throws Exception {
        NegationProbeExperiment.Settings s = new NegationProbeExperiment.Settings(List.of("blocks.1.block_output"),
                DasTrainer.Method.LOW_RANK, 4, 0, 4, 0, 200, 60, 1e-2, 64, 1, 32, 1e-2, 64, 3);
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        NegationProbeExperiment.Report report = NegationProbeExperiment.run(s, dir,
                new PrintStream(log, true, StandardCharsets.UTF_8));
        assertEquals(dir.resolve("negation-probe.csv"), report.csv());
        List<String> lines = Files.readAllLines(report.csv());
        assertEquals(NegationProbeExperiment.CSV_HEADER, lines.get(0));
        assertEquals(3, lines.size(), String.join("\n", lines));
        String[] slot = lines.get(1).split(",");
        String[] cls = lines.get(2).split(",");
        assertEquals(NegationProbeExperiment.CSV_HEADER.split(",").length, slot.length);
        assertEquals(List.of("2", "blocks.1.block_output", "4", "<filler>"), List.of(slot[0], slot[1], slot[2],
                slot[3]));
        assertEquals(List.of("0", "[CLS]", "LOW_RANK", "4"), List.of(cls[2], cls[3], cls[4], cls[5]));
        for (String[] row : List.of(slot, cls)) {
            for (int c = 6; c <= 9; c++) {
                double v = Double.parseDouble(row[c]);
                assertTrue(v >= 0 && v <= 1, "column " + c + " = " + v);
            }
        }
        // a linear head on mean-pooled MiniLM separates the templated sentiment even from 200 sentences
        assertTrue(report.factualAccuracy() > 0.8, "factual accuracy " + report.factualAccuracy());
        assertEquals(2, report.rows().size());
        ByteArrayOutputStream table = new ByteArrayOutputStream();
        NegationProbeExperiment.print(report, new PrintStream(table, true, StandardCharsets.UTF_8));
        assertTrue(table.toString(StandardCharsets.UTF_8).contains("blocks.1.block_output"), table.toString());
    }
}
