package dev.jreft.hooks.discovery;

/**
 * How a hook tensor's axes read. {@code width} is the last axis of a [batch, seq, width] tensor; for
 * {@link Kind#HEADS} it is {@code heads * headDim} and head k is the slice {@code [k*headDim, (k+1)*headDim)}.
 */
public record HookLayout(Kind kind, long width, long heads, long headDim) {
    public enum Kind {
        /** [batch, seq, hidden]: residual stream and module outputs. */
        RESIDUAL,
        /** [batch, seq, heads*headDim]: per-head projections, merged. */
        HEADS,
        /** [batch, heads, seq, seq]: attention probabilities. */
        ATTENTION_PATTERN,
        /** [batch, seq, mlp width]: MLP hidden activation. */
        MLP,
        /** A raw tensor named by the user: shape only known after a run. */
        RAW
    }

    public static HookLayout residual(long d) {
        return new HookLayout(Kind.RESIDUAL, d, 0, 0);
    }

    public static HookLayout heads(long heads, long headDim) {
        return new HookLayout(Kind.HEADS, heads * headDim, heads, headDim);
    }

    /** True when the tensor is [batch, seq, width], so position units apply. */
    public boolean positional() {
        return kind == Kind.RESIDUAL || kind == Kind.HEADS || kind == Kind.MLP;
    }

    public String shape() {
        return switch (kind) {
            case RESIDUAL, MLP -> "[b,s," + width + "]";
            case HEADS -> "[b,s," + heads + "*" + headDim + "]";
            case ATTENTION_PATTERN -> "[b," + heads + ",s,s]";
            case RAW -> "[?]";
        };
    }
}
