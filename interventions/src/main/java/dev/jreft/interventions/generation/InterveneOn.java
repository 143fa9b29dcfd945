package dev.jreft.interventions.generation;

/**
 * Which tokens a generation's interventions act on, one explicit choice (pyvene users keep asking what its
 * {@code generate} intervenes on: pyvene #15, #193).
 */
public enum InterveneOn {
    /**
     * The prompt only, at the sites' own positions; the generated tokens see the effect through the prompt's cached
     * keys and values (pyreft's {@code intervene_on_prompt=True}).
     */
    PROMPT,
    /** Each generated token as it is fed back, never the prompt. */
    GENERATED,
    /** The sites' prompt positions and each generated token as it is fed back (a steering vector on every token). */
    EVERY;

    boolean prompt() {
        return this != GENERATED;
    }

    boolean generated() {
        return this != PROMPT;
    }
}
