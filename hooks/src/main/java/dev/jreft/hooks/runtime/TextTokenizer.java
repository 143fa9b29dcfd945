package dev.jreft.hooks.runtime;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import dev.jreft.hooks.io.AtomicFiles;
import dev.jreft.hooks.io.ConfigException;
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
            throw new ConfigException("tokenizer", tokenizerJson.toString(), "the path of a Hugging Face"
                    + " tokenizer.json (" + (Files.isDirectory(tokenizerJson) ? "this is a folder"
                    : Files.exists(tokenizerJson) ? "this is a pipe, device or socket" : "no such file") + ")");
        }
        try (InputStream in = Files.newInputStream(tokenizerJson)) {
            return new TextTokenizer(HuggingFaceTokenizer.newInstance(in, Map.of("padding", "false",
                    "truncation", "false")));
        } catch (IOException e) {
            throw ConfigException.of("tokenizer", "cannot read " + tokenizerJson + " (" + AtomicFiles.reason(e) + ")");
        } catch (RuntimeException e) { // the tokenizers library refuses the file
            throw new ConfigException("tokenizer", tokenizerJson.toString(), "a Hugging Face tokenizer.json (the"
                    + " tokenizers library says: " + e.getMessage() + ")");
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

    /** The text of token ids, special tokens left out (what a model generated, as text). */
    public String decode(long[] ids) {
        return tokenizer.decode(ids, true);
    }

    /** Token strings of one text, special tokens included. */
    public List<String> tokens(String text) {
        return List.of(tokenizer.encode(text).getTokens());
    }

    /** Tokenises {@code texts} into one batch padded on the right with id 0 to the longest row. */
    public Batch encode(List<String> texts) {
        return encode(texts, Integer.MAX_VALUE, 1);
    }

    /**
     * Tokenises with at most {@code maxLength} tokens per text (the end is cut, keeping the final special token) and
     * pads the batch length up to a multiple of {@code padMultiple}, so batches fall into few shape buckets.
     */
    public Batch encode(List<String> texts, int maxLength, int padMultiple) {
        return encode(texts, maxLength, padMultiple, (row, length) -> { });
    }

    /** Receives the rows {@link #encode} cut, with their length before the cut. */
    public interface CutListener {
        void cut(int row, int length);
    }

    /** As {@link #encode(List, int, int)}, telling {@code onCut} about every text longer than {@code maxLength}. */
    public Batch encode(List<String> texts, int maxLength, int padMultiple, CutListener onCut) {
        if (texts.isEmpty()) {
            throw new IllegalArgumentException("no texts to tokenise");
        }
        Encoding[] enc = new Encoding[texts.size()];
        int len = 0;
        long[][] idRows = new long[enc.length][];
        long[][] maskRows = new long[enc.length][];
        long[][] typeRows = new long[enc.length][];
        for (int i = 0; i < enc.length; i++) {
            enc[i] = tokenizer.encode(texts.get(i));
            idRows[i] = enc[i].getIds();
            if (idRows[i].length == 0) {
                throw new ConfigException("texts[" + i + "]", texts.get(i), "a text the tokenizer turns into at least"
                        + " one token (this tokenizer.json gives none)");
            }
            maskRows[i] = enc[i].getAttentionMask();
            typeRows[i] = enc[i].getTypeIds();
            if (idRows[i].length > maxLength) {
                onCut.cut(i, idRows[i].length);
                long last = idRows[i][idRows[i].length - 1];
                idRows[i] = java.util.Arrays.copyOf(idRows[i], maxLength);
                idRows[i][maxLength - 1] = last;
                maskRows[i] = java.util.Arrays.copyOf(maskRows[i], maxLength);
                typeRows[i] = java.util.Arrays.copyOf(typeRows[i], maxLength);
            }
            len = Math.max(len, idRows[i].length);
        }
        len = (len + padMultiple - 1) / padMultiple * padMultiple;
        long[][] ids = new long[enc.length][len];
        long[][] mask = new long[enc.length][len];
        long[][] types = new long[enc.length][len];
        for (int i = 0; i < enc.length; i++) {
            long[] id = idRows[i];
            long[] m = maskRows[i];
            long[] t = typeRows[i];
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
