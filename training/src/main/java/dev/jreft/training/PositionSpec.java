package dev.jreft.training;

import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.runtime.Batch;

import java.util.LinkedHashSet;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * pyreft's position spec {@code f{n}+l{m}}: the first n and the last m real tokens of each example (padding, on either
 * side, is never selected; on a short example the two sets may overlap and are merged). {@code f1+l1} = first and last token.
 */
public record PositionSpec(int first, int last) {
    private static final String VALID = "f<n>+l<m>, f<n> or l<m> with n + m > 0, such as f1+l1, f3+l3, f5, l1";
    private static final Pattern SPEC = Pattern.compile("^(?:f(\\d+))?\\+?(?:l(\\d+))?$");

    public PositionSpec {
        if (first < 0 || last < 0 || first + last == 0) {
            throw new ConfigException("positions", "f" + first + "+l" + last, VALID);
        }
    }

    public static PositionSpec parse(String spec) {
        Matcher m = SPEC.matcher(spec == null ? "" : spec.trim());
        if (!m.matches() || (m.group(1) == null && m.group(2) == null)) {
            throw new ConfigException("positions", spec, VALID);
        }
        try {
            return new PositionSpec(m.group(1) == null ? 0 : Integer.parseInt(m.group(1)),
                    m.group(2) == null ? 0 : Integer.parseInt(m.group(2)));
        } catch (NumberFormatException e) {
            throw new ConfigException("positions", spec, VALID);
        }
    }

    /** Positions of each example: first n then last m real tokens, in ascending order, without duplicates. */
    public int[][] positions(Batch batch) {
        return select(batch, true, true);
    }

    /** Only the first-n part (for interventions that do not share weights between first and last positions). */
    public int[][] firstPositions(Batch batch) {
        return select(batch, true, false);
    }

    /** Only the last-m part. */
    public int[][] lastPositions(Batch batch) {
        return select(batch, false, true);
    }

    private int[][] select(Batch batch, boolean withFirst, boolean withLast) {
        int[][] out = new int[batch.size()][];
        for (int b = 0; b < batch.size(); b++) {
            int start = Math.max(0, batch.firstReal(b)); // left padding: the first real token, not index 0
            int end = batch.lastReal(b) + 1;
            Set<Integer> s = new LinkedHashSet<>();
            if (withFirst) {
                for (int i = start; i < Math.min(start + first, end); i++) {
                    s.add(i);
                }
            }
            if (withLast) {
                for (int i = Math.max(start, end - last); i < end; i++) {
                    s.add(i);
                }
            }
            out[b] = s.stream().mapToInt(Integer::intValue).sorted().toArray();
        }
        return out;
    }

    @Override
    public String toString() {
        return (first > 0 ? "f" + first : "") + (first > 0 && last > 0 ? "+" : "") + (last > 0 ? "l" + last : "");
    }
}
