package dev.jreft.hooks.discovery;

/** A hook name that is neither canonical for the model nor a tensor of its graph. */
public class UnknownHookException extends IllegalArgumentException {
    public UnknownHookException(String message) {
        super(message);
    }
}
