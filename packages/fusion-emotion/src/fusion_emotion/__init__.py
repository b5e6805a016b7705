"""fusion-emotion: DREAMER emotion recognition with EEG+ECG encoders and fusion strategies.

Ghallab et al., "Leveraging Foundational Models and Simple Fusion for Multi-modal Physiological
Signal Analysis", arXiv 2512.15250, with an honest protocol: subject-independent folds, model
selection on validation subjects only, per-subject metrics, majority and per-clip baselines,
and paired statistics over subjects; fusion strategies beyond the paper's concatenation
(late, gated, cross-attention: :mod:`fusion_emotion.strategies`).

Layout: ``config`` (FusionConfig) -> ``data`` (the store) -> ``encoders`` -> ``model`` +
``strategies`` -> ``fit`` (epoch loop) -> ``protocol`` (jobs) -> ``train`` (the run, thin) ->
``rundir`` (every file of a run folder) -> ``report`` (+ ``stats``, ``plots``; pure).
"""

from fusion_emotion.config import DIMENSIONS, FUSIONS, FusionConfig
from fusion_emotion.model import FusionModel
from fusion_emotion.report import compare_runs, report_path
from fusion_emotion.train import RunResult, train
from fusion_emotion.version import __version__

__all__ = [
    "DIMENSIONS",
    "FUSIONS",
    "FusionConfig",
    "FusionModel",
    "RunResult",
    "compare_runs",
    "report_path",
    "train",
    "__version__",
]
