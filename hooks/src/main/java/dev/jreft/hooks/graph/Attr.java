package dev.jreft.hooks.graph;

import ai.onnx.proto.OnnxMl.AttributeProto;

import java.util.List;

/** A node attribute, so modules that emit subgraphs never touch the ONNX protobuf classes. */
public record Attr(AttributeProto proto) {
    public static Attr i(String name, long v) {
        return new Attr(AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.INT).setI(v)
                .build());
    }

    public static Attr f(String name, float v) {
        return new Attr(AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.FLOAT)
                .setF(v).build());
    }

    public static Attr ints(String name, long... v) {
        AttributeProto.Builder b = AttributeProto.newBuilder().setName(name)
                .setType(AttributeProto.AttributeType.INTS);
        for (long x : v) {
            b.addInts(x);
        }
        return new Attr(b.build());
    }

    public static Attr s(String name, String v) {
        return new Attr(AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.STRING)
                .setS(com.google.protobuf.ByteString.copyFromUtf8(v)).build());
    }

    static List<AttributeProto> protos(Attr... attrs) {
        return java.util.Arrays.stream(attrs).map(Attr::proto).toList();
    }
}
