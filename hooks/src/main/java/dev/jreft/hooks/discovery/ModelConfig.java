package dev.jreft.hooks.discovery;

/** Sizes read off an export's weights and reshapes: nothing here comes from a config file. */
public record ModelConfig(String family, int layers, long hidden, long heads, long kvHeads, long headDim,
                          long mlpWidth) {
}
