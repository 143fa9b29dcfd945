package dev.jreft.hooks.autodiff;

/** An op on the differentiable path has no gradient rule: never a silently wrong or zero gradient. */
public class NoGradientRuleException extends RuntimeException {
    public NoGradientRuleException(String message) {
        super(message);
    }
}
