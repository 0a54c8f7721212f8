"""idgi_tf: gradient attribution for Keras image classifiers, with IDGI, and its evaluation.

Public API::

    idgi_tf.attribute(model, images, targets, method, rule=..., steps=..., ...)
    idgi_tf.explained_output(model, images, targets)
    idgi_tf.path_start(method, images, baseline=None, **options)   # x_0 of ig, gig, blurig
    idgi_tf.METHODS                  # method name -> how it is computed (title, summary, options), display order
    idgi_tf.smoothed(METHODS["ig"], nsamples=20)   # SmoothGrad around any method, for attribute(..., method)
    idgi_tf.models.load(...) / pixel_model(...)
    idgi_tf.metrics.insertion / sic_aic / localization / sensitivity_n / mufidelity ...
    idgi_tf.spectral.power_spectrum / lowpass / tune_cutoff
    idgi_tf.viz (heatmaps, grids, curves) and idgi_tf.callbacks.AttributionCallback (import them)

The packages: :mod:`idgi_tf.attribution` (the core: a path in :mod:`.attribution.paths` times a
step rule in :mod:`.attribution.rules`, integrated by one compiled loop in
:mod:`.attribution.integrate`, and the other methods), :mod:`idgi_tf.metrics` (the evaluation),
:mod:`idgi_tf.data` and :mod:`idgi_tf.models`, and the tools (``bench``, ``viz``, ``spectral``,
``callbacks``). Conventions: docs/index.md.
"""

from ._startup import quiet_tensorflow_import

with quiet_tensorflow_import():  # hides TensorFlow's start-up notices under `python -m idgi_tf.<command>` only
    import tensorflow  # noqa: F401

from . import attribution, data, metrics, models, spectral  # noqa: E402
from .attribution.methods import METHODS, attribute, explained_output, path_start, smoothed  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "METHODS",
    "attribution",
    "attribute",
    "data",
    "explained_output",
    "metrics",
    "models",
    "path_start",
    "smoothed",
    "spectral",
]
