package dev.jreft.das;

import dev.jreft.das.train.DasTrainer;
import dev.jreft.das.train.InterchangeExample;
import dev.jreft.das.train.ModelInputs;
import dev.jreft.hooks.io.AtomicFiles;
import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.training.TrainingArguments;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * A sweep of distributed alignment search over hooks × positions × subspace sizes × methods: one {@link DasTrainer}
 * per cell, trained on the same interchange examples and scored by IIA on the same test examples. Each cell also
 * reports a control: the IIA of its own alignment before training (a random frozen rotation or subspace of the same
 * size), so a high IIA can be told apart from what any subspace of that size would give.
 *
 * <p>All causal variables that the examples intervene on are aligned in every cell, each with {@code size}
 * coordinates (so {@code ROTATED} needs variables × size ≤ the hook's width). IIA is reported over all test examples
 * and per set of intervened variables (e.g. {@code WX}, {@code YZ}, {@code WX+YZ}).
 *
 * @param <T> the model's input type
 */
public final class DasSweep<T> {
    /** A hook and its width (the size of the representation an alignment rotates). */
    public record Hook(String name, int width) {
    }

    /** One cell's result; {@code iiaBySet} is keyed by the intervened variables joined with '+'. */
    public record Row(String hook, String position, DasTrainer.Method method, int size, double iia, double controlIia,
                      Map<String, Double> iiaBySet, double seconds) {
    }

    /** The rows of a sweep, in sweep order, and the intervened-variable sets that have a column each. */
    public record Table(List<String> sets, List<Row> rows) {
        public List<String> header() {
            List<String> h = new ArrayList<>(List.of("hook", "position", "method", "size", "iia", "control_iia",
                    "seconds"));
            // one set only would repeat the iia column
            if (sets.size() > 1) {
                sets.forEach(s -> h.add("iia[" + s + "]"));
            }
            return h;
        }

        private List<List<String>> cells() {
            List<List<String>> out = new ArrayList<>();
            for (Row r : rows) {
                List<String> c = new ArrayList<>(List.of(r.hook(), r.position(),
                        r.method().name().toLowerCase(Locale.ROOT), Integer.toString(r.size()), fixed(r.iia(), 4),
                        fixed(r.controlIia(), 4), fixed(r.seconds(), 2)));
                if (sets.size() > 1) {
                    sets.forEach(s -> c.add(fixed(r.iiaBySet().get(s), 4)));
                }
                out.add(c);
            }
            return out;
        }

        public String csv() {
            StringBuilder b = new StringBuilder();
            b.append(String.join(",", header().stream().map(Table::csvField).toList())).append('\n');
            for (List<String> c : cells()) {
                b.append(String.join(",", c.stream().map(Table::csvField).toList())).append('\n');
            }
            return b.toString();
        }

        /** Writes {@link #csv()} so that a reader never sees half a table. */
        public void writeCsv(Path file) throws IOException {
            AtomicFiles.write(file, csv().getBytes(StandardCharsets.UTF_8));
        }

        /** The table with columns padded to one width each (text left, numbers right). */
        public String aligned() {
            List<String> header = header();
            List<List<String>> cells = cells();
            int[] w = new int[header.size()];
            for (int i = 0; i < w.length; i++) {
                w[i] = header.get(i).length();
                for (List<String> c : cells) {
                    w[i] = Math.max(w[i], c.get(i).length());
                }
            }
            StringBuilder b = new StringBuilder();
            line(b, header, w);
            for (List<String> c : cells) {
                line(b, c, w);
            }
            return b.toString();
        }

        private static void line(StringBuilder b, List<String> c, int[] w) {
            for (int i = 0; i < w.length; i++) {
                String pad = " ".repeat(w[i] - c.get(i).length());
                b.append(i < 3 ? c.get(i) + pad : pad + c.get(i));
                b.append(i == w.length - 1 ? "\n" : "  ");
            }
        }

        private static String csvField(String s) {
            return s.contains(",") || s.contains("\"") || s.contains("\n")
                    ? "\"" + s.replace("\"", "\"\"") + "\"" : s;
        }

        private static String fixed(double v, int digits) {
            return String.format(Locale.ROOT, "%." + digits + "f", v);
        }
    }

    private final HookedModel model;
    private final String logits;
    private final List<InterchangeExample<T>> train;
    private final List<InterchangeExample<T>> test;
    private final List<String> variables;
    private final Map<String, List<InterchangeExample<T>>> testBySet = new LinkedHashMap<>();
    private int evalBatchSize = 500;

    public DasSweep(HookedModel model, String logits, List<InterchangeExample<T>> train,
                    List<InterchangeExample<T>> test) {
        if (train.isEmpty() || test.isEmpty()) {
            throw new IllegalArgumentException("a DAS sweep needs training and test examples; got " + train.size()
                    + " and " + test.size());
        }
        this.model = model;
        this.logits = logits;
        this.train = List.copyOf(train);
        this.test = List.copyOf(test);
        Set<String> vars = new TreeSet<>();
        train.forEach(x -> vars.addAll(x.sources().keySet()));
        this.variables = List.copyOf(vars);
        Map<String, List<InterchangeExample<T>>> sets = new java.util.TreeMap<>(Comparator
                .comparingInt((String s) -> s.split("\\+").length).thenComparing(Comparator.naturalOrder()));
        for (InterchangeExample<T> x : test) {
            for (String v : x.sources().keySet()) {
                if (!vars.contains(v)) {
                    throw new IllegalArgumentException("a test example intervenes on '" + v + "', which no training"
                            + " example does; trained variables: " + vars);
                }
            }
            sets.computeIfAbsent(String.join("+", new TreeSet<>(x.sources().keySet())), k -> new ArrayList<>())
                    .add(x);
        }
        testBySet.putAll(sets);
    }

    /** IIA is computed in batches of this many examples (memory, not results, depends on it). */
    public DasSweep<T> evalBatchSize(int n) {
        if (n < 1) {
            throw new IllegalArgumentException("evaluation batch size must be positive; got " + n);
        }
        this.evalBatchSize = n;
        return this;
    }

    /** The aligned variables, sorted (every cell aligns all of them). */
    public List<String> variables() {
        return variables;
    }

    /**
     * Checks a sweep's grid before any training, so that a bad cell does not fail after hours of good ones:
     * hooks must exist in the model, sizes must be at least 1 and fit the hook ({@code ROTATED} lays the variables'
     * blocks side by side, so variables × size ≤ width; {@code LOW_RANK}: size ≤ width). {@code BOUNDLESS} learns
     * its own size, so it has no place in a sweep over sizes.
     */
    public static void check(HookedModel model, List<Hook> hooks, int variableCount, List<Integer> sizes,
                             List<DasTrainer.Method> methods) {
        if (hooks.isEmpty() || sizes.isEmpty() || methods.isEmpty()) {
            throw new IllegalArgumentException("a DAS sweep needs at least one hook, one size and one method; got "
                    + hooks.size() + " hooks, sizes " + sizes + ", methods " + methods);
        }
        for (int i = 0; i < methods.size(); i++) {
            if (methods.get(i) == DasTrainer.Method.BOUNDLESS) {
                throw new ConfigException("method[" + i + "]", "boundless", "rotated or low_rank (boundless learns its"
                        + " subspace size, so it cannot be swept over sizes)");
            }
        }
        for (int k = 0; k < hooks.size(); k++) {
            Hook h = hooks.get(k);
            if (model != null) {
                try {
                    model.hook(h.name()); // an unknown name throws, suggesting close ones
                } catch (IllegalArgumentException e) {
                    throw ConfigException.within("hooks[" + k + "]", e);
                }
            }
            for (int i = 0; i < sizes.size(); i++) {
                int size = sizes.get(i);
                for (DasTrainer.Method m : methods) {
                    int need = m == DasTrainer.Method.ROTATED ? variableCount * size : size;
                    if (size < 1 || need > h.width()) {
                        int max = m == DasTrainer.Method.ROTATED ? h.width() / variableCount : h.width();
                        throw new ConfigException("sizes[" + i + "]", size, "1.." + max + " for hook " + h.name()
                                + " of width " + h.width() + " with method " + m.name().toLowerCase(Locale.ROOT)
                                + (m == DasTrainer.Method.ROTATED && variableCount > 1 ? " (" + variableCount
                                + " variables of " + size + " coordinates each)" : ""));
                    }
                }
            }
        }
    }

    /**
     * Trains and scores every cell. {@code positions} names each choice of positions (its {@link ModelInputs}
     * decides where to intervene); every cell starts from the rotation drawn from {@code seed}, so cells differ
     * only by their coordinates in the grid.
     *
     * @param progress one line per cell (and the trainer's epoch losses); null for none
     */
    public Table run(List<Hook> hooks, Map<String, ModelInputs<T>> positions, List<Integer> sizes,
                     List<DasTrainer.Method> methods, TrainingArguments args, long seed, PrintStream progress) {
        check(model, hooks, variables.size(), sizes, methods);
        if (positions.isEmpty()) {
            throw new IllegalArgumentException("a DAS sweep needs at least one named position choice");
        }
        List<Row> rows = new ArrayList<>();
        for (Hook h : hooks) {
            for (var p : positions.entrySet()) {
                for (DasTrainer.Method m : methods) {
                    for (int size : sizes) {
                        long t0 = System.nanoTime();
                        Map<String, Integer> subspaces = new LinkedHashMap<>();
                        variables.forEach(v -> subspaces.put(v, size));
                        DasTrainer<T> das = new DasTrainer<>(model, p.getValue(), h.name(), logits, m, subspaces,
                                h.width(), seed);
                        double control = overall(iiaBySet(das));
                        das.train(train, args, progress);
                        Map<String, Double> bySet = iiaBySet(das);
                        Row row = new Row(h.name(), p.getKey(), m, size, overall(bySet), control, bySet,
                                (System.nanoTime() - t0) / 1e9);
                        rows.add(row);
                        if (progress != null) {
                            progress.printf(Locale.ROOT, "das sweep %s @ %s, %s, size %d: IIA %.4f (control %.4f),"
                                    + " %.1f s%n", row.hook(), row.position(), m.name().toLowerCase(Locale.ROOT),
                                    size, row.iia(), row.controlIia(), row.seconds());
                        }
                    }
                }
            }
        }
        return new Table(List.copyOf(testBySet.keySet()), rows);
    }

    private Map<String, Double> iiaBySet(DasTrainer<T> das) {
        Map<String, Double> out = new LinkedHashMap<>();
        testBySet.forEach((set, examples) -> out.put(set, das.iia(examples, evalBatchSize)));
        return out;
    }

    /** IIA over all test examples: the sets' IIAs weighted by their sizes. */
    private double overall(Map<String, Double> bySet) {
        double ok = 0;
        for (var e : bySet.entrySet()) {
            ok += e.getValue() * testBySet.get(e.getKey()).size();
        }
        return ok / test.size();
    }
}
