package dev.jreft.hooks.io;

import dev.jreft.hooks.io.AtomicFiles;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * NumPy {@code .npy} (format 1.0/2.0, little-endian, C order) for float32, float64, int64 and int32 arrays.
 * Written by hand because the format is a few lines and the writer must be atomic (temp file + rename).
 */
public final class Npy {
    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    private static final Pattern DESCR = Pattern.compile("'descr'\\s*:\\s*'([^']+)'");
    private static final Pattern ORDER = Pattern.compile("'fortran_order'\\s*:\\s*(True|False)");
    private static final Pattern SHAPE = Pattern.compile("'shape'\\s*:\\s*\\(([^)]*)\\)");

    private Npy() {
    }

    public static INDArray read(Path file) {
        AtomicFiles.requireRegularFile(file, file.toString());
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read .npy file " + file + " (" + AtomicFiles.reason(e) + ")", e);
        }
        return parse(bytes, file.toString());
    }

    /** Parses .npy bytes; anything malformed (truncated, odd header, too few data bytes) is one clear error. */
    public static INDArray parse(byte[] bytes, String origin) {
        try {
            return parseChecked(bytes, origin);
        } catch (java.nio.BufferUnderflowException | IndexOutOfBoundsException | NumberFormatException
                 | ArithmeticException e) {
            throw new IllegalArgumentException(origin + ": found a truncated or malformed .npy file (" + e
                    + "); valid: a NumPy .npy file (format 1.0 or 2.0, C order)", e);
        }
    }

    private static INDArray parseChecked(byte[] bytes, String origin) {
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        for (byte m : MAGIC) {
            if (!b.hasRemaining() || b.get() != m) {
                throw new IllegalArgumentException(origin + " is not a .npy file (bad magic)");
            }
        }
        int major = b.get();
        b.get();
        int headerLen = major == 1 ? Short.toUnsignedInt(b.getShort()) : b.getInt();
        String header = new String(bytes, b.position(), headerLen, StandardCharsets.ISO_8859_1);
        b.position(b.position() + headerLen);
        Matcher d = DESCR.matcher(header);
        Matcher o = ORDER.matcher(header);
        Matcher s = SHAPE.matcher(header);
        if (!d.find() || !o.find() || !s.find()) {
            throw new IllegalArgumentException(origin + ": unreadable .npy header " + header);
        }
        if (o.group(1).equals("True")) {
            throw new IllegalArgumentException(origin + ": Fortran-order arrays are not supported; save C order");
        }
        List<Long> dims = new ArrayList<>();
        for (String part : s.group(1).split(",")) {
            if (!part.isBlank()) {
                dims.add(Long.parseLong(part.trim()));
            }
        }
        long[] shape = dims.stream().mapToLong(Long::longValue).toArray();
        int n = 1;
        for (long x : shape) {
            if (x < 0) {
                throw new IllegalArgumentException(origin + ": found shape " + java.util.Arrays.toString(shape)
                        + " in the .npy header; valid: dimensions >= 0");
            }
            try {
                n = Math.multiplyExact(n, Math.toIntExact(x));
            } catch (ArithmeticException tooMany) {
                throw new IllegalArgumentException(origin + ": found shape " + java.util.Arrays.toString(shape)
                        + " in the .npy header; valid: at most " + Integer.MAX_VALUE + " elements");
            }
        }
        String descr = d.group(1);
        int width = switch (descr) {
            case "<f4", "<i4" -> 4;
            case "<f8", "<i8" -> 8;
            default -> throw new IllegalArgumentException(origin + ": found dtype " + descr
                    + "; valid: <f4, <f8, <i8, <i4 (little-endian float32, float64, int64, int32)");
        };
        if (b.remaining() != (long) n * width) {
            throw new IllegalArgumentException(origin + ": found " + b.remaining() + " data bytes for shape "
                    + java.util.Arrays.toString(shape) + " of " + descr + "; valid: exactly " + (long) n * width
                    + " (is the file truncated?)");
        }
        switch (descr) {
            case "<f4": {
                float[] v = new float[n];
                b.asFloatBuffer().get(v);
                return Nd4j.create(v, shape, 'c');
            }
            case "<f8": {
                double[] v = new double[n];
                b.asDoubleBuffer().get(v);
                return Nd4j.create(v, shape, 'c');
            }
            case "<i8": {
                long[] v = new long[n];
                b.asLongBuffer().get(v);
                return Nd4j.createFromArray(v).reshape(shape);
            }
            case "<i4": {
                int[] v = new int[n];
                b.asIntBuffer().get(v);
                return Nd4j.createFromArray(v).reshape(shape);
            }
            default:
                throw new IllegalArgumentException(origin + ": dtype " + descr
                        + " is not supported (valid: <f4, <f8, <i8, <i4)");
        }
    }

    public static byte[] toBytes(INDArray array) {
        INDArray a = array.dup('c');
        String descr;
        int width;
        switch (a.dataType()) {
            case FLOAT -> { descr = "<f4"; width = 4; }
            case DOUBLE -> { descr = "<f8"; width = 8; }
            case LONG -> { descr = "<i8"; width = 8; }
            case INT -> { descr = "<i4"; width = 4; }
            default -> {
                a = a.castTo(DataType.FLOAT);
                descr = "<f4";
                width = 4;
            }
        }
        StringBuilder shape = new StringBuilder();
        for (long x : a.shape()) {
            shape.append(x).append(", ");
        }
        if (a.rank() > 1) {
            shape.setLength(shape.length() - 2);
        } else if (a.rank() == 1) {
            shape.setLength(shape.length() - 1);
        }
        String header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + shape + "), }";
        int total = MAGIC.length + 4 + header.length() + 1;
        int pad = (64 - total % 64) % 64;
        header = header + " ".repeat(pad) + "\n";
        long n = a.length();
        ByteBuffer out = ByteBuffer.allocate(MAGIC.length + 4 + header.length() + (int) n * width)
                .order(ByteOrder.LITTLE_ENDIAN);
        out.put(MAGIC).put((byte) 1).put((byte) 0).putShort((short) header.length());
        out.put(header.getBytes(StandardCharsets.ISO_8859_1));
        switch (descr) {
            case "<f4" -> out.asFloatBuffer().put(a.data().asFloat());
            case "<f8" -> out.asDoubleBuffer().put(a.data().asDouble());
            case "<i8" -> out.asLongBuffer().put(a.data().asLong());
            default -> out.asIntBuffer().put(a.data().asInt());
        }
        return out.array();
    }

    public static void write(Path file, INDArray array) throws IOException {
        AtomicFiles.write(file, toBytes(array));
    }
}
