"""idgi_tf: gradient attribution for Keras image classifiers, with IDGI, and its evaluation.

Public API::

    idgi_tf.attribute(model, images, targets, method, rule=..., steps=..., ...)
    idgi_tf.explained_output(model, images, targets)
    idgi_tf.path_start(method, images, baseline=None, **options)   # x_0 of ig, gig, blurig
    idgi_tf.METHODS                  # method name -> how it is computed (summary, options)
    idgi_tf.models.load(...) / pixel_model(...)
    idgi_tf.metrics.insertion / sic_aic / localization / sensitivity_n / mufidelity ...
    idgi_tf.spectral.power_spectrum / lowpass / tune_cutoff
    idgi_tf.viz (heatmaps, grids, curves) and idgi_tf.callbacks.AttributionCallback (import them)

A path attribution is a path (:mod:`idgi_tf.paths`) times a step rule
(:mod:`idgi_tf.rules`), integrated by one compiled loop (:mod:`idgi_tf.integrate`).
"""

from ._startup import quiet_tensorflow_import

with quiet_tensorflow_import():  # hides TensorFlow's start-up notices under `python -m idgi_tf.<command>` only
    import tensorflow  # noqa: F401

from . import data, integrate, metrics, models, paths, rules, spectral  # noqa: E402
from .methods import METHODS, attribute, explained_output, path_start  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "METHODS",
    "attribute",
    "data",
    "explained_output",
    "integrate",
    "metrics",
    "models",
    "path_start",
    "paths",
    "rules",
    "spectral",
]
