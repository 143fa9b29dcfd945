package dev.jreft.cli;

import dev.jreft.hooks.io.FixturesLocation;
import dev.jreft.hooks.io.Npy;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CliTest {
    record Run(int code, String out, String err) {
    }

    static Run jreft(String... args) {
        PrintStream oldOut = System.out;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        StringWriter err = new StringWriter();
        try {
            System.setOut(new PrintStream(out, true));
            CommandLine cl = Jreft.commandLine();
            cl.setErr(new PrintWriter(err, true));
            int code = cl.execute(args);
            return new Run(code, out.toString(), err.toString());
        } finally {
            System.setOut(oldOut);
        }
    }

    static Path fixtures() {
        var d = FixturesLocation.find();
        Assumptions.assumeTrue(d.isPresent(), "fixtures not found at " + FixturesLocation.configured());
        return d.get();
    }

    @Test
    void verifyPrintsOneLinePerCaseAndTheSummary() {
        Run r = jreft("verify", "--fixtures", fixtures().toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("passed      gpt2_vanilla_block_output"), r.out());
        assertTrue(r.out().contains("passed      gpt2_lora_c_attn"), r.out());
        assertTrue(r.out().contains("passed      gpt2_prefix_tuning"), r.out());
        assertTrue(r.out().contains("passed      gpt2_generate_loreft_prompt"), r.out());
        assertTrue(r.out().contains("0 unsupported"), r.out());
        assertTrue(r.out().contains("passed      minilm_loreft_block_output"), r.out());
        String[] lines = r.out().strip().split("\n");
        assertTrue(lines[lines.length - 1].matches("\\d+ passed, 0 failed"), lines[lines.length - 1]);
    }

    @Test
    void verifyExitsNonZeroOnAFailingBundle(@TempDir Path tmp) throws Exception {
        // a copy of the bundle whose first hook reference is corrupted
        Path src = fixtures();
        Path copy = tmp.resolve("bundle");
        try (var walk = Files.walk(src)) {
            for (Path p : walk.toList()) {
                Path target = copy.resolve(src.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(target);
                } else if (!p.toString().endsWith(".onnx")) {
                    Files.copy(p, target);
                } else {
                    Files.createSymbolicLink(target, p.toAbsolutePath());
                }
            }
        }
        Path ref = copy.resolve("models/gpt2/hooks/blocks.0.mlp_output.npy");
        Files.delete(ref);
        Npy.write(ref, org.nd4j.linalg.factory.Nd4j.zeros(org.nd4j.linalg.api.buffer.DataType.FLOAT, 2, 6, 32));
        Run r = jreft("verify", "--fixtures", copy.toString());
        assertEquals(1, r.code());
        assertTrue(r.out().contains("FAILED      gpt2: 24 hooks"), r.out());
        assertTrue(r.out().strip().endsWith("1 failed"), r.out());
    }

    @Test
    void hooksCacheAndIntervene(@TempDir Path tmp) throws Exception {
        Path gpt2 = fixtures().resolve("models/gpt2/gpt2_op14.onnx");
        Run hooks = jreft("hooks", "--model", gpt2.toString());
        assertEquals(0, hooks.code(), hooks.err());
        assertTrue(hooks.out().contains("blocks.1.attention_weight") && hooks.out().contains("[b,4,s,s]"), hooks.out());

        Run cache = jreft("cache", "--model", gpt2.toString(), "--ids", "5,17,2,9;3,4", "--hooks",
                "blocks.0.block_output,blocks.1.query_output", "--out", tmp.resolve("cache").toString());
        assertEquals(0, cache.code(), cache.err());
        assertArrayEquals(new long[] {2, 4, 32}, Npy.read(tmp.resolve("cache/blocks.1.query_output.npy")).shape());
        assertEquals(0, Npy.read(tmp.resolve("cache/attention_mask.npy")).getLong(1, 2));

        Path config = tmp.resolve("run.json");
        Files.writeString(config, """
                {"model": "%s",
                 "inputs": {"input_ids": [[5, 17, 2, 9], [3, 4, 0, 0]], "attention_mask": [[1, 1, 1, 1], [1, 1, 0, 0]]},
                 "sites": [{"hook": "blocks.0.block_output", "intervention": "zero_ablation", "positions": "all"},
                           {"hook": "blocks.1.mlp_output", "intervention": "collect", "positions": [[0], [1]]}],
                 "read_hooks": ["blocks.0.block_output"]}
                """.formatted(gpt2.toString().replace("\\", "/")));
        Run iv = jreft("intervene", "--config", config.toString(), "--out", tmp.resolve("iv").toString());
        assertEquals(0, iv.code(), iv.err());
        var ablated = Npy.read(tmp.resolve("iv/blocks.0.block_output.npy"));
        // "all" means every real token: row 0 entirely, row 1 positions 0 and 1; padding keeps its value
        assertEquals(0.0, ablated.get(org.nd4j.linalg.indexing.NDArrayIndex.point(0)).amaxNumber().doubleValue(), 0.0);
        assertEquals(0.0, ablated.get(org.nd4j.linalg.indexing.NDArrayIndex.point(1),
                org.nd4j.linalg.indexing.NDArrayIndex.interval(0, 2)).amaxNumber().doubleValue(), 0.0);
        assertTrue(ablated.get(org.nd4j.linalg.indexing.NDArrayIndex.point(1),
                org.nd4j.linalg.indexing.NDArrayIndex.point(2)).amaxNumber().doubleValue() > 0);
        assertArrayEquals(new long[] {2, 32}, Npy.read(tmp.resolve("iv/collected.site1.npy")).shape());
        assertArrayEquals(new long[] {2, 4, 101}, Npy.read(tmp.resolve("iv/logits.npy")).shape());
    }

    /** Greedy decoding with the KV cache prints the fixture's tokens; recomputation on the export without past too. */
    @Test
    void generateGivesTheFixturesTokens() {
        String prompts = "100,46,83,51,89,99;81,12,24,44,69,95"; // cases/gpt2_generate_none/input_ids.npy
        for (String file : List.of("gpt2_past_op17.onnx", "gpt2_op17.onnx")) {
            Run r = jreft("generate", "--model", fixtures().resolve("models/gpt2/" + file).toString(), "--ids",
                    prompts, "--max-new-tokens", "8");
            assertEquals(0, r.code(), r.err());
            assertTrue(r.out().contains("prompt 0: 100,46,83,51,89,99 -> 77,1,1,1,23,1,1,27"), r.out());
            assertTrue(r.out().contains("prompt 1: 81,12,24,44,69,95 -> 77,77,72,1,1,1,1,20"), r.out());
            assertTrue(r.out().contains(file.contains("past") ? "KV cache" : "recomputed each step"), r.out());
        }
    }

    /**
     * A GPT-2 built from safetensors weights (the fixture export's own, under GPT2Model's names without the
     * {@code transformer.} prefix) generates the fixture's tokens with its KV cache; bad settings are one line.
     */
    @Test
    void gpt2FromSafetensorsGenerates(@TempDir Path tmp) throws Exception {
        var export = dev.jreft.hooks.graph.OnnxGraph.load(fixtures().resolve("models/gpt2/gpt2_past_op17.onnx"));
        java.util.Map<String, org.nd4j.linalg.api.ndarray.INDArray> w = new java.util.LinkedHashMap<>();
        for (var t : export.initializers()) {
            if (t.getName().startsWith("transformer.")) {
                w.put(t.getName().substring("transformer.".length()), org.nd4j.linalg.factory.Nd4j.create(
                        export.floats(t.getName()), t.getDimsList().stream().mapToLong(Long::longValue).toArray(), 'c'));
            }
        }
        Path weights = tmp.resolve("model.safetensors");
        dev.jreft.checkpoints.SafeTensors.write(weights, w, java.util.Map.of());
        Path onnx = tmp.resolve("gpt2.onnx");
        Run built = jreft("gpt2", "--weights", weights.toString(), "--heads", "4", "--out", onnx.toString());
        assertEquals(0, built.code(), built.err());
        assertTrue(built.out().contains("2 layers, width 32, 4 heads, vocabulary 101, 64 positions"), built.out());
        Run r = jreft("generate", "--model", onnx.toString(), "--ids", "100,46,83,51,89,99;81,12,24,44,69,95",
                "--max-new-tokens", "8");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("prompt 0: 100,46,83,51,89,99 -> 77,1,1,1,23,1,1,27"), r.out());
        assertTrue(r.out().contains("KV cache"), r.out());
        // with --position-ids, prompts of unequal length (left-padded) generate what each generates alone
        Path positioned = tmp.resolve("gpt2-positions.onnx");
        Run withPositions = jreft("gpt2", "--weights", weights.toString(), "--heads", "4", "--position-ids", "--out",
                positioned.toString());
        assertEquals(0, withPositions.code(), withPositions.err());
        assertTrue(withPositions.out().contains("a position_ids input"), withPositions.out());
        Run both = jreft("generate", "--model", positioned.toString(), "--ids", "100,46,83,51,89,99;81,12,24",
                "--max-new-tokens", "8");
        Run alone = jreft("generate", "--model", positioned.toString(), "--ids", "81,12,24", "--max-new-tokens", "8");
        assertEquals(0, both.code(), both.err());
        assertTrue(both.out().contains("prompt 0: 100,46,83,51,89,99 -> 77,1,1,1,23,1,1,27"), both.out());
        String row1 = alone.out().lines().filter(l -> l.startsWith("prompt 0: ")).findFirst().orElseThrow()
                .substring("prompt 0: ".length());
        assertTrue(both.out().contains("prompt 1: " + row1), both.out() + " against " + alone.out());
        Run again = jreft("gpt2", "--weights", weights.toString(), "--heads", "4", "--out", onnx.toString());
        assertEquals(0, again.code(), "jreft's own file is replaced: " + again.err());
        BadInputTest.assertBad(jreft("gpt2", "--weights", weights.toString(), "--heads", "5", "--out",
                tmp.resolve("x.onnx").toString()), "--heads: found 5; valid: a divisor of the width 32");
        BadInputTest.assertBad(jreft("gpt2", "--weights", weights.toString(), "--heads", "4", "--out",
                weights.toString()), "--out");
        BadInputTest.assertBad(jreft("gpt2", "--weights", tmp.resolve("none.safetensors").toString(), "--heads", "4",
                "--out", tmp.resolve("y.onnx").toString()), "--weights");
        Path notGpt2 = tmp.resolve("other.safetensors");
        dev.jreft.checkpoints.SafeTensors.write(notGpt2, java.util.Map.of("embeddings.word_embeddings.weight",
                org.nd4j.linalg.factory.Nd4j.zeros(4, 2)), java.util.Map.of());
        BadInputTest.assertBad(jreft("gpt2", "--weights", notGpt2.toString(), "--heads", "1", "--out",
                tmp.resolve("z.onnx").toString()), "--weights: found", "valid: GPT-2 weights with transformer.wte.weight");
        Path foreign = Files.writeString(tmp.resolve("notes.onnx"), "mine");
        BadInputTest.assertBad(jreft("gpt2", "--weights", weights.toString(), "--heads", "4", "--out",
                foreign.toString()), "--out: found the existing file", "which jreft did not write");
        assertEquals("mine", Files.readString(foreign));
    }

    /** A sweep across heads on the embedded MiniLM: one row per hook and head, both grids, their heatmaps. */
    @Test
    void sweepAcrossHeads(@TempDir Path tmp) throws Exception {
        Path config = Files.writeString(tmp.resolve("heads.json"), """
                {"base": "The movie was wonderful.", "source": "The movie was terrible.",
                 "components": ["attention_value_output"], "layers": [2, 5], "across": "heads"}
                """);
        Run r = jreft("sweep", "--config", config.toString(), "--out", tmp.resolve("out").toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("2 hooks × 12 heads"), r.out());
        List<String> csv = Files.readAllLines(tmp.resolve("out/sweep.csv"));
        assertEquals("hook,head,activation,attribution", csv.get(0));
        assertEquals(1 + 2 * 12, csv.size());
        assertTrue(csv.get(1).matches("blocks\\.2\\.attention_value_output,0,-?[0-9.]+,-?[0-9.]+"), csv.get(1));
        assertTrue(Files.exists(tmp.resolve("out/sweep-activation.png")));
    }

    @Test
    void trainThenEvalAJsonlTask(@TempDir Path tmp) throws Exception {
        StringBuilder train = new StringBuilder();
        String[] good = {"great", "wonderful", "excellent", "lovely"};
        String[] bad = {"awful", "terrible", "horrible", "boring"};
        for (String f : new String[] {"The film was %s.", "What a %s meal.", "Service is %s.", "%s acting."}) {
            for (int i = 0; i < good.length; i++) {
                train.append("{\"text\": \"").append(String.format(f, good[i])).append("\", \"label\": 1}\n");
                train.append("{\"text\": \"").append(String.format(f, bad[i])).append("\", \"label\": 0}\n");
            }
        }
        Files.writeString(tmp.resolve("train.jsonl"), train);
        Path config = tmp.resolve("train.json");
        Path out = tmp.resolve("run");
        Files.writeString(config, """
                {"model": "minilm",
                 "data": {"train": "%1$s/train.jsonl", "test": "%1$s/train.jsonl"},
                 "reft": {"intervention": "loreft", "hooks": ["blocks.2.block_output"], "rank": 2},
                 "training": {"epochs": 1, "batch_size": 8, "learning_rate": 0.01, "weight_decay": 0, "warmup_ratio": 0,
                              "max_grad_norm": 1, "seed": 3, "eval_every": 0, "patience": 0, "optimizer": "adamw",
                              "max_length": 32},
                 "output": "%2$s"}
                """.formatted(tmp.toString().replace("\\", "/"), out.toString().replace("\\", "/")));
        Run r = jreft("train", "--config", config.toString(), "--metrics", tmp.resolve("m.json").toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(Files.isRegularFile(out.resolve("config.json")) && Files.isRegularFile(out.resolve(
                "tensors.safetensors")));
        var metrics = new com.fasterxml.jackson.databind.ObjectMapper().readTree(tmp.resolve("m.json").toFile());
        assertEquals(4, metrics.get("steps").asInt());
        Run e = jreft("eval", "--checkpoint", out.toString(), "--data", tmp.resolve("train.jsonl").toString());
        assertEquals(0, e.code(), e.err());
        var evalMetrics = new com.fasterxml.jackson.databind.ObjectMapper().readTree(e.out().strip());
        assertEquals(metrics.get("test_accuracy").asDouble(), evalMetrics.get("accuracy").asDouble(), 0.0);

        Files.writeString(config, "{\"bogus\": 1, \"data\": {\"train\": \"x.jsonl\"}, \"reft\": {\"hooks\": []}}");
        Run rejected = jreft("train", "--config", config.toString());
        assertEquals(2, rejected.code());
        assertTrue(rejected.err().contains("found unknown field 'bogus'"), rejected.err());
    }

    @Test
    void badInputIsOneClearLineAndNoStackTrace(@TempDir Path tmp) throws Exception {
        Path gpt2 = fixtures().resolve("models/gpt2/gpt2_op14.onnx");
        Run unknown = jreft("cache", "--model", gpt2.toString(), "--ids", "1,2", "--hooks", "blocks.9.block_output",
                "--out", tmp.toString());
        assertEquals(2, unknown.code());
        assertTrue(unknown.err().startsWith("jreft: --hooks[0]: unknown hook 'blocks.9.block_output'"), unknown.err());
        assertTrue(!unknown.err().contains("\tat "), "no stack trace");

        Path garbled = tmp.resolve("garbled.onnx");
        Files.write(garbled, new byte[] {1, 2, 3, 4, 5});
        Run bad = jreft("hooks", "--model", garbled.toString());
        assertEquals(2, bad.code());
        assertTrue(bad.err().contains("is not a valid ONNX model"), bad.err());

        Path config = tmp.resolve("bad.json");
        Files.writeString(config, "{\"model\": \"" + gpt2.toString().replace("\\", "/") + "\", \"inputs\": "
                + "{\"input_ids\": [[5, 17]]}, \"sites\": [{\"hook\": \"blocks.0.block_output\", "
                + "\"intervention\": \"zero_ablation\", \"positions\": [[2]]}]}");
        Run pos = jreft("intervene", "--config", config.toString(), "--out", tmp.resolve("o").toString());
        assertEquals(2, pos.code());
        assertTrue(pos.err().contains("base position 2 of example 0 is out of range"), pos.err());
        assertTrue(!Files.exists(tmp.resolve("o")), "nothing written on error");
    }
}
