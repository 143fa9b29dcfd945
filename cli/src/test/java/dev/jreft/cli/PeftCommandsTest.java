package dev.jreft.cli;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** train --config with a PEFT method, then merge and export, as a user runs them. */
class PeftCommandsTest {
    @TempDir
    static Path tmp;
    static Path data;
    static Path lora;
    static Path reft;

    static Path train(String name, String method) throws Exception {
        Path config = tmp.resolve(name + ".json");
        Path out = tmp.resolve(name);
        Files.writeString(config, "{\"data\": {\"train\": \"" + data + "\"}, " + method + ", \"training\":"
                + " {\"epochs\": 1, \"batch_size\": 8, \"max_length\": 16}, \"output\": \"" + out + "\"}");
        CliTest.Run r = CliTest.jreft("train", "--config", config.toString());
        assertEquals(0, r.code(), r.err());
        return out;
    }

    @BeforeAll
    static void trainTwo() throws Exception {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < 8; i++) {
            b.append("{\"text\": \"a fine film number ").append(i).append("\", \"label\": 1}\n");
            b.append("{\"text\": \"a dull film number ").append(i).append("\", \"label\": 0}\n");
        }
        data = Files.writeString(tmp.resolve("train.jsonl"), b);
        lora = train("lora", "\"method\": \"lora\", \"lora\": {\"target_modules\": [\"encoder.layer.5.attention.self"
                + ".query\"], \"r\": 2}");
        reft = train("reft", "\"reft\": " + BadInputTest.REFT);
    }

    @Test
    void aLoraCheckpointMergesIntoOneGraphAndExportsForPeft() throws Exception {
        Path onnx = tmp.resolve("merged.onnx");
        CliTest.Run merged = CliTest.jreft("merge", "--checkpoint", lora.toString(), "--out", onnx.toString());
        assertEquals(0, merged.code(), merged.err());
        assertTrue(merged.out().contains("lora merged into the weights") && merged.out().contains("max |logits -"
                + " unmerged| = "), merged.out());
        assertTrue(Files.size(onnx) > 80_000_000, "the whole model, weights included");
        assertEquals(0, CliTest.jreft("merge", "--checkpoint", lora.toString(), "--out", onnx.toString()).code(),
                "its own earlier output is replaced");
        Path peft = tmp.resolve("peft");
        CliTest.Run exported = CliTest.jreft("export", "--checkpoint", lora.toString(), "--format", "peft", "--out",
                peft.toString());
        assertEquals(0, exported.code(), exported.err());
        assertTrue(Files.readString(peft.resolve("adapter_config.json")).contains("\"peft_type\" : \"LORA\""));
        assertTrue(Files.exists(peft.resolve("adapter_model.safetensors")));
    }

    @Test
    void aReftCheckpointExportsAsAStandaloneGraph() throws Exception {
        Path onnx = tmp.resolve("reft-standalone.onnx");
        CliTest.Run r = CliTest.jreft("export", "--checkpoint", reft.toString(), "--format", "onnx", "--out",
                onnx.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("loreft spliced in with its parameters frozen") && r.out().contains("max |logits"
                + " - jreft's| = "), r.out());
        assertTrue(Files.size(onnx) > 80_000_000);
    }

    @Test
    void whatCannotBeMergedOrExportedIsOneClearLine() throws Exception {
        Path onnx = tmp.resolve("reft.onnx");
        BadInputTest.assertBad(CliTest.jreft("merge", "--checkpoint", reft.toString(), "--out", onnx.toString()),
                "--checkpoint: found a loreft checkpoint", "valid: a LoRA, DoRA, IA3, BitFit or full checkpoint");
        assertFalse(Files.exists(onnx));
        BadInputTest.assertBad(CliTest.jreft("export", "--checkpoint", lora.toString(), "--format", "tflite", "--out",
                tmp.resolve("x").toString()), "--format: found 'tflite'; valid: onnx, peft");
        BadInputTest.assertBad(CliTest.jreft("merge", "--checkpoint", lora.toString(), "--out",
                lora.resolve("config.json").toString()), "--out: found", "valid: a path that is not one of the run's"
                + " inputs");
        // a file jreft did not write is never replaced; its own earlier output is
        Path users = Files.writeString(tmp.resolve("users.onnx"), "not jreft's");
        BadInputTest.assertBad(CliTest.jreft("merge", "--checkpoint", lora.toString(), "--out", users.toString()),
                "--out: found the existing file " + users + ", which jreft did not write");
        assertEquals("not jreft's", Files.readString(users));
        BadInputTest.assertBad(CliTest.jreft("export", "--checkpoint", reft.toString(), "--format", "peft", "--out",
                tmp.resolve("y").toString()), "--checkpoint: found a loreft checkpoint; valid: a LoRA or DoRA"
                + " checkpoint");
    }
}
