package dev.jreft.checkpoints;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SafeTensorsTest {
    @TempDir
    Path tmp;

    /** float32 values that a lossy path would change: NaN payloads (quiet, signalling, negative), -0.0, ±Inf, subnormals. */
    static final float[] SPECIAL_F32 = {
        Float.intBitsToFloat(0x7fc12345), Float.intBitsToFloat(0x7f800001), Float.intBitsToFloat(0xffc00001),
        -0.0f, 0.0f, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.MIN_VALUE, -Float.MAX_VALUE,
        1.0f / 3, 0f, 0f,
    };

    static Map<String, INDArray> sampleTensors() {
        Map<String, INDArray> t = new LinkedHashMap<>();
        float[] cube = new float[2 * 3 * 4];
        for (int i = 0; i < cube.length; i++) {
            cube[i] = i < SPECIAL_F32.length ? SPECIAL_F32[i] : (float) Math.sin(i) * 1e-3f;
        }
        t.put("site0.R", Nd4j.create(cube, new long[] {2, 3, 4}, 'c'));
        t.put("head.W", Nd4j.create(new double[] {
            Double.longBitsToDouble(0x7ff8000012345678L), Double.longBitsToDouble(0x7ff0000000000001L), -0.0,
            Double.NEGATIVE_INFINITY, Double.MIN_VALUE, Math.PI}, new long[] {3, 2}, 'c'));
        t.put("steps", Nd4j.createFromArray(new long[] {Long.MIN_VALUE, -1, 0, Long.MAX_VALUE}));
        t.put("ids", Nd4j.createFromArray(new int[] {Integer.MIN_VALUE, 7, Integer.MAX_VALUE}).reshape(1, 3));
        t.put("scale", Nd4j.scalar(Float.intBitsToFloat(0x7fc00abc)));
        t.put("ünï 名 / with spaces", Nd4j.create(new float[] {1.5f, -2.5f}, new long[] {2}, 'c'));
        return t;
    }

    /** The raw element bits of an array, in C order: comparing these is a bitwise comparison. */
    static long[] bits(INDArray a) {
        INDArray c = a.dup('c');
        long n = c.length();
        long[] out = new long[(int) n];
        switch (c.dataType()) {
            case FLOAT -> {
                float[] v = c.data().asFloat();
                for (int i = 0; i < n; i++) {
                    out[i] = Float.floatToRawIntBits(v[i]);
                }
            }
            case DOUBLE -> {
                double[] v = c.data().asDouble();
                for (int i = 0; i < n; i++) {
                    out[i] = Double.doubleToRawLongBits(v[i]);
                }
            }
            case LONG -> System.arraycopy(c.data().asLong(), 0, out, 0, (int) n);
            case INT -> {
                int[] v = c.data().asInt();
                for (int i = 0; i < n; i++) {
                    out[i] = v[i];
                }
            }
            default -> throw new AssertionError("unexpected type " + c.dataType());
        }
        return out;
    }

    static void assertBitwiseEqual(Map<String, INDArray> expected, Map<String, INDArray> actual) {
        assertEquals(new ArrayList<>(expected.keySet()), new ArrayList<>(actual.keySet()), "names and order");
        for (String name : expected.keySet()) {
            INDArray e = expected.get(name);
            INDArray a = actual.get(name);
            assertEquals(e.dataType(), a.dataType(), name + " dtype");
            assertArrayEquals(e.shape(), a.shape(), name + " shape");
            assertArrayEquals(bits(e), bits(a), name + " bits");
        }
    }

    @Test
    void roundTripIsBitwiseForEveryDtypeScalarAnd3d() throws Exception {
        Map<String, INDArray> t = sampleTensors();
        Path f = tmp.resolve("a.safetensors");
        SafeTensors.write(f, t, Map.of("model_fingerprint", "abc", "note", "ü"));
        SafeTensors.Contents back = SafeTensors.read(f);
        assertBitwiseEqual(t, back.tensors());
        assertEquals(Map.of("model_fingerprint", "abc", "note", "ü"), back.metadata());
        assertEquals(0, back.tensors().get("scale").rank(), "scalar stays rank 0");
        // the special values survived, not just "some" bits (read raw: ND4J's getFloat widens to double and would
        // quiet the signalling NaN)
        assertEquals(0x7f800001L, bits(back.tensors().get("site0.R"))[1]);
        assertEquals(0x80000000L, bits(back.tensors().get("head.W"))[2] >>> 32);
        try (var files = Files.list(tmp)) {
            assertEquals(List.of(f), files.toList(), "atomic write leaves no temporary file");
        }
    }

    @Test
    void viewsAndFortranOrderAreWrittenInCOrder() {
        INDArray f = Nd4j.create(new float[] {1, 2, 3, 4, 5, 6}, new long[] {2, 3}, 'f');
        INDArray view = Nd4j.create(new float[] {1, 2, 3, 4, 5, 6}, new long[] {2, 3}, 'c').transpose();
        INDArray row = Nd4j.create(new double[] {1, 2, 3, 4, 5, 6}, new long[] {2, 3}, 'c').getRow(1);
        Map<String, INDArray> t = new LinkedHashMap<>();
        t.put("f", f);
        t.put("view", view);
        t.put("row", row);
        Map<String, INDArray> back = SafeTensors.parse(SafeTensors.toBytes(t, null), "mem").tensors();
        assertEquals(f, back.get("f"));
        assertEquals(view, back.get("view"));
        assertArrayEquals(new double[] {4, 5, 6}, back.get("row").toDoubleVector());
        assertArrayEquals(new long[] {3, 2}, back.get("view").shape());
    }

    @Test
    void emptyTensorsAndEmptyFilesRoundTrip() {
        Map<String, INDArray> t = new LinkedHashMap<>();
        t.put("a", Nd4j.create(new float[] {1f}, new long[] {1}, 'c'));
        t.put("none", Nd4j.create(DataType.LONG, 2, 0));
        t.put("b", Nd4j.create(new float[] {2f}, new long[] {1}, 'c'));
        SafeTensors.Contents back = SafeTensors.parse(SafeTensors.toBytes(t, Map.of()), "mem");
        assertArrayEquals(new long[] {2, 0}, back.tensors().get("none").shape());
        assertEquals(DataType.LONG, back.tensors().get("none").dataType());
        assertEquals(2f, back.tensors().get("b").getFloat(0));
        assertTrue(back.metadata().isEmpty());

        SafeTensors.Contents nothing = SafeTensors.parse(SafeTensors.toBytes(Map.of(), null), "mem");
        assertTrue(nothing.tensors().isEmpty());
    }

    /** Checks the layout byte by byte, as any other safetensors reader would see it. */
    @Test
    void writtenFileIsStandardSafetensors() throws Exception {
        Map<String, INDArray> t = new LinkedHashMap<>();
        t.put("site0.R", Nd4j.create(new float[] {1f, -0.0f, Float.intBitsToFloat(0x7fc12345), 4f, 5f, 6f},
                new long[] {2, 3}, 'c'));
        t.put("head.W", Nd4j.createFromArray(new long[] {-2, 9}));
        t.put("s", Nd4j.scalar(2.5));
        Path f = tmp.resolve("std.safetensors");
        SafeTensors.write(f, t, Map.of("model_fingerprint", "fp"));
        byte[] raw = Files.readAllBytes(f);
        ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);

        long n = b.getLong(0);
        assertEquals(0, n % 8, "header padded to a multiple of 8");
        assertEquals(0, (8 + n) % 8, "data section 8-byte aligned");
        String header = new String(raw, 8, (int) n, StandardCharsets.UTF_8);
        assertTrue(header.startsWith("{"), header);
        assertTrue(header.substring(header.lastIndexOf('}') + 1).chars().allMatch(c -> c == ' '),
                "padding is spaces only");

        JsonNode json = new ObjectMapper().readTree(header);
        List<String> keys = new ArrayList<>();
        for (Iterator<String> it = json.fieldNames(); it.hasNext(); ) {
            keys.add(it.next());
        }
        assertEquals(List.of("site0.R", "head.W", "s", "__metadata__"), keys);
        assertEquals("F32", json.get("site0.R").get("dtype").asText());
        assertEquals("[2,3]", json.get("site0.R").get("shape").toString());
        assertEquals("[0,24]", json.get("site0.R").get("data_offsets").toString());
        assertEquals("I64", json.get("head.W").get("dtype").asText());
        assertEquals("[24,40]", json.get("head.W").get("data_offsets").toString());
        assertEquals("F64", json.get("s").get("dtype").asText());
        assertEquals("[]", json.get("s").get("shape").toString());
        assertEquals("[40,48]", json.get("s").get("data_offsets").toString());
        assertEquals("{\"model_fingerprint\":\"fp\"}", json.get("__metadata__").toString());
        assertEquals(8 + n + 48, raw.length, "no trailing bytes");

        int data = (int) (8 + n);
        assertEquals(Float.floatToRawIntBits(1f), b.getInt(data));
        assertEquals(0x80000000, b.getInt(data + 4), "-0.0 as stored");
        assertEquals(0x7fc12345, b.getInt(data + 8), "NaN payload as stored");
        assertEquals(6f, b.getFloat(data + 20));
        assertEquals(-2L, b.getLong(data + 24));
        assertEquals(9L, b.getLong(data + 32));
        assertEquals(2.5, b.getDouble(data + 40));
    }

    /** A file as another writer may lay it out: metadata first, no padding, data in a different order than the header. */
    @Test
    void readsAHandBuiltFileFromAnotherWriter() {
        String header = "{\"__metadata__\":{\"format\":\"pt\"},"
                + "\"b\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[4,12]},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
        ByteBuffer data = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN).putFloat(0.5f).putInt(-3).putInt(4);
        SafeTensors.Contents c = SafeTensors.parse(file(header, data.array()), "hand");
        assertEquals(List.of("b", "a"), new ArrayList<>(c.tensors().keySet()), "header order kept");
        assertArrayEquals(new int[] {-3, 4}, c.tensors().get("b").toIntVector());
        assertEquals(0.5f, c.tensors().get("a").getFloat(0));
        assertEquals(Map.of("format", "pt"), c.metadata());
    }

    static byte[] file(String header, byte[] data) {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length).array());
        out.writeBytes(h);
        out.writeBytes(data);
        return out.toByteArray();
    }

    static final String ONE_F32 = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";

    static CheckpointFormatException rejects(byte[] bytes, String... fragments) {
        CheckpointFormatException e = assertThrows(CheckpointFormatException.class,
                () -> SafeTensors.parse(bytes, "bad.safetensors"));
        assertTrue(e.getMessage().startsWith("bad.safetensors: "), e.getMessage());
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), "expected '" + f + "' in: " + e.getMessage());
        }
        return e;
    }

    @Test
    void rejectsFilesShorterThanTheLengthPrefix() {
        rejects(new byte[5], "5 bytes long", "shorter than the 8-byte header length");
    }

    @Test
    void rejectsHeaderLengthBeyondTheFile() {
        byte[] ok = file(ONE_F32, new byte[8]);
        ByteBuffer.wrap(ok).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 10_000);
        rejects(ok, "header length 10000", "beyond");
        ByteBuffer.wrap(ok).order(ByteOrder.LITTLE_ENDIAN).putLong(0, -1L);
        rejects(ok, "header length 18446744073709551615");
    }

    @Test
    void rejectsInvalidJsonAndWrongShapes() {
        rejects(file("{\"x\": {\"dtype\": \"F32\", ", new byte[0]), "header is not valid JSON");
        rejects(file("[1, 2]", new byte[0]), "must be a JSON object");
        rejects(file("{\"x\":1} trailing", new byte[0]), "not valid JSON");
        rejects(file(ONE_F32.replace("}}", "},\"x\":{}}"), new byte[8]), "not valid JSON", "Duplicate field 'x'");
        rejects(file("{\"__metadata__\":{\"k\":3}}", new byte[0]), "value for key 'k' must be a string");
        rejects(file(ONE_F32.replace("[2]", "[-2]"), new byte[8]), "\"shape\" must be an array of non-negative");
        rejects(file(ONE_F32.replace("[0,8]", "[0]"), new byte[8]), "\"data_offsets\" must be an array of 2");
        byte[] badUtf8 = file("{\"x\":1}", new byte[0]);
        badUtf8[10] = (byte) 0xff;
        rejects(badUtf8, "not valid UTF-8");
    }

    @Test
    void rejectsUnknownAndUnsupportedDtypes() {
        rejects(file(ONE_F32.replace("F32", "Q7"), new byte[8]), "tensor 'x'", "unknown dtype 'Q7'",
                "supported: [F32, F64, I64, I32]");
        rejects(file(ONE_F32.replace("F32", "F16"), new byte[8]), "dtype F16 is not supported here");
    }

    @Test
    void rejectsOffsetsThatDoNotMatchTheShape() {
        rejects(file(ONE_F32.replace("[0,8]", "[0,12]"), new byte[12]), "tensor 'x'", "spanning 12 bytes",
                "needs 8");
        rejects(file(ONE_F32.replace("[0,8]", "[8,0]"), new byte[8]), "begin after end");
    }

    @Test
    void rejectsOffsetsOutOfRangeOverlappingOrWithGaps() {
        rejects(file(ONE_F32, new byte[4]), "tensor 'x'", "beyond the end of the data section (4 bytes)",
                "truncated");
        String two = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"y\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
        rejects(file(two, new byte[12]), "overlaps", "'x'", "'y'");
        String gap = "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
        rejects(file(gap, new byte[8]), "bytes [0, 4) of the data section belong to no tensor");
    }

    @Test
    void rejectsTrailingBytes() {
        rejects(file(ONE_F32, new byte[11]), "3 trailing bytes", "data section is 11 bytes", "cover only 8");
    }

    @Test
    void readNamesTheFileAndRejectsMissingFiles() throws Exception {
        Path f = tmp.resolve("t.safetensors");
        Files.write(f, file(ONE_F32, new byte[7]));
        CheckpointFormatException e = assertThrows(CheckpointFormatException.class, () -> SafeTensors.read(f));
        assertTrue(e.getMessage().startsWith(f.toString()), e.getMessage());
        CheckpointFormatException missing = assertThrows(CheckpointFormatException.class,
                () -> SafeTensors.read(tmp.resolve("nope.safetensors")));
        assertTrue(missing.getMessage().contains("does not exist"), missing.getMessage());
    }

    @Test
    void writeRefusesWhatItCannotStore() {
        IllegalArgumentException half = assertThrows(IllegalArgumentException.class,
                () -> SafeTensors.toBytes(Map.of("h", Nd4j.create(DataType.HALF, 2)), null));
        assertTrue(half.getMessage().contains("HALF"), half.getMessage());
        IllegalArgumentException reserved = assertThrows(IllegalArgumentException.class,
                () -> SafeTensors.toBytes(Map.of("__metadata__", Nd4j.scalar(1f)), null));
        assertTrue(reserved.getMessage().contains("reserved"), reserved.getMessage());
    }
}
