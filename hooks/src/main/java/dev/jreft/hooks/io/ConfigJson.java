package dev.jreft.hooks.io;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParseException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.exc.InputCoercionException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.JavaType;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MapperFeature;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.cfg.CoercionAction;
import com.fasterxml.jackson.databind.cfg.CoercionInputShape;
import com.fasterxml.jackson.databind.exc.InvalidFormatException;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import com.fasterxml.jackson.databind.exc.ValueInstantiationException;
import com.fasterxml.jackson.databind.introspect.BeanPropertyDefinition;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.type.LogicalType;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * The one reader of jreft's JSON: configs ({@code train}, {@code intervene}, {@code das}), JSON Lines data, checkpoint
 * configs. snake_case names; strict, because a config that is silently misread costs a wrong experiment: unknown
 * fields, a second JSON value after the first, duplicate keys, {@code 1.9} for an integer, {@code "3"} for a number,
 * {@code null} for a number and non-finite numbers are errors. Every error is one {@link ConfigException} line naming
 * the file, the field path, what was found and what is valid.
 */
public final class ConfigJson {
    public static final JsonMapper MAPPER = JsonMapper.builder()
            .propertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .enable(MapperFeature.ACCEPT_CASE_INSENSITIVE_ENUMS)
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
            .enable(DeserializationFeature.FAIL_ON_NUMBERS_FOR_ENUMS)
            .enable(DeserializationFeature.FAIL_ON_READING_DUP_TREE_KEY)
            .disable(DeserializationFeature.ACCEPT_FLOAT_AS_INT)
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .withCoercionConfig(LogicalType.Integer, c -> c.setCoercion(CoercionInputShape.String, CoercionAction.Fail)
                    .setCoercion(CoercionInputShape.Boolean, CoercionAction.Fail)
                    .setCoercion(CoercionInputShape.EmptyString, CoercionAction.Fail))
            .withCoercionConfig(LogicalType.Float, c -> c.setCoercion(CoercionInputShape.String, CoercionAction.Fail)
                    .setCoercion(CoercionInputShape.Boolean, CoercionAction.Fail)
                    .setCoercion(CoercionInputShape.EmptyString, CoercionAction.Fail))
            .withCoercionConfig(LogicalType.Boolean, c -> c.setCoercion(CoercionInputShape.String, CoercionAction.Fail)
                    .setCoercion(CoercionInputShape.Integer, CoercionAction.Fail)
                    .setCoercion(CoercionInputShape.EmptyString, CoercionAction.Fail))
            .withCoercionConfig(LogicalType.Textual, c -> c.setCoercion(CoercionInputShape.Integer, CoercionAction.Fail)
                    .setCoercion(CoercionInputShape.Float, CoercionAction.Fail)
                    .setCoercion(CoercionInputShape.Boolean, CoercionAction.Fail))
            .build();

    private ConfigJson() {
    }

    /** Reads {@code file} as a {@code type}. */
    public static <T> T read(Path file, Class<T> type) {
        return parse(text(file), file.toString(), type);
    }

    /** The text of a config file, or a one-line error saying why there is none. */
    public static String text(Path file) {
        return TextFiles.readUtf8(file, null);
    }

    /** Parses {@code json} (from {@code source}: a file name, {@code data.jsonl line 3}) as a {@code type}. */
    public static <T> T parse(String json, String source, Class<T> type) {
        return convert(tree(json, source), type, source, "");
    }

    /** Parses {@code json} into a tree (still strict about syntax, duplicates and trailing values). */
    public static JsonNode tree(String json, String source) {
        try {
            JsonNode n = MAPPER.readTree(json);
            if (n == null || n.isMissingNode()) {
                throw ConfigException.of(source, "found no JSON value; valid: a JSON object");
            }
            return n;
        } catch (JsonProcessingException e) {
            throw error(e, source, "");
        }
    }

    /**
     * Converts the tree at {@code path} of {@code source} into a {@code type}. Unknown fields are reported first,
     * anywhere in the tree: Jackson builds a record before it reports the unknown fields it buffered, so a misspelt
     * field would otherwise surface as the record's complaint about the field it misses.
     */
    public static <T> T convert(JsonNode node, Class<T> type, String source, String path) {
        if (type.isRecord() && (node == null || !node.isObject())) {
            throw new ConfigException(path, ConfigException.described(node == null || node.isNull() ? "null"
                    : kind(node)), "a JSON object").in(source);
        }
        checkFields(node, MAPPER.constructType(type), path, source);
        try {
            return MAPPER.treeToValue(node, type);
        } catch (JsonProcessingException | IllegalArgumentException e) {
            throw e instanceof JsonProcessingException j ? error(j, source, path)
                    : ConfigException.within(path, (IllegalArgumentException) e).in(source);
        }
    }

    /**
     * A settings record: the fields {@code given} names over {@code defaults}, so a config names only what it
     * changes. A field the record does not have is an error listing those it has.
     */
    public static <T> T overDefaults(T defaults, JsonNode given, Class<T> type, String source, String path) {
        if (given == null || given.isNull()) {
            return defaults;
        }
        ObjectNode merged = MAPPER.valueToTree(defaults);
        if (!given.isObject()) {
            throw new ConfigException(path, ConfigException.described(kind(given)), "an object of settings (" + fieldList(merged) + ")")
                    .in(source);
        }
        for (var it = given.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            if (!merged.has(f.getKey())) {
                throw new ConfigException(path, ConfigException.described("unknown field '" + f.getKey() + "'"), "fields " + fieldList(merged))
                        .in(source);
            }
            merged.set(f.getKey(), f.getValue());
        }
        return convert(merged, type, source, path);
    }

    /** Fields of {@code node} that the record {@code type} (or a record inside it) does not have, as an error. */
    private static void checkFields(JsonNode node, JavaType type, String path, String source) {
        if (node == null || node.isNull()) {
            return;
        }
        if (type.isCollectionLikeType() || type.isArrayType()) {
            if (node.isArray()) {
                for (int i = 0; i < node.size(); i++) {
                    if (node.get(i).isNull()) {
                        throw new ConfigException(path + "[" + i + "]", null, expected(type.getContentType()
                                .getRawClass())).in(source);
                    }
                    checkFields(node.get(i), type.getContentType(), path + "[" + i + "]", source);
                }
            }
            return;
        }
        if (type.isMapLikeType()) {
            if (node.isObject()) {
                node.fields().forEachRemaining(f -> checkFields(f.getValue(), type.getContentType(),
                        ConfigException.join(path, f.getKey()), source));
            }
            return;
        }
        if (!type.getRawClass().isRecord() || !node.isObject()) {
            return;
        }
        Map<String, JavaType> fields = new java.util.TreeMap<>();
        Map<String, String> described = new java.util.HashMap<>();
        for (BeanPropertyDefinition p : MAPPER.getDeserializationConfig().introspect(type).findProperties()) {
            if (p.couldDeserialize()) {
                fields.put(p.getName(), p.getPrimaryType());
                if (p.getMetadata().getDescription() != null) {
                    described.put(p.getName(), p.getMetadata().getDescription());
                }
            }
        }
        for (var it = node.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            JavaType t = fields.get(f.getKey());
            if (t == null) {
                throw new ConfigException(path, ConfigException.described("unknown field '" + f.getKey() + "'"),
                        "fields " + String.join(", ", fields.keySet())).in(source);
            }
            if (f.getValue().isNull() && !t.hasRawClass(JsonNode.class)) {
                // null is not "use the default": leave the field out for that
                throw new ConfigException(ConfigException.join(path, f.getKey()), null, described.getOrDefault(
                        f.getKey(), expected(t.getRawClass())) + " (leave the field out for its default)").in(source);
            }
            checkFields(f.getValue(), t, ConfigException.join(path, f.getKey()), source);
        }
    }

    private static String fieldList(ObjectNode n) {
        List<String> names = new ArrayList<>();
        n.fieldNames().forEachRemaining(names::add);
        return String.join(", ", names.stream().sorted().toList());
    }

    /** A Jackson error as a {@link ConfigException}: source, path, what was found and what is valid. */
    public static ConfigException error(JsonProcessingException e, String source, String pathPrefix) {
        // Jackson wraps what failed inside a record's field in a plain mapping error that carries the path
        String wrapperPath = null;
        while (e instanceof JsonMappingException outer && !(e instanceof MismatchedInputException)
                && !(e instanceof UnrecognizedPropertyException) && !(e instanceof ValueInstantiationException)
                && e.getCause() instanceof JsonProcessingException inner) {
            if (wrapperPath == null || path(outer.getPath()).length() > wrapperPath.length()) {
                wrapperPath = path(outer.getPath());
            }
            e = inner;
        }
        boolean wrapperKnowsBetter = wrapperPath != null && (!(e instanceof JsonMappingException m)
                || path(m.getPath()).length() < wrapperPath.length());
        if (wrapperKnowsBetter) {
            pathPrefix = ConfigException.join(pathPrefix, wrapperPath); // the inner error's own path is shorter
        }
        final boolean ownPath = !wrapperKnowsBetter;
        String line = location(e.getLocation(), source);
        if (e instanceof com.fasterxml.jackson.core.exc.StreamConstraintsException c) {
            return ConfigException.of(line, "found JSON beyond the reader's limits (" + firstSentence(
                    c.getOriginalMessage()).replaceAll(" exceeds.*", "") + "); valid: JSON nested at most 1000 deep,"
                    + " with names and numbers of sensible length").in(source);
        }
        if (e instanceof UnrecognizedPropertyException u) {
            List<JsonMappingException.Reference> refs = u.getPath();
            String at = ConfigException.join(pathPrefix, path(refs.subList(0, Math.max(0, refs.size() - 1))));
            Collection<Object> known = u.getKnownPropertyIds();
            return new ConfigException(at, ConfigException.described("unknown field '" + u.getPropertyName() + "'"), "fields " + (known == null
                    ? "?" : known.stream().map(Object::toString).sorted().collect(Collectors.joining(", "))))
                    .in(source);
        }
        if (e instanceof ValueInstantiationException v && v.getCause() instanceof IllegalArgumentException cause) {
            return ConfigException.within(ConfigException.join(pathPrefix, path(ownPath ? v.getPath() : List.of())), cause).in(source);
        }
        if (e instanceof JsonMappingException m && m.getCause() instanceof IllegalArgumentException cause) {
            return ConfigException.within(ConfigException.join(pathPrefix, path(ownPath ? m.getPath() : List.of())), cause).in(source);
        }
        if (e instanceof JsonMappingException m && m.getCause() instanceof InputCoercionException c) {
            return new ConfigException(ConfigException.join(pathPrefix, path(ownPath ? m.getPath() : List.of())),
                    ConfigException.described(text(c.getProcessor())), "a number in the range of "
                    + c.getTargetType().getSimpleName()).in(source);
        }
        if (e instanceof com.fasterxml.jackson.databind.exc.InvalidDefinitionException d && d.getType() != null
                && (d.getType().isArrayType() || d.getType().isCollectionLikeType())) {
            // a scalar where a list belongs (Jackson reports it as a missing constructor of the array type)
            String at = ConfigException.join(pathPrefix, path(ownPath ? d.getPath() : List.of()));
            Object found = d.getProcessor() instanceof JsonParser p && p.currentToken() == JsonToken.VALUE_STRING
                    ? text(p) : ConfigException.described("a single value");
            return new ConfigException(at, found, expected(d.getType().getRawClass())).in(source);
        }
        if (e instanceof MismatchedInputException m) {
            String at = ConfigException.join(pathPrefix, path(ownPath ? m.getPath() : List.of()));
            if (m.getMessage().startsWith("Trailing token")) {
                return ConfigException.of(line, "found a second JSON value after the first; valid: one JSON value"
                        + " (one object per line in JSON Lines)").in(source);
            }
            Object found = m instanceof InvalidFormatException f ? f.getValue() : current(m);
            if (m.getOriginalMessage().startsWith("Cannot map `null`") && found != null) {
                found = ConfigException.described("nothing"); // a missing field of a primitive type
            }
            return new ConfigException(at, found, expected(m.getTargetType())).in(source);
        }
        if (e instanceof InputCoercionException c) {
            String at = ConfigException.join(pathPrefix, "");
            return new ConfigException(at.isEmpty() ? line : at, ConfigException.described(text(c.getProcessor())),
                    "a number in the range of " + c.getTargetType().getSimpleName()).in(source);
        }
        if (e instanceof JsonParseException p) {
            String msg = p.getOriginalMessage();
            if (msg.startsWith("Non-standard token")) {
                return ConfigException.of(line, "found " + msg.replaceAll("Non-standard token '([^']*)'.*", "$1")
                        + "; valid: a JSON number (NaN and Infinity are not JSON numbers)").in(source);
            }
            if (msg.startsWith("Duplicate field")) {
                return ConfigException.of(line, "found " + msg.substring("Duplicate ".length()) + " twice; valid:"
                        + " each field once").in(source);
            }
            return ConfigException.of(line, "not valid JSON (" + firstSentence(msg) + ")").in(source);
        }
        if (e instanceof JsonMappingException m) {
            return ConfigException.of(ConfigException.join(pathPrefix, path(ownPath ? m.getPath() : List.of())),
                    firstSentence(m.getOriginalMessage())).in(source);
        }
        return ConfigException.of(line, firstSentence(e.getOriginalMessage())).in(source);
    }

    /** A JSON path from Jackson's references: {@code sites[1].positions}. */
    static String path(List<JsonMappingException.Reference> refs) {
        StringBuilder b = new StringBuilder();
        for (JsonMappingException.Reference r : refs) {
            if (r.getFieldName() != null) {
                b.append(b.length() == 0 ? "" : ".").append(r.getFieldName());
            } else if (r.getIndex() >= 0) {
                b.append('[').append(r.getIndex()).append(']');
            }
        }
        return b.toString();
    }

    /** What a type expects, in words. */
    static String expected(Class<?> t) {
        if (t == null || t == Object.class) {
            return "a value of the documented type (see the README)";
        }
        if (t == int.class || t == Integer.class || t == long.class || t == Long.class || t == short.class) {
            return "an integer";
        }
        if (t == double.class || t == Double.class || t == float.class || t == Float.class) {
            return "a number";
        }
        if (t == boolean.class || t == Boolean.class) {
            return "true or false";
        }
        if (t == String.class) {
            return "a string";
        }
        if (t.isEnum()) {
            @SuppressWarnings("unchecked")
            Class<? extends Enum<?>> en = (Class<? extends Enum<?>>) t;
            return Check.names(en);
        }
        if (t.isArray() || Collection.class.isAssignableFrom(t)) {
            return t.getComponentType() != null && t.getComponentType().isArray() ? "a list of lists" : "a list";
        }
        return "an object";
    }

    private static Object current(MismatchedInputException m) {
        if (m.getProcessor() instanceof JsonParser p) {
            JsonToken t = p.currentToken();
            if (t == null) {
                return ConfigException.described("nothing");
            }
            return switch (t) {
                case START_OBJECT, END_OBJECT, FIELD_NAME -> ConfigException.described("an object");
                case START_ARRAY, END_ARRAY -> ConfigException.described("a list");
                case VALUE_STRING -> text(p);
                case VALUE_NULL -> null;
                default -> ConfigException.described(text(p));
            };
        }
        return ConfigException.described("a value of another type");
    }

    private static String text(JsonParser p) {
        try {
            return p.getText();
        } catch (IOException e) {
            return "?";
        }
    }

    private static String kind(JsonNode n) {
        return n.isArray() ? "a list" : n.isTextual() ? "'" + n.asText() + "'" : n.toString();
    }

    /** Where in the text: line and column, or the column alone when the source is one line of a file. */
    private static String location(JsonLocation l, String source) {
        if (l == null || l.getLineNr() < 0) {
            return "";
        }
        boolean oneLine = source != null && source.matches(".* line \\d+");
        return (oneLine ? "" : "line " + l.getLineNr() + ", ") + "column " + l.getColumnNr();
    }

    private static String firstSentence(String msg) {
        if (msg == null) {
            return "unreadable";
        }
        String one = msg.replaceAll("\\s*\\R\\s*", " ");
        int cut = one.indexOf(": was expecting");
        return (cut > 0 ? one.substring(0, cut) : one).strip();
    }
}
