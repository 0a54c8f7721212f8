"""idgi_tf: gradient attribution for Keras image classifiers, with IDGI.

Public API::

    idgi_tf.attribute(model, images, targets, method, rule=..., steps=..., ...)
    idgi_tf.explained_output(model, images, targets)
    idgi_tf.METHODS                  # method name -> description
    idgi_tf.models.pixel_model(...)  # preprocessing inside the model

An attribution is a path (:mod:`idgi_tf.paths`) times a step rule
(:mod:`idgi_tf.rules`), integrated by one compiled loop (:mod:`idgi_tf.integrate`).
"""

from . import data, integrate, models, paths, rules
from .methods import METHODS, attribute, explained_output

__version__ = "0.1.0"

__all__ = [
    "METHODS",
    "attribute",
    "explained_output",
    "data",
    "integrate",
    "models",
    "paths",
    "rules",
]
