package dev.jreft.analysis;

import dev.jreft.hooks.runtime.HookedModel;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PatchingSweepTest {
    @Test
    void patchingMiniLmMovesTheEmbeddingTowardsTheSource() {
        HookedModel m = HookedModel.minilm();
        // same token count, so patching the last block at every position reproduces the source exactly
        String base = "The movie was wonderful.";
        String source = "The movie was terrible.";
        assertEquals(m.tokenize(List.of(base)).seqLen(), m.tokenize(List.of(source)).seqLen());
        List<PatchingSweep.LayerEffect> fx = PatchingSweep.blockOutputInterchange(m, base, source,
                PatchingSweep.Positions.ALL_SHARED);
        assertEquals(6, fx.size());
        PatchingSweep.LayerEffect last = fx.get(5);
        assertTrue(last.distanceToSource() < 1e-6, "last layer: " + last);
        assertTrue(last.distanceFromBase() > 1e-3, "last layer: " + last);
        for (PatchingSweep.LayerEffect e : fx) {
            assertTrue(e.distanceFromBase() > 0 && Double.isFinite(e.distanceToSource()), e.toString());
        }
        // patching only the differing token: the embedding moves part of the way, more at early layers
        List<PatchingSweep.LayerEffect> traced = PatchingSweep.blockOutputInterchange(m, base, source,
                PatchingSweep.Positions.DIFFERING);
        assertEquals(1, traced.get(0).positions().length);
        double clean = last.distanceFromBase();
        for (PatchingSweep.LayerEffect e : traced) {
            assertTrue(e.distanceFromBase() > 0 && e.distanceFromBase() < clean, e.toString());
            assertTrue(e.distanceToSource() > 0 && e.distanceToSource() < clean, e.toString());
        }
    }
}
