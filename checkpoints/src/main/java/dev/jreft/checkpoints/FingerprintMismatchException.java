package dev.jreft.checkpoints;

import java.nio.file.Path;

/**
 * A well-formed checkpoint trained on a different model than the one it is being loaded for. Kept apart from
 * {@link CheckpointFormatException} because nothing is wrong with the files: interventions learned on one model's
 * activations are meaningless on another's, so loading is refused, and callers may want to react differently (for
 * example, offer to load the right model).
 */
public class FingerprintMismatchException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    private final transient Path checkpoint;
    private final String checkpointFingerprint;
    private final String modelFingerprint;

    public FingerprintMismatchException(Path checkpoint, String checkpointFingerprint, String modelFingerprint) {
        super(message(checkpoint, checkpointFingerprint, modelFingerprint));
        this.checkpoint = checkpoint;
        this.checkpointFingerprint = checkpointFingerprint;
        this.modelFingerprint = modelFingerprint;
    }

    /** The checkpoint directory that was being loaded. */
    public Path checkpoint() {
        return checkpoint;
    }

    /** The fingerprint of the model the checkpoint was trained on, in full. */
    public String checkpointFingerprint() {
        return checkpointFingerprint;
    }

    /** The fingerprint of the model it was being loaded for, in full. */
    public String modelFingerprint() {
        return modelFingerprint;
    }

    private static String message(Path checkpoint, String trained, String current) {
        String[] s = shorten(trained, current);
        return "checkpoint " + checkpoint + " was trained on model " + s[0] + " but this model is " + s[1]
                + "; load it with the model it was trained on";
    }

    /**
     * Shortens two fingerprints (usually 64 hex digits) for a message: 12 characters each, or more where they share
     * a longer prefix, so the shortened forms still differ.
     */
    static String[] shorten(String a, String b) {
        int common = 0;
        while (common < a.length() && common < b.length() && a.charAt(common) == b.charAt(common)) {
            common++;
        }
        int keep = Math.max(12, common + 4);
        return new String[] {cut(a, keep), cut(b, keep)};
    }

    private static String cut(String s, int keep) {
        return s.length() <= keep ? s : s.substring(0, keep) + "…";
    }
}
