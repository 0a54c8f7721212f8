"""Evaluation metrics of attribution maps (IDGI paper section 4; docs/metrics.md).

Metrics take ``(model, images, targets, maps)`` (or ``(maps, masks)``) and
never compute attributions themselves. Every metric accepts 3-D maps
(N, H, W, C), reduced to 2-D with :func:`reduce_channels`, or 2-D maps (N, H, W);
Insertion, Deletion, Sensitivity-n and MuFidelity take inputs of any rank and maps
of one value per feature (docs/metrics.md#inputs-of-any-rank).
:data:`METRICS` is the table of metrics the bench and the callback read (:mod:`.table`).
"""

from ._maps import reduce_channels
from .fidelity import mufidelity, sensitivity_n
from .insertion import deletion, insertion
from .localization import localization
from .result import MetricResult
from .road import road
from .sic_aic import sic_aic
from .table import METRICS, Metric

__all__ = [
    "METRICS",
    "Metric",
    "MetricResult",
    "deletion",
    "insertion",
    "localization",
    "mufidelity",
    "reduce_channels",
    "road",
    "sensitivity_n",
    "sic_aic",
]
