package dev.jreft.hooks.io;

import java.util.Arrays;
import java.util.Collection;
import java.util.Locale;

/**
 * Checks of single settings, each failing with a {@link ConfigException} that names the field, the value found and
 * what is valid. Records call them in their constructors, so a bad value fails where it is read, before any work.
 */
public final class Check {
    private Check() {
    }

    /** {@code text} as a whole number >= 0 (surrounding spaces allowed); empty when it is not one. */
    public static java.util.OptionalLong wholeNumber(String text) {
        try {
            long n = Long.parseLong(text.trim());
            return n >= 0 ? java.util.OptionalLong.of(n) : java.util.OptionalLong.empty();
        } catch (NumberFormatException e) {
            return java.util.OptionalLong.empty();
        }
    }

    /** An integer of at least {@code min}. */
    public static int atLeast(String field, int value, int min) {
        if (value < min) {
            throw new ConfigException(field, value, "an integer >= " + min);
        }
        return value;
    }

    /** A long of at least {@code min}. */
    public static long atLeast(String field, long value, long min) {
        if (value < min) {
            throw new ConfigException(field, value, "an integer >= " + min);
        }
        return value;
    }

    /** An integer in {@code [min, max]}. */
    public static int between(String field, int value, int min, int max) {
        if (value < min || value > max) {
            throw new ConfigException(field, value, "an integer in " + min + ".." + max);
        }
        return value;
    }

    /** A finite number above zero. */
    public static double positive(String field, double value) {
        if (!Double.isFinite(value) || value <= 0) {
            throw new ConfigException(field, value, "a finite number > 0");
        }
        return value;
    }

    /** A finite number, zero or more. */
    public static double nonNegative(String field, double value) {
        if (!Double.isFinite(value) || value < 0) {
            throw new ConfigException(field, value, "a finite number >= 0");
        }
        return value;
    }

    /** A finite number in {@code [min, max]} ({@code [min, max)} when {@code maxExclusive}). */
    public static double between(String field, double value, double min, double max, boolean maxExclusive) {
        if (!Double.isFinite(value) || value < min || (maxExclusive ? value >= max : value > max)) {
            throw new ConfigException(field, value, "a number in [" + num(min) + ", " + num(max)
                    + (maxExclusive ? ")" : "]"));
        }
        return value;
    }

    /** A bound as a person writes it: 1, not 1.0. */
    static String num(double v) {
        return v == Math.rint(v) && Math.abs(v) < 1e15 ? Long.toString((long) v) : Double.toString(v);
    }

    /** One of {@code valid} (compared as given). */
    public static String oneOf(String field, String value, Collection<String> valid) {
        if (value == null || !valid.contains(value)) {
            throw new ConfigException(field, value, String.join(", ", valid));
        }
        return value;
    }

    /** The constant of {@code type} named {@code value} (case and '-' versus '_' ignored). */
    public static <E extends Enum<E>> E choice(String field, String value, Class<E> type) {
        if (value != null) {
            String key = value.trim().toUpperCase(Locale.ROOT).replace('-', '_');
            for (E e : type.getEnumConstants()) {
                if (e.name().equals(key)) {
                    return e;
                }
            }
        }
        throw new ConfigException(field, value, names(type));
    }

    /** An enum's constants as configs write them: lower case. */
    public static String names(Class<? extends Enum<?>> type) {
        return ConfigException.list(Arrays.asList(type.getEnumConstants()));
    }

    /** A value that must be given. */
    public static <T> T present(String field, T value, String valid) {
        if (value == null) {
            throw ConfigException.of(field, "found nothing; valid: " + valid);
        }
        return value;
    }
}
