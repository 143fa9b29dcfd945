package dev.jreft.interventions;

/**
 * A change to the model itself, made before any hook intervention sees it: a module edit (LoRA at a linear module)
 * or a sequence edit (a soft prompt in front of the tokens). Gradients come back per edit, in the order given.
 */
public sealed interface ModelEdit permits ModuleSite, SequenceSite {
}
