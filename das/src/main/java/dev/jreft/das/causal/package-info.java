/**
 * High-level causal models and their counterfactuals: the "algorithm" side of distributed alignment search.
 *
 * <p>A {@link dev.jreft.das.causal.CausalModel} is a small deterministic program written as a graph of named
 * variables (inputs, intermediate variables, outputs). An interchange intervention runs it on a base input while
 * some intermediate variables take the values they would have had on other (source) inputs; the resulting
 * counterfactual outputs are the labels that a neural network's interchange interventions are trained and scored
 * against. {@link dev.jreft.das.causal.CounterfactualDataset} draws such (base, sources, labels) examples
 * reproducibly, and {@link dev.jreft.das.causal.HierarchicalEquality} is the standard worked example.
 */
package dev.jreft.das.causal;
