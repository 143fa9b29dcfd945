package dev.jreft.hooks.runtime;

import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.jreft.hooks.graph.ElemTypes;
import dev.jreft.hooks.graph.OnnxGraph;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.Map;

/**
 * Specialises a graph's symbolic input dims to concrete sizes and folds the shape arithmetic that becomes
 * constant (Shape → Gather → Concat chains), using ORT's own BASIC-level optimiser (constant folding and
 * redundant-node elimination, standard ONNX ops only; EXTENDED would introduce fused contrib ops). Tensors in
 * {@code keep} are protected as graph outputs while folding, so hooks survive under their names.
 */
public final class ShapeSpecializer {
    private ShapeSpecializer() {
    }

    public static OnnxGraph specialise(OnnxGraph graph, Map<String, long[]> inputDims, Collection<String> keep) {
        OnnxGraph g = graph.copy();
        for (String name : inputDims.keySet()) {
            if (!g.inputNames().contains(name)) {
                throw new IllegalArgumentException("graph has no input '" + name + "' (inputs: " + g.inputNames() + ")");
            }
        }
        g.setInputDims(inputDims);
        ElemTypes types = new ElemTypes(g);
        for (String t : keep) {
            g.exposeOutput(t, types.of(t) == ElemTypes.UNKNOWN ? ElemTypes.FLOAT : types.of(t));
        }
        Path tmp = null;
        Path data = null;
        try {
            tmp = Files.createTempFile("jreft-specialised-", ".onnx");
            tmp.toFile().deleteOnExit(); // ORT writes the folded model only to a file; gone even after a SIGTERM
            data = tmp.resolveSibling(tmp.getFileName() + ".data");
            data.toFile().deleteOnExit();
            try (OrtSession.SessionOptions o = new OrtSession.SessionOptions()) {
                o.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.BASIC_OPT);
                o.addConfigEntry("optimization.disable_specified_optimizers", OrtRuntime.MATMUL_ADD_FUSION);
                o.disablePerSessionThreads(); // the environment's shared pool
                o.setOptimizedModelFilePath(tmp.toString());
                // large tensors go to a data file beside it: those the folding left as they were are then taken
                // from the graph itself (compared, not trusted by name), so the result holds no second copy of them
                o.addConfigEntry("session.optimized_model_external_initializers_file_name",
                        data.getFileName().toString());
                o.addConfigEntry("session.optimized_model_external_initializers_min_size_in_bytes",
                        Integer.toString(SharedInitializers.MIN_BYTES));
                try (OrtRuntime.Transient ignored = OrtRuntime.shared().open(g, o)) {
                    // creating the session writes the optimised model
                }
            }
            return OnnxGraph.parse(Files.readAllBytes(tmp), graph.origin() + " (specialised " + describe(inputDims)
                    + ")", tmp.getParent(), g);
        } catch (OrtException | IOException e) {
            throw new IllegalStateException("could not specialise " + graph.origin() + ": " + e.getMessage(), e);
        } finally {
            for (Path p : new Path[] {tmp, data}) {
                if (p != null) {
                    try {
                        Files.deleteIfExists(p);
                    } catch (IOException ignored) {
                        // a leftover temp file is harmless
                    }
                }
            }
        }
    }

    private static String describe(Map<String, long[]> dims) {
        StringBuilder sb = new StringBuilder();
        dims.forEach((k, v) -> sb.append(k).append(java.util.Arrays.toString(v)).append(' '));
        return sb.toString().trim();
    }
}
