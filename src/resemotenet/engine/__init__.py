"""Use cases that train and evaluate: a generic trainer, tasks, callbacks, the evaluator."""
