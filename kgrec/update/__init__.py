"""Continual training: ``kgrec update RUN_DIR (--interactions FILE | --log DIR) -o NEW_RUN``.

A new run directory is written from a trained one: new users, items and interactions are
added to its data set (:mod:`kgrec.update.additions`), the model is rebuilt for the larger
data set, warm-started from the parent's weights and trained for a bounded number of steps
(:mod:`kgrec.update.continual`). The new run is self-contained (its ``additions.json`` holds
every row added since the schema's data set, ``lineage.json`` says where it came from) and
is read by :func:`kgrec.rundir.load.load_run` like any other run, so ``evaluate``, ``audit``,
``serve`` and a further ``update`` take it as they take a trained run.

Import the submodules directly: this package imports nothing heavy.
"""
