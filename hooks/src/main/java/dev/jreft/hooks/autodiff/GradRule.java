package dev.jreft.hooks.autodiff;

import ai.onnx.proto.OnnxMl.NodeProto;

/** The gradient of one op: reads the node's output gradients from {@code bw} and adds its inputs' gradients. */
@FunctionalInterface
public interface GradRule {
    void apply(NodeProto node, Backward bw);
}
