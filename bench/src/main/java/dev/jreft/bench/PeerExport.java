package dev.jreft.bench;

import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import dev.jreft.checkpoints.SafeTensors;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.training.AdamW;
import dev.jreft.training.ClassificationHead;
import dev.jreft.training.ReftClassifier;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes what the PyTorch peer script ({@code bench/peer/minilm_loreft_step.py}) needs to run the main job's
 * training step on the same weights: MiniLM's initializers named by module path, the LoReFT + head parameters and
 * one batch; prints jreft's loss on that batch so the peer can check it computes the same function.
 *
 * <p>Run: {@code java -cp bench/target/jreft-bench.jar dev.jreft.bench.PeerExport runs/peer}
 */
public final class PeerExport {
    private PeerExport() {
    }

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args.length > 0 ? args[0] : "runs/peer");
        HookedModel model = HookedModel.minilm();
        Map<String, INDArray> weights = new LinkedHashMap<>();
        for (TensorProto t : model.graph().initializers()) {
            if (t.getDataType() != TensorProto.DataType.FLOAT_VALUE || t.getDimsCount() == 0) {
                continue;
            }
            String name = t.getName();
            if (name.startsWith("onnx::")) { // exported MatMul weights lose their names: name them by their node
                NodeProto user = model.graph().consumers(name).get(0);
                name = user.getName().substring(1).replace('/', '.').replaceAll("\\.MatMul$", "") + ".weight_t";
            }
            weights.put(name, floats(t));
        }
        SafeTensors.write(dir.resolve("minilm.safetensors"), weights, Map.of("source", "all-minilm-l6-v2.onnx"));

        ReftClassifier c = ReftClassifier.create(model, new ReftClassifier.Config("loreft",
                List.of("blocks.1.block_output", "blocks.3.block_output", "blocks.5.block_output"), 4, "f1+l1", false,
                2, ClassificationHead.Pooling.MEAN), 42);
        Batch batch = HooksBenchmark.randomBatch(16, 32, 77);
        int[] labels = new int[16];
        for (int i = 0; i < labels.length; i++) {
            labels[i] = i % 2;
        }
        Map<String, INDArray> setup = new LinkedHashMap<>();
        c.parameters().forEach((k, v) -> setup.put(k, v.dup()));
        setup.put("input_ids", batch.inputs().get("input_ids"));
        setup.put("attention_mask", batch.attentionMask());
        setup.put("labels", Nd4j.createFromArray(labels).castTo(DataType.LONG));
        SafeTensors.write(dir.resolve("setup.safetensors"), setup, Map.of("hooks", "1,3,5", "positions", "f1+l1"));
        double loss = c.gradients(model.complete(batch), labels).loss();
        c.step(model.complete(batch), labels, new AdamW(0.9, 0.999, 1e-8, 0), 1e-3, 1.0, 0);
        System.out.printf("jreft loss on the exported batch: %.6f%n", loss);
        System.out.println("wrote " + dir.resolve("minilm.safetensors") + " and " + dir.resolve("setup.safetensors"));
    }

    private static INDArray floats(TensorProto t) {
        long[] shape = t.getDimsList().stream().mapToLong(Long::longValue).toArray();
        float[] v;
        if (t.getFloatDataCount() > 0) {
            v = new float[t.getFloatDataCount()];
            for (int i = 0; i < v.length; i++) {
                v[i] = t.getFloatData(i);
            }
        } else {
            ByteBuffer b = t.getRawData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
            v = new float[b.remaining() / 4];
            b.asFloatBuffer().get(v);
        }
        return Nd4j.create(v, shape, 'c');
    }
}
