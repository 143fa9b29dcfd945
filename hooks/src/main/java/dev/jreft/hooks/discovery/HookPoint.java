package dev.jreft.hooks.discovery;

/** One named hook: the canonical name, the graph tensor it reads, its layer and component, and its layout. */
public record HookPoint(String name, String tensor, int layer, String component, HookLayout layout) {
    /** Prefix that names a raw graph tensor as a hook on any graph, e.g. {@code tensor:/transformer/h.0/Add_output_0}. */
    public static final String RAW_PREFIX = "tensor:";

    public static HookPoint raw(String tensor) {
        return new HookPoint(RAW_PREFIX + tensor, tensor, -1, "raw", new HookLayout(HookLayout.Kind.RAW, -1, 0, 0));
    }
}
