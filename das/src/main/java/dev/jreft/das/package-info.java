/**
 * Distributed alignment search: high-level causal models and their counterfactuals, counterfactual datasets,
 * training rotations so that interchanges in a learned subspace reproduce the causal model's counterfactuals, and
 * interchange intervention accuracy (IIA).
 */
package dev.jreft.das;
