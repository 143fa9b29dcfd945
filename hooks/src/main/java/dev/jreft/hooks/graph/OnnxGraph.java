package dev.jreft.hooks.graph;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.OperatorSetIdProto;
import ai.onnx.proto.OnnxMl.StringStringEntryProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TensorShapeProto;
import ai.onnx.proto.OnnxMl.TypeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import com.google.protobuf.ByteString;
import com.google.protobuf.CodedInputStream;
import dev.jreft.hooks.io.AtomicFiles;
import dev.jreft.hooks.io.SafeNames;

import java.io.IOException;
import java.io.InputStream;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * A mutable ONNX model: nodes, values and initializers with producer/consumer indexes, and the few edits the
 * framework needs (expose a tensor as an output, splice a subgraph in front of a tensor's consumers, add inputs).
 *
 * <p>The protobuf builder is the single source of truth; the indexes are rebuilt lazily after each edit, so they
 * can never disagree with the graph.
 */
public final class OnnxGraph {
    private final ModelProto.Builder model;
    private final String origin;
    private Map<String, Integer> producerIndex;
    private Map<String, List<Integer>> consumerIndex;
    private Map<String, Integer> initializerIndex;
    private Map<String, ValueInfoProto> valueInfoIndex;
    private String fingerprint;

    private OnnxGraph(ModelProto.Builder model, String origin) {
        this.model = model;
        this.origin = origin;
    }

    /** An empty model importing the default domain at {@code opset} (for graphs built from scratch). */
    public static OnnxGraph create(int opset, String origin) {
        ModelProto.Builder m = ModelProto.newBuilder().setIrVersion(opset >= 19 ? 9 : 8)
                .setProducerName("jreft").addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(opset));
        m.getGraphBuilder().setName(origin);
        return new OnnxGraph(m, origin);
    }

    /** Loads a model file; tensors stored as external data are read from files beside it. */
    public static OnnxGraph load(Path file) {
        AtomicFiles.requireRegularFile(file, "model");
        ByteString bytes;
        try {
            bytes = read(file);
        } catch (NoSuchFileException e) {
            throw new OnnxFormatException("ONNX file not found: " + file);
        } catch (IOException e) {
            throw new OnnxFormatException("cannot read ONNX file " + file + " (" + AtomicFiles.reason(e) + ")", e);
        }
        Path dir = file.toAbsolutePath().getParent();
        return parse(bytes, true, file.toString(), dir, null); // read here, so never modified
    }

    /**
     * Serialized models at least this large are parsed from native memory (see {@link #parse(byte[], String, Path)}).
     */
    static final int OFF_HEAP_BYTES = 1 << 20;

    /** A file's bytes: in native memory when large (read without a heap copy), else on the heap. */
    private static ByteString read(Path file) throws IOException {
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(file)) {
            long size = ch.size();
            if (size >= OFF_HEAP_BYTES && size <= Integer.MAX_VALUE) {
                java.nio.ByteBuffer direct = allocateNative((int) size);
                if (direct != null) {
                    while (direct.hasRemaining() && ch.read(direct) >= 0) {
                        // read it all
                    }
                    direct.flip();
                    return com.google.protobuf.UnsafeByteOperations.unsafeWrap(direct);
                }
            }
        }
        return com.google.protobuf.UnsafeByteOperations.unsafeWrap(Files.readAllBytes(file));
    }

    /** A direct buffer of {@code size} bytes, or null when the JVM's direct-memory limit refuses it. */
    private static java.nio.ByteBuffer allocateNative(int size) {
        try {
            return java.nio.ByteBuffer.allocateDirect(size);
        } catch (OutOfMemoryError e) {
            return null; // -XX:MaxDirectMemorySize: the heap holds the model, as before
        }
    }

    /** Loads a model stored as a resource on the class path (for example inside a Maven artifact's jar). */
    public static OnnxGraph fromResource(String resource) {
        String name = resource.startsWith("/") ? resource.substring(1) : resource;
        java.net.URL url = OnnxGraph.class.getClassLoader().getResource(name);
        if (url == null) {
            throw new OnnxFormatException("resource '" + name + "' is not on the class path;"
                    + " add the Maven artifact that holds it as a dependency");
        }
        try {
            java.net.URLConnection c = url.openConnection();
            c.setUseCaches(false); // the jar file is not kept open for the JVM's lifetime
            long size = c.getContentLengthLong();
            try (InputStream in = c.getInputStream()) {
                java.nio.ByteBuffer direct = size >= OFF_HEAP_BYTES && size <= Integer.MAX_VALUE
                        ? allocateNative((int) size) : null;
                if (direct == null) {
                    return parse(in.readAllBytes(), "classpath:" + name, null);
                }
                // straight into native memory, a chunk at a time: no copy of the model on the heap
                byte[] chunk = new byte[1 << 16];
                for (int n; direct.hasRemaining() && (n = in.read(chunk, 0, Math.min(chunk.length,
                        direct.remaining()))) >= 0; ) {
                    direct.put(chunk, 0, n);
                }
                if (direct.hasRemaining() || in.read() >= 0) {
                    throw new IOException("the resource is not the " + size + " bytes its jar entry declares");
                }
                direct.flip();
                return parse(com.google.protobuf.UnsafeByteOperations.unsafeWrap(direct), true, "classpath:" + name,
                        null, null);
            }
        } catch (IOException e) {
            throw new OnnxFormatException("cannot read resource " + name + ": " + e.getMessage(), e);
        }
    }

    /**
     * Parses serialized model bytes; {@code externalDataDir} resolves external-data locations (may be null).
     *
     * <p>A large model is copied once into native memory and parsed from there with aliasing: every initializer's
     * {@code raw_data} is a slice of that one buffer, so the weights live outside the Java heap (which then holds
     * only the graph's structure, and no garbage the size of the model), and ONNX Runtime sessions read them in
     * place ({@code dev.jreft.hooks.runtime.SharedInitializers}) instead of each keeping a copy.
     */
    public static OnnxGraph parse(byte[] bytes, String origin, Path externalDataDir) {
        java.nio.ByteBuffer direct = bytes.length >= OFF_HEAP_BYTES ? allocateNative(bytes.length) : null;
        if (direct == null) {
            return parse(bytes, origin, externalDataDir, null);
        }
        direct.put(bytes).flip();
        return parse(com.google.protobuf.UnsafeByteOperations.unsafeWrap(direct), true, origin, externalDataDir, null);
    }

    /**
     * As {@link #parse(byte[], String, Path)}; initializers stored as external data that hold the same values as
     * {@code like}'s initializer of the same name share its bytes instead of being read (what ORT wrote of a
     * graph derived from {@code like}: only what it computed anew costs memory).
     */
    public static OnnxGraph parse(byte[] bytes, String origin, Path externalDataDir, OnnxGraph like) {
        // the caller keeps its array: the graph's tensors are copies of it
        return parse(com.google.protobuf.UnsafeByteOperations.unsafeWrap(bytes), false, origin, externalDataDir, like);
    }

    /** {@code alias}: the graph's tensors are slices of {@code bytes}, which nobody may modify afterwards. */
    private static OnnxGraph parse(ByteString bytes, boolean alias, String origin, Path externalDataDir,
                                   OnnxGraph like) {
        ModelProto proto;
        try {
            CodedInputStream in = bytes.newCodedInput();
            in.enableAliasing(alias);
            in.setSizeLimit(Integer.MAX_VALUE);
            in.setRecursionLimit(1000);
            proto = ModelProto.parseFrom(in);
        } catch (IOException e) {
            throw new OnnxFormatException(origin + " is not a valid ONNX model (" + bytes.size()
                    + " bytes; the protobuf could not be parsed: " + e.getMessage()
                    + "). Is the file truncated, or not an .onnx export?", e);
        }
        return of(proto, origin, bytes.size() + " bytes read", externalDataDir, like);
    }

    /**
     * A graph over an already built model (no serialisation: it shares the model's tensors), checked as
     * {@link #parse(byte[], String, Path)} checks a parsed one.
     */
    public static OnnxGraph wrap(ModelProto proto, String origin) {
        return of(proto, origin, proto.getSerializedSize() + " bytes", null, null);
    }

    private static OnnxGraph of(ModelProto proto, String origin, String size, Path externalDataDir, OnnxGraph like) {
        if (!proto.hasGraph() || proto.getGraph().getNodeCount() == 0) {
            throw new OnnxFormatException(origin + " is not a valid ONNX model: it has no graph nodes ("
                    + size + "). Is the file truncated, or not an .onnx export?");
        }
        if (proto.getOpsetImportCount() == 0) {
            throw new OnnxFormatException(origin + " is not a valid ONNX model: it declares no opset import");
        }
        ModelProto.Builder builder = proto.toBuilder();
        resolveExternalData(builder.getGraphBuilder(), origin, externalDataDir, like);
        return new OnnxGraph(builder, origin);
    }

    private static void resolveExternalData(GraphProto.Builder graph, String origin, Path dir, OnnxGraph like) {
        java.nio.ByteBuffer chunk = null; // for comparing with like's tensors, one for all
        for (int i = 0; i < graph.getInitializerCount(); i++) {
            TensorProto t = graph.getInitializer(i);
            if (t.getDataLocation() != TensorProto.DataLocation.EXTERNAL) {
                continue;
            }
            Map<String, String> info = new HashMap<>();
            for (StringStringEntryProto e : t.getExternalDataList()) {
                info.put(e.getKey(), e.getValue());
            }
            String location = info.get("location");
            if (location == null || dir == null) {
                throw new OnnxFormatException("initializer '" + t.getName() + "' of " + origin
                        + " is stored as external data " + (location == null ? "without a location"
                        : "in '" + location + "', but the model was not loaded from a file"));
            }
            Path file = externalDataFile(dir, location, t.getName(), origin);
            long offset = externalDataNumber(info, "offset", 0, t.getName(), origin);
            try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "r")) {
                long length = externalDataNumber(info, "length", raf.length() - offset, t.getName(), origin);
                if (offset + length > raf.length()) {
                    throw new OnnxFormatException("external data file " + file + " is too short for initializer '"
                            + t.getName() + "' (needs bytes " + offset + ".." + (offset + length) + ", has "
                            + raf.length() + ")");
                }
                if (like != null && chunk == null) {
                    chunk = java.nio.ByteBuffer.allocate(1 << 20);
                }
                ByteString same = like == null ? null : sameData(like, t, raf.getChannel(), offset, length, chunk);
                ByteString data = same != null ? same : readData(raf.getChannel(), offset, Math.toIntExact(length));
                graph.setInitializer(i, t.toBuilder().clearExternalData().clearDataLocation().setRawData(data));
            } catch (IOException e) {
                throw new OnnxFormatException("cannot read external data '" + location + "' of initializer '"
                        + t.getName() + "' from " + file + ": " + e.getMessage(), e);
            }
        }
    }

    /** {@code length} bytes at {@code offset}: in native memory when large, as {@link #parse} keeps weights. */
    private static ByteString readData(java.nio.channels.FileChannel ch, long offset, int length) throws IOException {
        java.nio.ByteBuffer b = length >= OFF_HEAP_BYTES ? allocateNative(length) : null;
        if (b == null) {
            b = java.nio.ByteBuffer.allocate(length);
        }
        readFully(ch, b, offset);
        b.flip();
        return b.isDirect() ? com.google.protobuf.UnsafeByteOperations.unsafeWrap(b)
                : com.google.protobuf.UnsafeByteOperations.unsafeWrap(b.array());
    }

    private static void readFully(java.nio.channels.FileChannel ch, java.nio.ByteBuffer b, long offset)
            throws IOException {
        long at = offset;
        while (b.hasRemaining()) {
            int n = ch.read(b, at);
            if (n < 0) {
                throw new java.io.EOFException("external data ends at byte " + at);
            }
            at += n;
        }
    }

    /**
     * The raw data of {@code like}'s initializer named as {@code t}, when it has the same type and dims and the file
     * holds the same bytes at {@code offset} (compared a chunk at a time); null otherwise.
     */
    private static ByteString sameData(OnnxGraph like, TensorProto t, java.nio.channels.FileChannel ch, long offset,
                                       long length, java.nio.ByteBuffer chunk) throws IOException {
        TensorProto o = like.initializer(t.getName()).orElse(null);
        if (o == null || !o.hasRawData() || o.getDataType() != t.getDataType() || !o.getDimsList().equals(t.getDimsList())
                || o.getRawData().size() != length) {
            return null;
        }
        java.nio.ByteBuffer mine = o.getRawData().asReadOnlyByteBuffer();
        for (long done = 0; done < length; ) {
            int n = (int) Math.min(chunk.capacity(), length - done);
            chunk.clear().limit(n);
            readFully(ch, chunk, offset + done);
            chunk.flip();
            java.nio.ByteBuffer part = mine.duplicate();
            part.position((int) done).limit((int) done + n);
            if (!chunk.equals(part)) {
                return null;
            }
            done += n;
        }
        return o.getRawData();
    }

    /**
     * The file an external-data {@code location} names. The ONNX rule: a path relative to the model's folder that
     * stays inside it; an absolute path, a {@code ..} that climbs out, or a link to a file outside is refused, so a
     * model file cannot make jreft read anything else on the machine.
     */
    private static Path externalDataFile(Path dir, String location, String tensor, String origin) {
        String what = "initializer '" + tensor + "' of " + origin + ": external data location";
        try {
            Path file = SafeNames.insideReal(dir, location, what);
            if (!Files.isRegularFile(file)) {
                throw new OnnxFormatException(what + " '" + location + "': found no file " + file + "; valid: a data"
                        + " file beside the model, as the exporter wrote it");
            }
            return file;
        } catch (IllegalArgumentException | IOException e) {
            throw new OnnxFormatException(e instanceof IllegalArgumentException ? e.getMessage()
                    : what + " '" + location + "' is not a usable path (" + e.getMessage() + ")", e);
        }
    }

    private static long externalDataNumber(Map<String, String> info, String key, long absent, String tensor,
                                           String origin) {
        String v = info.get(key);
        if (v == null) {
            return absent;
        }
        java.util.OptionalLong n = dev.jreft.hooks.io.Check.wholeNumber(v);
        if (n.isPresent()) {
            return n.getAsLong();
        }
        throw new OnnxFormatException("initializer '" + tensor + "' of " + origin + ": external data " + key
                + ": found '" + v + "'; valid: a byte count >= 0");
    }

    public String origin() {
        return origin;
    }

    public OnnxGraph copy() {
        OnnxGraph g = new OnnxGraph(model.clone(), origin);
        g.fingerprint = null;
        return g;
    }

    // ---------------------------------------------------------------- reading

    public List<NodeProto> nodes() {
        return Collections.unmodifiableList(model.getGraphBuilder().getNodeList());
    }

    public NodeProto node(int index) {
        return model.getGraphBuilder().getNode(index);
    }

    public List<ValueInfoProto> inputs() {
        return model.getGraphBuilder().getInputList();
    }

    public List<ValueInfoProto> outputs() {
        return model.getGraphBuilder().getOutputList();
    }

    public List<String> inputNames() {
        Set<String> inits = initializerIndex().keySet();
        return inputs().stream().map(ValueInfoProto::getName).filter(n -> !inits.contains(n)).toList();
    }

    public List<String> outputNames() {
        return outputs().stream().map(ValueInfoProto::getName).toList();
    }

    /** The default-domain opset version the model imports. */
    public int opset() {
        for (OperatorSetIdProto op : model.getOpsetImportList()) {
            if (op.getDomain().isEmpty() || op.getDomain().equals("ai.onnx")) {
                return (int) op.getVersion();
            }
        }
        return 0;
    }

    /** Imports {@code domain} at {@code version} unless the model imports it already. */
    public void importDomain(String domain, int version) {
        if (model.getOpsetImportList().stream().noneMatch(op -> op.getDomain().equals(domain))) {
            model.addOpsetImport(OperatorSetIdProto.newBuilder().setDomain(domain).setVersion(version));
            changed();
        }
    }

    /** The node producing {@code tensor}, or empty for graph inputs, initializers and unknown names. */
    public Optional<NodeProto> producer(String tensor) {
        Integer i = producerIndex().get(tensor);
        return i == null ? Optional.empty() : Optional.of(node(i));
    }

    public int producerPosition(String tensor) {
        Integer i = producerIndex().get(tensor);
        return i == null ? -1 : i;
    }

    public List<NodeProto> consumers(String tensor) {
        List<Integer> idx = consumerIndex().getOrDefault(tensor, List.of());
        List<NodeProto> out = new ArrayList<>(idx.size());
        for (int i : idx) {
            out.add(node(i));
        }
        return out;
    }

    /** The value of a one-element float constant (an initializer or a Constant node); null when it is not one. */
    public Double constantScalar(String tensor) {
        TensorProto t = initializer(tensor).orElse(null);
        if (t == null) {
            var producer = producer(tensor);
            if (producer.isEmpty() || !producer.get().getOpType().equals("Constant")) {
                return null;
            }
            t = producer.get().getAttributeList().stream().filter(a -> a.getName().equals("value")).findFirst()
                    .map(a -> a.getT()).orElse(null);
        }
        if (t == null || t.getDimsList().stream().reduce(1L, (a, b) -> a * b) != 1) {
            return null;
        }
        return switch (t.getDataType()) {
            case TensorProto.DataType.FLOAT_VALUE -> t.hasRawData()
                    ? (double) t.getRawData().asReadOnlyByteBuffer().order(java.nio.ByteOrder.LITTLE_ENDIAN).getFloat()
                    : t.getFloatData(0);
            case TensorProto.DataType.DOUBLE_VALUE -> t.hasRawData()
                    ? t.getRawData().asReadOnlyByteBuffer().order(java.nio.ByteOrder.LITTLE_ENDIAN).getDouble()
                    : t.getDoubleData(0);
            default -> null;
        };
    }

    public boolean isInitializer(String tensor) {
        return initializerIndex().containsKey(tensor);
    }

    public Optional<TensorProto> initializer(String name) {
        Integer i = initializerIndex().get(name);
        return i == null ? Optional.empty() : Optional.of(model.getGraphBuilder().getInitializer(i));
    }

    /** The values of float initializer {@code name}, row-major (raw data or the float_data list). */
    public float[] floats(String name) {
        TensorProto t = initializer(name).orElseThrow(() -> new IllegalArgumentException(
                "graph has no initializer '" + name + "'"));
        if (t.getDataType() != TensorProto.DataType.FLOAT_VALUE) {
            throw new IllegalArgumentException("initializer '" + name + "' is not float32 (data type "
                    + t.getDataType() + ")");
        }
        if (t.hasRawData()) {
            float[] v = new float[t.getRawData().size() / 4];
            t.getRawData().asReadOnlyByteBuffer().order(java.nio.ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(v);
            return v;
        }
        float[] v = new float[t.getFloatDataCount()];
        for (int i = 0; i < v.length; i++) {
            v[i] = t.getFloatData(i);
        }
        return v;
    }

    /**
     * The values of a float32, int8 or uint8 initializer as floats, row-major: what a quantised weight or zero point
     * holds before its scale.
     */
    public float[] numbers(String name) {
        TensorProto t = initializer(name).orElseThrow(() -> new IllegalArgumentException(
                "graph has no initializer '" + name + "'"));
        int type = t.getDataType();
        if (type == TensorProto.DataType.FLOAT_VALUE) {
            return floats(name);
        }
        boolean signed = type == TensorProto.DataType.INT8_VALUE;
        if (!ElemTypes.isInt8(type)) {
            throw new IllegalArgumentException("initializer '" + name + "' is not float32, int8 or uint8 (data type "
                    + type + ")");
        }
        float[] v;
        if (t.hasRawData()) {
            byte[] raw = t.getRawData().toByteArray();
            v = new float[raw.length];
            for (int i = 0; i < raw.length; i++) {
                v[i] = signed ? raw[i] : raw[i] & 0xff;
            }
        } else { // int32_data holds 8-bit values one per entry
            v = new float[t.getInt32DataCount()];
            for (int i = 0; i < v.length; i++) {
                v[i] = t.getInt32Data(i);
            }
        }
        return v;
    }

    /** Replaces the values of float initializer {@code name}, keeping its name and dims (a merge). */
    public void setFloats(String name, float[] values) {
        GraphProto.Builder g = model.getGraphBuilder();
        Integer i = initializerIndex().get(name);
        if (i == null) {
            throw new IllegalArgumentException("graph has no initializer '" + name + "'");
        }
        TensorProto old = g.getInitializer(i);
        long n = old.getDimsList().stream().reduce(1L, (a, b) -> a * b);
        if (n != values.length || old.getDataType() != TensorProto.DataType.FLOAT_VALUE) {
            throw new IllegalArgumentException("initializer '" + name + "': " + values.length + " float values for "
                    + old.getDimsList() + " of data type " + old.getDataType());
        }
        java.nio.ByteBuffer raw = java.nio.ByteBuffer.allocate(values.length * 4).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        raw.asFloatBuffer().put(values);
        g.setInitializer(i, old.toBuilder().clearFloatData().clearExternalData()
                .setDataLocation(TensorProto.DataLocation.DEFAULT).setRawData(ByteString.copyFrom(raw.array())));
        changed();
    }

    public List<TensorProto> initializers() {
        return model.getGraphBuilder().getInitializerList();
    }

    public boolean isGraphInput(String tensor) {
        return inputs().stream().anyMatch(v -> v.getName().equals(tensor)) && !isInitializer(tensor);
    }

    /** True when the name is produced by a node, is a graph input or an initializer. */
    public boolean hasTensor(String tensor) {
        return producerIndex().containsKey(tensor) || isInitializer(tensor)
                || inputs().stream().anyMatch(v -> v.getName().equals(tensor));
    }

    /** Every tensor name produced by a node, in graph order. */
    public List<String> producedTensors() {
        List<String> out = new ArrayList<>();
        for (NodeProto n : model.getGraphBuilder().getNodeList()) {
            for (String o : n.getOutputList()) {
                if (!o.isEmpty()) {
                    out.add(o);
                }
            }
        }
        return out;
    }

    public Optional<ValueInfoProto> valueInfo(String tensor) {
        if (valueInfoIndex == null) {
            Map<String, ValueInfoProto> m = new HashMap<>();
            GraphProto.Builder g = model.getGraphBuilder();
            g.getValueInfoList().forEach(v -> m.put(v.getName(), v));
            g.getInputList().forEach(v -> m.put(v.getName(), v));
            g.getOutputList().forEach(v -> m.put(v.getName(), v));
            valueInfoIndex = m;
        }
        return Optional.ofNullable(valueInfoIndex.get(tensor));
    }

    /** The declared size of {@code tensor}'s last axis (an output's vocabulary, a hidden width); -1 when unknown. */
    public long lastDim(String tensor) {
        return valueInfo(tensor).map(v -> {
            var dims = v.getType().getTensorType().getShape().getDimList();
            return dims.isEmpty() || !dims.get(dims.size() - 1).hasDimValue() ? -1L
                    : dims.get(dims.size() - 1).getDimValue();
        }).orElse(-1L);
    }

    /** Scalar parameters in float initializers and int8 weight matrices (the model's frozen weights). */
    public long parameterCount() {
        long n = 0;
        for (TensorProto t : initializers()) {
            int type = t.getDataType();
            // an int8 export's weight matrices and embedding tables count as the parameters they quantise (their
            // per-column scales count too, as float vectors; their zero points do not)
            boolean int8Weight = ElemTypes.isInt8(type) && t.getDimsCount() >= 2;
            if ((type == TensorProto.DataType.FLOAT_VALUE && t.getDimsCount() > 0) || int8Weight) {
                long c = 1;
                for (long d : t.getDimsList()) {
                    c *= d;
                }
                n += c;
            }
        }
        return n;
    }

    public static String attrString(NodeProto node, String name, String fallback) {
        for (AttributeProto a : node.getAttributeList()) {
            if (a.getName().equals(name)) {
                return a.getS().toStringUtf8();
            }
        }
        return fallback;
    }

    public static long attrInt(NodeProto node, String name, long fallback) {
        for (AttributeProto a : node.getAttributeList()) {
            if (a.getName().equals(name)) {
                return a.getI();
            }
        }
        return fallback;
    }

    public static List<Long> attrInts(NodeProto node, String name) {
        for (AttributeProto a : node.getAttributeList()) {
            if (a.getName().equals(name)) {
                return a.getIntsList();
            }
        }
        return List.of();
    }

    // ---------------------------------------------------------------- editing

    /** Adds {@code tensor} to the graph outputs (no-op when it already is one), so a run can read it. */
    public void exposeOutput(String tensor, int elemType) {
        requireTensor(tensor);
        if (outputNames().contains(tensor)) {
            return;
        }
        model.getGraphBuilder().addOutput(ValueInfoProto.newBuilder().setName(tensor)
                .setType(TypeProto.newBuilder().setTensorType(TypeProto.Tensor.newBuilder().setElemType(elemType))));
        // nodes and initializers are as they were: only the indexes that read the outputs are stale (exposing every
        // intermediate of a graph rebuilt the node indexes once per tensor)
        valueInfoIndex = null;
        fingerprint = null;
    }

    /** Adds a graph input with the given element type and dims (a negative dim or null name is symbolic). */
    public void addInput(String name, int elemType, long[] dims, String[] dimNames) {
        if (hasTensor(name)) {
            throw new IllegalArgumentException("graph already has a tensor named '" + name + "'");
        }
        model.getGraphBuilder().addInput(ValueInfoProto.newBuilder().setName(name).setType(TypeProto.newBuilder()
                .setTensorType(TypeProto.Tensor.newBuilder().setElemType(elemType).setShape(shape(name, dims,
                        dimNames)))));
        changed();
    }

    /** Adds {@code tensor} to the graph outputs with a declared shape (a negative dim or null name is symbolic). */
    public void exposeOutput(String tensor, int elemType, long[] dims, String[] dimNames) {
        requireTensor(tensor);
        model.getGraphBuilder().addOutput(ValueInfoProto.newBuilder().setName(tensor).setType(TypeProto.newBuilder()
                .setTensorType(TypeProto.Tensor.newBuilder().setElemType(elemType).setShape(shape(tensor, dims,
                        dimNames)))));
        valueInfoIndex = null;
        fingerprint = null;
    }

    private static TensorShapeProto.Builder shape(String name, long[] dims, String[] dimNames) {
        TensorShapeProto.Builder shape = TensorShapeProto.newBuilder();
        for (int i = 0; i < dims.length; i++) {
            TensorShapeProto.Dimension.Builder d = TensorShapeProto.Dimension.newBuilder();
            if (dims[i] >= 0) {
                d.setDimValue(dims[i]);
            } else {
                d.setDimParam(dimNames != null && dimNames[i] != null ? dimNames[i] : name + "_dim" + i);
            }
            shape.addDim(d);
        }
        return shape;
    }

    /**
     * Turns graph input {@code name} into a float initializer holding {@code values} (row-major) with the given dims:
     * how trained weights fed as inputs become the frozen model's own.
     */
    public void freezeInput(String name, float[] values, long[] dims) {
        long n = 1;
        for (long d : dims) {
            n *= d;
        }
        if (n != values.length) {
            throw new IllegalArgumentException("input '" + name + "': " + values.length + " values for dims "
                    + java.util.Arrays.toString(dims));
        }
        java.nio.ByteBuffer raw = java.nio.ByteBuffer.allocate(values.length * 4).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        raw.asFloatBuffer().put(values);
        inputToInitializer(name, ElemTypes.FLOAT, raw.array(), dims);
    }

    /** Position of {@code name} in the graph's input list (which may also list initializers), or -1. */
    private int inputIndex(String name) {
        List<ValueInfoProto> in = model.getGraphBuilder().getInputList();
        for (int i = 0; i < in.size(); i++) {
            if (in.get(i).getName().equals(name)) {
                return i;
            }
        }
        return -1;
    }

    /** Graph input {@code name} becomes an initializer of the given element type, raw little-endian bytes and dims. */
    private void inputToInitializer(String name, int elemType, byte[] raw, long[] dims) {
        int idx = inputIndex(name);
        if (idx < 0) {
            throw new IllegalArgumentException("graph has no input '" + name + "' (inputs: " + inputNames() + ")");
        }
        TensorProto.Builder t = TensorProto.newBuilder().setName(name).setDataType(elemType)
                .setRawData(ByteString.copyFrom(raw));
        for (long d : dims) {
            t.addDims(d);
        }
        GraphProto.Builder g = model.getGraphBuilder();
        g.removeInput(idx);
        g.addInitializer(t);
        changed();
    }

    /**
     * Turns float initializers into graph inputs of the same name and dims (the inverse of {@link #freezeInput}):
     * how model weights become trainable, fed and differentiated like any parameter, and never folded into
     * constants by shape specialisation. Returns their values, row-major.
     */
    public Map<String, float[]> unfreeze(List<String> names) {
        Map<String, float[]> values = new java.util.LinkedHashMap<>();
        for (String name : names) {
            TensorProto t = initializer(name).orElseThrow(() -> new IllegalArgumentException(
                    "graph has no initializer '" + name + "'"));
            values.put(name, floats(name));
            ValueInfoProto.Builder in = ValueInfoProto.newBuilder().setName(name);
            TypeProto.Tensor.Builder tensor = in.getTypeBuilder().getTensorTypeBuilder().setElemType(t.getDataType());
            for (long d : t.getDimsList()) {
                tensor.getShapeBuilder().addDimBuilder().setDimValue(d);
            }
            GraphProto.Builder g = model.getGraphBuilder();
            g.removeInitializer(initializerIndex().get(name));
            g.addInput(in);
            changed();
        }
        return values;
    }

    /** Turns graph input {@code name} into a bool initializer holding {@code values} (row-major). */
    public void freezeBoolInput(String name, boolean[] values, long[] dims) {
        byte[] raw = new byte[values.length];
        for (int i = 0; i < values.length; i++) {
            raw[i] = (byte) (values[i] ? 1 : 0);
        }
        inputToInitializer(name, ElemTypes.BOOL, raw, dims);
    }

    /**
     * Replaces graph input {@code name} by what {@code body} computes from the other inputs and constants: the nodes
     * go first in the graph, so every consumer of the input still comes after them (a mask that a run used to feed,
     * computed from {@code attention_mask} in an exported graph).
     */
    public void defineInput(String name, String namespace, java.util.function.Function<SubgraphBuilder, String> body) {
        int idx = inputIndex(name);
        if (idx < 0) {
            throw new IllegalArgumentException("graph has no input '" + name + "' (inputs: " + inputNames() + ")");
        }
        SubgraphBuilder b = new SubgraphBuilder(this, namespace);
        b.opTo(name, "Identity", List.of(body.apply(b)));
        GraphProto.Builder g = model.getGraphBuilder();
        g.removeInput(idx);
        List<NodeProto> nodes = b.nodes();
        for (int i = 0; i < nodes.size(); i++) {
            g.addNode(i, nodes.get(i));
        }
        changed();
        b.commitInputsAndOutputs();
    }

    public void addInitializer(TensorProto tensor) {
        if (hasTensor(tensor.getName())) {
            throw new IllegalArgumentException("graph already has a tensor named '" + tensor.getName() + "'");
        }
        model.getGraphBuilder().addInitializer(tensor);
        changed();
    }

    /** Appends nodes; ONNX requires topological order, so callers append consumers after producers. */
    public void addNodes(List<NodeProto> nodes) {
        model.getGraphBuilder().addAllNode(nodes);
        changed();
    }

    /**
     * Rewrites the node list in one pass: the nodes at {@code removed} go, and each node of {@code inserted} takes
     * the place of the node at its key (which is then removed too). Callers keep the topological order.
     */
    public void replaceNodes(Set<Integer> removed, Map<Integer, NodeProto> inserted) {
        List<NodeProto> nodes = model.getGraphBuilder().getNodeList();
        List<NodeProto> out = new ArrayList<>(nodes.size());
        for (int i = 0; i < nodes.size(); i++) {
            NodeProto replacement = inserted.get(i);
            if (replacement != null) {
                out.add(replacement);
            } else if (!removed.contains(i)) {
                out.add(nodes.get(i));
            }
        }
        model.getGraphBuilder().clearNode().addAllNode(out);
        changed();
    }

    /**
     * Removes every node none of whose outputs reaches a graph output; returns how many went. ORT runs every node
     * of a session's graph, used or not, so a rule that emits a gradient nobody reads (a constant's) would cost a
     * kernel every step.
     */
    public int removeDeadNodes() {
        List<NodeProto> nodes = model.getGraphBuilder().getNodeList();
        Set<String> needed = new HashSet<>(outputNames());
        boolean[] keep = new boolean[nodes.size()];
        int removed = 0;
        for (int i = nodes.size() - 1; i >= 0; i--) {
            NodeProto n = nodes.get(i);
            keep[i] = n.getOutputList().stream().anyMatch(needed::contains);
            if (keep[i]) {
                needed.addAll(n.getInputList());
                outerNames(n, needed); // an If / Loop body reads outer tensors by name
            } else {
                removed++;
            }
        }
        if (removed > 0) {
            List<NodeProto> kept = new ArrayList<>(nodes.size() - removed);
            for (int i = 0; i < nodes.size(); i++) {
                if (keep[i]) {
                    kept.add(nodes.get(i));
                }
            }
            model.getGraphBuilder().clearNode().addAllNode(kept);
            changed();
        }
        return removed;
    }

    private static void outerNames(NodeProto n, Set<String> into) {
        for (var a : n.getAttributeList()) {
            List<GraphProto> bodies = new ArrayList<>(a.getGraphsList());
            if (a.hasG()) {
                bodies.add(a.getG());
            }
            for (GraphProto body : bodies) {
                for (NodeProto inner : body.getNodeList()) {
                    into.addAll(inner.getInputList());
                    outerNames(inner, into);
                }
            }
        }
    }

    /**
     * Splices a subgraph in front of every consumer of {@code tensor}: the producer's output is renamed to
     * {@code originalName}, and {@code nodes} (which read {@code originalName} and write {@code tensor}) are
     * inserted right after the producer. Every consumer, graph outputs included, then sees the new value under
     * the old name, so downstream hooks and outputs need no renaming.
     */
    public void spliceBefore(String tensor, String originalName, List<NodeProto> nodes) {
        requireTensor(tensor);
        if (hasTensor(originalName)) {
            throw new IllegalArgumentException("graph already has a tensor named '" + originalName + "'");
        }
        int p = producerPosition(tensor);
        if (p < 0) {
            throw new IllegalArgumentException("tensor '" + tensor + "' is a graph input or initializer;"
                    + " only tensors computed by a node can be intervened on");
        }
        GraphProto.Builder g = model.getGraphBuilder();
        NodeProto producer = g.getNode(p);
        NodeProto.Builder renamed = producer.toBuilder();
        for (int i = 0; i < renamed.getOutputCount(); i++) {
            if (renamed.getOutput(i).equals(tensor)) {
                renamed.setOutput(i, originalName);
            }
        }
        g.setNode(p, renamed);
        for (int i = 0; i < nodes.size(); i++) {
            g.addNode(p + 1 + i, nodes.get(i));
        }
        changed();
    }

    /** Body of a splice: gets the name now holding the original value, returns the replacement tensor. */
    @FunctionalInterface
    public interface SpliceBody {
        String emit(SubgraphBuilder b, String original);
    }

    /**
     * Replaces {@code tensor} for all its consumers by what {@code body} computes from the original value. The
     * nodes live in {@code namespace}; graph inputs the body declares are added. Splices at the same tensor chain:
     * the second one sees the first one's result as its original.
     */
    public void splice(String tensor, String namespace, SpliceBody body) {
        SubgraphBuilder b = new SubgraphBuilder(this, namespace);
        String original = namespace + "/original";
        String result = body.emit(b, original);
        b.opTo(tensor, "Identity", List.of(result));
        spliceBefore(tensor, original, b.nodes());
        b.commitInputsAndOutputs();
    }

    /**
     * Adds nodes at the start of the graph: values computed from graph inputs and constants only (a prefix that
     * every layer reads), placed before all of their readers.
     */
    public void prepend(String namespace, java.util.function.Consumer<SubgraphBuilder> body) {
        SubgraphBuilder b = new SubgraphBuilder(this, namespace);
        body.accept(b);
        GraphProto.Builder g = model.getGraphBuilder();
        List<NodeProto> nodes = b.nodes();
        for (int i = 0; i < nodes.size(); i++) {
            g.addNode(i, nodes.get(i));
        }
        changed();
        b.commitInputsAndOutputs();
    }

    /** Adds nodes at the end of the graph (for example to read a hook without changing it). */
    public void append(String namespace, java.util.function.Consumer<SubgraphBuilder> body) {
        SubgraphBuilder b = new SubgraphBuilder(this, namespace);
        body.accept(b);
        addNodes(b.nodes());
        b.commitInputsAndOutputs();
    }

    /** Changes the declared dims of graph inputs (symbolic to concrete) and drops stale intermediate shapes. */
    public void setInputDims(Map<String, long[]> dims) {
        GraphProto.Builder g = model.getGraphBuilder();
        for (int i = 0; i < g.getInputCount(); i++) {
            ValueInfoProto v = g.getInput(i);
            long[] d = dims.get(v.getName());
            if (d == null) {
                continue;
            }
            TensorShapeProto.Builder shape = TensorShapeProto.newBuilder();
            for (long x : d) {
                shape.addDim(TensorShapeProto.Dimension.newBuilder().setDimValue(x));
            }
            ValueInfoProto.Builder vb = v.toBuilder();
            vb.getTypeBuilder().getTensorTypeBuilder().setShape(shape);
            g.setInput(i, vb);
        }
        g.clearValueInfo();
        changed();
    }

    /**
     * The model doc string of an ONNX file, read from its first bytes (protobuf writes it, field 6, before the
     * graph, field 7); empty when the file has none or is not a model. Lets a command tell its own earlier output
     * from a user's file without parsing a whole model.
     */
    public static Optional<String> docStringOf(Path file) {
        try (java.io.InputStream in = Files.newInputStream(file)) {
            com.google.protobuf.CodedInputStream c = com.google.protobuf.CodedInputStream.newInstance(in);
            for (int i = 0; i < 64; i++) {
                int tag = c.readTag();
                int field = tag >>> 3;
                if (tag == 0 || field == 7) {
                    return Optional.empty();
                }
                if (field == 6) {
                    return Optional.of(c.readString());
                }
                c.skipField(tag);
            }
        } catch (IOException | RuntimeException e) {
            // not a readable model
        }
        return Optional.empty();
    }

    public void setDocString(String doc) {
        model.setDocString(doc);
        changed();
    }

    private void requireTensor(String tensor) {
        if (!hasTensor(tensor)) {
            throw new IllegalArgumentException("graph " + origin + " has no tensor named '" + tensor + "'");
        }
    }

    private void changed() {
        producerIndex = null;
        consumerIndex = null;
        initializerIndex = null;
        valueInfoIndex = null;
        fingerprint = null;
    }

    // ---------------------------------------------------------------- output

    public ModelProto toProto() {
        return model.build();
    }

    public byte[] toBytes() {
        return model.build().toByteArray();
    }

    /** Writes the model atomically: to a temporary file beside the target, then renamed over it. */
    public void save(Path file) throws IOException {
        AtomicFiles.write(file, toBytes());
    }

    /**
     * Writes the model with every initializer of at least {@code threshold} bytes in one external-data file beside
     * it (the ONNX external-data convention, needed above protobuf's 2 GB limit). Both files are written atomically.
     */
    public void saveWithExternalData(Path file, String dataFileName, int threshold) throws IOException {
        ModelProto.Builder out = model.clone();
        GraphProto.Builder g = out.getGraphBuilder();
        java.io.ByteArrayOutputStream data = new java.io.ByteArrayOutputStream();
        for (int i = 0; i < g.getInitializerCount(); i++) {
            TensorProto t = g.getInitializer(i);
            if (!t.hasRawData() || t.getRawData().size() < threshold) {
                continue;
            }
            long offset = data.size();
            t.getRawData().writeTo(data);
            g.setInitializer(i, t.toBuilder().clearRawData().setDataLocation(TensorProto.DataLocation.EXTERNAL)
                    .addExternalData(StringStringEntryProto.newBuilder().setKey("location").setValue(dataFileName))
                    .addExternalData(StringStringEntryProto.newBuilder().setKey("offset").setValue(Long.toString(offset)))
                    .addExternalData(StringStringEntryProto.newBuilder().setKey("length")
                            .setValue(Integer.toString(t.getRawData().size()))));
        }
        Path dir = file.toAbsolutePath().getParent();
        if (!SafeNames.fileName(dataFileName).equals(dataFileName)) {
            throw new IllegalArgumentException("external data file name: found '" + dataFileName + "'; valid: a plain"
                    + " file name beside the model (letters, digits, . _ - + =), such as model.onnx.data");
        }
        AtomicFiles.write(dir.resolve(dataFileName), data.toByteArray());
        AtomicFiles.write(file, out.build().toByteArray());
    }

    /** SHA-256 of the serialized model, hex; identifies a graph for session caches and checkpoints. */
    public String fingerprint() {
        if (fingerprint == null) {
            // the serialized bytes streamed through the digest: the same hash as sha256(toBytes()), without a copy
            // of the model on the heap
            try {
                MessageDigest md = MessageDigest.getInstance("SHA-256");
                try (java.security.DigestOutputStream out = new java.security.DigestOutputStream(
                        java.io.OutputStream.nullOutputStream(), md)) {
                    model.build().writeTo(out);
                }
                fingerprint = HexFormat.of().formatHex(md.digest());
            } catch (NoSuchAlgorithmException | IOException e) {
                throw new IllegalStateException(e);
            }
        }
        return fingerprint;
    }

    public static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    // ---------------------------------------------------------------- indexes

    private Map<String, Integer> producerIndex() {
        if (producerIndex == null) {
            Map<String, Integer> prod = new HashMap<>();
            Map<String, List<Integer>> cons = new LinkedHashMap<>();
            List<NodeProto> nodes = model.getGraphBuilder().getNodeList();
            for (int i = 0; i < nodes.size(); i++) {
                NodeProto n = nodes.get(i);
                for (String in : n.getInputList()) {
                    if (!in.isEmpty()) {
                        cons.computeIfAbsent(in, k -> new ArrayList<>()).add(i);
                    }
                }
                for (String out : n.getOutputList()) {
                    if (!out.isEmpty()) {
                        prod.put(out, i);
                    }
                }
            }
            producerIndex = prod;
            consumerIndex = cons;
        }
        return producerIndex;
    }

    private Map<String, List<Integer>> consumerIndex() {
        producerIndex();
        return consumerIndex;
    }

    private Map<String, Integer> initializerIndex() {
        if (initializerIndex == null) {
            Map<String, Integer> m = new HashMap<>();
            List<TensorProto> inits = model.getGraphBuilder().getInitializerList();
            for (int i = 0; i < inits.size(); i++) {
                m.put(inits.get(i).getName(), i);
            }
            initializerIndex = m;
        }
        return initializerIndex;
    }
}
