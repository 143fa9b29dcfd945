package dev.jreft.interventions;

import java.util.Arrays;

/**
 * What an intervention touches at a selected position: {@code pos}, the whole vector; {@code h.pos}, only the
 * slices of the listed heads ({@code [k*dh, (k+1)*dh)} of the hook's last axis).
 */
public record Unit(String kind, int[] heads) {
    public static final Unit POS = new Unit("pos", new int[0]);

    public Unit {
        if (!"pos".equals(kind) && !"h.pos".equals(kind)) {
            throw new dev.jreft.hooks.io.ConfigException("unit", kind, "pos, h.pos");
        }
        if (kind.equals("h.pos") && (heads == null || heads.length == 0)) {
            throw dev.jreft.hooks.io.ConfigException.of("heads", "found none; valid: one or more head indices (unit"
                    + " h.pos acts on heads)");
        }
        if (kind.equals("pos") && heads != null && heads.length > 0) {
            throw new dev.jreft.hooks.io.ConfigException("heads", java.util.Arrays.toString(heads), "nothing with"
                    + " unit pos (heads select slices with unit h.pos)");
        }
        heads = heads == null ? new int[0] : heads.clone();
        if (java.util.Arrays.stream(heads).distinct().count() != heads.length) {
            throw new dev.jreft.hooks.io.ConfigException("heads", java.util.Arrays.toString(heads), "each head once");
        }
    }

    public static Unit heads(int... heads) {
        return new Unit("h.pos", heads);
    }

    public boolean isHeads() {
        return kind.equals("h.pos");
    }

    @Override
    public String toString() {
        return isHeads() ? "h.pos" + Arrays.toString(heads) : "pos";
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Unit u && u.kind.equals(kind) && Arrays.equals(u.heads, heads);
    }

    @Override
    public int hashCode() {
        return kind.hashCode() * 31 + Arrays.hashCode(heads);
    }
}
