"""The public attribution API: method name -> group function, one ``attribute`` for all.

Every method builds a *group function* ``(rows, baseline, context) ->
{rule: attribution}`` that runs compiled on a group of examples; ``attribute``
checks the arguments (:mod:`idgi_tf.attribution.arguments`: inputs of any rank or structure, targets,
``layer=``), splits the rows into groups (and over the replicas
of a ``tf.distribute`` strategy) and stitches the results.

* Path methods (vg, gxi, ig, gig, blurig) are a path (:mod:`idgi_tf.attribution.paths`)
  integrated by the one compiled loop (:mod:`idgi_tf.attribution.integrate`) under one or
  more step rules (:mod:`idgi_tf.attribution.rules`); vg and gxi are the one-point path.
* elrp and deeplift are Gradient x Input with modified nonlinearity
  derivatives (:mod:`idgi_tf.attribution.modified_gradients`).
* gradcam and gradcampp weigh a convolutional layer's activations by the logit's gradient
  (:mod:`idgi_tf.attribution.gradcam`).
* occlusion is a perturbation method (:mod:`idgi_tf.attribution.occlusion`).
* smoothgrad wraps any other method (:func:`smoothed`, :mod:`idgi_tf.attribution.smoothgrad`).

Filtering the maps (FORGrad's low-pass) composes: ``spectral.lowpass(attribute(...), cutoff)``.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import textwrap
import warnings
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Literal, overload

import numpy as np
import tensorflow as tf

from .. import _checks
from .._progress import progress_bar
from ..runtime import (
    JIT_AUTO,
    batch_size_or_default,
    cached,
    explained_values,
    replica_count,
    resolve_jit,
)
from . import arguments, convergence, paths
from .convergence import AUTO
from .gradcam import checked_conv_layer, compiled_gradcam
from .grid import ADAPTIVE, UNIFORM, checked_grid, compiled_adaptive
from .integrate import OUTPUT_AT_END, OUTPUT_AT_START, chunk_size, compiled_integrate, integrate_subset, stitched
from .modified_gradients import EPSILON, compiled_modified_gradient
from .occlusion import check_window, compiled_occlusion, window_option
from .rise import compiled_rise
from .rules import RULES
from .smoothgrad import smoothgrad

DEFAULT_STEPS = 200


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a method's ``build`` needs to make its group function."""

    model: object
    rule_names: tuple
    steps: int
    batch_size: int
    images_per_group: int
    jit_compile: bool
    options: dict
    input_shape: tuple
    layer: object = None
    grid: str = UNIFORM


@dataclasses.dataclass(frozen=True, kw_only=True)
class Method:
    """How ``attribute`` computes one method; the table's order is the display order (bench, report, figures).

    Attributes:
      title: the method's name in tables and figures ("IG", "ε-LRP").
      image_only: the method needs (N, H, W, C) images (a 2-D blur or 2-D cells), not any input rank.
      forward_only: the method only runs the model forward (no gradient), so integer inputs (token ids)
        can go in as they are.
      build: ``Plan -> group function (images, baseline, targets) -> {rule: map}``.
      options: the method's own keyword options and their defaults.
      check_options: validates and normalises those options.
      takes_baseline: whether the method starts from a user-given baseline.
      rules: the step rules that make sense for the method.
      single_pass: one model pass per image (SmoothGrad then batches samples).
      summary: one line for docs and error messages.
      takes_image_index: the group function takes a fourth argument, each
        image's index in the call (SmoothGrad draws its noise from it).
      path: for path methods, ``(steps, **options) -> path`` (:mod:`idgi_tf.attribution.paths`);
        the integrals over a path (``PATH_INTEGRALS``: the path methods with an IDGI rule)
        can report completeness gaps and refine their steps (``steps="auto"``).
      wraps: for a method around another (SmoothGrad): ``options -> (inner name, the Method that runs,
        the options left for it)``; the row's other fields describe it around its default inner method.
      explains_logit: the method explains the target's logit whatever the model's output (a final softmax is
        left out: elrp, deeplift, gradcam, gradcampp).
      own_layer: for a method that reads a layer of its own and maps the inputs (Grad-CAM):
        ``(model, layer) -> the layer`` that ``layer=`` picks (None: the method's default); it reaches
        ``build`` as ``Plan.layer``, and the rows stay the inputs.
    """

    title: str
    image_only: bool
    build: Callable[[Plan], Callable]
    options: Mapping[str, object]
    check_options: Callable[[dict], dict]
    takes_baseline: bool
    rules: frozenset
    single_pass: bool
    summary: str
    takes_image_index: bool = False
    forward_only: bool = False
    path: Callable | None = None
    wraps: Callable[[dict], tuple[str, Method, dict]] | None = None
    explains_logit: bool = False
    own_layer: Callable | None = None


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


def _epsilon_options(options: dict) -> dict:
    return {"epsilon": _checks.number_in(options["epsilon"], "epsilon", 0.0, 1e6, low_open=True)}


def _occlusion_options(options: dict) -> dict:
    """patch and stride as None, an int or a tuple (one per window axis); checked against the inputs' shape
    by ``check_window`` when the method is built."""
    return {name: window_option(options[name], name) for name in ("patch", "stride")}


def _rise_options(options: dict) -> dict:
    cells = _checks.positive_int(options["cells"], "cells")
    return {
        "nmasks": _checks.positive_int(options["nmasks"], "nmasks"),
        "cells": cells,
        "p": _checks.number_in(options["p"], "p", 0.0, 1.0, low_open=True),
        "seed": _checks.seed(options["seed"]),
    }


def _build_rise(plan: Plan):
    masks_per_pass = max(1, plan.batch_size // plan.images_per_group)
    o = plan.options
    return compiled_rise(plan.model, o["nmasks"], o["cells"], o["p"], o["seed"], masks_per_pass, plan.jit_compile)


def _path_method(make_path):
    """``build`` of a path method: the path integrated by the compiled Riemann loop."""

    def build(plan: Plan):
        path = make_path(plan.steps, **plan.options)
        if plan.grid == ADAPTIVE:
            return compiled_adaptive(plan.model, path, plan.rule_names, plan.images_per_group, plan.batch_size,
                                     plan.jit_compile)
        chunk = chunk_size(path, plan.images_per_group, plan.batch_size)
        return compiled_integrate(plan.model, path, plan.rule_names, chunk, plan.jit_compile)

    return build


def _modified_gradient_method(method: str):
    def build(plan: Plan):
        return compiled_modified_gradient(plan.model, method, plan.options.get("epsilon", EPSILON), plan.jit_compile)

    return build


def _gradcam_method(plus_plus: bool):
    def build(plan: Plan):
        return compiled_gradcam(plan.model, plan.layer, plus_plus, plan.jit_compile)

    return build


def _gradcam_row(plus_plus: bool) -> Method:
    title, paper = ("Grad-CAM++", "Chattopadhay et al. 2018") if plus_plus else ("Grad-CAM", "Selvaraju et al. 2017")
    return Method(
        title=title, image_only=True, build=_gradcam_method(plus_plus), options={}, check_options=_no_options,
        takes_baseline=False, rules=PLAIN_ONLY, single_pass=True, own_layer=checked_conv_layer, explains_logit=True,
        summary=f"{title}, a conv layer's activations weighted by the logit's gradient ({paper}; layer=, default "
                "the last 4-D layer), upsampled; 1 pass",
    )


def _build_occlusion(plan: Plan):
    patch, stride = check_window(plan.options["patch"], plan.options["stride"], plan.input_shape)
    windows_per_pass = max(1, plan.batch_size // plan.images_per_group)
    return compiled_occlusion(plan.model, patch, stride, windows_per_pass, plan.jit_compile)


BOTH_RULES = frozenset(RULES)
PLAIN_ONLY = frozenset({"plain"})


def _path_row(make_path, **fields) -> Method:
    """A path method: ``make_path(steps, **options)`` integrated by the compiled Riemann loop."""
    return Method(build=_path_method(make_path), path=make_path, **fields)


def smoothed(inner: Method, nsamples: int = 50, noise: float = 0.15, seed: int = 0) -> Method:
    """``inner`` averaged over ``nsamples`` noisy copies of the images: SmoothGrad (Smilkov et al. 2017) around
    any method, as Captum's ``NoiseTunnel`` or PAIR's ``GetSmoothedMask`` (:mod:`idgi_tf.attribution.smoothgrad`).

    The result takes ``inner``'s options, rules, steps and baseline (the baseline is not perturbed); the noise
    of each image comes from ``(seed, its index in the call, sample)``, so batching does not change it.
    """
    smooth = {
        "nsamples": _checks.positive_int(nsamples, "nsamples"),
        "noise": _checks.number_in(noise, "noise", 0.0, 1e3),
        "seed": _checks.seed(seed),
    }

    def build(plan: Plan):
        per_pass = max(1, plan.batch_size // plan.images_per_group) if inner.single_pass else 1
        per_pass = min(per_pass, smooth["nsamples"])
        run_inner = inner.build(dataclasses.replace(plan, images_per_group=plan.images_per_group * per_pass))
        key = ("smoothgrad", inner.build, tuple(sorted(plan.options.items())), plan.rule_names, plan.steps,
               plan.batch_size, plan.images_per_group, plan.jit_compile, plan.layer, tuple(sorted(smooth.items())))
        return cached(plan.model, key, lambda: tf.function(functools.partial(
            smoothgrad, run_inner, plan.rule_names, smooth["nsamples"], smooth["noise"], smooth["seed"], per_pass
        )))

    return dataclasses.replace(
        inner, title=f"SmoothGrad({inner.title})", build=build, single_pass=False, takes_image_index=True,
        path=None, wraps=None, summary=f"SmoothGrad around {inner.title} (Smilkov et al. 2017); nsamples x its passes",
    )


# SmoothGrad's own options; the inner method's options, rule, steps and baseline go to the inner method.
SMOOTHGRAD_OPTIONS: Mapping[str, object] = MappingProxyType({"inner": "vg", "nsamples": 50, "noise": 0.15, "seed": 0})


def _smoothgrad_inner(options: dict) -> tuple[str, Method, dict]:
    """The table's SmoothGrad resolved: :func:`smoothed` around the row named by ``inner``, and the options
    that are not SmoothGrad's (the inner method's)."""
    given = {name: options.get(name, default) for name, default in SMOOTHGRAD_OPTIONS.items()}
    inner = _checks.choice(given.pop("inner"), "inner", [name for name, row in METHODS.items() if row.wraps is None])
    rest = {name: value for name, value in options.items() if name not in SMOOTHGRAD_OPTIONS}
    return inner, smoothed(METHODS[inner], **given), rest


def _smoothgrad_row(default_inner: Method) -> Method:
    """The table's SmoothGrad: its fields are those around ``default_inner``; ``inner=`` picks another row."""
    return dataclasses.replace(
        smoothed(default_inner), title="SmoothGrad", options=SMOOTHGRAD_OPTIONS, wraps=_smoothgrad_inner,
        summary="SmoothGrad, the mean over noisy copies (Smilkov et al. 2017) of any method (inner=, default vg); "
                "nsamples x its passes",
    )


_VG = _path_row(
    lambda steps: paths.AtInput(times_input=False), title="VG", image_only=False, options={},
    check_options=_no_options, takes_baseline=False, rules=PLAIN_ONLY, single_pass=True,
    summary="Vanilla Gradient, grad f(x) (Simonyan et al. 2013); 1 pass",
)

# Closed table, in display order: a method added here is known to every check, CLI, report and test at once.
METHODS: Mapping[str, Method] = MappingProxyType({
    "ig": _path_row(
        lambda steps: paths.Straight(steps), title="IG", image_only=False, options={}, check_options=_no_options,
        takes_baseline=True, rules=BOTH_RULES, single_pass=False,
        summary="Integrated Gradients, straight path (Sundararajan et al. 2017); steps+1 passes",
    ),
    "gig": _path_row(
        lambda steps, fraction, max_dist: paths.Guided(steps, fraction, max_dist), title="GIG", image_only=False,
        options={"fraction": 0.25, "max_dist": 0.02}, check_options=_guided_options,
        takes_baseline=True, rules=BOTH_RULES, single_pass=False,
        summary="Guided IG, adaptive path (Kapishnikov et al. 2021); steps+1 sequential passes",
    ),
    "blurig": _path_row(
        lambda steps, max_sigma, grad_step, sqrt: paths.Blur(steps, max_sigma, grad_step, sqrt), title="BlurIG",
        image_only=True, options={"max_sigma": 50.0, "grad_step": 0.01, "sqrt": False}, check_options=_blur_options,
        takes_baseline=False, rules=BOTH_RULES, single_pass=False,
        summary="Blur IG, Gaussian blur path (Xu et al. 2020); steps+1 passes",
    ),
    "vg": _VG,
    "gxi": _path_row(
        lambda steps: paths.AtInput(times_input=True), title="Gradient×Input", image_only=False, options={},
        check_options=_no_options, takes_baseline=False, rules=PLAIN_ONLY, single_pass=True,
        summary="Gradient x Input, x * grad f(x) (Shrikumar et al. 2016); 1 pass",
    ),
    "smoothgrad": _smoothgrad_row(_VG),
    "elrp": Method(
        title="ε-LRP", image_only=False, build=_modified_gradient_method("elrp"), options={"epsilon": EPSILON},
        check_options=_epsilon_options, takes_baseline=False, rules=PLAIN_ONLY, single_pass=True, explains_logit=True,
        summary="epsilon-LRP, x * modified grad of the logit (Bach et al. 2015; Ancona et al. 2018); 1 pass",
    ),
    "deeplift": Method(
        title="DeepLIFT", image_only=False, build=_modified_gradient_method("deeplift"), options={},
        check_options=_no_options, takes_baseline=True, rules=PLAIN_ONLY, single_pass=True, explains_logit=True,
        summary="DeepLIFT-Rescale, (x - x') * modified grad of the logit (Shrikumar et al. 2017); 1 doubled pass",
    ),
    "gradcam": _gradcam_row(plus_plus=False),
    "gradcampp": _gradcam_row(plus_plus=True),
    "occlusion": Method(
        title="Occlusion", image_only=False, build=_build_occlusion, options={"patch": None, "stride": None},
        check_options=_occlusion_options, takes_baseline=True, rules=PLAIN_ONLY, single_pass=False,
        forward_only=True,
        summary="Occlusion, output drop per occluded window (Zeiler & Fergus 2014; patch=1 on (N, D): feature "
                "ablation); 1 + windows passes",
    ),
    "rise": Method(
        title="RISE", image_only=True, build=_build_rise, options={"nmasks": 4000, "cells": 7, "p": 0.5, "seed": 0},
        check_options=_rise_options, takes_baseline=True, rules=PLAIN_ONLY, single_pass=False,
        forward_only=True, summary="RISE, output-weighted random masks (Petsiuk et al. 2018); nmasks passes",
    ),
})

# The integrals over a path from a start to the input: the methods with an IDGI rule, a completeness gap
# and ``steps="auto"``.
PATH_INTEGRALS = tuple(name for name, method in METHODS.items() if method.path is not None and "idgi" in method.rules)


def _resolved(method, given: dict) -> tuple[str, Method, dict, tuple]:
    """``(name, the Method that runs, its options, names to suggest for a misspelt option)`` of ``method``;
    a row around another method (SmoothGrad) is resolved around the inner one (messages then name it)."""
    if isinstance(method, Method):
        name, row = method.title, method
    else:
        name = _checks.choice(method, "method", METHODS)
        row = METHODS[name]
    resolved = (name, row, dict(given)) if row.wraps is None else row.wraps(dict(given))
    return (*resolved, (*ATTRIBUTE_KEYWORDS, *row.options))


def _rule_names(rule, method_name: str, method: Method) -> tuple:
    if not isinstance(rule, (str, tuple, list)):
        raise TypeError(f"rule must be 'plain', 'idgi' or a tuple of them, got {rule!r}")
    names = (rule,) if isinstance(rule, str) else tuple(rule)
    if not names:
        raise ValueError("rule must name at least one rule: 'plain', 'idgi' or both")
    for name in names:
        _checks.choice(name, "rule", RULES)
        if name not in method.rules:
            raise ValueError(
                f"rule={name!r} does not apply to method {method_name!r}, which takes "
                f"{sorted(method.rules)}; the IDGI rule needs a path ({', '.join(PATH_INTEGRALS)})"
            )
    return tuple(dict.fromkeys(names))


def _method_options(method_name: str, method: Method, given: dict, keywords) -> dict:
    """``given`` checked against the method's options; an unknown name gets the close names among those
    options and the caller's own ``keywords`` (``step`` -> ``steps``)."""
    unknown = sorted(set(given) - set(method.options))
    if unknown:
        known = ", ".join(sorted(method.options)) or "none"
        close = dict.fromkeys(match for name in unknown
                              for match in difflib.get_close_matches(name, [*method.options, *keywords]))
        hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
        raise TypeError(
            f"method {method_name!r} got unknown option(s) {unknown}{hint}; its options are: {known}"
        )
    return method.check_options({**method.options, **given})


@overload
def attribute(model, inputs, targets, method: str | Method, *, rule: str = ..., return_gap: Literal[False] = ...,
              **options: Any) -> np.ndarray: ...
@overload
def attribute(model, inputs, targets, method: str | Method, *, rule: tuple[str, ...], return_gap: Literal[False] = ...,
              **options: Any) -> dict[str, np.ndarray]: ...
@overload
def attribute(model, inputs, targets, method: str | Method, *, rule: str = ..., return_gap: Literal[True],
              **options: Any) -> tuple[np.ndarray, convergence.CompletenessGap]: ...
@overload
def attribute(model, inputs, targets, method: str | Method, *, rule: tuple[str, ...], return_gap: Literal[True],
              **options: Any) -> tuple[dict[str, np.ndarray], dict[str, convergence.CompletenessGap]]: ...


def attribute(
    model,
    inputs,
    targets,
    method: str | Method,
    *,
    rule="plain",
    steps: int | None = None,
    grid: str = UNIFORM,
    baseline=None,
    layer=None,
    batch_size: int | None = None,
    jit_compile=JIT_AUTO,
    verbose: bool = False,
    return_gap: bool = False,
    tol=None,
    max_steps=None,
    references=None,
    nreferences: int | None = None,
    references_seed: int | None = None,
    **method_options,
):
    """Attribute the scalar ``f(x)`` that ``model`` computes from ``inputs`` to the features of ``inputs``
    (or to a layer's activations).

    Args:
      model: a Keras model or callable. ``f(x)`` is picked from its outputs by ``targets``.
      inputs: the examples, float, in the model's input space: one array ``(N, ...)`` of any rank >= 2
        (tabular ``(N, D)``, sequences ``(N, T, D)``, images ``(N, H, W, C)`` in pixel space for
        :func:`idgi_tf.models.pixel_model` models, volumes ``(N, D, H, W, C)``), or, for a model with
        several inputs, a list, tuple or dict of such arrays in the model's input structure: the maps come
        back in that structure, and the path moves all inputs together (IDGI's sum runs over all of them, so
        completeness holds for the sum over every map). Integer inputs (token ids) need ``layer=``, except
        for occlusion, which replaces ids by the baseline's.
      targets: what ``f(x)`` is: an int class index per example (N,) or one int for all
        (``f(x) = model(x)[target]``); ``None`` for a model with one output unit (a regression or a
        sigmoid); or a callable ``targets(outputs) -> (N,)`` tensor, any differentiable scalar of the
        model's outputs (in their structure: a segmentation mask's logits summed over a region, one head of
        a multi-output model, ...). Define such a callable once: compiled functions are cached per callable.
      method: a name in ``METHODS``: {method_names};
        or a :class:`Method`, e.g. ``smoothed(METHODS["ig"], nsamples=20)``.
      rule: ``"plain"``, ``"idgi"``, or a tuple of both; with a tuple the result
        is ``{rule: array}`` computed from one pass over the path.
      steps: Riemann steps of the integrals over a path ({path_integrals}; default 200),
        also of smoothgrad's inner method; the other methods have no steps and
        ignore it. Or ``"auto"``: grids of 16, 32, 64, ... steps until the
        plain rule's completeness gap is at most ``tol`` (relative, default
        0.01) for every image, up to ``max_steps`` (default 1024; a warning
        names the images that did not get there). IG and Blur IG reuse every
        earlier point, so the plain maps cost the final grid's passes; IDGI maps
        take one more pass over it (see :mod:`idgi_tf.attribution.convergence`).
      grid: where the Riemann points lie on the path: ``"uniform"`` (the default, the paper's) or
        ``"adaptive"`` (ig, blurig; an int ``steps``): a pilot pass over ``steps // 4`` uniform segments
        measures ``f``, and the other points go where ``f`` changes, per image; still ``steps + 1`` model
        inputs per image (see :mod:`idgi_tf.attribution.grid`).
      baseline: start of the path for ig/gig, the reference of deeplift, the fill
        of occlusion: a scalar, one example's shape or the inputs' shape (for several inputs, a scalar or
        their structure of such values); default zeros (black, or token id 0). Blur IG starts at the
        blurred image instead.
      layer: attribute to this layer's **output** activations (a layer of the model or its name; functional
        and Sequential models): the path runs from the layer's activations for the baseline inputs to those
        for the inputs, and ``f`` is recomputed from the layer on with the layer's output replaced (Captum's
        ``LayerIntegratedGradients``). Maps are shaped like the layer's output, e.g. ``(N, T, D)`` at an
        ``Embedding``; IDGI maps sum to ``f(x) - f(baseline)`` when every path from the inputs to the output
        goes through the layer. For vg, gxi, ig, gig, smoothgrad, elrp, deeplift and occlusion. For gradcam
        and gradcampp, the convolutional layer the map is made of (default: the last layer with a 4-D
        output); their maps stay over the images.
      batch_size: at most this many path points go through the model at once
        (default 32, per replica under a ``tf.distribute`` strategy); results do
        not depend on it beyond float32 rounding, except Guided IG, whose
        feature selection amplifies rounding: ``batch_size=1`` gives other GIG
        maps than larger sizes (a lone last image of a call runs as a pair, so
        every ``batch_size >= 2`` agrees on CPU).
      jit_compile: compile with XLA: ``True``, ``False`` or ``"auto"`` (the default: XLA
        on a GPU, plain ``tf.function`` on a CPU, where it measured 0.99-3.9x slower;
        see :func:`idgi_tf.runtime.resolve_jit`).
      verbose: show a progress bar over examples.
      return_gap: also return each image's completeness gap ``sum A - (f(x) -
        f(start))`` and the steps it used, from values the pass already has
        (:class:`idgi_tf.attribution.convergence.CompletenessGap`, one per rule).
        {path_integrals} only.
      tol, max_steps: options of ``steps="auto"``.
      references: expected IG (ig, gig): an array ``(K, ...)`` of reference inputs shared by every input (for
        several inputs, their structure of such arrays), in place of ``baseline``; the maps are the mean over
        the references of the maps with each as the baseline (K times the passes), and IDGI maps sum to
        ``f(x) - mean_k f(r_k)`` (docs/attribution.md#expected-ig-references).
      nreferences, references_seed: use ``nreferences`` of the K references, drawn without replacement with
        ``numpy.random.default_rng(references_seed)`` (default seed 0).
      **method_options: each method's options with their defaults
        (``METHODS[name].options``):
        {method_options}
        occlusion's ``patch`` and ``stride`` are an int or one int per window axis (every
        axis but the channels), ``patch=None`` 8 on images and 1 elsewhere (one feature or
        token), ``stride=None`` the patch; smoothgrad passes ``rule``,
        ``steps``, ``baseline`` and the inner method's options to the inner method.

    elrp, deeplift, gradcam and gradcampp explain the target's logit: a final softmax is left out
    (see :mod:`idgi_tf.attribution.modified_gradients`); every other method explains ``f(x)``.

    Returns:
      float32 maps shaped like ``inputs`` (like the layer's output with ``layer=``; the inputs' structure
      for several inputs) for a ``rule`` name, or ``{rule: maps}``
      for a tuple of rules; with ``return_gap=True``, ``(maps, gaps)`` where
      ``gaps`` is a ``CompletenessGap`` (or ``{rule: CompletenessGap}``).

    Several GPUs: build the model and call ``attribute`` inside
    ``tf.distribute.MirroredStrategy().scope()``; each group of images is then
    split over the replicas (see :func:`idgi_tf.runtime.on_replicas`).

    Example:
      >>> maps = attribute(model, images, labels, "ig", rule=("plain", "idgi"))
      >>> maps["idgi"].sum(axis=(1, 2, 3))  # == f(x) - f(black), exactly
      >>> attribute(text_model, token_ids, labels, "ig", layer="embedding", baseline=pad_ids)  # (N, T, D)
      >>> attribute(regressor, rows, None, "ig", rule="idgi")  # (N, D), sums to f(x) - f(0)
      >>> attribute(model, images, labels, "ig", rule="idgi", references=train_images[:16])  # expected IG
      >>> attribute(model, images, labels, "gradcam")  # (N, H, W, C): the last 4-D layer's map, upsampled
      >>> maps, gaps = attribute(model, images, labels, "ig", steps="auto", tol=0.01, return_gap=True)
      >>> gaps.steps, gaps.relative  # the steps each image needed, its gap (<= 0.01)
    """
    method_name, spec, options, keywords = _resolved(method, method_options)
    shown = method if isinstance(method, str) else method_name  # the method as the caller named it
    rule_names = _rule_names(rule, shown, spec)
    steps, tol, max_steps = convergence.checked_steps(steps, tol, max_steps)
    if (steps == AUTO or return_gap) and (spec.path is None or "idgi" not in spec.rules):
        feature = "steps='auto'" if steps == AUTO else "return_gap=True"
        raise ValueError(f"{feature} needs an integral over a path ({', '.join(PATH_INTEGRALS)}), got method "
                         f"{shown!r}")
    if not isinstance(return_gap, (bool, np.bool_)):
        raise TypeError(f"return_gap must be True or False, got {return_gap!r}")
    steps = DEFAULT_STEPS if steps is None else steps if steps == AUTO else _checks.positive_int(steps, "steps")
    batch_size = batch_size_or_default(batch_size)
    jit = resolve_jit(jit_compile)
    options = _method_options(method_name, spec, options, keywords)
    grid = checked_grid(grid, shown, spec.path, options, steps)

    _checks.warn_if_unit_range(inputs, model, "attribute")
    own_layer = spec.own_layer(model, layer) if spec.own_layer is not None else None
    if references is not None and (baseline is not None or spec.path is None or not spec.takes_baseline):
        raise ValueError(f"references= (expected IG) takes the place of baseline= for a path from a baseline ("
                         f"{', '.join(n for n in PATH_INTEGRALS if METHODS[n].takes_baseline)}); got method "
                         f"{shown!r}{' and baseline=' if baseline is not None else ''}")
    if references is None and (nreferences is not None or references_seed is not None):
        raise ValueError("nreferences and references_seed apply only with references= (expected IG)")
    starts = ([baseline] if references is None else arguments.reference_baselines(
        model, references, nreferences, 0 if references_seed is None else references_seed, inputs))
    totals, per_start, on_done = None, [], None
    for start in starts:
        prepared = arguments.prepare(model, inputs, targets, start, layer if own_layer is None else None,
                                     method_name=method_name, method=spec, batch_size=batch_size, jit_compile=jit)
        if verbose and on_done is None:
            on_done = progress_bar(len(prepared.rows) * len(starts),
                                   unit_name="example" if len(starts) == 1 else "example x reference").add
        maps, gaps = _integrated(spec, prepared, rule_names, options, steps, tol, max_steps, batch_size, jit,
                                 own_layer, gap=return_gap, on_done=on_done, grid=grid)
        for name, value in maps.items():
            _warn_if_not_finite(value, shown, name)
        per_start.append(gaps)
        if totals is None:  # one start (a baseline) keeps its float32 maps; references sum in float64
            totals = maps if len(starts) == 1 else {name: value.astype(np.float64) for name, value in maps.items()}
        else:
            for name, value in maps.items():
                totals[name] += value
    if len(starts) > 1:
        totals = {name: (total / len(starts)).astype(np.float32) for name, total in totals.items()}
    maps = {name: prepared.maps(total) for name, total in totals.items()}
    gaps = _mean_gaps(per_start) if return_gap else None
    result = maps if not isinstance(rule, str) else maps[rule_names[0]]
    if not return_gap:
        return result
    return result, gaps if not isinstance(rule, str) else gaps[rule_names[0]]


def _integrated(spec, prepared, rule_names, options, steps, tol, max_steps, batch_size, jit, own_layer, *, gap,
                on_done, grid):
    """``({rule: maps over the rows}, {rule: CompletenessGap} or None)`` of one method on prepared arguments."""
    explained, rows, baseline, context = prepared.explained, prepared.rows, prepared.baseline, prepared.context
    if steps == AUTO:
        return convergence.refine(
            functools.partial(integrate_subset, explained, rows, baseline, context, batch_size, jit),
            functools.partial(spec.path, **options), rule_names, len(rows), tol, max_steps, on_done=on_done)
    replicas = replica_count()
    group = min(len(rows), batch_size * replicas)
    run = spec.build(Plan(explained, rule_names, steps, batch_size, -(-group // replicas), jit, options,
                          rows.shape[1:], own_layer, grid))
    indices = [np.arange(len(rows), dtype=np.int32)] if spec.takes_image_index else []
    outputs, sums = stitched(run, [rows, baseline, context, *indices], group, jit, on_done)
    if prepared.baseline_context is not None and spec.path is not None and spec.takes_baseline:
        arguments.warn_if_start_is_not_the_baseline(prepared, outputs[OUTPUT_AT_START], batch_size, jit)
    maps = {name: outputs[name] for name in rule_names}
    return maps, {name: convergence.completeness_gap(sums[name], outputs[OUTPUT_AT_START], outputs[OUTPUT_AT_END],
                                                     steps) for name in rule_names} if gap else None


def _mean_gaps(per_start: list) -> dict:
    """The gaps of the maps averaged over references: ``mean_r sum A_r - (f(x) - mean_r f(r))``, the mean of each
    reference's absolute gap over the mean output change; the most steps any reference used."""
    if len(per_start) == 1:
        return per_start[0]
    merged = {}
    for name in per_start[0]:
        absolute = np.mean([gaps[name].absolute for gaps in per_start], axis=0)
        change = np.mean([gaps[name].output_change for gaps in per_start], axis=0)
        merged[name] = convergence.CompletenessGap(absolute, convergence.relative_gap(absolute, change), change,
                                                   np.max([gaps[name].steps for gaps in per_start], axis=0))
    return merged


def _warn_if_not_finite(maps: np.ndarray, method_name: str, rule: str) -> None:
    """Warn, naming the examples, when maps hold NaN or Inf (a gradient that is infinite somewhere; ε-LRP's
    ``a(z) / (z + ε)`` compounded over many gates and steps): such maps are not silently passed on."""
    bad = ~np.isfinite(maps.reshape(len(maps), -1)).all(axis=1)
    if bad.any():
        warnings.warn(f"method {method_name!r} (rule {rule!r}): the maps of {int(bad.sum())} of {len(bad)} examples "
                      f"hold NaN or Inf (first: example {int(np.argmax(bad))}); the model's gradient (or the "
                      "method's modified gradient) overflows there", RuntimeWarning, stacklevel=3)


# attribute's own keyword arguments, suggested for a misspelt option.
ATTRIBUTE_KEYWORDS = tuple(name for name, parameter in inspect.signature(attribute).parameters.items()
                           if parameter.kind is parameter.KEYWORD_ONLY)


def explained_output(model, inputs, targets, *, batch_size: int | None = None, jit_compile=JIT_AUTO):
    """The explained scalar ``f(x)`` per example, as float32 (N,): ``model(x)[target]``, the single output
    (``targets=None``) or ``targets(model(x))`` (a callable), for inputs and targets as :func:`attribute`
    takes them.

    IDGI attributions of example ``i`` sum to ``f(x_i) - f(start_i)`` where the
    start is the baseline (ig, gig) or the most-blurred image (blurig).
    """
    _checks.warn_if_unit_range(inputs, model, "explained_output")
    batch_size = batch_size_or_default(batch_size)
    prepared = arguments.prepare(model, inputs, targets, None, None, method_name="explained_output",
                                 method=arguments.FORWARD_PASS, batch_size=batch_size, jit_compile=jit_compile)
    return explained_values(prepared.explained, prepared.rows, prepared.context, batch_size, jit_compile)


def path_start(method: str, inputs, baseline=None, **options) -> np.ndarray:
    """Where the path of ``method`` starts for each example, float32 shaped like ``inputs``
    (docs/attribution.md#paths).

    ig and gig start at the baseline (default zeros), blurig at the images blurred at ``max_sigma``
    (``sqrt(max_sigma)`` with ``sqrt=True``, as PAIR's; Blur IG takes no baseline): the path's own first
    point (:func:`idgi_tf.attribution.paths.start`). IDGI maps sum to ``f(inputs) - f(path_start(...))``;
    ``return_gap=True`` reports that gap without a model pass.

    Example:
      >>> start = idgi_tf.path_start("blurig", images, max_sigma=20)
      >>> idgi_tf.explained_output(model, images, t) - idgi_tf.explained_output(model, start, t)
    """
    name = _checks.choice(method, "method", PATH_INTEGRALS)
    spec = METHODS[name]
    inputs = _checks.images(inputs, "inputs") if spec.image_only else _checks.inputs(inputs)
    path = spec.path(DEFAULT_STEPS, **_method_options(name, spec, options, ("baseline",)))
    if baseline is not None and not spec.takes_baseline:
        raise ValueError(f"method {name!r} takes no baseline (baseline must be None)")
    start_base = _checks.like_inputs(0.0 if baseline is None else baseline, inputs, "baseline")
    return paths.start(path, inputs, start_base).numpy()


def _options_text() -> str:
    """The per-method option defaults of :func:`attribute`'s docstring, generated from the tables."""
    rows = {name: method.options for name, method in METHODS.items() if method.options}
    text = "; ".join(f"{name}: ``" + ", ".join(f"{key}={value!r}" for key, value in options.items()) + "``"
                     for name, options in rows.items()) + "."
    return textwrap.fill(text, width=80, subsequent_indent=" " * 8, break_on_hyphens=False)


def _names(names) -> str:
    """Method names for :func:`attribute`'s docstring, generated from the table."""
    return textwrap.fill(", ".join(f'``"{name}"``' for name in names), width=80, subsequent_indent=" " * 8,
                         break_on_hyphens=False)


attribute.__doc__ = (attribute.__doc__.replace("{method_options}", _options_text())
                     .replace("{method_names}", _names(METHODS)).replace("{path_integrals}", _names(PATH_INTEGRALS)))
