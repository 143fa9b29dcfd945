package dev.jreft.bench;

import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import dev.jreft.checkpoints.SafeTensors;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.params.Init;
import dev.jreft.training.AdamW;
import dev.jreft.training.ClassificationHead;
import dev.jreft.training.MethodSpec;
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
import java.util.Random;

/**
 * Writes what the PyTorch peer scripts need to run jreft's training steps on the same weights: MiniLM's initializers
 * named by module path ({@code minilm.safetensors}), and for each case its parameters with the head and one batch
 * with labels: the main job's LoReFT ({@code setup.safetensors}, for {@code bench/peer/minilm_loreft_step.py}) and
 * {@link PeftBenchmark}'s LoRA ({@code lora.safetensors}, for {@code bench/peer/minilm_lora_step.py}). Prints jreft's
 * loss on each so the peer can check it computes the same function.
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

        Batch batch = HooksBenchmark.randomBatch(16, 32, 77);
        int[] labels = new int[16];
        for (int i = 0; i < labels.length; i++) {
            labels[i] = i % 2;
        }

        ReftClassifier c = ReftClassifier.create(model, new ReftClassifier.Config("loreft",
                List.of("blocks.1.block_output", "blocks.3.block_output", "blocks.5.block_output"), 4, "f1+l1", false,
                2, ClassificationHead.Pooling.MEAN), 42);
        Map<String, INDArray> setup = withBatch(c.parameters(), batch, labels);
        SafeTensors.write(dir.resolve("setup.safetensors"), setup, Map.of("hooks", "1,3,5", "positions", "f1+l1"));
        double loss = c.gradients(model.complete(batch), labels).loss();
        c.step(model.complete(batch), labels, new AdamW(0.9, 0.999, 1e-8, 0), 1e-3, 1.0, 0);
        System.out.printf("jreft LoReFT loss on the exported batch: %.6f%n", loss);

        // PeftBenchmark's LoRA (r=8, alpha 16, no dropout, query+value of every layer) with a MEAN-pooled 2-class
        // head. B starts at zero, which would leave the LoRA path out of the check: draw A and B both at random.
        MethodSpec.Lora spec = (MethodSpec.Lora) PeftBenchmark.methods(model.hooks().config().layers()).get("lora");
        ReftClassifier.Config loraConfig = new ReftClassifier.Config(spec, 2, ClassificationHead.Pooling.MEAN);
        Map<String, INDArray> drawn = new LinkedHashMap<>(ReftClassifier.create(model, loraConfig, 42).parameters());
        Random random = new Random(43);
        drawn.replaceAll((k, v) -> k.endsWith(".A") || k.endsWith(".B")
                ? Init.kaimingUniform().draw(v.shape(), random) : v);
        ReftClassifier lora = ReftClassifier.withParameters(model, loraConfig, drawn);
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("r", Integer.toString(spec.r()));
        meta.put("lora_alpha", Double.toString(spec.loraAlpha()));
        meta.put("target_modules", String.join(",", spec.modules(model).stream().map(m -> m.path()).toList()));
        meta.put("pooling", "mean");
        SafeTensors.write(dir.resolve("lora.safetensors"), withBatch(lora.parameters(), batch, labels), meta);
        double loraLoss = lora.gradients(model.complete(batch), labels).loss();
        System.out.printf("jreft LoRA loss on the exported batch (A and B random): %.8f%n", loraLoss);
        System.out.println("wrote " + dir.resolve("minilm.safetensors") + ", " + dir.resolve("setup.safetensors")
                + " and " + dir.resolve("lora.safetensors"));
    }

    /** A copy of a classifier's parameters with the batch's input ids, attention mask and labels. */
    private static Map<String, INDArray> withBatch(Map<String, INDArray> params, Batch batch, int[] labels) {
        Map<String, INDArray> out = new LinkedHashMap<>();
        params.forEach((k, v) -> out.put(k, v.dup()));
        out.put("input_ids", batch.inputs().get("input_ids"));
        out.put("attention_mask", batch.attentionMask());
        out.put("labels", Nd4j.createFromArray(labels).castTo(DataType.LONG));
        return out;
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
