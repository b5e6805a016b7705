"""Downstream probes of encoders on labelled stores: ``run_probe(ProbeConfig(...), out)``.

Modules: :mod:`~criss_cross.probe.challenge` (Challenge 2021 score, macro AUROC / F1),
:mod:`~criss_cross.probe.data` (labels, groups, cached pooled embeddings),
:mod:`~criss_cross.probe.train` (splits, linear probe, fine-tuning, evaluation),
:mod:`~criss_cross.probe.run` (the pipeline), :mod:`~criss_cross.probe.report` (the report).
"""

from criss_cross.probe.run import ProbeConfig, run_probe

__all__ = ["ProbeConfig", "run_probe"]
