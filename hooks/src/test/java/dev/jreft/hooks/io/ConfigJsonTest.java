package dev.jreft.hooks.io;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every way a config can be wrong gives one line naming file, field, what was found and what is valid. */
class ConfigJsonTest {
    enum Pooling { MEAN, FIRST, LAST }

    record Inner(int epochs, double learningRate, Pooling pooling) {
        Inner {
            Check.atLeast("epochs", epochs, 1);
            Check.positive("learning_rate", learningRate);
        }
    }

    record Outer(String model, Inner training, List<Integer> sizes, Boolean shareWeights, int[] heads,
                 int[][] positions) {
    }

    static String error(String json) {
        return assertThrows(ConfigException.class, () -> ConfigJson.parse(json, "c.json", Outer.class)).getMessage();
    }

    @Test
    void goodConfigsRead() {
        Outer o = ConfigJson.parse("{\"model\": \"minilm\", \"training\": {\"epochs\": 2, \"learning_rate\": 1,"
                + " \"pooling\": \"mean\"}, \"sizes\": [1, 2], \"share_weights\": true}", "c.json", Outer.class);
        assertEquals("minilm", o.model());
        assertEquals(new Inner(2, 1.0, Pooling.MEAN), o.training());
        assertEquals(List.of(1, 2), o.sizes());
    }

    @Test
    void eachClassOfMistakeIsNamed() {
        assertEquals("c.json: training.epochs: found 1.9; valid: an integer",
                error("{\"training\": {\"epochs\": 1.9, \"learning_rate\": 1}}"));
        assertEquals("c.json: training.learning_rate: found NaN; valid: a finite number > 0",
                error("{\"training\": {\"epochs\": 1, \"learning_rate\": \"NaN\"}}"));
        assertEquals("c.json: training.learning_rate: found Infinity; valid: a finite number > 0",
                error("{\"training\": {\"epochs\": 1, \"learning_rate\": 1e999}}"));
        assertEquals("c.json: training.epochs: found 0; valid: an integer >= 1",
                error("{\"training\": {\"epochs\": 0, \"learning_rate\": 1}}"));
        assertEquals("c.json: training: found unknown field 'lr'; valid: fields epochs, learning_rate, pooling",
                error("{\"training\": {\"epochs\": 1, \"learning_rate\": 1, \"lr\": 1}}"));
        assertEquals("c.json: training.epochs: found nothing; valid: an integer",
                error("{\"training\": {\"learning_rate\": 1}}"));
        assertEquals("c.json: training.pooling: found 'max'; valid: mean, first, last",
                error("{\"training\": {\"epochs\": 1, \"learning_rate\": 1, \"pooling\": \"max\"}}"));
        assertEquals("c.json: sizes[1]: found 'x'; valid: an integer", error("{\"sizes\": [1, \"x\"]}"));
        assertEquals("c.json: model: found 5; valid: a string", error("{\"model\": 5}"));
        assertEquals("c.json: found null; valid: a JSON object", error("null"));
        assertEquals("c.json: sizes[1]: found null; valid: an integer", error("{\"sizes\": [1, null]}"));
        assertEquals("c.json: share_weights: found 1; valid: true or false", error("{\"share_weights\": 1}"));
        assertEquals("c.json: training.epochs: found null; valid: an integer (leave the field out for its default)",
                error("{\"training\": {\"epochs\": null, \"learning_rate\": 1}}"));
        assertEquals("c.json: sizes[0]: found 99999999999; valid: a number in the range of int",
                error("{\"sizes\": [99999999999]}"));
        assertEquals("c.json: line 1, column 16: found a second JSON value after the first; valid: one JSON value (one"
                + " object per line in JSON Lines)", error("{\"model\": \"a\"} {\"model\": \"b\"}"));
        assertEquals("c.json: line 1, column 23: found field 'model' twice; valid: each field once",
                error("{\"model\": \"a\", \"model\": \"b\"}"));
        assertEquals("c.json: heads: found '3'; valid: a list", error("{\"heads\": \"3\"}"));
        assertEquals("c.json: positions[1]: found 'all'; valid: a list", error("{\"positions\": [[1], \"all\"]}"));
        assertEquals("c.json: line 1, column 18: found NaN; valid: a JSON number (NaN and Infinity are not JSON"
                + " numbers)", error("{\"sizes\": [1, NaN]}"));
        assertTrue(error("[".repeat(1001) + "]".repeat(1001)).startsWith("c.json: found JSON beyond the reader's"
                + " limits (Document nesting depth (1001))"), error("[".repeat(1001) + "]".repeat(1001)));
        assertEquals("c.json: model: found 'a\\u001b[2Jb'; valid: a JSON object", assertThrows(ConfigException.class,
                () -> { throw new ConfigException("model", "a\u001b[2Jb", "a JSON object").in("c.json"); })
                .getMessage());
        String broken = error("{\"model\": }");
        assertTrue(broken.startsWith("c.json: line 1, column 11: not valid JSON (Unexpected character ('}'"), broken);
    }
}
