"""The public attribution API: method name -> group function, one ``attribute`` for all.

Every method builds a *group function* ``(images, baseline, targets) ->
{rule: attribution}`` that runs compiled on a group of images; ``attribute``
checks the arguments, splits the images into groups (and over the replicas
of a ``tf.distribute`` strategy) and stitches the results.

* Path methods (vg, gxi, ig, gig, blurig) are a path (:mod:`idgi_tf.attribution.paths`)
  integrated by the one compiled loop (:mod:`idgi_tf.attribution.integrate`) under one or
  more step rules (:mod:`idgi_tf.attribution.rules`); vg and gxi are the one-point path.
* elrp and deeplift are Gradient x Input with modified nonlinearity
  derivatives (:mod:`idgi_tf.attribution.modified_gradients`).
* occlusion is a perturbation method (:mod:`idgi_tf.attribution.occlusion`).
* smoothgrad wraps any other method's group function (:mod:`idgi_tf.attribution.smoothgrad`).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import textwrap
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Literal, overload

import numpy as np
import tensorflow as tf

from .. import _checks, spectral
from .._model import (
    JIT_AUTO,
    batch_size_or_default,
    cached,
    call_padded,
    explained_values,
    image_groups,
    num_classes,
    on_replicas,
    replica_count,
    resolve_jit,
)
from .._progress import progress_bar
from . import convergence, paths
from .convergence import AUTO
from .integrate import OUTPUT_AT_END, OUTPUT_AT_START, compiled_integrate
from .modified_gradients import EPSILON, compiled_modified_gradient
from .occlusion import check_patch, compiled_occlusion
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
    image_shape: tuple


@dataclasses.dataclass(frozen=True, kw_only=True)
class Method:
    """How ``attribute`` computes one method.

    Attributes:
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
        the integrals over a path (ig, gig, blurig: the methods with an IDGI rule)
        can report completeness gaps and refine their steps (``steps="auto"``).
    """

    build: Callable[[Plan], Callable]
    options: Mapping[str, object]
    check_options: Callable[[dict], dict]
    takes_baseline: bool
    rules: frozenset
    single_pass: bool
    summary: str
    takes_image_index: bool = False
    path: Callable | None = None


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
    patch = _checks.positive_int(options["patch"], "patch")
    stride = patch if options["stride"] is None else _checks.positive_int(options["stride"], "stride")
    if stride > patch:
        raise ValueError(
            f"stride must be at most patch ({patch}) so that every pixel lies in a window, got stride={stride}"
        )
    return {"patch": patch, "stride": stride}


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


def _points_per_chunk(path, images_per_group: int, batch_size: int) -> int:
    """Points per image per model pass: fill ``batch_size``, pad as little as possible."""
    if path.sequential:
        return 1
    chunk = min(max(1, batch_size // images_per_group), path.num_points)
    num_chunks = -(-path.num_points // chunk)
    return -(-path.num_points // num_chunks)


def _path_method(make_path):
    """``build`` of a path method: the path integrated by the compiled Riemann loop."""

    def build(plan: Plan):
        path = make_path(plan.steps, **plan.options)
        chunk = _points_per_chunk(path, plan.images_per_group, plan.batch_size)
        return compiled_integrate(plan.model, path, plan.rule_names, chunk, plan.jit_compile)

    return build


def _modified_gradient_method(method: str):
    def build(plan: Plan):
        return compiled_modified_gradient(plan.model, method, plan.options.get("epsilon", EPSILON), plan.jit_compile)

    return build


def _build_occlusion(plan: Plan):
    check_patch(plan.options["patch"], *plan.image_shape[:2])
    windows_per_pass = max(1, plan.batch_size // plan.images_per_group)
    return compiled_occlusion(plan.model, plan.options["patch"], plan.options["stride"], windows_per_pass,
                              plan.jit_compile)


BOTH_RULES = frozenset(RULES)
PLAIN_ONLY = frozenset({"plain"})


def _path_row(make_path, *, options, check_options, takes_baseline, rules, single_pass, summary) -> Method:
    """A path method: ``make_path(steps, **options)`` integrated by the compiled Riemann loop."""
    return Method(build=_path_method(make_path), options=options, check_options=check_options,
                  takes_baseline=takes_baseline, rules=rules, single_pass=single_pass, summary=summary,
                  path=make_path)


# Closed tables: a method added here is known to every check at once (METHOD_NAMES, PATH_INTEGRALS).
METHODS: Mapping[str, Method] = MappingProxyType({
    "vg": _path_row(
        lambda steps: paths.AtInput(times_input=False), options={}, check_options=_no_options,
        takes_baseline=False, rules=PLAIN_ONLY, single_pass=True,
        summary="Vanilla Gradient, grad f(x) (Simonyan et al. 2013); 1 pass",
    ),
    "gxi": _path_row(
        lambda steps: paths.AtInput(times_input=True), options={}, check_options=_no_options,
        takes_baseline=False, rules=PLAIN_ONLY, single_pass=True,
        summary="Gradient x Input, x * grad f(x) (Shrikumar et al. 2016); 1 pass",
    ),
    "ig": _path_row(
        lambda steps: paths.Straight(steps), options={}, check_options=_no_options,
        takes_baseline=True, rules=BOTH_RULES, single_pass=False,
        summary="Integrated Gradients, straight path (Sundararajan et al. 2017); steps+1 passes",
    ),
    "gig": _path_row(
        lambda steps, fraction, max_dist: paths.Guided(steps, fraction, max_dist),
        options={"fraction": 0.25, "max_dist": 0.02}, check_options=_guided_options,
        takes_baseline=True, rules=BOTH_RULES, single_pass=False,
        summary="Guided IG, adaptive path (Kapishnikov et al. 2021); steps+1 sequential passes",
    ),
    "blurig": _path_row(
        lambda steps, max_sigma, grad_step, sqrt: paths.Blur(steps, max_sigma, grad_step, sqrt),
        options={"max_sigma": 50.0, "grad_step": 0.01, "sqrt": False}, check_options=_blur_options,
        takes_baseline=False, rules=BOTH_RULES, single_pass=False,
        summary="Blur IG, Gaussian blur path (Xu et al. 2020); steps+1 passes",
    ),
    "elrp": Method(
        build=_modified_gradient_method("elrp"), options={"epsilon": EPSILON}, check_options=_epsilon_options,
        takes_baseline=False, rules=PLAIN_ONLY, single_pass=True,
        summary="epsilon-LRP, x * modified grad of the logit (Bach et al. 2015; Ancona et al. 2018); 1 pass",
    ),
    "deeplift": Method(
        build=_modified_gradient_method("deeplift"), options={}, check_options=_no_options,
        takes_baseline=True, rules=PLAIN_ONLY, single_pass=True,
        summary="DeepLIFT-Rescale, (x - x') * modified grad of the logit (Shrikumar et al. 2017); 1 doubled pass",
    ),
    "occlusion": Method(
        build=_build_occlusion, options={"patch": 8, "stride": None}, check_options=_occlusion_options,
        takes_baseline=True, rules=PLAIN_ONLY, single_pass=False,
        summary="Occlusion, output drop per occluded patch (Zeiler & Fergus 2014); 1 + windows passes",
    ),
    "rise": Method(
        build=_build_rise, options={"nmasks": 4000, "cells": 7, "p": 0.5, "seed": 0}, check_options=_rise_options,
        takes_baseline=True, rules=PLAIN_ONLY, single_pass=False,
        summary="RISE, output-weighted random masks (Petsiuk et al. 2018); nmasks passes",
    ),
})

METHOD_NAMES = (*METHODS, "smoothgrad")
# The integrals over a path from a start to the input (ig, gig, blurig): the methods with an IDGI rule,
# a completeness gap and ``steps="auto"``.
PATH_INTEGRALS = tuple(name for name, method in METHODS.items() if method.path is not None and "idgi" in method.rules)


def _smoothgrad_build(inner_name: str, inner: Method, smooth: dict):
    """``build`` of SmoothGrad around ``inner``: its group function fed noisy copies."""

    def build(plan: Plan):
        per_pass = max(1, plan.batch_size // plan.images_per_group) if inner.single_pass else 1
        per_pass = min(per_pass, smooth["nsamples"])
        run_inner = inner.build(dataclasses.replace(plan, images_per_group=plan.images_per_group * per_pass))
        key = ("smoothgrad", inner_name, tuple(sorted(plan.options.items())), plan.rule_names, plan.steps,
               plan.batch_size, plan.images_per_group, plan.jit_compile, tuple(sorted(smooth.items())))
        return cached(plan.model, key, lambda: tf.function(functools.partial(
            smoothgrad, run_inner, plan.rule_names, smooth["nsamples"], smooth["noise"], smooth["seed"], per_pass
        )))

    return build


# SmoothGrad's own options; the inner method's options, rule, steps and baseline go to the inner method.
SMOOTHGRAD_OPTIONS: Mapping[str, object] = MappingProxyType({"inner": "vg", "nsamples": 50, "noise": 0.15, "seed": 0})


def _smoothgrad(options: dict) -> tuple[str, Method, dict]:
    """SmoothGrad as a Method around the method named by ``options["inner"]``.

    Returns (inner name, the wrapping Method, the inner method's options).
    """
    given = {name: options.pop(name, default) for name, default in SMOOTHGRAD_OPTIONS.items()}
    inner_name = _checks.choice(given["inner"], "inner", METHODS)
    smooth = {
        "nsamples": _checks.positive_int(given["nsamples"], "nsamples"),
        "noise": _checks.number_in(given["noise"], "noise", 0.0, 1e3),
        "seed": _checks.seed(given["seed"]),
    }
    inner = METHODS[inner_name]
    method = dataclasses.replace(
        inner, build=_smoothgrad_build(inner_name, inner, smooth), single_pass=False, takes_image_index=True,
        path=None,
        summary=f"SmoothGrad around {inner_name} (Smilkov et al. 2017); nsamples x its passes",
    )
    return inner_name, method, options


def _checked_baseline(method_name: str, spec: Method, baseline, images: np.ndarray) -> np.ndarray:
    """The baseline as (N, H, W, C), default black; zeros for a method that takes none (giving one is an error)."""
    if spec.takes_baseline:
        return _checks.like_images(0.0 if baseline is None else baseline, images, "baseline")
    if baseline is not None:
        raise ValueError(f"method {method_name!r} takes no baseline (baseline must be None)")
    return np.zeros_like(images)


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
                f"{sorted(method.rules)}; the IDGI rule needs a path (ig, gig, blurig)"
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
def attribute(model, images, targets, method: str, *, rule: str = ..., return_gap: Literal[False] = ...,
              **options: Any) -> np.ndarray: ...
@overload
def attribute(model, images, targets, method: str, *, rule: tuple[str, ...], return_gap: Literal[False] = ...,
              **options: Any) -> dict[str, np.ndarray]: ...
@overload
def attribute(model, images, targets, method: str, *, rule: str = ..., return_gap: Literal[True],
              **options: Any) -> tuple[np.ndarray, convergence.CompletenessGap]: ...
@overload
def attribute(model, images, targets, method: str, *, rule: tuple[str, ...], return_gap: Literal[True],
              **options: Any) -> tuple[dict[str, np.ndarray], dict[str, convergence.CompletenessGap]]: ...


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
    jit_compile=JIT_AUTO,
    verbose: bool = False,
    lowpass=None,
    return_gap: bool = False,
    tol=None,
    max_steps=None,
    **method_options,
):
    """Attribute ``model``'s class scores to the pixels of ``images``.

    Args:
      model: a Keras model or callable mapping float32 images (N, H, W, C) to
        class scores (N, K). The explained scalar is ``f(x) = model(x)[target]``.
      images: array (N, H, W, C) in the model's input space (pixel space for
        :func:`idgi_tf.models.pixel_model` models).
      targets: int class index per image (N,), or one int for all.
      method: ``"vg"``, ``"gxi"``, ``"ig"``, ``"gig"``, ``"blurig"``, ``"elrp"``,
        ``"deeplift"``, ``"occlusion"``, ``"rise"`` (see ``METHODS``) or ``"smoothgrad"``.
      rule: ``"plain"``, ``"idgi"``, or a tuple of both; with a tuple the result
        is ``{rule: array}`` computed from one pass over the path.
      steps: Riemann steps of ig, gig and blurig (default 200), also of
        smoothgrad's inner method; vg, gxi, elrp, deeplift, occlusion and rise
        have no steps and ignore it. Or ``"auto"``: grids of 16, 32, 64, ... steps until the
        plain rule's completeness gap is at most ``tol`` (relative, default
        0.01) for every image, up to ``max_steps`` (default 1024; a warning
        names the images that did not get there). IG and Blur IG reuse every
        earlier point, so the plain maps cost the final grid's passes; IDGI maps
        take one more pass over it (see :mod:`idgi_tf.attribution.convergence`).
      baseline: start of the path for ig/gig, the reference of deeplift, the fill
        of occlusion: scalar, (H, W, C) or (N, H, W, C); default black (zeros).
        Blur IG starts at the blurred image instead.
      batch_size: at most this many path points go through the model at once
        (default 32, per replica under a ``tf.distribute`` strategy); results do
        not depend on it beyond float32 rounding, except Guided IG, whose
        feature selection amplifies rounding: ``batch_size=1`` gives other GIG
        maps than larger sizes (a lone last image of a call runs as a pair, so
        every ``batch_size >= 2`` agrees on CPU).
      jit_compile: compile with XLA: ``True``, ``False`` or ``"auto"`` (the default: XLA
        on a GPU, plain ``tf.function`` on a CPU, where it measured 0.99-3.9x slower;
        see :func:`idgi_tf._model.resolve_jit`).
      verbose: show a progress bar over images.
      lowpass: a cutoff (fraction of the side < 1, or cycles) to pass the maps
        through the FORGrad low-pass filter (:func:`idgi_tf.spectral.lowpass`,
        e.g. ``spectral.PAPER_CUTOFF``); the filtered 2-D map is spread evenly
        over the channels, so its channel sum is the filter's output.
      return_gap: also return each image's completeness gap ``sum A - (f(x) -
        f(start))`` and the steps it used, from values the pass already has
        (:class:`idgi_tf.attribution.convergence.CompletenessGap`, one per rule; of the maps
        before ``lowpass``). ig, gig and blurig only.
      tol, max_steps: options of ``steps="auto"``.
      **method_options: each method's options with their defaults
        (``METHODS[name].options``, ``SMOOTHGRAD_OPTIONS``):
        {method_options}
        occlusion's ``stride=None`` means the patch; smoothgrad passes ``rule``,
        ``steps``, ``baseline`` and the inner method's options to the inner method.

    elrp and deeplift explain the target's logit: a final softmax is left out
    (see :mod:`idgi_tf.attribution.modified_gradients`); every other method explains ``f(x)``.

    Returns:
      float32 array shaped like ``images`` for a ``rule`` name, or ``{rule: array}``
      for a tuple of rules; with ``return_gap=True``, ``(maps, gaps)`` where
      ``gaps`` is a ``CompletenessGap`` (or ``{rule: CompletenessGap}``).

    Several GPUs: build the model and call ``attribute`` inside
    ``tf.distribute.MirroredStrategy().scope()``; each group of images is then
    split over the replicas (see :func:`idgi_tf._model.on_replicas`).

    Example:
      >>> maps = attribute(model, images, labels, "ig", rule=("plain", "idgi"))
      >>> maps["idgi"].sum(axis=(1, 2, 3))  # == f(x) - f(black), exactly
      >>> maps, gaps = attribute(model, images, labels, "ig", steps="auto", tol=0.01, return_gap=True)
      >>> gaps.steps, gaps.relative  # the steps each image needed, its gap (<= 0.01)
    """
    method_name = _checks.choice(method, "method", METHOD_NAMES)
    options = dict(method_options)
    if method_name == "smoothgrad":
        method_name, spec, options = _smoothgrad(options)
    else:
        spec = METHODS[method_name]
    rule_names = _rule_names(rule, method_name, spec)
    steps, tol, max_steps = convergence.checked_steps(steps, tol, max_steps)
    if (steps == AUTO or return_gap) and (method != method_name or method_name not in PATH_INTEGRALS):
        feature = "steps='auto'" if steps == AUTO else "return_gap=True"
        raise ValueError(f"{feature} needs an integral over a path ({', '.join(PATH_INTEGRALS)}), got method "
                         f"{method!r}")
    if not isinstance(return_gap, (bool, np.bool_)):
        raise TypeError(f"return_gap must be True or False, got {return_gap!r}")
    steps = DEFAULT_STEPS if steps is None else steps if steps == AUTO else _checks.positive_int(steps, "steps")
    batch_size = batch_size_or_default(batch_size)
    jit = resolve_jit(jit_compile)
    options = _method_options(method_name, spec, options,
                              (*ATTRIBUTE_KEYWORDS, *(SMOOTHGRAD_OPTIONS if method == "smoothgrad" else ())))
    if lowpass is not None:
        _checks.number_in(lowpass, "lowpass", 0.0, float("inf"), low_open=True)

    _checks.warn_if_unit_range(images, model, "attribute")
    images = _checks.images(images)
    targets = _checks.targets(targets, len(images), num_classes(model, images))
    baseline = _checked_baseline(method_name, spec, baseline, images)

    replicas = replica_count()
    group = min(len(images), batch_size * replicas)
    progress = progress_bar(len(images), unit_name="image") if verbose else None
    if steps == AUTO:
        make_path = functools.partial(spec.path, **options)
        maps, gaps = convergence.refine(
            functools.partial(_integrate_subset, model, images, baseline, targets, batch_size, jit), make_path,
            rule_names, len(images), tol, max_steps, on_done=None if progress is None else progress.add)
    else:
        run = spec.build(Plan(model, rule_names, steps, batch_size, -(-group // replicas), jit, options,
                              images.shape[1:]))
        maps = {name: np.empty(images.shape, np.float32) for name in rule_names}
        sums = {name: np.empty(len(images)) for name in rule_names}
        ends = {OUTPUT_AT_START: np.empty(len(images)), OUTPUT_AT_END: np.empty(len(images))}
        indices = [np.arange(len(images), dtype=np.int32)] if spec.takes_image_index else []
        for part, outputs in _in_groups(run, [images, baseline, targets, *indices], group, jit):
            for name in rule_names:
                maps[name][part] = outputs[name]
                sums[name][part] = outputs[name].sum(axis=(1, 2, 3))
            if return_gap:
                for key in ends:
                    ends[key][part] = outputs[key]
            if progress is not None:
                progress.add(part.stop - part.start)
        gaps = {name: convergence.completeness_gap(sums[name], ends[OUTPUT_AT_START], ends[OUTPUT_AT_END], steps)
                for name in rule_names} if return_gap else None
    if lowpass is not None:
        for name in rule_names:
            maps[name] = spread_over_channels(spectral.lowpass(maps[name], lowpass), images.shape[-1])
    result = maps if not isinstance(rule, str) else maps[rule_names[0]]
    if not return_gap:
        return result
    return result, gaps if not isinstance(rule, str) else gaps[rule_names[0]]


# attribute's own keyword arguments, suggested for a misspelt option.
ATTRIBUTE_KEYWORDS = tuple(name for name, parameter in inspect.signature(attribute).parameters.items()
                           if parameter.kind is parameter.KEYWORD_ONLY)


def _in_groups(run, arrays, group: int, jit: bool):
    """``(slice, outputs)`` of the group function ``run`` over consecutive groups of the rows of ``arrays``.

    Each group is split over the replicas. Under XLA the last group is padded to the others' size (one
    compilation serves all). Otherwise a lone last image still runs as a pair: a batch of one can get
    other kernels than any larger batch (oneDNN on CPU), which Guided IG's feature selection amplifies.
    """
    split = functools.partial(on_replicas, run)
    for part in image_groups(len(arrays[0]), group):
        count = part.stop - part.start
        yield part, call_padded(split, [array[part] for array in arrays],
                                group if jit else (2 if count == 1 < group else count))


def _integrate_subset(model, images, baseline, targets, batch_size: int, jit: bool, path, rule_names, index):
    """The integral of ``path`` under ``rule_names`` for ``images[index]``, with ``f`` at the path's ends,
    in groups of ``batch_size`` per replica (as ``attribute``): ``{key: float64 array}``."""
    replicas = replica_count()
    group = min(len(index), batch_size * replicas)
    chunk = _points_per_chunk(path, -(-group // replicas), batch_size)
    run = compiled_integrate(model, path, tuple(rule_names), chunk, jit)
    parts = list(_in_groups(run, [images[index], baseline[index], targets[index]], group, jit))
    return {key: np.concatenate([outputs[key] for _, outputs in parts]) for key in parts[0][1]}


def spread_over_channels(maps_2d: np.ndarray, channels: int) -> np.ndarray:
    """2-D maps (N, H, W) as (N, H, W, C) float32 whose channel sum is the 2-D map."""
    return np.repeat(maps_2d[..., None] / channels, channels, axis=-1).astype(np.float32)


def explained_output(model, images, targets, *, batch_size: int | None = None, jit_compile=JIT_AUTO):
    """The explained scalar ``f(x) = model(x)[target]`` per image, as float32 (N,).

    IDGI attributions of image ``i`` sum to ``f(x_i) - f(start_i)`` where the
    start is the baseline (ig, gig) or the most-blurred image (blurig).
    """
    images = _checks.images(images)
    targets = _checks.targets(targets, len(images), num_classes(model, images))
    return explained_values(model, images, targets, batch_size_or_default(batch_size), jit_compile)


def path_start(method: str, images, baseline=None, **options) -> np.ndarray:
    """Where the path of ``method`` starts for each image, (N, H, W, C) float32 (docs/attribution.md#paths).

    ig and gig start at the baseline (default black), blurig at the images blurred at ``max_sigma``
    (``sqrt(max_sigma)`` with ``sqrt=True``, as PAIR's; Blur IG takes no baseline): the path's own first
    point (:func:`idgi_tf.attribution.paths.start`). IDGI maps sum to ``f(images) - f(path_start(...))``;
    ``return_gap=True`` reports that gap without a model pass.

    Example:
      >>> start = idgi_tf.path_start("blurig", images, max_sigma=20)
      >>> idgi_tf.explained_output(model, images, t) - idgi_tf.explained_output(model, start, t)
    """
    name = _checks.choice(method, "method", PATH_INTEGRALS)
    spec = METHODS[name]
    images = _checks.images(images)
    path = spec.path(DEFAULT_STEPS, **_method_options(name, spec, options, ("baseline",)))
    return paths.start(path, images, _checked_baseline(name, spec, baseline, images)).numpy()


def _options_text() -> str:
    """The per-method option defaults of :func:`attribute`'s docstring, generated from the tables."""
    rows = {name: method.options for name, method in METHODS.items() if method.options}
    rows["smoothgrad"] = SMOOTHGRAD_OPTIONS
    text = "; ".join(f"{name}: ``" + ", ".join(f"{key}={value!r}" for key, value in options.items()) + "``"
                     for name, options in rows.items()) + "."
    return textwrap.fill(text, width=80, subsequent_indent=" " * 8, break_on_hyphens=False)


attribute.__doc__ = attribute.__doc__.replace("{method_options}", _options_text())
