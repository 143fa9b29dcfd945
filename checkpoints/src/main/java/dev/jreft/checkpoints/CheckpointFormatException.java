package dev.jreft.checkpoints;

/**
 * A checkpoint or safetensors file that cannot be read because its content is wrong: missing files, malformed JSON,
 * an unknown format or schema version, inconsistent tensor offsets. It is an {@link IllegalArgumentException}
 * because the caller handed in a path to something that is not a valid checkpoint; the message names the file, the
 * problem and, where there is one, what a valid file would hold.
 */
public class CheckpointFormatException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    public CheckpointFormatException(String message) {
        super(message);
    }

    public CheckpointFormatException(String message, Throwable cause) {
        super(message, cause);
    }
}
