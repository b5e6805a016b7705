"""fusion-emotion: DREAMER emotion recognition with EEG+ECG encoders and concatenation fusion.

Ghallab et al., "Leveraging Foundational Models and Simple Fusion for Multi-modal Physiological
Signal Analysis", arXiv 2512.15250, with an honest protocol: subject-independent folds, model
selection on validation subjects only, per-subject metrics, majority and per-clip baselines.
"""

from fusion_emotion.config import DIMENSIONS, FusionConfig
from fusion_emotion.model import FusionModel
from fusion_emotion.report import compare_runs, report_path
from fusion_emotion.train import RunResult, train

__version__ = "0.1.0"

__all__ = [
    "DIMENSIONS",
    "FusionConfig",
    "FusionModel",
    "RunResult",
    "compare_runs",
    "report_path",
    "train",
    "__version__",
]
