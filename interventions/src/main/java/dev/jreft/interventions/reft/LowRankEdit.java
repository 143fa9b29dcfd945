package dev.jreft.interventions.reft;

import dev.jreft.interventions.params.Parameter;
import dev.jreft.interventions.params.Init;
import dev.jreft.interventions.params.Constraint;
import dev.jreft.hooks.graph.SubgraphBuilder;
import dev.jreft.interventions.Intervention;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Shared shape of the ReFT family: parameters {@code R} [r, d], {@code W} [r, d], {@code b} [r] acting on rows
 * {@code h} [.., d] in row form (pyreft writes the column form {@code h + Rᵀ(Wh + b − Rh)}), an optional activation
 * on the learned projection {@code h Wᵀ + b} and pyreft's dropout on the output. Dropout is a fed mask, not a random
 * op: with {@code dropout} p > 0 the formula reads the non-trained input {@code dropout_mask} [batch, seq, width]
 * (0 or 1/(1−p) per entry, see {@link #sampleDropoutMask}) and returns {@code output ⊙ dropout_mask}; a site that
 * feeds no mask gets ones (evaluation mode).
 */
abstract class LowRankEdit implements Intervention {
    /** Name of the non-trained dropout mask input. */
    public static final String DROPOUT_MASK = "dropout_mask";

    final int rank;
    final Activation activation;
    final double dropout;

    LowRankEdit(int rank, Activation activation, double dropout) {
        if (rank < 1) {
            throw new IllegalArgumentException("ReFT rank must be >= 1; got " + rank);
        }
        if (!(dropout >= 0 && dropout < 1)) {
            throw new IllegalArgumentException("dropout must be in [0, 1); got " + dropout);
        }
        this.rank = rank;
        this.activation = activation == null ? Activation.LINEAR : activation;
        this.dropout = dropout;
    }

    public int rank() {
        return rank;
    }

    public Activation activation() {
        return activation;
    }

    public double dropout() {
        return dropout;
    }

    /** Activation and whether a dropout mask is read change the graph (the mask's values and p do not). */
    @Override
    public String structureKey() {
        return type() + "[activation=" + activation.configName() + (dropout > 0 ? ",dropout" : "") + "]";
    }

    @Override
    public boolean needsSource() {
        return false;
    }

    /** Every type maps each row on its own (its dropout mask, when read, is [batch, seq, width]: the dense form). */
    @Override
    public boolean rowwise() {
        return true;
    }

    /** True for the types whose R keeps orthonormal rows while it trains (LoReFT, ConsReFT, LobiReFT). */
    abstract boolean orthonormalR();

    /** False for the types without a learned projection W (ConsReFT, LobiReFT learn b directly). */
    boolean learnsProjection() {
        return true;
    }

    @Override
    public List<Parameter> parameters(long width) {
        if (rank > width) {
            throw new dev.jreft.hooks.io.ConfigException("rank", rank, "an integer in 1.." + width + " (the hook's"
                    + " width)");
        }
        List<Parameter> p = new ArrayList<>();
        // R starts with orthonormal rows in every type (pyreft's rotate layer); only some keep them
        Parameter r = Parameter.constrained("R", Constraint.ORTHONORMAL_ROWS, rank, width);
        p.add(orthonormalR() ? r : new Parameter("R", r.shape(), r.init(), Constraint.NONE));
        if (learnsProjection()) {
            p.add(Parameter.of("W", Init.kaimingUniform(), rank, width)); // nn.Linear(d, r): U(±1/√d)
        }
        p.add(Parameter.of("b", Init.zeros(), rank));
        return p;
    }

    @Override
    public Map<String, long[]> inputShapes(long width) {
        return dropout > 0 ? Map.of(DROPOUT_MASK, new long[] {-1, -1, width}) : Map.of();
    }

    /** An absent dropout mask is all ones: evaluation mode, the output passes undropped. */
    @Override
    public Float inputDefault(String name) {
        return DROPOUT_MASK.equals(name) ? 1f : null;
    }

    /**
     * A training-mode mask for this intervention's p: each entry independently 0 with probability p, else 1/(1−p)
     * (inverted dropout, as {@code torch.nn.Dropout}); feed it as the site's {@code dropout_mask}.
     */
    public INDArray sampleDropoutMask(long batch, long seq, long width, Random random) {
        return dev.jreft.interventions.params.Dropout.mask(batch, seq, width, dropout, random);
    }

    /** {@code act(h Wᵀ + b)}: the learned source of LoReFT, NoReFT, DiReFT and NodiReFT. */
    String learnedSource(SubgraphBuilder b, String h, Map<String, String> p) {
        return activation.emit(b, b.op("Add", List.of(project(b, h, p.get("W")), p.get("b"))));
    }

    /** {@code (h + edit R) ⊙ dropout_mask}, the mask only when p > 0. */
    String addEdit(SubgraphBuilder b, String h, String edit, Map<String, String> p) {
        String out = b.op("Add", List.of(h, b.op("MatMul", List.of(edit, p.get("R")))));
        return dropout > 0 ? b.op("Mul", List.of(out, p.get(DROPOUT_MASK))) : out;
    }

    /** {@code x Mᵀ} for rows x [.., d] and M [r, d]: the r projections of each row. */
    static String project(SubgraphBuilder b, String x, String m) {
        return b.rowProjection(x, m);
    }
}
