package dev.jreft.hooks.io;

import java.util.Collection;
import java.util.Locale;

/**
 * Bad input in jreft's one error format, one line: {@code <source>: <field>: found <value>; valid: <what is>}, for
 * example {@code train.json: training.learning_rate: found NaN; valid: a finite number > 0}. The field is a JSON path
 * ({@code sites[1].positions[0]}) or an option ({@code --ids}); the source (a file, a line of one) is added by
 * whoever knows it, and so is the path of an enclosing object, by {@link #at}.
 */
public class ConfigException extends IllegalArgumentException {
    private final String source;
    private final String field;
    private final String detail;

    private ConfigException(String source, String field, String detail) {
        super(compose(source, field, detail));
        this.source = source;
        this.field = field;
        this.detail = detail;
    }

    /** {@code <field>: found <found>; valid: <valid>}. */
    public ConfigException(String field, Object found, String valid) {
        this(null, field, "found " + show(found) + "; valid: " + valid);
    }

    /** {@code <field>: <detail>}, for what the found/valid form does not fit. */
    public static ConfigException of(String field, String detail) {
        return new ConfigException(null, field, detail);
    }

    /** The same error inside the object at {@code path}: {@code training} + {@code epochs} → {@code training.epochs}. */
    public ConfigException at(String path) {
        return new ConfigException(source, join(path, field), detail);
    }

    /**
     * The same error read from {@code source} (a file, or {@code train.jsonl line 7}); an error that already names
     * its source, or names a command-line option or a file as its field, stays as it is.
     */
    public ConfigException in(String source) {
        boolean located = this.source != null || field != null && (field.startsWith("--") || field.startsWith("/"));
        return located || source == null ? this : new ConfigException(source, field, detail);
    }

    /** Places any bad-input error thrown while handling {@code path} there (other messages get the path in front). */
    public static ConfigException within(String path, IllegalArgumentException e) {
        if (e instanceof ConfigException c) {
            return c.at(path);
        }
        ConfigException c = new ConfigException(null, path, e.getMessage());
        c.initCause(e);
        return c;
    }

    /**
     * The same error with the field's leading {@code from} replaced by {@code to}, for a field the user gave under
     * another name: {@code texts[2]} of a batch is the third {@code --text}; {@code input_ids[0][1]} is in {@code --ids}.
     */
    public ConfigException renamed(String from, String to) {
        return renamed(from, to, false);
    }

    /** As {@link #renamed(String, String)}; with {@code ordinal}, a first index [i] becomes " #(i+1)": the 3rd --text. */
    public ConfigException renamed(String from, String to, boolean ordinal) {
        if (field == null || !field.startsWith(from) || source != null) {
            return this;
        }
        String rest = field.substring(from.length());
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("^\\[(\\d+)\\](.*)").matcher(rest);
        String renamedField = ordinal && m.matches() ? to + " #" + (Integer.parseInt(m.group(1)) + 1) + m.group(2)
                : to + rest;
        ConfigException c = new ConfigException(null, renamedField, detail);
        c.initCause(this);
        return c;
    }

    public String field() {
        return field;
    }

    /** Joins JSON paths: {@code a} + {@code b} → {@code a.b}; {@code a} + {@code [2].b} → {@code a[2].b}. */
    public static String join(String prefix, String field) {
        if (prefix == null || prefix.isEmpty()) {
            return field == null ? "" : field;
        }
        if (field == null || field.isEmpty()) {
            return prefix;
        }
        return field.startsWith("[") ? prefix + field : prefix + "." + field;
    }

    /** A description shown as is after "found" (not quoted as a string value is): {@code unknown field 'lr'}. */
    public static Object described(String text) {
        return new Described(text);
    }

    private record Described(String text) {
        @Override
        public String toString() {
            return text;
        }
    }

    /** A value as a message shows it: strings quoted and cut, numbers as Java prints them, null as "null". */
    public static String show(Object v) {
        if (v == null) {
            return "null";
        }
        if (v instanceof CharSequence s) {
            String t = printable(s.toString());
            return "'" + (t.length() > 80 ? t.substring(0, 77) + "..." : t) + "'";
        }
        return v.toString();
    }

    /** Control characters written as escapes ({@code \n}, {@code \u001b}), so a message cannot drive a terminal. */
    public static String printable(String s) {
        StringBuilder b = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\n') {
                b.append("\\n");
            } else if (c == '\t') {
                b.append("\\t");
            } else if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0)) {
                b.append(String.format("\\u%04x", (int) c));
            } else {
                b.append(c);
            }
        }
        return b.toString();
    }

    /** Names joined for a "valid:" list: {@code a, b, c}. */
    public static String list(Collection<?> names) {
        return String.join(", ", names.stream().map(Object::toString).map(s -> s.toLowerCase(Locale.ROOT)).toList());
    }

    private static String compose(String source, String field, String detail) {
        StringBuilder b = new StringBuilder();
        if (source != null && !source.isEmpty()) {
            b.append(source).append(": ");
        }
        if (field != null && !field.isEmpty()) {
            b.append(field).append(": ");
        }
        return b.append(detail).toString();
    }
}
