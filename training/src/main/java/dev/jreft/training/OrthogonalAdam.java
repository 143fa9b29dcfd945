package dev.jreft.training;

import dev.jreft.interventions.params.Orthogonal;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.nd4j.linalg.ops.transforms.Transforms;

import java.util.HashMap;
import java.util.Map;
import java.util.Random;

/**
 * Adam for matrices with orthonormal columns, Q [n, k] with k ≤ n (the rotations of DAS), run in the Lie algebra
 * of the orthogonal group as torch's {@code orthogonal} parametrisation trains pyvene's rotations: Q is the first k
 * columns of an orthogonal frame F [n, n], and a step moves F to {@code F·cayley(A)} with A skew-symmetric. A's free
 * coordinates are the lower triangle's first k columns (entries i > j, j < k; the rest of the frame's rotation does
 * not change Q); Adam's moments live on them.
 *
 * <p>Why not an Adam step followed by a QR retraction: that is not a descent direction on the group. For a plain
 * gradient step and B = QᵀG, the loss changes to first order by {@code −lr·Σ_{i>j} B_ij (B_ij − B_ji)}, which is
 * positive whenever B is nearly symmetric with its larger entries above the diagonal; DAS on a trained MLP then
 * wanders (its loss rises while IIA creeps up). In the Lie algebra the gradient of coordinate (i, j) is
 * {@code M_ij − M_ji} with {@code M = Fᵀ[G, 0]}, and Adam's step is a descent step.
 */
public final class OrthogonalAdam implements Optimizer {
    private final double beta1;
    private final double beta2;
    private final double eps;
    private final Map<String, INDArray> frames = new HashMap<>();
    private final Map<String, INDArray> m = new HashMap<>();
    private final Map<String, INDArray> v = new HashMap<>();
    private final Map<String, INDArray> masks = new HashMap<>();
    private final Random random = new Random(0);
    private int t;

    public OrthogonalAdam(double beta1, double beta2, double eps) {
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.eps = eps;
    }

    /** torch.optim.Adam's defaults. */
    public OrthogonalAdam() {
        this(0.9, 0.999, 1e-8);
    }

    /**
     * One step for every parameter that has a gradient; each parameter must have orthonormal columns (it is updated
     * in place and keeps them).
     */
    @Override
    public void step(Map<String, INDArray> params, Map<String, INDArray> grads, double lr) {
        t++;
        double c1 = 1 - Math.pow(beta1, t);
        double c2 = 1 - Math.pow(beta2, t);
        for (var e : params.entrySet()) {
            INDArray g = grads.get(e.getKey());
            if (g == null) {
                continue;
            }
            INDArray q = e.getValue();
            if (q.rank() != 2 || q.size(1) > q.size(0) || !java.util.Arrays.equals(q.shape(), g.shape())) {
                throw new IllegalArgumentException("'" + e.getKey() + "' must be a matrix [n, k] with k <= n and a"
                        + " gradient of the same shape; got " + java.util.Arrays.toString(q.shape()) + " and "
                        + java.util.Arrays.toString(g.shape()));
            }
            int n = (int) q.size(0);
            int k = (int) q.size(1);
            INDArray frame = frame(e.getKey(), q);
            INDArray lower = masks.computeIfAbsent(e.getKey(), key -> lowerMask(n, k)); // same shape every step
            INDArray full = Nd4j.zeros(DataType.DOUBLE, n, n);
            full.get(NDArrayIndex.all(), NDArrayIndex.interval(0, k)).assign(g.castTo(DataType.DOUBLE));
            INDArray mGen = frame.transpose().mmul(full);
            INDArray grad = mGen.sub(mGen.transpose()).muli(lower);
            INDArray mi = m.computeIfAbsent(e.getKey(), key -> Nd4j.zeros(DataType.DOUBLE, n, n));
            INDArray vi = v.computeIfAbsent(e.getKey(), key -> Nd4j.zeros(DataType.DOUBLE, n, n));
            mi.muli(beta1).addi(grad.mul(1 - beta1));
            vi.muli(beta2).addi(grad.mul(grad).muli(1 - beta2));
            INDArray step = mi.div(c1).divi(Transforms.sqrt(vi.div(c2), false).addi(eps)).muli(-lr).muli(lower);
            frame.assign(rotate(frame, step, k));
            q.assign(frame.get(NDArrayIndex.all(), NDArrayIndex.interval(0, k)).castTo(q.dataType()));
        }
    }

    /**
     * The frame whose first k columns are Q: kept across steps; made afresh (and the moments reset) when Q was
     * changed from outside, e.g. a new initial rotation.
     */
    private INDArray frame(String name, INDArray q) {
        int n = (int) q.size(0);
        int k = (int) q.size(1);
        INDArray qd = q.castTo(DataType.DOUBLE);
        INDArray f = frames.get(name);
        if (f != null && f.size(0) == n
                && f.get(NDArrayIndex.all(), NDArrayIndex.interval(0, k)).sub(qd).amaxNumber().doubleValue() < 1e-4) {
            return f;
        }
        if (Orthogonal.deviation(qd, true) > 1e-4) {
            throw new IllegalArgumentException("'" + name + "' does not have orthonormal columns (max |QᵀQ − I| = "
                    + Orthogonal.deviation(qd, true) + "); start from an orthogonal matrix");
        }
        INDArray fresh = Nd4j.zeros(DataType.DOUBLE, n, n);
        fresh.get(NDArrayIndex.all(), NDArrayIndex.interval(0, k)).assign(qd);
        if (k < n) {
            double[][] extra = new double[n - k][n];
            for (double[] row : extra) {
                for (int i = 0; i < n; i++) {
                    row[i] = random.nextGaussian();
                }
            }
            fresh.get(NDArrayIndex.all(), NDArrayIndex.interval(k, n)).assign(Nd4j.createFromArray(extra).transpose());
            // Gram–Schmidt keeps the first k columns (already orthonormal) and completes the rest
            Orthogonal.retractColumns(fresh);
        }
        frames.put(name, fresh);
        m.remove(name);
        masks.remove(name);
        v.remove(name);
        return fresh;
    }

    private static INDArray lowerMask(int n, int k) {
        INDArray mask = Nd4j.zeros(DataType.DOUBLE, n, n);
        for (int j = 0; j < k; j++) {
            for (int i = j + 1; i < n; i++) {
                mask.putScalar(i, j, 1.0);
            }
        }
        return mask;
    }

    /**
     * {@code F·cayley(A)} for the skew-symmetric {@code A = S − Sᵀ}, where the step S [n, n] is zero outside its
     * first k columns. ND4J inverts an n × n matrix in O(n³) without BLAS (3.4 s at n = 384, MiniLM's width), so for
     * 2k < n the solve is on 2k × 2k instead: with X = S's first k columns and E = [I_k; 0],
     * {@code A = U Vᵀ} for {@code U = [X, −E]}, {@code V = [E, X]}, and by the Woodbury identity
     * {@code cayley(A) = I + 2 U W Vᵀ} with {@code W = (2I − VᵀU)⁻¹}.
     */
    static INDArray rotate(INDArray frame, INDArray step, int k) {
        int n = (int) frame.size(0);
        if (2 * k >= n) {
            return frame.mmul(cayley(step.sub(step.transpose())));
        }
        INDArray x = step.get(NDArrayIndex.all(), NDArrayIndex.interval(0, k)).dup();
        INDArray e = Nd4j.zeros(DataType.DOUBLE, n, k);
        e.get(NDArrayIndex.interval(0, k), NDArrayIndex.all()).assign(Nd4j.eye(k).castTo(DataType.DOUBLE));
        INDArray u = Nd4j.hstack(x, e.neg());
        INDArray vt = Nd4j.hstack(e, x).transpose();
        INDArray wvt = solve(Nd4j.eye(2 * k).castTo(DataType.DOUBLE).muli(2).subi(vt.mmul(u)), vt);
        return frame.add(frame.mmul(u).mmul(wvt).muli(2));
    }

    /** {@code (I − A/2)⁻¹ (I + A/2)}: orthogonal for skew-symmetric A. */
    static INDArray cayley(INDArray a) {
        INDArray eye = Nd4j.eye(a.size(0)).castTo(DataType.DOUBLE);
        INDArray half = a.mul(0.5);
        return solve(eye.sub(half), eye.add(half));
    }

    /**
     * X with {@code a X = b}, by Gaussian elimination with partial pivoting in double precision. Not ND4J's
     * InvertMatrix, which is O(n³) without BLAS; and the low-rank step written with it (then a product with a
     * transposed view) now and then lost double precision: QᵀQ − I jumped to 6e-6 after hundreds of exact steps,
     * at a different step in each run of the same seed (which op was not isolated). This solve is deterministic.
     */
    static INDArray solve(INDArray a, INDArray b) {
        int n = (int) a.size(0);
        int m = (int) b.size(1);
        double[][] l = a.castTo(DataType.DOUBLE).toDoubleMatrix();
        double[][] r = b.castTo(DataType.DOUBLE).toDoubleMatrix();
        for (int c = 0; c < n; c++) {
            int p = c;
            for (int i = c + 1; i < n; i++) {
                if (Math.abs(l[i][c]) > Math.abs(l[p][c])) {
                    p = i;
                }
            }
            if (l[p][c] == 0) {
                throw new ArithmeticException("singular matrix in the Cayley transform");
            }
            double[] t = l[p];
            l[p] = l[c];
            l[c] = t;
            t = r[p];
            r[p] = r[c];
            r[c] = t;
            for (int i = 0; i < n; i++) {
                if (i == c || l[i][c] == 0) {
                    continue;
                }
                double f = l[i][c] / l[c][c];
                for (int j = c; j < n; j++) {
                    l[i][j] -= f * l[c][j];
                }
                for (int j = 0; j < m; j++) {
                    r[i][j] -= f * r[c][j];
                }
            }
        }
        for (int i = 0; i < n; i++) {
            double d = l[i][i];
            for (int j = 0; j < m; j++) {
                r[i][j] /= d;
            }
        }
        return Nd4j.createFromArray(r);
    }
}
