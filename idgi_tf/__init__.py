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

The packages: :mod:`idgi_tf.attribution` (the core: a path in :mod:`.attribution.paths` times a
step rule in :mod:`.attribution.rules`, integrated by one compiled loop in
:mod:`.attribution.integrate`, and the other methods), :mod:`idgi_tf.metrics` (the evaluation),
:mod:`idgi_tf.data` and :mod:`idgi_tf.models`, and the tools (``bench``, ``viz``, ``spectral``,
``callbacks``). ``idgi_tf.paths``, ``idgi_tf.rules`` and ``idgi_tf.integrate`` stay as short names
of the attribution modules; importing ``idgi_tf.<old module>`` (paths, rules, integrate, gradients,
occlusion, rise, smoothgrad, methods, convergence) still works, with a ``DeprecationWarning``, for
one release. Conventions: docs/README.md.
"""

from ._startup import quiet_tensorflow_import

with quiet_tensorflow_import():  # hides TensorFlow's start-up notices under `python -m idgi_tf.<command>` only
    import tensorflow  # noqa: F401

from . import attribution, data, metrics, models, spectral  # noqa: E402
from .attribution import integrate, paths, rules  # noqa: E402
from .attribution.methods import METHODS, attribute, explained_output, path_start  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "METHODS",
    "attribution",
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
