package dev.jreft.interventions.prompt;

import dev.jreft.hooks.graph.SubgraphBuilder;
import dev.jreft.interventions.SequenceShape;
import dev.jreft.interventions.SoftPrompt;
import dev.jreft.interventions.params.Init;
import dev.jreft.interventions.params.Parameter;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Prompt tuning (Lester et al. 2021): P trained virtual-token embeddings, {@code prompt} [P, d], in front of the
 * token embeddings, {@code inputs_embeds = [prompt; E(input_ids)]} (peft's {@code PromptEmbedding}). They start as
 * peft's three inits: {@link Start#random} (N(0, 1), {@code nn.Embedding}'s default), {@link Start#sampleVocab} (rows
 * of the embedding table drawn uniformly, peft's SAMPLE_VOCAB) or {@link Start#tokens} (the embeddings of given
 * tokens, peft's TEXT once the text is tokenised).
 */
public final class PromptTuning implements SoftPrompt {
    /** How the prompt's first value is drawn. */
    public sealed interface Start {
        static Start random() {
            return new Random();
        }

        static Start sampleVocab() {
            return new SampleVocab();
        }

        /** The embeddings of these token ids, one per virtual token. */
        static Start tokens(int... ids) {
            return new Tokens(ids.clone());
        }
    }

    record Random() implements Start {
    }

    record SampleVocab() implements Start {
    }

    record Tokens(int[] ids) implements Start {
    }

    private final int length;
    private final Start start;

    public PromptTuning(int length, Start start) {
        if (length < 1) {
            throw new dev.jreft.hooks.io.ConfigException("num_virtual_tokens", length, "an integer >= 1");
        }
        if (start instanceof Tokens t && t.ids().length != length) {
            throw new dev.jreft.hooks.io.ConfigException("prompt_tuning_init_text", t.ids().length + " tokens",
                    "a text of exactly num_virtual_tokens (" + length + ") tokens");
        }
        this.length = length;
        this.start = start;
    }

    public PromptTuning(int length) {
        this(length, Start.random());
    }

    @Override
    public String type() {
        return "prompt_tuning";
    }

    @Override
    public int length() {
        return length;
    }

    @Override
    public List<Parameter> parameters(SequenceShape embedding, Supplier<INDArray> table) {
        Init init;
        if (start instanceof Tokens t) {
            for (int id : t.ids()) {
                if (id < 0 || id >= embedding.vocab()) {
                    throw new dev.jreft.hooks.io.ConfigException("prompt_tuning_init_text", "token id " + id,
                            "ids in 0.." + (embedding.vocab() - 1));
                }
            }
            init = (shape, random) -> rows(table.get(), t.ids());
        } else if (start instanceof SampleVocab) {
            init = (shape, random) -> rows(table.get(), random.ints(length, 0, (int) embedding.vocab()).toArray());
        } else {
            init = Init.normal(1);
        }
        return List.of(Parameter.of("prompt", init, length, embedding.width()));
    }

    private static INDArray rows(INDArray table, int[] ids) {
        return table.get(NDArrayIndex.indices(Arrays.stream(ids).asLongStream().toArray()), NDArrayIndex.all())
                .castTo(DataType.FLOAT).dup('c');
    }

    @Override
    public String emitPrompt(SubgraphBuilder b, Map<String, String> params) {
        return params.get("prompt");
    }
}
