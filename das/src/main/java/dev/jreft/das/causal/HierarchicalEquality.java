package dev.jreft.das.causal;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import java.util.function.Function;

/**
 * The hierarchical equality task, the standard worked example of distributed alignment search (as in pyvene's
 * introductory tutorial): given four vectors a, b, c, d, output whether "a equals b" equals "c equals d".
 *
 * <p>The causal model has inputs {@code a, b, c, d} ({@code double[]} of one dimension), intermediate variables
 * {@code WX = (a == b)} and {@code YZ = (c == d)} (element-wise array equality) and output {@code O = (WX == YZ)}.
 * The question DAS asks of a network trained on the task is whether some subspace of a hidden representation holds
 * {@code WX} (or {@code YZ}): interchanging it from a source input should flip the output exactly when {@code WX}
 * differs between base and source.
 *
 * <p>Inputs are drawn from a fixed pool of random "entity" vectors, like pyvene's vocabulary of random embeddings:
 * each input is a uniformly chosen pool vector, and with probability 1/2 {@code b} is forced to equal {@code a} and,
 * independently, with probability 1/2 {@code d} is forced to equal {@code c}. So {@code WX} and {@code YZ} are each
 * true with probability {@code 1/2 + 1/(2·entities)} and the label {@code O} is close to balanced.
 */
public final class HierarchicalEquality {

    /** Input variable names. */
    public static final String A = "a", B = "b", C = "c", D = "d";
    /** Intermediate variables: {@code WX = (a == b)}, {@code YZ = (c == d)}. */
    public static final String WX = "WX", YZ = "YZ";
    /** The output variable: {@code O = (WX == YZ)}. */
    public static final String O = "O";

    private static final CausalModel MODEL = CausalModel.builder()
            .input(A, B, C, D)
            .variable(WX, A, B, (a, b) -> Arrays.equals((double[]) a, (double[]) b))
            .variable(YZ, C, D, (c, d) -> Arrays.equals((double[]) c, (double[]) d))
            .variable(O, WX, YZ, (wx, yz) -> wx.equals(yz))
            .output(O)
            .build();

    private HierarchicalEquality() {
    }

    /** The causal model (immutable, shared). */
    public static CausalModel model() {
        return MODEL;
    }

    /**
     * A pool of {@code entities} distinct random vectors of dimension {@code dim}, entries uniform in [-1, 1).
     *
     * @param entities how many vectors, at least 2 (so inputs can differ); the chance that two independently chosen
     *                 inputs coincide is {@code 1/entities}
     */
    public static double[][] pool(int entities, int dim, Random r) {
        if (entities < 2) {
            throw new IllegalArgumentException("entities must be >= 2 so that inputs can differ, got " + entities);
        }
        if (dim < 1) {
            throw new IllegalArgumentException("dim must be >= 1, got " + dim);
        }
        double[][] pool = new double[entities][];
        for (int i = 0; i < entities; i++) {
            double[] v;
            do {
                v = new double[dim];
                for (int j = 0; j < dim; j++) {
                    v[j] = 2 * r.nextDouble() - 1;
                }
            } while (contains(pool, i, v));
            pool[i] = v;
        }
        return pool;
    }

    /**
     * Draws one input assignment {@code {a, b, c, d}}: {@code a} and {@code c} uniformly from the pool; {@code b} a
     * copy of {@code a} with probability 1/2, else uniform from the pool; {@code d} likewise from {@code c}. The
     * vectors are copies, so callers may not alter the pool through them.
     */
    public static Map<String, Object> sample(Random r, double[][] pool) {
        if (pool == null || pool.length == 0) {
            throw new IllegalArgumentException("the pool is empty; make one with pool(entities, dim, random)");
        }
        double[] a = pool[r.nextInt(pool.length)];
        double[] b = r.nextBoolean() ? a : pool[r.nextInt(pool.length)];
        double[] c = pool[r.nextInt(pool.length)];
        double[] d = r.nextBoolean() ? c : pool[r.nextInt(pool.length)];
        Map<String, Object> in = new LinkedHashMap<>();
        in.put(A, a.clone());
        in.put(B, b.clone());
        in.put(C, c.clone());
        in.put(D, d.clone());
        return in;
    }

    /**
     * As {@link #sample(Random, double[][])} but every vector is drawn fresh (uniform in [-1, 1)), as pyvene's
     * hierarchical-equality tutorial samples: the network can only solve the task by comparing, never by memorising
     * entities.
     */
    public static Function<Random, Map<String, Object>> freshSampler(int dim) {
        if (dim < 1) {
            throw new IllegalArgumentException("dim must be >= 1, got " + dim);
        }
        return r -> {
            double[] a = fresh(r, dim);
            double[] b = r.nextBoolean() ? a.clone() : fresh(r, dim);
            double[] c = fresh(r, dim);
            double[] d = r.nextBoolean() ? c.clone() : fresh(r, dim);
            Map<String, Object> in = new LinkedHashMap<>();
            in.put(A, a);
            in.put(B, b);
            in.put(C, c);
            in.put(D, d);
            return in;
        };
    }

    private static double[] fresh(Random r, int dim) {
        double[] v = new double[dim];
        for (int j = 0; j < dim; j++) {
            v[j] = 2 * r.nextDouble() - 1;
        }
        return v;
    }

    /** {@link #sample(Random, double[][])} over a fixed pool, in the shape {@link CounterfactualDataset} takes. */
    public static Function<Random, Map<String, Object>> sampler(double[][] pool) {
        return r -> sample(r, pool);
    }

    /** The network's input: a, b, c, d concatenated into one float vector of length {@code 4·dim}. */
    public static float[] features(Map<String, Object> inputs) {
        double[][] parts = new double[4][];
        String[] names = {A, B, C, D};
        for (int i = 0; i < 4; i++) {
            Object v = inputs.get(names[i]);
            if (!(v instanceof double[] arr)) {
                throw new IllegalArgumentException("input '" + names[i] + "' must be a double[], got "
                        + (v == null ? "nothing" : v.getClass().getSimpleName()) + "; inputs are a, b, c, d");
            }
            parts[i] = arr;
        }
        int dim = parts[0].length;
        for (int i = 1; i < 4; i++) {
            if (parts[i].length != dim) {
                throw new IllegalArgumentException("inputs must share one dimension: '" + names[0] + "' has " + dim
                        + ", '" + names[i] + "' has " + parts[i].length);
            }
        }
        float[] f = new float[4 * dim];
        for (int i = 0; i < 4; i++) {
            for (int j = 0; j < dim; j++) {
                f[i * dim + j] = (float) parts[i][j];
            }
        }
        return f;
    }

    private static boolean contains(double[][] pool, int count, double[] v) {
        for (int i = 0; i < count; i++) {
            if (Arrays.equals(pool[i], v)) {
                return true;
            }
        }
        return false;
    }
}
