package dev.jreft.hooks;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jreft.hooks.io.FixturesLocation;
import dev.jreft.hooks.io.Npy;
import dev.jreft.hooks.runtime.Batch;
import org.junit.jupiter.api.Assumptions;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/** Test access to ../shared/fixtures; tests skip visibly when it is absent. */
final class Fixtures {
    private Fixtures() {
    }

    static Path dir() {
        var d = FixturesLocation.find();
        Assumptions.assumeTrue(d.isPresent(), "reference fixtures not found at " + FixturesLocation.configured());
        return d.get();
    }

    static JsonNode manifest() {
        try {
            return new ObjectMapper().readTree(dir().resolve("manifest.json").toFile());
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    static Batch inputs(String model) {
        JsonNode in = manifest().get("models").get(model).get("inputs");
        Map<String, INDArray> m = new LinkedHashMap<>();
        in.fields().forEachRemaining(e -> m.put(e.getKey(), Npy.read(dir().resolve(e.getValue().asText()))));
        return new Batch(m);
    }

    static INDArray npy(String relative) {
        return Npy.read(dir().resolve(relative));
    }
}
