package dev.jreft.das.causal;

import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.stream.Collectors;

/**
 * Value semantics for causal-model values, which are plain {@code Object}s that may be arrays ({@code double[]}
 * embeddings), lists or maps (several outputs at once). Java's {@code equals} compares arrays by identity; causal
 * models mean "the same value", so equality, hashing and printing here go into arrays, lists and maps.
 */
final class Values {
    private Values() {
    }

    /** Deep equality: arrays element-wise (primitive or not), lists in order, maps by key then value. */
    static boolean equal(Object a, Object b) {
        if (a == b) {
            return true;
        }
        if (a == null || b == null) {
            return false;
        }
        if (a instanceof Map<?, ?> ma && b instanceof Map<?, ?> mb) {
            if (ma.size() != mb.size()) {
                return false;
            }
            for (Map.Entry<?, ?> e : ma.entrySet()) {
                if (!mb.containsKey(e.getKey()) || !equal(e.getValue(), mb.get(e.getKey()))) {
                    return false;
                }
            }
            return true;
        }
        if (a instanceof List<?> la && b instanceof List<?> lb) {
            if (la.size() != lb.size()) {
                return false;
            }
            Iterator<?> ia = la.iterator();
            Iterator<?> ib = lb.iterator();
            while (ia.hasNext()) {
                if (!equal(ia.next(), ib.next())) {
                    return false;
                }
            }
            return true;
        }
        return Objects.deepEquals(a, b);
    }

    /** A hash consistent with {@link #equal}. */
    static int hash(Object v) {
        if (v == null) {
            return 0;
        }
        if (v instanceof Map<?, ?> m) {
            int h = 0;
            for (Map.Entry<?, ?> e : m.entrySet()) {
                h += Objects.hashCode(e.getKey()) ^ hash(e.getValue());
            }
            return h;
        }
        if (v instanceof List<?> l) {
            int h = 1;
            for (Object o : l) {
                h = 31 * h + hash(o);
            }
            return h;
        }
        if (v.getClass().isArray()) {
            return Arrays.deepHashCode(new Object[] {v});
        }
        return v.hashCode();
    }

    /** A readable rendering: arrays print their elements rather than their identity. */
    static String show(Object v) {
        if (v == null) {
            return "null";
        }
        if (v instanceof Map<?, ?> m) {
            return m.entrySet().stream().map(e -> e.getKey() + "=" + show(e.getValue()))
                    .collect(Collectors.joining(", ", "{", "}"));
        }
        if (v instanceof List<?> l) {
            return l.stream().map(Values::show).collect(Collectors.joining(", ", "[", "]"));
        }
        if (v.getClass().isArray()) {
            String s = Arrays.deepToString(new Object[] {v});
            return s.substring(1, s.length() - 1);
        }
        return String.valueOf(v);
    }
}
