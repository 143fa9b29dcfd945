package dev.jreft.hooks.runtime;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** A Hugging Face {@code tokenizer.json} (through DJL's bindings) that makes right-padded batches. */
public final class TextTokenizer implements AutoCloseable {
    private final HuggingFaceTokenizer tokenizer;

    private TextTokenizer(HuggingFaceTokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    public static TextTokenizer load(Path tokenizerJson) {
        if (!Files.isRegularFile(tokenizerJson)) {
            throw new IllegalArgumentException("tokenizer file not found: " + tokenizerJson);
        }
        try (InputStream in = Files.newInputStream(tokenizerJson)) {
            return new TextTokenizer(HuggingFaceTokenizer.newInstance(in, Map.of("padding", "false",
                    "truncation", "false")));
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read tokenizer " + tokenizerJson + ": " + e.getMessage(), e);
        }
    }

    public static TextTokenizer fromResource(String resource) {
        try (InputStream in = TextTokenizer.class.getClassLoader().getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalArgumentException("tokenizer resource '" + resource + "' is not on the class path");
            }
            return new TextTokenizer(HuggingFaceTokenizer.newInstance(in, Map.of("padding", "false",
                    "truncation", "false")));
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read tokenizer " + resource + ": " + e.getMessage(), e);
        }
    }

    /** Token strings of one text, special tokens included. */
    public List<String> tokens(String text) {
        return List.of(tokenizer.encode(text).getTokens());
    }

    /** Tokenises {@code texts} into one batch padded on the right with id 0 to the longest row. */
    public Batch encode(List<String> texts) {
        if (texts.isEmpty()) {
            throw new IllegalArgumentException("no texts to tokenise");
        }
        Encoding[] enc = new Encoding[texts.size()];
        int len = 0;
        for (int i = 0; i < enc.length; i++) {
            enc[i] = tokenizer.encode(texts.get(i));
            len = Math.max(len, enc[i].getIds().length);
        }
        long[][] ids = new long[enc.length][len];
        long[][] mask = new long[enc.length][len];
        long[][] types = new long[enc.length][len];
        for (int i = 0; i < enc.length; i++) {
            long[] id = enc[i].getIds();
            long[] m = enc[i].getAttentionMask();
            long[] t = enc[i].getTypeIds();
            System.arraycopy(id, 0, ids[i], 0, id.length);
            System.arraycopy(m, 0, mask[i], 0, m.length);
            System.arraycopy(t, 0, types[i], 0, t.length);
        }
        Map<String, org.nd4j.linalg.api.ndarray.INDArray> in = new LinkedHashMap<>();
        in.put(Batch.INPUT_IDS, Nd4j.createFromArray(ids));
        in.put(Batch.ATTENTION_MASK, Nd4j.createFromArray(mask));
        in.put("token_type_ids", Nd4j.createFromArray(types));
        return new Batch(in);
    }

    @Override
    public void close() {
        tokenizer.close();
    }
}
