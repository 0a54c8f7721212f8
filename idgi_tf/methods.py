"""The public attribution API: method name -> path, one ``attribute`` for all.

Every method is a path (:mod:`idgi_tf.paths`) integrated by the one compiled
loop (:mod:`idgi_tf.integrate`) under one or more step rules
(:mod:`idgi_tf.rules`). Vanilla Gradient and Gradient x Input are the
one-point path at the input under the plain rule.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import keras
import numpy as np
import tensorflow as tf

from . import _checks, paths
from ._model import (
    batch_size_or_default,
    compiled_value,
    image_groups,
    num_classes,
    on_replicas,
    replica_count,
)
from .integrate import compiled_integrate
from .rules import RULES

DEFAULT_STEPS = 200


@dataclasses.dataclass(frozen=True)
class Method:
    """How ``attribute`` computes one method.

    Attributes:
      make_path: builds the path from ``steps`` and the method's options.
      options: the method's own keyword options and their defaults.
      check_options: validates and normalises those options.
      takes_baseline: whether the path starts at a user-given baseline.
      rules: the step rules that make sense for the method.
      summary: one line for docs and error messages.
    """

    make_path: Callable[..., object]
    options: Mapping[str, object]
    check_options: Callable[[dict], dict]
    takes_baseline: bool
    rules: frozenset
    summary: str


def _no_options(options: dict) -> dict:
    return options


def _guided_options(options: dict) -> dict:
    return {
        "fraction": _checks.number_in(options["fraction"], "fraction", 0.0, 1.0, low_open=True),
        "max_dist": _checks.number_in(options["max_dist"], "max_dist", 0.0, 1.0),
    }


def _blur_options(options: dict) -> dict:
    if not isinstance(options["sqrt"], (bool, np.bool_)):
        raise TypeError(f"sqrt must be True or False, got {options['sqrt']!r}")
    return {
        "max_sigma": _checks.number_in(options["max_sigma"], "max_sigma", 0.0, 1e4, low_open=True),
        "grad_step": _checks.number_in(options["grad_step"], "grad_step", 0.0, 1e4, low_open=True),
        "sqrt": bool(options["sqrt"]),
    }


BOTH_RULES = frozenset(RULES)
PLAIN_ONLY = frozenset({"plain"})

METHODS: dict[str, Method] = {
    "vg": Method(
        lambda steps: paths.AtInput(times_input=False), {}, _no_options, False, PLAIN_ONLY,
        "Vanilla Gradient, grad f(x) (Simonyan et al. 2013); 1 pass",
    ),
    "gxi": Method(
        lambda steps: paths.AtInput(times_input=True), {}, _no_options, False, PLAIN_ONLY,
        "Gradient x Input, x * grad f(x) (Shrikumar et al. 2016); 1 pass",
    ),
    "ig": Method(
        lambda steps: paths.Straight(steps), {}, _no_options, True, BOTH_RULES,
        "Integrated Gradients, straight path (Sundararajan et al. 2017); steps+1 passes",
    ),
    "gig": Method(
        lambda steps, fraction, max_dist: paths.Guided(steps, fraction, max_dist),
        {"fraction": 0.25, "max_dist": 0.02}, _guided_options, True, BOTH_RULES,
        "Guided IG, adaptive path (Kapishnikov et al. 2021); steps+1 sequential passes",
    ),
    "blurig": Method(
        lambda steps, max_sigma, grad_step, sqrt: paths.Blur(steps, max_sigma, grad_step, sqrt),
        {"max_sigma": 50.0, "grad_step": 0.01, "sqrt": False}, _blur_options, False, BOTH_RULES,
        "Blur IG, Gaussian blur path (Xu et al. 2020); steps+1 passes",
    ),
}


def _rule_names(rule, method_name: str, method: Method) -> tuple:
    names = (rule,) if isinstance(rule, str) else tuple(rule)
    if not names:
        raise ValueError("rule must name at least one rule: 'plain', 'idgi' or both")
    for name in names:
        _checks.choice(name, "rule", RULES)
        if name not in method.rules:
            raise ValueError(
                f"rule={name!r} does not apply to method {method_name!r}, which takes "
                f"{sorted(method.rules)}; the IDGI rule needs a path (ig, gig, blurig)"
            )
    return tuple(dict.fromkeys(names))


def _method_options(method_name: str, method: Method, given: dict) -> dict:
    unknown = sorted(set(given) - set(method.options))
    if unknown:
        known = ", ".join(sorted(method.options)) or "none"
        raise TypeError(
            f"method {method_name!r} got unknown option(s) {unknown}; its options are: {known}"
        )
    return method.check_options({**method.options, **given})


def _points_per_chunk(path, images_per_group: int, batch_size: int) -> int:
    """Points per image per model pass: fill ``batch_size``, pad as little as possible."""
    if path.sequential:
        return 1
    chunk = min(max(1, batch_size // images_per_group), path.num_points)
    num_chunks = -(-path.num_points // chunk)
    return -(-path.num_points // num_chunks)


def attribute(
    model,
    images,
    targets,
    method: str,
    *,
    rule="plain",
    steps: int | None = None,
    baseline=None,
    batch_size: int | None = None,
    jit_compile: bool = False,
    verbose: bool = False,
    **method_options,
):
    """Attribute ``model``'s class scores to the pixels of ``images``.

    Args:
      model: a Keras model or callable mapping float32 images (N, H, W, C) to
        class scores (N, K). The explained scalar is ``f(x) = model(x)[target]``.
      images: array (N, H, W, C) in the model's input space (pixel space for
        :func:`idgi_tf.models.pixel_model` models).
      targets: int class index per image (N,), or one int for all.
      method: ``"vg"``, ``"gxi"``, ``"ig"``, ``"gig"`` or ``"blurig"`` (see ``METHODS``).
      rule: ``"plain"``, ``"idgi"``, or a tuple of both; with a tuple the result
        is ``{rule: array}`` computed from one pass over the path.
      steps: Riemann steps of path methods (default 200; ignored by vg/gxi).
      baseline: start of the path for ig/gig: scalar, (H, W, C) or (N, H, W, C);
        default black (zeros). Blur IG starts at the blurred image instead.
      batch_size: at most this many path points go through the model at once
        (default 32, per replica under a ``tf.distribute`` strategy); results do
        not depend on it.
      jit_compile: compile with XLA (helps some models, hurts others).
      verbose: show a progress bar over images.
      **method_options: gig: ``fraction=0.25, max_dist=0.02``; blurig:
        ``max_sigma=50, grad_step=0.01, sqrt=False``.

    Returns:
      float32 array shaped like ``images``, or a dict of them keyed by rule.

    Several GPUs: build the model and call ``attribute`` inside
    ``tf.distribute.MirroredStrategy().scope()``; each group of images is then
    split over the replicas (see :func:`idgi_tf._model.on_replicas`).

    Example:
      >>> maps = attribute(model, images, labels, "ig", rule=("plain", "idgi"))
      >>> maps["idgi"].sum(axis=(1, 2, 3))  # == f(x) - f(black), exactly
    """
    method_name = _checks.choice(method, "method", METHODS)
    spec = METHODS[method_name]
    rule_names = _rule_names(rule, method_name, spec)
    steps = DEFAULT_STEPS if steps is None else _checks.positive_int(steps, "steps")
    batch_size = batch_size_or_default(batch_size)
    path = spec.make_path(steps, **_method_options(method_name, spec, method_options))

    images = _checks.images(images)
    targets = _checks.targets(targets, len(images), num_classes(model, images))
    if spec.takes_baseline:
        baseline = _checks.like_images(0.0 if baseline is None else baseline, images, "baseline")
    elif baseline is not None:
        raise ValueError(f"method {method_name!r} takes no baseline (baseline must be None)")
    else:
        baseline = np.zeros_like(images)

    replicas = replica_count()
    group = min(len(images), batch_size * replicas)
    chunk = _points_per_chunk(path, -(-group // replicas), batch_size)
    run = compiled_integrate(model, path, rule_names, chunk, jit_compile)
    results = {name: np.empty(images.shape, np.float32) for name in rule_names}
    progress = keras.utils.Progbar(len(images), unit_name="image") if verbose else None
    for part in image_groups(len(images), group):
        sums = on_replicas(
            run, tf.constant(images[part]), tf.constant(baseline[part]), tf.constant(targets[part])
        )
        for name in rule_names:
            results[name][part] = sums[name].numpy()
        if progress is not None:
            progress.add(part.stop - part.start)
    return results if not isinstance(rule, str) else results[rule_names[0]]


def explained_output(model, images, targets, *, batch_size: int | None = None, jit_compile=False):
    """The explained scalar ``f(x) = model(x)[target]`` per image, as float32 (N,).

    IDGI attributions of image ``i`` sum to ``f(x_i) - f(start_i)`` where the
    start is the baseline (ig, gig) or the most-blurred image (blurig).
    """
    images = _checks.images(images)
    targets = _checks.targets(targets, len(images), num_classes(model, images))
    batch_size = batch_size_or_default(batch_size)
    run = compiled_value(model, jit_compile)
    return np.concatenate(
        [
            on_replicas(run, tf.constant(images[part]), tf.constant(targets[part])).numpy()
            for part in image_groups(len(images), batch_size * replica_count())
        ]
    ).astype(np.float32)
