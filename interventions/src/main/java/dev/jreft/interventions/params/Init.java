package dev.jreft.interventions.params;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Random;

/** How a parameter's first value is drawn; every draw is float32 and reproducible from the given random. */
@FunctionalInterface
public interface Init {
    INDArray draw(long[] shape, Random random);

    static Init zeros() {
        return (shape, random) -> Nd4j.zeros(DataType.FLOAT, shape);
    }

    static Init constant(double value) {
        return (shape, random) -> Nd4j.zeros(DataType.FLOAT, shape).addi(value);
    }

    /** Independent draws from U(−bound, bound). */
    static Init uniform(double bound) {
        return (shape, random) -> {
            INDArray a = Nd4j.create(DataType.FLOAT, shape);
            for (long i = 0; i < a.length(); i++) {
                a.putScalar(i, (random.nextDouble() * 2 - 1) * bound);
            }
            return a;
        };
    }

    /** Independent draws from N(0, std²): {@code nn.Embedding}'s default with std 1. */
    static Init normal(double std) {
        return (shape, random) -> {
            INDArray a = Nd4j.create(DataType.FLOAT, shape);
            for (long i = 0; i < a.length(); i++) {
                a.putScalar(i, random.nextGaussian() * std);
            }
            return a;
        };
    }

    /**
     * {@code torch.nn.init.kaiming_uniform_(w, a=√5)} for a weight [out, in]: U(±1/√in), the default init of
     * {@code nn.Linear} weights and of peft's LoRA A.
     */
    static Init kaimingUniform() {
        return (shape, random) -> uniform(1 / Math.sqrt(shape[shape.length - 1])).draw(shape, random);
    }
}
