package dev.jreft.hooks.io;

/**
 * jreft's {@code -D} switches, read strictly: a value that is not one of the valid ones is an error naming the
 * property, not silently the default ({@code Boolean.parseBoolean("yes")} is false, {@code Long.getLong} of a word
 * is null).
 */
public final class SystemSettings {
    private SystemSettings() {
    }

    /** {@code -Dname=true|false}; {@code fallback} when unset. */
    public static boolean flag(String name, boolean fallback) {
        String v = System.getProperty(name);
        if (v == null) {
            return fallback;
        }
        return switch (v.trim().toLowerCase(java.util.Locale.ROOT)) {
            case "true" -> true;
            case "false" -> false;
            default -> throw new ConfigException("-D" + name, v, "true or false");
        };
    }

    /** {@code -Dname=<bytes>}, a whole number >= 0; {@code fallback} when unset. */
    public static long bytes(String name, long fallback) {
        String v = System.getProperty(name);
        if (v == null) {
            return fallback;
        }
        return Check.wholeNumber(v).orElseThrow(() -> new ConfigException("-D" + name, v,
                "a whole number of bytes >= 0"));
    }
}
