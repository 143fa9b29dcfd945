package dev.jreft.hooks.graph;

/** The bytes given as an ONNX model are not one (garbled, truncated, missing parts). */
public class OnnxFormatException extends RuntimeException {
    public OnnxFormatException(String message) {
        super(message);
    }

    public OnnxFormatException(String message, Throwable cause) {
        super(message, cause);
    }
}
