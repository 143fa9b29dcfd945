package dev.jreft.verification;

import dev.jreft.hooks.io.FixturesLocation;
import dev.jreft.verification.CheckResult;
import dev.jreft.verification.Verifier;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Runs ../shared/fixtures through the same code as {@code jreft verify}. */
class FixtureVerificationTest {
    static final Set<String> STATIC_CASES = Set.of("gpt2_vanilla_block_output", "llama_vanilla_block_output",
            "bert_vanilla_block_output", "gpt2_head_interchange_attention_value_output",
            "gpt2_head_zero_ablation_attention_value_output");

    @Test
    void everyCoveredCaseOfTheFixturesPasses() {
        var dir = FixturesLocation.find();
        Assumptions.assumeTrue(dir.isPresent(), "fixtures not found at " + FixturesLocation.configured());
        List<CheckResult> results = new Verifier(dir.get()).runAll(System.out);
        Verifier.summarise(results, System.out);
        Map<String, CheckResult.Status> status = results.stream()
                .collect(Collectors.toMap(CheckResult::name, CheckResult::status));
        assertTrue(results.stream().noneMatch(r -> r.status() == CheckResult.Status.FAILED),
                () -> results.stream().filter(r -> r.status() == CheckResult.Status.FAILED).map(CheckResult::line)
                        .collect(Collectors.joining("\n")));
        for (String c : STATIC_CASES) {
            assertEquals(CheckResult.Status.PASSED, status.get(c), c);
        }
        for (String m : List.of("gpt2", "llama", "bert", "minilm")) {
            assertEquals(CheckResult.Status.PASSED, status.get(m + ": loss"), m);
        }
        // d loss / d block_output at every layer, through the autodiff, for all four models
        for (String g : List.of("gpt2: 2", "llama: 2", "bert: 2", "minilm: 6")) {
            assertEquals(CheckResult.Status.PASSED, status.get(g + " gradient references"), g);
        }
        // steering cases: outputs, hook values, loss and d loss / d v through the spliced graph
        for (String c : List.of("llama_addition_mlp_output", "llama_subtraction_attention_output",
                "bert_addition_block_output")) {
            assertEquals(CheckResult.Status.PASSED, status.get(c), c);
            assertTrue(results.stream().filter(r -> r.name().equals(c)).allMatch(r -> r.detail().contains("d/dv")));
        }
        // DAS, low-rank DAS and the ReFT family: outputs and every parameter gradient
        for (String c : List.of("gpt2_das_block_output", "bert_das_block_output", "gpt2_dii_block_output",
                "llama_dii_block_output", "gpt2_loreft_block_output", "llama_loreft_block_output",
                "bert_loreft_block_output", "gpt2_noreft_block_output", "gpt2_direft_block_output",
                "minilm_loreft_block_output")) {
            assertEquals(CheckResult.Status.PASSED, status.get(c), c);
        }
        // module edits (LoRA on Conv1D, MatMul with and without bias, two targets of the real MiniLM; DoRA with its
        // detached norm): outputs, the module outputs, the loss and every parameter gradient
        for (String c : List.of("gpt2_lora_c_attn", "llama_lora_q_proj", "bert_lora_query", "minilm_lora_query_value",
                "llama_dora_v_proj", "bert_dora_query")) {
            assertEquals(CheckResult.Status.PASSED, status.get(c), c);
            assertTrue(results.stream().filter(r -> r.name().equals(c)).allMatch(r -> r.detail().contains("module"
                    + " output") && r.detail().contains("d/dB")), c);
        }
        assertTrue(results.stream().filter(r -> r.name().equals("llama_dora_v_proj"))
                .allMatch(r -> r.detail().contains("d/dm")));
        // bottleneck adapters and IA3 (three sites in one pass), at every position, padded ones included
        for (String c : List.of("gpt2_adapter_mlp_output", "bert_adapter_mlp_output", "llama_adapter_attention_output",
                "llama_ia3", "bert_ia3")) {
            assertEquals(CheckResult.Status.PASSED, status.get(c), c);
        }
        // full finetuning and BitFit: d loss / d every weight, tied GPT-2 embeddings summed, BERT's opset-14
        // embedding lookups through the one-hot Gather gradient
        for (String c : List.of("bert_full_finetune", "gpt2_full_finetune")) {
            assertEquals(CheckResult.Status.PASSED, status.get(c), c);
        }
        // soft prompts (prompt tuning; P-tuning's MLP encoder) on GPT-2, Llama and BERT: the real tokens' outputs,
        // the loss and the gradient of every parameter, the virtual tokens cut off again
        for (String c : List.of("gpt2_prompt_tuning", "llama_prompt_tuning", "bert_prompt_tuning", "gpt2_p_tuning",
                "bert_p_tuning")) {
            assertEquals(CheckResult.Status.PASSED, status.get(c), c);
            assertTrue(results.stream().filter(r -> r.name().equals(c)).allMatch(r -> r.detail().contains("real tokens")
                    && r.detail().contains(c.endsWith("p_tuning") ? "d/dmlp_head.4.bias" : "d/dprompt")), c);
        }
        // prefix tuning: through the past inputs of GPT-2's with-past export (plain and with peft's PrefixEncoder
        // MLP), and spliced into every layer's keys and values of BERT and the real MiniLM (positions moved up by P)
        for (String c : List.of("gpt2_prefix_tuning", "gpt2_prefix_projection", "bert_prefix_tuning",
                "minilm_prefix_tuning")) {
            assertEquals(CheckResult.Status.PASSED, status.get(c), c);
            assertTrue(results.stream().filter(r -> r.name().equals(c)).allMatch(r -> r.detail().contains(
                    c.endsWith("projection") ? "d/dtransform.2.bias" : "d/dpast.1.value")), c);
        }
        // greedy generation with the KV cache: tokens, step logits, the sequence loss and its gradient through it
        for (String c : List.of("gpt2_generate_none", "llama_generate_none", "gpt2_generate_loreft_prompt",
                "gpt2_generate_addition_every_token")) {
            assertEquals(CheckResult.Status.PASSED, status.get(c), c);
            assertTrue(results.stream().filter(r -> r.name().equals(c)).allMatch(r -> r.detail().contains("tokens, step"
                    + " logits, loss") && (c.endsWith("none") || r.detail().contains("d/d"))), c);
        }
        assertTrue(results.stream().noneMatch(r -> r.status() == CheckResult.Status.UNSUPPORTED), "every case runs");
    }

    @Test
    void missingBundleIsAClearError() {
        var e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> new Verifier(Path.of("no/such/dir")));
        assertTrue(e.getMessage().contains("no manifest.json"));
    }
}
