package dev.jreft.cli;

import dev.jreft.hooks.graph.ElemTypes;
import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.hooks.io.Warnings;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * One test per class of bad input: each gives exit code 2 and one line that names the field or file, what was found
 * and what is valid; no stack trace, no ONNX Runtime kernel text, no silent acceptance, nothing written.
 */
class BadInputTest {
    @TempDir
    static Path tmp;
    static Path data;

    @BeforeAll
    static void tinyData() throws Exception {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < 8; i++) {
            b.append("{\"text\": \"a fine film number ").append(i).append("\", \"label\": 1}\n");
            b.append("{\"text\": \"a dull film number ").append(i).append("\", \"label\": 0}\n");
        }
        data = Files.writeString(tmp.resolve("train.jsonl"), b);
    }

    /** Exit 2, exactly one line on stderr holding every fragment, no stack trace or ORT text. */
    static void assertBad(CliTest.Run r, String... fragments) {
        assertEquals(2, r.code(), "exit code; stdout: " + r.out() + " stderr: " + r.err());
        String err = r.err().strip();
        assertEquals(1, err.lines().count(), "one line: " + err);
        for (String f : fragments) {
            assertTrue(err.contains(f), "'" + f + "' missing from: " + err);
        }
        for (String leak : List.of("Exception", "\tat ", "onnxruntime", "Non-zero status", "Could not invoke")) {
            assertFalse(err.contains(leak), "leaks '" + leak + "': " + err);
        }
    }

    static int configs;

    /** A training config with {@code training} and {@code reft} fields replaced by the given JSON fragments. */
    static CliTest.Run train(String reft, String training) throws Exception {
        return train(reft, training, "{\"train\": \"" + data + "\"}");
    }

    static CliTest.Run train(String reft, String training, String dataJson) throws Exception {
        Path config = tmp.resolve("train" + configs++ + ".json");
        Path out = tmp.resolve("run" + configs);
        Files.writeString(config, "{\"data\": " + dataJson + ", \"reft\": " + reft + ", \"training\": " + training
                + ", \"output\": \"" + out + "\"}");
        CliTest.Run r = CliTest.jreft("train", "--config", config.toString(), "--metrics",
                tmp.resolve("m" + configs + ".json").toString());
        assertFalse(Files.exists(out), "nothing written for a refused config");
        return r;
    }

    /** The small ReFT training config of these tests at {@code config}, training into {@code output}. */
    static void writeReftConfig(Path config, Path output) throws java.io.IOException {
        Files.writeString(config, "{\"data\": {\"train\": \"" + data + "\"}, \"reft\": " + REFT + ", \"training\": "
                + TRAINING + ", \"output\": \"" + output + "\"}");
    }

    static final String REFT = "{\"hooks\": [\"blocks.1.block_output\"], \"rank\": 2}";
    static final String TRAINING = "{\"epochs\": 1, \"batch_size\": 8, \"max_length\": 16}";

    /** A PEFT method's config, as train --config reads it: the method and its section instead of "reft". */
    static CliTest.Run trainMethod(String methodAndSection) throws Exception {
        Path config = tmp.resolve("train" + configs++ + ".json");
        Path out = tmp.resolve("run" + configs);
        Files.writeString(config, "{\"data\": {\"train\": \"" + data + "\"}, " + methodAndSection
                + ", \"training\": " + TRAINING + ", \"output\": \"" + out + "\"}");
        CliTest.Run r = CliTest.jreft("train", "--config", config.toString());
        assertFalse(Files.exists(out), "nothing written for a refused config");
        return r;
    }

    @Test
    void peftMethodSettingsAreCheckedAgainstTheModelBeforeTraining() throws Exception {
        assertBad(trainMethod("\"method\": \"lora\", \"lora\": {\"target_modules\": [\"q_proj\"]}"),
                "lora.target_modules: found [q_proj], which matches no linear module of this graph; valid: names"
                        + " [query, key, value, dense]");
        assertBad(trainMethod("\"method\": \"lora\", \"lora\": {\"target_modules\": \"q_proj(\"}"),
                "lora.target_modules: found 'q_proj(', which is not a regular expression");
        assertBad(trainMethod("\"method\": \"dora\", \"lora\": {\"r\": 400}"), "lora.r: found 400; valid: an"
                + " integer in 1..384");
        assertBad(trainMethod("\"method\": \"lora\", \"lora\": {\"rank\": 4}"), "lora: found unknown field"
                + " 'rank'; valid: fields lora_alpha, lora_dropout, r, target_modules, use_rslora");
        assertBad(trainMethod("\"method\": \"lora\", \"reft\": " + REFT), "reft: found settings for a method this"
                + " config does not train; valid: only the \"lora\" section (method lora)");
        assertBad(trainMethod("\"method\": \"ia3\", \"ia3\": {\"hooks\": [\"blocks.1.attention_weight\"]}"),
                "ia3.hooks[0]: found blocks.1.attention_weight of shape [b,12,s,s]");
        assertBad(trainMethod("\"method\": \"adapter\", \"adapter\": {\"bottleneck_size\": 0}"),
                "adapter.bottleneck_size: found 0; valid: an integer in 1..65536");
        assertBad(trainMethod("\"method\": \"lorax\""), "method: found 'lorax'; valid: loreft, noreft");
        assertBad(trainMethod("\"method\": \"adapter\", \"adapter\": {\"placement\": \"houl\"}"),
                "adapter.placement: found 'houl'; valid: pfeiffer, houlsby");
        assertBad(trainMethod("\"method\": \"bitfit\", \"lora\": {}"), "lora: found settings for a method this"
                + " config does not train; valid: no method section (bitfit has no settings)");
        assertBad(trainMethod("\"method\": \"lora\", \"head\": {\"classes\": 1}"), "head.classes: found 1;"
                + " valid: an integer in 2..65536");
    }

    @Test
    void generationSettingsAndModelsAreOneLineErrors() {
        String gpt2 = CliTest.fixtures().resolve("models/gpt2/gpt2_op17.onnx").toString();
        assertBad(CliTest.jreft("generate", "--ids", "1,2"), "model: found 'classpath:all-minilm-l6-v2.onnx",
                "cannot generate");
        assertBad(CliTest.jreft("generate", "--model", gpt2), "--prompt / --ids: found neither");
        // the export derives positions itself: left-padding the shorter row would shift them
        assertBad(CliTest.jreft("generate", "--model", gpt2, "--ids", "1,2;3"), "--ids: found prompts of unequal"
                + " length (left-padded)", "position_ids");
        assertBad(CliTest.jreft("generate", "--model", gpt2, "--ids", "1,2", "--sample", "--temperature", "0"),
                "temperature: found 0.0; valid: a number > 0");
        assertBad(CliTest.jreft("generate", "--model", gpt2, "--ids", "1,2", "--sample", "--top-p", "1.5"),
                "top_p: found 1.5; valid: a number in (0, 1]");
        assertBad(CliTest.jreft("generate", "--model", gpt2, "--ids", "1,2", "--top-k", "3"), "without --sample");
        assertBad(CliTest.jreft("generate", "--model", gpt2, "--ids", "1,2", "--stop", "500"), "stop_tokens: found"
                + " 500; valid: token ids in 0..100");
        assertBad(CliTest.jreft("generate", "--model", gpt2, "--ids", "1,2", "--max-new-tokens", "5000"),
                "max_new_tokens: found 5000; valid: at most 62");
        assertBad(CliTest.jreft("generate", "--model", gpt2, "--ids", "1,2", "--intervene-on", "all"),
                "--intervene-on: found 'all'; valid: prompt, generated, every");
    }

    @Test
    void nonFiniteAndOutOfRangeTrainingNumbers() throws Exception {
        assertBad(train(REFT, "{\"learning_rate\": \"NaN\"}"), "training.learning_rate: found NaN; valid: a number in"
                + " (0, 10]");
        assertBad(train(REFT, "{\"learning_rate\": 1e300}"), "training.learning_rate: found 1.0E300; valid: a number"
                + " in (0, 10]");
        assertBad(train(REFT, "{\"learning_rate\": 1e999}"), "training.learning_rate: found Infinity");
        assertBad(train(REFT, "{\"learning_rate\": -0.1}"), "training.learning_rate: found -0.1");
        assertBad(train(REFT, "{\"patience\": -1}"), "training.patience: found -1; valid: an integer >= 0");
        assertBad(train(REFT, "{\"eval_every\": -5}"), "training.eval_every: found -5");
        assertBad(train(REFT, "{\"weight_decay\": -0.01}"), "training.weight_decay: found -0.01; valid: a number in [0, 1]");
        assertBad(train(REFT, "{\"weight_decay\": 1e30}"), "training.weight_decay: found 1.0E30; valid: a number in"
                + " [0, 1]");
        assertBad(train(REFT, "{\"max_grad_norm\": -1}"), "training.max_grad_norm: found -1.0");
        assertBad(train(REFT, "{\"warmup_ratio\": 5}"), "training.warmup_ratio: found 5.0; valid: a number in [0, 1]");
        assertBad(train(REFT, "{\"epochs\": 1.9}"), "training.epochs: found 1.9; valid: an integer");
        assertBad(train(REFT, "{\"epochs\": \"3\"}"), "training.epochs: found '3'; valid: an integer");
        assertBad(train(REFT, "{\"optimizer\": \"adam\"}"), "training.optimizer: found 'adam'; valid: adamw, sgd");
        assertBad(train(REFT, "{\"lr\": 0.1}"), "training: found unknown field 'lr'; valid: fields batch_size,");
        assertBad(train(REFT, "{\"max_length\": 4096}"), "training.max_length: found 4096; valid: an integer in"
                + " 2..512 (the model's position limit)");
        assertBad(train(REFT, "{\"batch_size\": 64}"), "training.batch_size: found 64; valid: at most the 16"
                + " training examples");
    }

    @Test
    void reftSettingsAndEnums() throws Exception {
        assertBad(train("{\"hooks\": [\"blocks.1.block_output\"], \"pooling\": \"max\"}", TRAINING),
                "reft.pooling: found 'max'; valid: mean, first, last");
        assertBad(train("{\"hooks\": [\"blocks.1.block_output\"], \"intervention\": \"lora\"}", TRAINING),
                "reft.intervention: found 'lora'; valid: loreft, noreft, direft");
        assertBad(train("{\"hooks\": [\"blocks.1.block_output\"], \"classes\": 1}", TRAINING),
                "reft.classes: found 1; valid: an integer in 2..65536");
        assertBad(train("{\"hooks\": []}", TRAINING), "reft.hooks: found an empty list");
        assertBad(train("{\"hooks\": [\"blocks.9.block_output\"]}", TRAINING), "reft.hooks[0]:",
                "blocks.9.block_output");
        assertBad(train("{\"hooks\": [\"blocks.1.block_output\"], \"rank\": 0}", TRAINING),
                "reft.rank: found 0; valid: an integer >= 1");
        assertBad(train("{\"hooks\": [\"blocks.1.block_output\"], \"rank\": 999}", TRAINING),
                "reft.rank: found 999; valid: an integer in 1..384");
        assertBad(train("{\"hooks\": [\"blocks.1.block_output\"], \"positions\": \"first\"}", TRAINING),
                "reft.positions: found 'first'; valid: f<n>+l<m>");
        assertBad(train("{\"hooks\": [\"blocks.1.block_output\"], \"dropout\": 1.5}", TRAINING),
                "reft.dropout: found 1.5; valid: a number in [0, 1)");
        assertBad(train("{\"hooks\": [\"blocks.1.block_output\"], \"activation\": \"swish\"}", TRAINING),
                "reft.activation: found 'swish'; valid: linear, relu");
        assertBad(train(REFT, TRAINING, "{\"sentiment\": \"x\", \"train\": \"y.jsonl\"}"),
                "data: found both \"sentiment\" and \"train\"");
        assertBad(CliTest.jreft("eval", "--checkpoint", tmp.toString(), "--sentiment", "x", "--split", "validation"),
                "--split: found 'validation'; valid: train, dev, test");
    }

    @Test
    void labelsOutsideTheClassesAreNamedWithFileAndLine() throws Exception {
        Path dev = Files.writeString(tmp.resolve("dev.jsonl"), "{\"text\": \"ok\", \"label\": 0}\n\n"
                + "{\"text\": \"bad\", \"label\": 2}\n");
        assertBad(train(REFT, TRAINING, "{\"train\": \"" + data + "\", \"dev\": \"" + dev + "\"}"),
                dev + " line 3: label: found 2; valid: an integer in 0..1 (the model has 2 classes)");
        Path test = Files.writeString(tmp.resolve("test.jsonl"), "{\"text\": \"minus\", \"label\": -1}\n");
        assertBad(train(REFT, TRAINING, "{\"train\": \"" + data + "\", \"test\": \"" + test + "\"}"),
                test + " line 1: label: found -1");
        Path fractional = Files.writeString(tmp.resolve("frac.jsonl"), "{\"text\": \"x\", \"label\": 1.5}\n");
        assertBad(train(REFT, TRAINING, "{\"train\": \"" + fractional + "\"}"),
                fractional + " line 1: label: found 1.5; valid: an integer class index");
        Path two = Files.writeString(tmp.resolve("two.jsonl"), "{\"text\": \"a\", \"label\": 1} {\"text\": \"b\","
                + " \"label\": 0}\n");
        assertBad(train(REFT, TRAINING, "{\"train\": \"" + two + "\"}"),
                two + " line 1: column 27: found a second JSON value after the first");
        Path numberText = Files.writeString(tmp.resolve("num.jsonl"), "{\"text\": 5, \"label\": 1}\n");
        assertBad(train(REFT, TRAINING, "{\"train\": \"" + numberText + "\"}"), "line 1: text: found 5; valid: a"
                + " string");
        Files.write(tmp.resolve("latin1.jsonl"), "{\"text\": \"caf\u00e9\", \"label\": 1}\n".getBytes(
                StandardCharsets.ISO_8859_1));
        assertBad(train(REFT, TRAINING, "{\"train\": \"" + tmp.resolve("latin1.jsonl") + "\"}"),
                "latin1.jsonl: line 1: found bytes that are not UTF-8 (at byte 13); valid: UTF-8 text");
    }

    @Test
    void evalChecksLabelsAgainstTheCheckpointsClasses() throws Exception {
        Path config = tmp.resolve("good.json");
        Path out = tmp.resolve("good-run");
        writeReftConfig(config, out);
        CliTest.Run trained = CliTest.jreft("train", "--config", config.toString(), "--metrics",
                tmp.resolve("good.metrics.json").toString());
        assertEquals(0, trained.code(), trained.err());
        Path three = Files.writeString(tmp.resolve("three.jsonl"), "{\"text\": \"x\", \"label\": 3}\n");
        assertBad(CliTest.jreft("eval", "--checkpoint", out.toString(), "--data", three.toString()),
                three + " line 1: label: found 3; valid: an integer in 0..1");
        // an output under a regular file, or a metrics path that is a folder, fails before any training
        Path file = Files.writeString(tmp.resolve("a-file"), "x");
        Path under = tmp.resolve("under.json");
        Files.writeString(under, "{\"data\": {\"train\": \"" + data + "\"}, \"reft\": " + REFT + ", \"output\": \""
                + file.resolve("run") + "\"}");
        assertBad(CliTest.jreft("train", "--config", under.toString(), "--metrics", tmp.resolve("u.json").toString()),
                "a-file is a file, so nothing can be written under it");
        assertBad(CliTest.jreft("train", "--config", config.toString(), "--metrics", tmp.toString()),
                "jreft: --metrics: found the folder " + tmp + "; valid: a file path");
    }

    @Test
    void positionsAndSites() throws Exception {
        assertBad(intervene("\"positions\": [[]]"), "sites[0].positions[0]: found an empty list");
        assertBad(intervene("\"positions\": [[1.9]]"), "sites[0].positions[0][0]: found 1.9; valid: an integer"
                + " position");
        assertBad(intervene("\"positions\": \"some\""), "sites[0].positions: found 'some'; valid: \"all\", or one list");
        assertBad(intervene("\"positions\": [[1], [2]]"), ".json: sites[0].positions: found 2 lists; valid: 1 list");
        assertBad(intervene("\"positions\": [[40]]"), "base position 40 of example 0 is out of range");
        assertBad(intervene("\"positions\": \"all\", \"unit\": \"head\""), "sites[0].unit: found 'head'; valid: pos,"
                + " h.pos");
        assertBad(intervene("\"positions\": \"all\", \"params\": {\"x\": [1, \"a\"]}"),
                "sites[0].params.x[1]: found 'a'; valid: a finite number");
        assertBad(interveneWith("\"texts\": []", "\"positions\": \"all\""), "inputs.texts: found an empty list");
        assertBad(interveneWith("\"input_ids\": [[101, -5, 102]]", "\"positions\": \"all\""),
                "inputs.input_ids[0][1]: found -5; valid: a token id in 0..30521");
        assertBad(interveneWith("\"input_ids\": [[101, 99999, 102]]", "\"positions\": \"all\""),
                "input_ids[0][1]: found 99999");
        assertBad(interveneWith("\"input_ids\": [[101, 7, 102]], \"attention_mask\": [[1, 2, 1]]",
                "\"positions\": \"all\""), "attention_mask[0][1]: found 2; valid: 0 (padding) or 1 (a real token)");
        assertBad(interveneWith("\"input_ids\": [[101, 7, 102]], \"attention_mask\": [[0, 0, 0]]",
                "\"positions\": \"all\""), "attention_mask[0]: found no real token");
        assertBad(interveneWith("\"input_ids\": [[101, 7, 102], [101]]", "\"positions\": \"all\""),
                "inputs.input_ids[1]: found 1 ids; valid: 3 ids, as row 0");
        assertFalse(Files.exists(tmp.resolve("iv")), "nothing written");
    }

    static CliTest.Run intervene(String site) throws Exception {
        return interveneWith("\"texts\": [\"The movie was wonderful.\"]", site);
    }

    static CliTest.Run interveneWith(String inputs, String site) throws Exception {
        Path config = tmp.resolve("iv" + configs++ + ".json");
        Files.writeString(config, "{\"inputs\": {" + inputs + "}, \"sites\": [{\"hook\": \"blocks.1.block_output\","
                + " \"intervention\": \"zero_ablation\", " + site + "}]}");
        return CliTest.jreft("intervene", "--config", config.toString(), "--out", tmp.resolve("iv").toString());
    }

    @Test
    void modelsOptionsAndHelp() throws Exception {
        assertBad(CliTest.jreft("hooks", "--model", "minilm2"), "model: found 'minilm2'; valid: minilm (the"
                + " embedded all-MiniLM-L6-v2), minilm-q (its int8 export) or the path of an .onnx file");
        assertBad(CliTest.jreft("--device", "tpu", "hooks"), "--device: found 'tpu'; valid: cpu, cuda");
        assertBad(CliTest.jreft("cache", "--ids", "1,x", "--hooks", "all", "--out", tmp.resolve("c").toString()),
                "--ids row 0: found '1,x'");
        assertBad(CliTest.jreft("demo", "--rank", "0"), "--rank: found 0; valid: an integer >= 1");
        assertBad(CliTest.jreft("demo", "--layers", "7"), "--layers: found 7; valid: an integer in 0..5");
        assertBad(CliTest.jreft("demo", "--lr", "NaN"), "--lr: found NaN");
        assertBad(CliTest.jreft("demo", "--baselines", "lora,qlora"), "--baselines: found 'qlora'; valid: probe,");
        assertBad(CliTest.jreft("compare", "--methods", "lora,lora"), "--methods: found 'lora'; valid: each method"
                + " once");
        assertBad(CliTest.jreft("compare", "--seeds", "0"), "--seeds: found 0; valid: an integer in 1..100");
        assertBad(CliTest.jreft("compare", "--models", "minilm,minilm-x"), "--models: found 'minilm-x'; valid:"
                + " minilm, minilm-q (embedded models, comma separated)");
        assertBad(CliTest.jreft("compare", "--epochs", "0"), "--epochs: found 0; valid: an integer in 1..10000");
        assertBad(CliTest.jreft("compare", "--batch-size", "0"), "--batch-size: found 0; valid: an integer in");
        assertBad(CliTest.jreft("compare", "--max-length", "1"), "--max-length: found 1; valid: an integer >= 2");
        assertBad(CliTest.jreft("train", "--config", tmp.resolve("missing.json").toString()), "missing.json: found no"
                + " such file");
        for (String command : List.of("hooks", "cache", "intervene", "verify", "demo", "patch", "train", "eval",
                "merge", "export", "das", "compare", "sweep")) {
            CliTest.Run help = CliTest.jreft(command, "--help");
            assertEquals(0, help.code(), command + " --help: " + help.err());
            assertTrue(help.out().contains("Usage: jreft " + command), help.out());
        }
    }

    @Test
    void sweepConfigsAreCheckedBeforeAnyRun() throws Exception {
        String pair = "\"base\": \"The movie was wonderful.\", \"source\": ";
        String[][] cases = {
            {"{" + pair + "\"The movie was not wonderful.\"}", "source: found '8 tokens against the base's 7'"},
            {"{" + pair + "\"The movie was terrible.\", \"components\": [\"block_outptu\"]}",
                "components[0]: found 'block_outptu'; valid: block_input,"},
            {"{" + pair + "\"The movie was terrible.\", \"layers\": [6]}", "layers[0]: found 6; valid: an integer in"
                + " 0..5"},
            {"{" + pair + "\"The movie was terrible.\", \"hooks\": [\"blocks.0.attention_weight\"]}",
                "hooks[0]: found 'blocks.0.attention_weight of shape [b,12,s,s]'"},
            {"{" + pair + "\"The movie was terrible.\", \"metric\": \"logit_difference\"}", "correct_token: found"
                + " none; valid: a token id (metric logit_difference reads it)"},
            {"{" + pair + "\"The movie was terrible.\", \"metric\": \"token_loss\", \"correct_token\": 3,"
                + " \"wrong_token\": 4}", "wrong_token: found a token id with metric token_loss; valid: none"},
            {"{" + pair + "\"The movie was terrible.\", \"metric\": \"token_loss\", \"correct_token\": 3}",
                "metric: found 'token_loss'; valid: embedding_direction for this model (its first output"
                + " 'last_hidden_state' is 384 wide, not logits over its 30522 tokens)"},
            {"{" + pair + "\"The movie was terrible.\", \"metric\": \"token_probabilty\"}", "metric: found"
                + " 'token_probabilty'; valid: embedding_direction, logit_difference, token_loss, token_probability"},
            {"{" + pair + "\"The movie was terrible.\", \"patching\": \"all\"}", "patching: found 'all'; valid:"
                + " activation, attribution, both"},
            {"{\"base\": \" \", \"source\": \"x\"}", "base: found a blank text; valid: a sentence"},
            {"{" + pair + "\"The movie was terrible.\", \"across\": \"head\"}", "across: found 'head'; valid:"
                + " positions, heads"},
            {"{" + pair + "\"The movie was terrible.\", \"across\": \"heads\"}", "hooks[0]: found"
                + " 'blocks.0.block_output of shape [b,s,384]'; valid: a hook with a head axis"},
        };
        for (int i = 0; i < cases.length; i++) {
            Path config = Files.writeString(tmp.resolve("sweep" + i + ".json"), cases[i][0]);
            Path out = tmp.resolve("sweep-out" + i);
            CliTest.Run r = CliTest.jreft("sweep", "--config", config.toString(), "--out", out.toString());
            assertBad(r, cases[i][1]);
            assertFalse(Files.exists(out.resolve("sweep.csv")), "nothing written for case " + i);
        }
    }

    @Test
    void dasSettingsAreCheckedBeforeTheMlpTrains() throws Exception {
        Path config = Files.writeString(tmp.resolve("das.json"), "{\"experiment\": \"hierarchical-equality\","
                + " \"settings\": {\"das_batch_size\": 0}}");
        CliTest.Run early = CliTest.jreft("das", "--config", config.toString(), "--out", tmp.resolve("das").toString());
        assertBad(early, "settings.das_batch_size: found 0; valid: an integer in 1..65536");
        assertFalse(early.out().contains("accuracy"), "refused before the MLP trains: " + early.out());
        Files.writeString(config, "{\"experiment\": \"minilm-negation\", \"settings\": {\"hooks\":"
                + " [\"blocks.0.block_outpt\"]}}");
        assertBad(CliTest.jreft("das", "--config", config.toString(), "--out", tmp.resolve("das").toString()),
                "settings.hooks[0]:", "blocks.0.block_outpt");
        Files.writeString(config, "{\"experiment\": \"minilm-negation\", \"settings\": {\"hooks\":"
                + " [\"blocks.1.attention_weight\"]}}");
        assertBad(CliTest.jreft("das", "--config", config.toString(), "--out", tmp.resolve("das").toString()),
                "settings.hooks[0]: found blocks.1.attention_weight of shape [b,12,s,s]; valid: a [batch, seq, width]"
                + " hook");
        Files.writeString(config, "{\"experiment\": \"minilm-negation\", \"settings\": {\"method\": \"bogus\"}}");
        assertBad(CliTest.jreft("das", "--config", config.toString(), "--out", tmp.resolve("das").toString()),
                "settings.method: found 'bogus'; valid: rotated, low_rank, boundless");
        Files.writeString(config, "{\"experiment\": \"minilm-negation\", \"settings\": {\"hooks\":"
                + " [\"tensor:/encoder/layer.0/attention/self/Softmax_output_0\"]}}");
        CliTest.Run raw = CliTest.jreft("das", "--config", config.toString(), "--out", tmp.resolve("das").toString());
        assertBad(raw, "settings.hooks[0]: found tensor:/encoder/layer.0/attention/self/Softmax_output_0 of shape [");
        assertFalse(raw.out().contains("accuracy"), "refused before the head trains: " + raw.out());
    }

    /** Graph outputs named like paths land inside --out, under safe names listed in index.json. */
    @Test
    void namesFromTheGraphNeverLeaveTheOutputFolder() throws Exception {
        String victim = "/tmp/jreft-victim-" + ProcessHandle.current().pid();
        OnnxGraph g = OnnxGraph.create(13, "escape");
        g.addInput("input_ids", ElemTypes.INT64, new long[] {-1, -1}, null);
        g.addNodes(List.of(
                ai.onnx.proto.OnnxMl.NodeProto.newBuilder().setOpType("Cast").addInput("input_ids")
                        .addOutput("../../escape").addAttribute(ai.onnx.proto.OnnxMl.AttributeProto.newBuilder()
                                .setName("to").setType(ai.onnx.proto.OnnxMl.AttributeProto.AttributeType.INT)
                                .setI(ElemTypes.FLOAT)).build(),
                ai.onnx.proto.OnnxMl.NodeProto.newBuilder().setOpType("Identity").addInput("../../escape")
                        .addOutput(victim).build()));
        g.exposeOutput("../../escape", ElemTypes.FLOAT);
        g.exposeOutput(victim, ElemTypes.FLOAT);
        Path model = tmp.resolve("escape.onnx");
        g.save(model);
        Path out = tmp.resolve("deep/er/out");
        CliTest.Run r = CliTest.jreft("cache", "--model", model.toString(), "--ids", "1,2", "--hooks",
                "tensor:../../escape", "--out", out.toString());
        assertEquals(0, r.code(), r.err());
        assertFalse(Files.exists(Path.of(victim + ".npy")), "wrote outside --out");
        assertFalse(Files.exists(tmp.resolve("deep/escape.npy")) || Files.exists(tmp.resolve("escape.npy")));
        List<String> names;
        try (Stream<Path> s = Files.list(out)) {
            names = s.map(p -> p.getFileName().toString()).sorted().toList();
        }
        assertEquals(List.of("_.._.._escape.npy", "_tmp_jreft-victim-" + ProcessHandle.current().pid() + ".npy",
                "attention_mask.npy", "index.json", "input_ids.npy", "tensor_.._.._escape.npy"), names);
        assertTrue(Files.readString(out.resolve("index.json")).contains("\"name\" : \"" + victim + "\""));
    }

    /** Long inputs come from a file or standard input; a text past 512 positions is cut with one warning. */
    @Test
    void longTextsFromAFileOrStdinAreCutWithAWarning() throws Exception {
        String longText = "word ".repeat(700);
        Path texts = Files.writeString(tmp.resolve("texts.txt"), longText + "\nshort one\n\n");
        List<String> warnings = new ArrayList<>();
        var old = Warnings.sendTo(warnings::add);
        InputStream stdin = System.in;
        try {
            CliTest.Run fromFile = CliTest.jreft("cache", "--text-file", texts.toString(), "--hooks",
                    "blocks.0.block_output", "--out", tmp.resolve("long").toString());
            assertEquals(0, fromFile.code(), fromFile.err());
            assertEquals(1, warnings.size(), warnings.toString());
            assertTrue(warnings.get(0).startsWith("text 0 ('word word word word w...', 702 tokens) cut to the model's"
                    + " 512 positions"), warnings.get(0));
            System.setIn(new ByteArrayInputStream("one\ntwo\n".getBytes(StandardCharsets.UTF_8)));
            CliTest.Run fromStdin = CliTest.jreft("cache", "--text-file", "-", "--hooks", "blocks.0.block_output",
                    "--out", tmp.resolve("stdin").toString());
            assertEquals(0, fromStdin.code(), fromStdin.err());
            assertEquals(2, dev.jreft.hooks.io.Npy.read(tmp.resolve("stdin/input_ids.npy")).size(0));
        } finally {
            Warnings.sendTo(old);
            System.setIn(stdin);
        }
        assertBad(CliTest.jreft("cache", "--text-file", tmp.resolve("none.txt").toString(), "--hooks", "all",
                "--out", tmp.resolve("x").toString()), "--text-file " + tmp.resolve("none.txt") + ": found no such file");
    }

    /** Outputs never replace the run's inputs, the working directory or anything outside the chosen folder. */
    @Test
    void outputsNeverReplaceInputsOrTheWorkingDirectory() throws Exception {
        assertBad(CliTest.jreft("cache", "--text", "hi", "--hooks", "blocks.0.block_output", "--out", ""),
                "--out: found ''; valid: a folder path");
        for (String out : List.of(".", "..")) {
            assertBad(CliTest.jreft("cache", "--text", "hi", "--hooks", "blocks.0.block_output", "--out", out),
                    "--out: found '" + out + "'; valid: a folder below the working directory");
        }
        Path config = tmp.resolve("in.json");
        Path out = tmp.resolve("in-run");
        writeReftConfig(config, out);
        String before = Files.readString(data);
        assertBad(CliTest.jreft("train", "--config", config.toString(), "--metrics", data.toString()),
                "--metrics: found '" + data + "'; valid: a path that is not one of the run's inputs");
        assertBad(CliTest.jreft("train", "--config", config.toString(), "--metrics", out.resolve("config.json")
                .toString()), "--metrics: found", "valid: a file that is not the checkpoint folder or one of its files");
        assertEquals(before, Files.readString(data));
        Path mine = Files.createDirectories(tmp.resolve("my-folder"));
        Files.writeString(mine.resolve("notes.txt"), "mine");
        assertBad(CliTest.jreft("eval", "--checkpoint", tmp.toString(), "--sentiment", mine.toString()),
                "--sentiment: found the folder " + mine + " holding notes.txt but not all of imdb.json");
        assertEquals(List.of("notes.txt"), Files.list(mine).map(p -> p.getFileName().toString()).toList());
        Path emptySet = Files.createDirectories(tmp.resolve("empty-set"));
        for (String f : List.of("imdb", "yelp", "amazon")) {
            Files.writeString(emptySet.resolve(f + ".json"), "[]");
        }
        assertBad(CliTest.jreft("eval", "--checkpoint", tmp.toString(), "--sentiment", emptySet.toString()),
                "imdb.json: found no sentences; valid: the labelled sentences of npm sentiment@5.0.2");
        assertBad(CliTest.jreft("eval", "--checkpoint", tmp.toString(), "--data", data.toString(), "--split", "dev"),
                "--split: found 'dev'; valid: nothing with --data");
        try (Stream<Path> s = Files.list(tmp)) {
            assertTrue(s.noneMatch(p -> p.getFileName().toString().endsWith(".lock")), "no lock file left");
        }
    }

    /** Values that would run but mean nothing: nulls, unknown or non-finite parameters, options a type ignores. */
    @Test
    void meaninglessValuesAreRefused() throws Exception {
        Path nothing = Files.writeString(tmp.resolve("null.json"), "null");
        assertBad(CliTest.jreft("intervene", "--config", nothing.toString(), "--out", tmp.resolve("n").toString()),
                "null.json: found null; valid: a JSON object");
        assertBad(intervene("\"positions\": null"), "sites[0].positions: found null; valid:", "leave the field out");
        assertBad(interveneWith("\"texts\": [\"a\", null]", "\"positions\": \"all\""), "inputs.texts[1]: found null");
        assertBad(interveneWith("\"texts\": [\"  \"]", "\"positions\": \"all\""), "texts[0]: found '  '; valid: a text"
                + " with at least one non-space character");
        assertBad(intervene("\"positions\": \"all\", \"rank\": 4"), "sites[0].rank: found 4; valid: nothing for"
                + " zero_ablation");
        assertBad(intervene("\"positions\": \"all\", \"heads\": [3]"), "sites[0].heads: found '[3]'; valid: nothing"
                + " with unit pos");
        assertBad(intervene("\"positions\": \"all\", \"unit\": \"h.pos\", \"heads\": [3, 3]"),
                "sites[0].heads: found '[3, 3]'; valid: each head once");
        assertBad(intervene("\"positions\": \"all\", \"subspace\": []"), "sites[0].subspace: found an empty list");
        assertBad(intervene("\"positions\": \"all\", \"params\": {\"v\": [1]}"),
                "params.v: found a value for a parameter zero_ablation does not have; valid: no parameters");
        assertBad(interveneWith("\"input_ids\": [[101, 7, 102]], \"attention_mask\": [[0, 1, 1]]",
                "\"positions\": \"all\""), "attention_mask[0]: found a real token at 1 after padding; valid: right"
                + " padding");
        Path mask = tmp.resolve("mask.npy");
        dev.jreft.hooks.io.Npy.write(mask, org.nd4j.linalg.factory.Nd4j.ones(org.nd4j.linalg.api.buffer.DataType.FLOAT,
                1, 3));
        assertBad(interveneWith("\"npy\": {\"input_ids\": \"" + mask + "\", \"attention_mask\": \"" + mask + "\"}",
                "\"positions\": \"all\""), "input_ids: found float values; valid: int64 values");
        assertBad(interveneWith("\"npy\": {\"bogus\": \"" + mask + "\"}", "\"positions\": \"all\""),
                "inputs.npy.bogus: found an input the graph does not have");
        assertBad(train("{\"hooks\": [\"blocks.1.block_output\", \"blocks.1.block_output\"]}", TRAINING),
                "reft.hooks[1]: found 'blocks.1.block_output'; valid: each hook once");
        assertBad(train("{\"hooks\": [\"blocks.1.attention_weight\"]}", TRAINING),
                "reft.hooks[0]: found blocks.1.attention_weight of shape [b,12,s,s]; valid: a [batch, seq, 384] hook");
        assertBad(train("{\"hooks\": [\"blocks.1.block_output\"], \"positions\": \"f100+l100\"}", TRAINING),
                "reft.positions: found 'f100+l100'; valid: n and m at most training.max_length (16)");
        assertBad(train("{\"hooks\": [\"blocks.1.block_output\"], \"intervention\": \"consreft\", \"activation\":"
                + " \"relu\"}", TRAINING), "reft.activation: found 'relu'; valid: linear for consreft");
    }

    /** Options are named as the user typed them; existing files jreft did not write are never replaced. */
    @Test
    void optionsAreNamedAndUserFilesKept() throws Exception {
        assertBad(CliTest.jreft("cache", "--text", "a", "--text", " ", "--hooks", "blocks.0.block_output", "--out",
                tmp.resolve("o1").toString()), "--text #2: found ' '");
        assertBad(CliTest.jreft("cache", "--ids", "101,30522,102", "--hooks", "blocks.0.block_output", "--out",
                tmp.resolve("o2").toString()), "--ids[0][1]: found 30522; valid: a token id in 0..30521");
        assertBad(CliTest.jreft("cache", "--ids", "101,\u0663", "--hooks", "all", "--out", tmp.resolve("o3").toString()),
                "--ids row 0: found '101,\u0663'");
        assertBad(CliTest.jreft("cache", "--text", "hi", "--hooks", "all,blocks.0.block_output", "--out",
                tmp.resolve("o4").toString()), "--hooks: found 'all,blocks.0.block_output'; valid: 'all' alone");
        assertBad(CliTest.jreft("demo", "--lr", "1e300"), "--lr: found 1.0E300; valid: a number in (0, 10]");
        assertBad(CliTest.jreft("demo", "--positions", "f600"), "--positions: found 'f600'; valid: n and m at most 64");
        Path config = tmp.resolve("keep.json");
        Path run = tmp.resolve("keep-run");
        writeReftConfig(config, run);
        String before = Files.readString(config);
        assertBad(CliTest.jreft("train", "--config", config.toString(), "--metrics", config.toString()),
                "--metrics: found '" + config + "'; valid: a path that is not one of the run's inputs");
        assertEquals(before, Files.readString(config));
        Path mine = Files.writeString(tmp.resolve("mine.json"), "{\"my\": \"notes\"}");
        assertBad(CliTest.jreft("train", "--config", config.toString(), "--metrics", mine.toString()),
                "--metrics: found the existing file " + mine + ", which jreft did not write");
        assertEquals("{\"my\": \"notes\"}", Files.readString(mine));
        assertBad(train(REFT, "{\"batch_size\": 1024, \"max_length\": 512}"), "training.batch_size: found 1024;"
                + " valid: a smaller batch_size or max_length (a training step of 1024 x 512 tokens would hold about");
    }

    /** An earlier output whose listed file was replaced by a folder of the user's is not deleted. */
    @Test
    void anEarlierOutputWithTheUsersFolderInsideIsRefused() throws Exception {
        Path out = tmp.resolve("earlier");
        assertEquals(0, CliTest.jreft("cache", "--text", "hi", "--hooks", "blocks.0.block_output", "--out",
                out.toString()).code());
        Files.delete(out.resolve("input_ids.npy"));
        Files.createDirectories(out.resolve("input_ids.npy"));
        Files.writeString(out.resolve("input_ids.npy/precious.txt"), "mine");
        assertBad(CliTest.jreft("cache", "--text", "hi", "--hooks", "blocks.0.block_output", "--out", out.toString()),
                "holding files jreft did not write (input_ids.npy)");
        assertEquals("mine", Files.readString(out.resolve("input_ids.npy/precious.txt")));
    }

    /**
     * A bad {@code -Djreft.ort.spin}: read once, when ONNX Runtime starts in a process (this test JVM's has long
     * started), so in a JVM of its own, as {@code JREFT_JAVA_OPTS} passes it to {@code ./jreft}.
     */
    @Test
    void aBadOrtThreadSettingNamesItInOneLine() throws Exception {
        ProcessBuilder pb = dev.jreft.hooks.testing.JavaProcess.builder(Jreft.class, List.of("hooks"));
        pb.command().add(1, "-D" + dev.jreft.hooks.runtime.OrtRuntime.SPIN + "=maybe");
        var r = dev.jreft.hooks.testing.JavaProcess.run(pb, 120);
        assertBad(new CliTest.Run(r.exitCode(), r.out(), r.err()), "-Djreft.ort.spin", "found 'maybe'",
                "valid: true or false");
    }
}
