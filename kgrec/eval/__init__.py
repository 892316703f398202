"""Evaluation of a run: full ranking through the model protocol (:mod:`kgrec.eval.evaluator`),
``metrics.json`` (:mod:`kgrec.eval.report`) and seed comparisons (:mod:`kgrec.eval.compare`).
The metric functions themselves are pure and live in :mod:`kgrec.metrics`."""
