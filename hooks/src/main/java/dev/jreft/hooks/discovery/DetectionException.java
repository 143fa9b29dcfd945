package dev.jreft.hooks.discovery;

/** No known family matched, or one matched partly; the message says what was recognised and what was not. */
public class DetectionException extends RuntimeException {
    public DetectionException(String message) {
        super(message);
    }
}
