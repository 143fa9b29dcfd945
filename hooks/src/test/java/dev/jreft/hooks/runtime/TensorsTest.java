package dev.jreft.hooks.runtime;

import ai.onnxruntime.OnnxTensor;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TensorsTest {
    @Test
    void boolArraysReachOrtWithTheirValuesSharedOrCopied() throws Exception {
        INDArray mask = Nd4j.createFromArray(new boolean[][] {{true, false, false}, {false, true, true}});
        INDArray view = mask.transpose(); // a view in 'f' order: copied
        for (INDArray a : new INDArray[] {mask, view}) {
            try (OnnxTensor t = Tensors.toOrt(OrtRuntime.shared().env(), a)) {
                INDArray back = Tensors.fromOrt(t);
                assertEquals(DataType.BOOL, back.dataType());
                assertTrue(Tensors.shareable(back), "read back as an array ORT can take without a copy");
                assertArrayEquals(a.shape(), back.shape());
                for (int i = 0; i < a.size(0); i++) {
                    for (int j = 0; j < a.size(1); j++) {
                        assertEquals(a.getDouble(i, j), back.getDouble(i, j), 0.0, i + "," + j);
                    }
                }
            }
        }
        assertTrue(Tensors.shareable(mask));
    }
}
