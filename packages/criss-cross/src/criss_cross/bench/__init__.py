"""``criss-cross bench``: an encoder against random init, handcrafted features and baselines.

Modules: :mod:`~criss_cross.bench.tasks` (named tasks, labels), :mod:`~criss_cross.bench.splits`
(PTB-XL folds, patient splits, the hashed manifest), :mod:`~criss_cross.bench.features` (the
feature baseline), :mod:`~criss_cross.bench.metrics` (AUROC, F1, ECE, Brier, bootstrap over
patients, paired differences), :mod:`~criss_cross.bench.guards` (leakage and preprocessing),
:mod:`~criss_cross.bench.evaluate` / :mod:`~criss_cross.bench.fit` (methods and their scores),
:mod:`~criss_cross.bench.run` (the pipeline), :mod:`~criss_cross.bench.report` (the report).
"""

from criss_cross.bench.run import BenchConfig, BenchRefused, run_bench

__all__ = ["BenchConfig", "BenchRefused", "run_bench"]
