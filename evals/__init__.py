"""The routing policy, its output contract and dataset (the spec), and the evals that hold a model to it."""
