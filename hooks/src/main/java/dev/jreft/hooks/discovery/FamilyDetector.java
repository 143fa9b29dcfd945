package dev.jreft.hooks.discovery;

import java.util.Optional;

/** Recognises one model family from node names and structure and maps its canonical hooks to tensors. */
interface FamilyDetector {
    String family();

    /** What this family's node names look like, for error messages. */
    String signature();

    /** Empty when the graph shows no sign of this family; throws when it does but a hook cannot be placed. */
    Optional<HookMap> detect(ModuleScope scope);
}
