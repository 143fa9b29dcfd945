package dev.jreft.checkpoints;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jreft.hooks.io.AtomicFiles;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The safetensors file format (as published by Hugging Face), written and read by hand for float32, float64, int64
 * and int32 tensors.
 *
 * <p>Layout: an 8-byte little-endian unsigned header length {@code N}; {@code N} bytes of UTF-8 JSON mapping each
 * tensor name to {@code {"dtype", "shape", "data_offsets": [begin, end]}} plus an optional {@code "__metadata__"}
 * object of string values; then the data section, each tensor's raw little-endian C-order bytes at
 * {@code [begin, end)} relative to the start of the data section.
 *
 * <p>Why by hand: the format is small, a dependency for it would pull in native code, and checkpoint writes must go
 * through {@link AtomicFiles} so a crash never leaves half a file. Why this format: it holds no code (unlike
 * pickles), Python tools read it directly, and its validation rules (offsets contiguous, no trailing bytes) make
 * truncation and corruption detectable. The writer pads the header with spaces to a multiple of 8 bytes and lays
 * tensors out contiguously in the order given; the reader accepts any valid file, whatever its padding or tensor
 * order, and rejects anything else with a {@link CheckpointFormatException} naming the file and the problem.
 *
 * <p>Limits: the writer holds the whole file in memory, so it writes at most 2 GiB; the reader streams tensors
 * from the file and accepts tensors of up to 2 GiB each.
 */
public final class SafeTensors {
    /** Largest header accepted, as in the reference implementation: guards against reading garbage lengths. */
    public static final long MAX_HEADER_BYTES = 100_000_000L;

    private static final String METADATA = "__metadata__";
    private static final int MAX_FILE_BYTES = Integer.MAX_VALUE - 8;
    private static final List<String> OTHER_KNOWN_DTYPES = List.of(
            "BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "U32", "U64", "F8_E4M3", "F8_E5M2");
    private static final JsonMapper JSON = JsonMapper.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .build();

    private SafeTensors() {
    }

    /**
     * What a safetensors file holds: tensors in header order, and the string metadata (empty when the file has
     * none). Both maps are unmodifiable and keep their order.
     */
    public record Contents(Map<String, INDArray> tensors, Map<String, String> metadata) {
        public Contents {
            tensors = Collections.unmodifiableMap(new LinkedHashMap<>(tensors));
            metadata = Collections.unmodifiableMap(new LinkedHashMap<>(metadata));
        }
    }

    /** The element types this implementation stores, with their safetensors names. */
    /** The safetensors name of an ND4J data type ({@code F32}, {@code I32}, ...), or the ND4J name if it has none. */
    public static String dtypeName(DataType t) {
        DType d = DType.of(t);
        return d == null ? t.name() : d.name();
    }

    private enum DType {
        F32(DataType.FLOAT, 4), F64(DataType.DOUBLE, 8), I64(DataType.LONG, 8), I32(DataType.INT, 4);

        final DataType nd4j;
        final int width;

        DType(DataType nd4j, int width) {
            this.nd4j = nd4j;
            this.width = width;
        }

        static DType of(DataType t) {
            for (DType d : values()) {
                if (d.nd4j == t) {
                    return d;
                }
            }
            return null;
        }

        static String names() {
            return Arrays.toString(values());
        }
    }

    // ------------------------------------------------------------------------------------------------ writing

    /**
     * Writes {@code tensors} (in the map's iteration order) and {@code metadata} (may be null or empty) to
     * {@code file}, atomically: readers see the old file or the complete new one, never a part.
     *
     * @throws IllegalArgumentException for a tensor type other than float32/float64/int64/int32, a null or
     *                                  reserved ({@code __metadata__}) name, or more than 2 GiB in all
     */
    public static void write(Path file, Map<String, INDArray> tensors, Map<String, String> metadata)
            throws IOException {
        AtomicFiles.write(file, toBytes(tensors, metadata));
    }

    /** The bytes {@link #write} puts in a file. */
    public static byte[] toBytes(Map<String, INDArray> tensors, Map<String, String> metadata) {
        if (tensors == null) {
            throw new IllegalArgumentException("tensors must not be null (pass an empty map for none)");
        }
        List<Object> data = new ArrayList<>(tensors.size());
        List<DType> types = new ArrayList<>(tensors.size());
        ObjectNode header = JSON.createObjectNode();
        long offset = 0;
        for (Map.Entry<String, INDArray> e : tensors.entrySet()) {
            String name = e.getKey();
            INDArray a = e.getValue();
            if (name == null) {
                throw new IllegalArgumentException("tensor names must not be null");
            }
            if (name.equals(METADATA)) {
                throw new IllegalArgumentException("\"" + METADATA + "\" is reserved by the safetensors format for "
                        + "metadata and cannot name a tensor");
            }
            if (a == null) {
                throw new IllegalArgumentException("tensor '" + name + "' is null");
            }
            DType type = DType.of(a.dataType());
            if (type == null) {
                throw new IllegalArgumentException("tensor '" + name + "' has data type " + a.dataType()
                        + "; only FLOAT (F32), DOUBLE (F64), LONG (I64) and INT (I32) are stored: cast it first");
            }
            long count = a.length();
            long bytes = Math.multiplyExact(count, (long) type.width);
            ObjectNode entry = header.putObject(name);
            entry.put("dtype", type.name());
            ArrayNode shape = entry.putArray("shape");
            for (long d : a.shape()) {
                shape.add(d);
            }
            entry.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
            types.add(type);
            data.add(count == 0 ? null : elements(a, type));
        }
        if (metadata != null && !metadata.isEmpty()) {
            ObjectNode meta = header.putObject(METADATA);
            for (Map.Entry<String, String> e : metadata.entrySet()) {
                if (e.getKey() == null || e.getValue() == null) {
                    throw new IllegalArgumentException("metadata keys and values must not be null: " + metadata);
                }
                meta.put(e.getKey(), e.getValue());
            }
        }
        byte[] json;
        try {
            json = JSON.writeValueAsBytes(header);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot serialise safetensors header", e);
        }
        int padded = (json.length + 7) / 8 * 8;
        long total = 8L + padded + offset;
        if (total > MAX_FILE_BYTES) {
            throw new IllegalArgumentException("the tensors take " + total + " bytes; this writer builds the file "
                    + "in memory and supports at most " + MAX_FILE_BYTES + " bytes");
        }
        ByteBuffer out = ByteBuffer.allocate((int) total).order(ByteOrder.LITTLE_ENDIAN);
        out.putLong(padded);
        out.put(json);
        for (int i = json.length; i < padded; i++) {
            out.put((byte) ' ');
        }
        for (int i = 0; i < data.size(); i++) {
            Object v = data.get(i);
            if (v == null) {
                continue;
            }
            int start = out.position();
            int len;
            switch (types.get(i)) {
                case F32 -> { float[] f = (float[]) v; out.asFloatBuffer().put(f); len = f.length * 4; }
                case F64 -> { double[] d = (double[]) v; out.asDoubleBuffer().put(d); len = d.length * 8; }
                case I64 -> { long[] l = (long[]) v; out.asLongBuffer().put(l); len = l.length * 8; }
                default -> { int[] n = (int[]) v; out.asIntBuffer().put(n); len = n.length * 4; }
            }
            out.position(start + len);
        }
        return out.array();
    }

    /** The array's elements in C order, as a Java array of its own type (copies, so views and 'f' order work). */
    private static Object elements(INDArray a, DType type) {
        INDArray c = a.dup('c');
        Object v = switch (type) {
            case F32 -> c.data().asFloat();
            case F64 -> c.data().asDouble();
            case I64 -> c.data().asLong();
            case I32 -> c.data().asInt();
        };
        int n = java.lang.reflect.Array.getLength(v);
        if (n != c.length()) {
            throw new IllegalStateException("ND4J returned " + n + " elements for an array of " + c.length());
        }
        return v;
    }

    // ------------------------------------------------------------------------------------------------ reading

    /**
     * Reads a safetensors file.
     *
     * @throws CheckpointFormatException when the file is not a valid safetensors file of supported dtypes; the
     *                                   message names the file and what is wrong
     * @throws UncheckedIOException      when the file cannot be read at all (I/O error, permissions)
     */
    public static Contents read(Path file) {
        if (!Files.exists(file)) {
            throw new CheckpointFormatException("safetensors file " + file + " does not exist");
        }
        if (!Files.isRegularFile(file)) {
            throw new CheckpointFormatException(file + ": found a folder or special file; valid: a safetensors file");
        }
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            return parse(new Source() {
                @Override
                public long size() throws IOException {
                    return ch.size();
                }

                @Override
                public void readFully(long position, ByteBuffer dst) throws IOException {
                    long pos = position;
                    while (dst.hasRemaining()) {
                        int n = ch.read(dst, pos);
                        if (n < 0) {
                            throw new CheckpointFormatException(file + ": file ended at byte " + pos
                                    + " while reading; was it truncated while being read?");
                        }
                        pos += n;
                    }
                }
            }, file.toString());
        } catch (NoSuchFileException e) {
            throw new CheckpointFormatException("safetensors file " + file + " does not exist", e);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read safetensors file " + file + ": " + e.getMessage(), e);
        }
    }

    /** Parses safetensors bytes; {@code origin} names them in error messages. */
    public static Contents parse(byte[] bytes, String origin) {
        try {
            return parse(new Source() {
                @Override
                public long size() {
                    return bytes.length;
                }

                @Override
                public void readFully(long position, ByteBuffer dst) {
                    dst.put(bytes, (int) position, dst.remaining());
                }
            }, origin);
        } catch (IOException e) {
            throw new UncheckedIOException(e); // cannot happen: the bytes are in memory
        }
    }

    private interface Source {
        long size() throws IOException;

        void readFully(long position, ByteBuffer dst) throws IOException;
    }

    private record Entry(String name, DType type, long[] shape, long begin, long end) {
        String where() {
            return "tensor '" + name + "' (data_offsets [" + begin + ", " + end + "])";
        }
    }

    private static Contents parse(Source src, String origin) throws IOException {
        long size = src.size();
        if (size < 8) {
            throw fail(origin, "file is " + size + " bytes long, shorter than the 8-byte header length that starts "
                    + "a safetensors file");
        }
        ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        src.readFully(0, lenBuf);
        long n = lenBuf.flip().getLong();
        if (n < 0 || n > size - 8) {
            throw fail(origin, "header length " + Long.toUnsignedString(n) + " (the first 8 bytes) goes beyond the "
                    + (size - 8) + " bytes that follow; the file is truncated or not a safetensors file");
        }
        if (n > MAX_HEADER_BYTES) {
            throw fail(origin, "header length " + n + " exceeds the safetensors limit of " + MAX_HEADER_BYTES
                    + " bytes; the file is corrupt or not a safetensors file");
        }
        ByteBuffer headerBuf = ByteBuffer.allocate((int) n);
        src.readFully(8, headerBuf);
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(headerBuf.flip()).toString();
        } catch (CharacterCodingException e) {
            throw fail(origin, "header is not valid UTF-8 (" + e + ")");
        }
        JsonNode root;
        try {
            root = JSON.readTree(text);
        } catch (JsonProcessingException e) {
            throw fail(origin, "header is not valid JSON: " + e.getOriginalMessage());
        }
        if (root == null || !root.isObject()) {
            throw fail(origin, "header must be a JSON object mapping tensor names to {dtype, shape, data_offsets}, "
                    + "found " + (root == null ? "nothing" : root.getNodeType()));
        }
        long dataLen = size - 8 - n;
        List<Entry> entries = new ArrayList<>();
        Map<String, String> metadata = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            if (f.getKey().equals(METADATA)) {
                readMetadata(f.getValue(), metadata, origin);
            } else {
                entries.add(entry(f.getKey(), f.getValue(), dataLen, origin));
            }
        }
        checkLayout(entries, dataLen, origin);
        long dataStart = 8 + n;
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        for (Entry e : entries) {
            long len = e.end - e.begin;
            if (len > Integer.MAX_VALUE - 8) {
                throw fail(origin, e.where() + " is " + len + " bytes; this reader supports tensors of up to 2 GiB");
            }
            ByteBuffer buf = ByteBuffer.allocate((int) len).order(ByteOrder.LITTLE_ENDIAN);
            src.readFully(dataStart + e.begin, buf);
            tensors.put(e.name, toArray(e, buf.flip()));
        }
        return new Contents(tensors, metadata);
    }

    private static void readMetadata(JsonNode meta, Map<String, String> into, String origin) {
        if (!meta.isObject()) {
            throw fail(origin, "\"" + METADATA + "\" must be an object of string values, found " + meta.getNodeType());
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = meta.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> m = it.next();
            if (!m.getValue().isTextual()) {
                throw fail(origin, "\"" + METADATA + "\" value for key '" + m.getKey() + "' must be a string, found "
                        + m.getValue().getNodeType());
            }
            into.put(m.getKey(), m.getValue().textValue());
        }
    }

    private static Entry entry(String name, JsonNode node, long dataLen, String origin) {
        String what = "tensor '" + name + "'";
        if (!node.isObject()) {
            throw fail(origin, what + " must be described by an object {dtype, shape, data_offsets}, found "
                    + node.getNodeType());
        }
        JsonNode dt = node.get("dtype");
        if (dt == null || !dt.isTextual()) {
            throw fail(origin, what + " has no string \"dtype\" (valid: " + DType.names() + ")");
        }
        DType type;
        try {
            type = DType.valueOf(dt.textValue());
        } catch (IllegalArgumentException e) {
            String kind = OTHER_KNOWN_DTYPES.contains(dt.textValue())
                    ? "dtype " + dt.textValue() + " is not supported here"
                    : "unknown dtype '" + dt.textValue() + "'";
            throw fail(origin, what + ": " + kind + " (supported: " + DType.names() + ")");
        }
        long[] shape = longs(node.get("shape"), -1, what + " \"shape\"", origin);
        long[] off = longs(node.get("data_offsets"), 2, what + " \"data_offsets\"", origin);
        long begin = off[0];
        long end = off[1];
        if (begin > end) {
            throw fail(origin, what + " has data_offsets [" + begin + ", " + end + "] with begin after end");
        }
        long expected;
        try {
            long count = 1;
            for (long d : shape) {
                count = Math.multiplyExact(count, d);
            }
            expected = Math.multiplyExact(count, (long) type.width);
        } catch (ArithmeticException e) {
            throw fail(origin, what + " has shape " + Arrays.toString(shape) + ", too large to address");
        }
        if (end - begin != expected) {
            throw fail(origin, what + " has data_offsets [" + begin + ", " + end + "] spanning " + (end - begin)
                    + " bytes, but shape " + Arrays.toString(shape) + " of " + type + " needs " + expected);
        }
        if (end > dataLen) {
            throw fail(origin, what + " has data_offsets [" + begin + ", " + end + "] beyond the end of the data "
                    + "section (" + dataLen + " bytes); the file is truncated or the offsets are wrong");
        }
        return new Entry(name, type, shape, begin, end);
    }

    /** A JSON array of non-negative integers ({@code length} of them, unless {@code length} is -1). */
    private static long[] longs(JsonNode node, int length, String what, String origin) {
        String want = length < 0 ? "an array of non-negative integers" : "an array of " + length
                + " non-negative integers";
        if (node == null || !node.isArray() || (length >= 0 && node.size() != length)) {
            throw fail(origin, what + " must be " + want + ", found " + (node == null ? "nothing" : node));
        }
        long[] out = new long[node.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode v = node.get(i);
            if (!v.isIntegralNumber() || !v.canConvertToLong() || v.longValue() < 0) {
                throw fail(origin, what + " must be " + want + ", found " + node);
            }
            out[i] = v.longValue();
        }
        return out;
    }

    /** The format's rule: tensors tile the data section exactly, from byte 0 to its end, without overlap or gaps. */
    private static void checkLayout(List<Entry> entries, long dataLen, String origin) {
        List<Entry> sorted = new ArrayList<>(entries);
        sorted.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        long covered = 0;
        Entry prev = null;
        for (Entry e : sorted) {
            if (e.begin < covered) {
                throw fail(origin, e.where() + " overlaps " + prev.where() + "; tensors must not share bytes");
            }
            if (e.begin > covered) {
                throw fail(origin, "bytes [" + covered + ", " + e.begin + ") of the data section belong to no tensor "
                        + "(gap before " + e.where() + "); tensors must be laid out contiguously from byte 0");
            }
            covered = e.end;
            prev = e;
        }
        if (covered != dataLen) {
            throw fail(origin, (dataLen - covered) + " trailing bytes: the data section is " + dataLen
                    + " bytes but the tensors in the header cover only " + covered);
        }
    }

    private static INDArray toArray(Entry e, ByteBuffer b) {
        long count = (e.end - e.begin) / e.type.width;
        if (count == 0) {
            return Nd4j.create(e.type.nd4j, e.shape);
        }
        int n = (int) count;
        return switch (e.type) {
            case F32 -> {
                float[] v = new float[n];
                b.asFloatBuffer().get(v);
                yield Nd4j.create(v, e.shape, 'c');
            }
            case F64 -> {
                double[] v = new double[n];
                b.asDoubleBuffer().get(v);
                yield Nd4j.create(v, e.shape, 'c');
            }
            case I64 -> {
                long[] v = new long[n];
                b.asLongBuffer().get(v);
                yield Nd4j.createFromArray(v).reshape('c', e.shape);
            }
            case I32 -> {
                int[] v = new int[n];
                b.asIntBuffer().get(v);
                yield Nd4j.createFromArray(v).reshape('c', e.shape);
            }
        };
    }

    private static CheckpointFormatException fail(String origin, String problem) {
        return new CheckpointFormatException(origin + ": " + problem);
    }
}
