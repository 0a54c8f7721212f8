"""Completeness gaps of path attributions, and ``steps="auto"``: Riemann grids refined until the gap is small.

Completeness (Sundararajan et al. 2017, Axiom 1; IDGI paper Sec. 3): a path
attribution sums to the change of the explained output along its path,
``sum A = f(x) - f(start)`` (start: the baseline for IG and Guided IG, the most
blurred image for Blur IG). The **gap** ``sum A - (f(x) - f(start))`` of the
plain rule is its Riemann discretisation error (Captum's
``convergence_delta``); IDGI's is zero up to rounding by construction (its
segments telescope). Both come from values the integrating pass already has
(:data:`idgi_tf.attribution.integrate.OUTPUT_AT_START` / ``OUTPUT_AT_END``): no extra
model pass.

``steps="auto"`` doubles a uniform grid (16, 32, 64, ... steps, up to
``max_steps``) until the plain rule's relative gap ``|gap| / |f(x) -
f(start)|`` is at most ``tol`` for every image; an image that has converged is
not evaluated again. What an image that stops at ``M`` steps costs:

* **IG and Blur IG** (nested paths: the grid of 2M steps holds every point of
  the grid of M, with the same unit step): each refinement evaluates only its
  new points (:class:`idgi_tf.attribution.paths.Refinement`), and the plain rule at 2M
  steps is half the plain rule at M plus the new points' sum. The plain maps
  cost the final grid's ``M + 1`` passes, whatever grids were tried, and the
  memory one running sum per image. IDGI does not refine that way: splitting
  a segment changes which gradient weighs its output change, so updating an
  IDGI map would need the gradient at every earlier point (steps x image size
  of memory). Its maps come from one more pass over the final grid instead
  (``M + 1`` passes, memory bounded by ``batch_size`` as for any call), except
  for images that stop at the first grid, whose IDGI maps come from that pass.
* **Guided IG and Blur IG with ``sqrt=True``** are not nested (Guided IG's path
  depends on its number of steps; square-root sigmas move when the grid
  doubles), so every grid is integrated anew, both rules in one pass: an image
  that stops at M steps costs ``16 + 32 + ... + M`` (about ``2M``) passes.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from .. import _checks
from .integrate import OUTPUT_AT_END, OUTPUT_AT_START
from .paths import Refinement

AUTO = "auto"
AUTO_START_STEPS = 16
DEFAULT_TOL = 0.01
DEFAULT_MAX_STEPS = 1024


@dataclasses.dataclass
class CompletenessGap:
    """How far each image's map is from completeness, and on how many steps it was integrated.

    Attributes:
      absolute: ``sum A - (f(x) - f(start))`` per image (N,).
      relative: ``|absolute| / |f(x) - f(start)|`` (N,); 0 where both are 0, inf where only the
        output change is.
      output_change: ``f(x) - f(start)`` (N,).
      steps: the Riemann steps each map used (N,) int.
    """

    absolute: np.ndarray
    relative: np.ndarray
    output_change: np.ndarray
    steps: np.ndarray


def relative_gap(absolute: np.ndarray, change: np.ndarray) -> np.ndarray:
    """``|absolute| / |change|``, with 0 where both are 0 and inf where only ``change`` is."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(change != 0, np.abs(absolute) / np.abs(change), np.where(absolute == 0, 0.0, np.inf))


def completeness_gap(map_sums, start, end, steps) -> CompletenessGap:
    """The gaps of maps whose per-image sums are ``map_sums``, for ``f`` at the path's ``start`` and ``end``."""
    change = np.asarray(end, np.float64) - np.asarray(start, np.float64)
    absolute = np.asarray(map_sums, np.float64) - change
    return CompletenessGap(absolute, relative_gap(absolute, change), change,
                           np.broadcast_to(np.asarray(steps, np.int64), change.shape).copy())


def checked_steps(steps, tol, max_steps):
    """``(steps or AUTO, tol, max_steps)`` checked: a positive int (default 200 when None) or ``"auto"``, whose
    ``tol`` (default 1 %) and ``max_steps`` (default 1024) apply only with ``"auto"``."""
    if isinstance(steps, str):
        if steps != AUTO:
            raise ValueError(f"steps must be a positive int or 'auto', got {steps!r}")
        tol = DEFAULT_TOL if tol is None else _checks.number_in(tol, "tol", 0.0, 1e6, low_open=True)
        max_steps = DEFAULT_MAX_STEPS if max_steps is None else _checks.positive_int(max_steps, "max_steps")
        if max_steps < 2:
            raise ValueError(f"max_steps must be at least 2, got {max_steps}")
        return AUTO, tol, max_steps
    if tol is not None or max_steps is not None:
        raise ValueError("tol and max_steps apply only with steps='auto'")
    return steps, None, None


def auto_grids(max_steps: int) -> list[int]:
    """The step counts tried: 16 (or ``max_steps`` if smaller), doubled while at most ``max_steps``."""
    grids = [min(AUTO_START_STEPS, max_steps)]
    while grids[-1] * 2 <= max_steps:
        grids.append(grids[-1] * 2)
    return grids


def _image_sums(maps: np.ndarray) -> np.ndarray:
    return maps.sum(axis=tuple(range(1, maps.ndim)))


def refine(evaluate, make_path, rule_names, count: int, tol: float, max_steps: int, on_done=None):
    """Integrate ``count`` images on doubling grids until each one's plain relative gap is at most ``tol``.

    Args:
      evaluate: ``(path, rules, index) -> {rule: (k, H, W, C) float64, OUTPUT_AT_START: (k,),
        OUTPUT_AT_END: (k,)}``, the integral of ``path`` for the images ``index`` (the caller's groups,
        replicas and memory bound).
      make_path: ``steps -> path``.
      rule_names: the rules wanted; the plain rule is integrated in any case (it decides the steps).
      on_done: called with the number of images that converge at each grid (progress).

    Returns:
      ``({rule: (count, H, W, C) float32}, {rule: CompletenessGap})``.
    """
    grids = auto_grids(max_steps)
    others = tuple(name for name in rule_names if name != "plain")
    active = np.arange(count)
    outputs = evaluate(make_path(grids[0]), ("plain", *others), active)
    start, end = outputs[OUTPUT_AT_START], outputs[OUTPUT_AT_END]
    change = end - start
    shape = outputs["plain"].shape[1:]
    maps = {name: np.empty((count, *shape), np.float32) for name in rule_names}
    sums = {name: np.zeros(count) for name in rule_names}
    steps_used = np.zeros(count, np.int64)
    reached = np.zeros(count)  # the plain rule's relative gap where each image stopped
    final_passes = {}  # steps -> images whose IDGI maps come from one more pass over that grid
    plain = outputs["plain"]

    def keep(name, index, values):
        maps[name][index] = values
        sums[name][index] = _image_sums(values)

    for level, steps in enumerate(grids):
        path = make_path(steps)
        if level and path.nested:
            plain = plain / 2.0 + evaluate(Refinement(path), ("plain",), active)["plain"]
            outputs = None
        elif level:
            outputs = evaluate(path, ("plain", *others), active)
            plain = outputs["plain"]
        plain_gap = relative_gap(_image_sums(plain) - change[active], change[active])
        done = (plain_gap <= tol) | (steps == grids[-1])
        stopping = active[done]
        steps_used[stopping], reached[stopping] = steps, plain_gap[done]
        if "plain" in maps:
            keep("plain", stopping, plain[done])
        if others and outputs is None and len(stopping):
            final_passes[steps] = stopping
        for name in others if outputs is not None else ():
            keep(name, stopping, outputs[name][done])
        if on_done is not None:
            on_done(len(stopping))
        active, plain = active[~done], plain[~done]
        if not len(active):
            break
    for steps, index in final_passes.items():
        final = evaluate(make_path(steps), others, index)
        for name in others:
            keep(name, index, final[name])
    missed = reached > tol
    if missed.any():
        warnings.warn(
            f"steps='auto': {int(missed.sum())} image(s) did not reach tol={tol:g} within max_steps={grids[-1]} "
            f"(largest relative gap {reached.max():.3g}); their maps use {grids[-1]} steps",
            RuntimeWarning, stacklevel=3,
        )
    return maps, {name: completeness_gap(sums[name], start, end, steps_used) for name in rule_names}
