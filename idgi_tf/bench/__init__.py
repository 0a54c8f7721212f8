"""The benchmark that reproduces the IDGI paper's Tables 1-4: ``python -m idgi_tf.bench run`` / ``report``.

``python -m idgi_tf.bench run --model ResNet50V2`` explains the correctly
classified images with IG, GIG and BlurIG (plain and IDGI) and Vanilla
Gradient (``--methods``: any of :data:`idgi_tf.METHODS`), scores every map with Insertion, SIC/AIC (entropy
and MS-SSIM) and localization (``--metrics``: any of :data:`idgi_tf.metrics.METRICS`), appends one row per
(image, method, rule) to ``OUT/results.jsonl`` (a rerun resumes; one with other settings is refused), and
writes ``OUT/tables.md`` / ``OUT/tables.csv`` with the paper's values beside ours.
``python -m idgi_tf.bench report OUT [OUT ...]`` re-aggregates (and merges shards).
"""

from .cli import main
from .report import write_report
from .run import Config, run

__all__ = ["Config", "main", "run", "write_report"]
