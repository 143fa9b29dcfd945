package dev.jreft.interventions.params;

import java.util.Arrays;

/**
 * A trained parameter as its method declares it: name, shape, how it starts and what it must stay. The trainer
 * draws fresh values from {@link #init}, keeps {@link #constraint} after every step, and checkpoints check a loaded
 * value against both; nothing outside the method switches on a parameter's name or the method's type.
 */
public record Parameter(String name, long[] shape, Init init, Constraint constraint) {
    public Parameter {
        if (name == null || name.isEmpty() || shape == null || init == null || constraint == null) {
            throw new IllegalArgumentException("a parameter needs a name, a shape, an init and a constraint");
        }
        shape = shape.clone();
        constraint.checkShape(name, shape);
    }

    /** An unconstrained parameter. */
    public static Parameter of(String name, Init init, long... shape) {
        return new Parameter(name, shape, init, Constraint.NONE);
    }

    /** A parameter kept on the manifold {@code constraint} names, starting from a random point of it. */
    public static Parameter constrained(String name, Constraint constraint, long... shape) {
        return new Parameter(name, shape, constraint.randomInit(), constraint);
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    public long size() {
        return Arrays.stream(shape).reduce(1, (a, b) -> a * b);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Parameter p && name.equals(p.name) && Arrays.equals(shape, p.shape)
                && constraint == p.constraint;
    }

    @Override
    public int hashCode() {
        return name.hashCode() * 31 + Arrays.hashCode(shape);
    }

    @Override
    public String toString() {
        return name + Arrays.toString(shape) + (constraint == Constraint.NONE ? "" : " " + constraint.description());
    }
}
