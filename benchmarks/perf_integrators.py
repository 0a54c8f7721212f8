"""Speed of idgi_tf's integrators against the floor and against PAIR saliency / Xplique.

For each model (random-init Keras Applications, or EfficientNet-Lite with its trained
weights, at 224 px, in pixel space) and
each step count, one run times, on the same image and target:

* floor: the same number of forward+backward passes, in the same batch size,
  through one compiled function that does nothing else (our lower bound);
* idgi_tf IG, plain + IDGI from one pass (optionally with XLA), on the uniform and the adaptive grid;
* PAIR saliency IG at its default batch 1 and at batch min(steps, B);
* Xplique IG (when importable; its metadata pins TF <= 2.20, see RESULTS.md);
* PAIR Guided IG and Blur IG vs ours, per image (ours batches images). Guided IG is sequential (each
  point needs the previous point's gradient), so it is also measured against its own floor: ``steps + 1``
  passes of the batched images, one after the other, in one compiled loop (``--gig-images``: 1, 2, 8).
* idgi_tf IG with ``steps="auto"`` (``--auto-tol``, default 1 %), plain alone and plain + IDGI, beside
  the fixed step counts: seconds per image and the steps it used.

Ratios are to the floor of the same run, so the noisy shared machine cancels.
Usage::

    python benchmarks/perf_integrators.py [--models MobileNetV2,ResNet50V2,EfficientNetLite0] [--steps 32,200]
        [--gig-images 1,2,8] [--xla] [--auto-tol 0.01] [--auto-only] [--out results.jsonl]
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import idgi_tf  # noqa: E402
from idgi_tf import models  # noqa: E402
from idgi_tf._cli import comma_list, positive_ints  # noqa: E402
from idgi_tf.models import pixel_model  # noqa: E402
from idgi_tf.runtime import explained_value_and_grad  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import append_jsonl, machine, optional, photo, timed  # noqa: E402

MAX_BATCH = 70


def batch_for(points: int) -> int:
    """Largest batch <= MAX_BATCH that splits ``points`` into equal chunks."""
    return math.ceil(points / math.ceil(points / MAX_BATCH))


def pair_call_model_function(model, target):
    """PAIR's model interface over a compiled gradient function (PAIR's best case)."""

    @tf.function(reduce_retracing=True)
    def grads(batch):
        _, g = explained_value_and_grad(model, batch, tf.fill([tf.shape(batch)[0]], target))
        return g

    def call(batch, call_model_args=None, expected_keys=None):
        return {"INPUT_OUTPUT_GRADIENTS": grads(tf.constant(np.asarray(batch, np.float32))).numpy()}

    return call


def sequential_floor(model, images, targets, passes: int):
    """``passes`` forward+backward passes of ``images``, each input depending on the last gradient (as
    Guided IG's points do), in one compiled loop: Guided IG's lower bound."""
    targets = tf.constant(targets, tf.int32)

    @tf.function
    def loop(x):
        def body(i, x):
            _, g = explained_value_and_grad(model, x, targets)
            return i + 1, x + 1e-30 * g

        return tf.while_loop(lambda i, _: i < passes, body, (tf.constant(0), x), parallel_iterations=1)[1]

    return lambda: loop(tf.constant(images)).numpy()


def run(model_name: str, steps: int, args, saliency, xplique, rows: list):
    keras.utils.set_random_seed(0)
    if model_name in models.LITE_MODELS:  # trained ImageNet weights, offline
        model = models.load(model_name)
    else:
        model = pixel_model(getattr(keras.applications, model_name)(weights=None, input_shape=(224, 224, 3)), "tf")
    gig_images = args.gig_images
    images = photo(224, max(gig_images))
    image, target = images[:1], int(np.argmax(model(images[:1])))
    points = steps + 1
    batch = batch_for(points)
    repeats = args.repeats

    def row(name, seconds, per_images=1, own_floor=None):
        rows.append({"model": model_name, "steps": steps, "batch": batch, "method": name,
                     "seconds_per_image": seconds / per_images, "own_floor": own_floor})
        print(f"{model_name:12s} steps={steps:4d} {name:34s} {seconds / per_images:8.2f} s/image", flush=True)

    random_points = tf.random.uniform((batch, 224, 224, 3), 0, 255)
    floor_fn = tf.function(functools.partial(explained_value_and_grad, model, targets=tf.fill([batch], target)))
    row("floor (fwd+bwd only)", timed(lambda: [floor_fn(random_points)[1].numpy()
                                               for _ in range(math.ceil(points / batch))], repeats))
    row("idgi_tf IG plain+IDGI", timed(lambda: idgi_tf.attribute(
        model, image, [target], "ig", rule=("plain", "idgi"), steps=steps, batch_size=batch), repeats))
    row("idgi_tf IG plain+IDGI, grid='adaptive'", timed(lambda: idgi_tf.attribute(
        model, image, [target], "ig", rule=("plain", "idgi"), steps=steps, batch_size=batch, grid="adaptive"),
        repeats))
    if args.auto_tol > 0 and steps == max(args.steps):
        for rules in (("plain",), ("plain", "idgi")):
            used = []

            def auto(rules=rules, used=used):
                _, gaps = idgi_tf.attribute(model, image, [target], "ig", rule=rules, steps="auto", tol=args.auto_tol,
                                            return_gap=True, batch_size=batch)
                used.append(int(gaps["plain"].steps[0]))

            seconds = timed(auto, repeats)
            row(f"idgi_tf IG {'+'.join(rules)}, steps='auto' (tol {args.auto_tol:g}): {used[-1]} steps", seconds)
    if args.auto_only:
        return
    if args.xla:
        row("idgi_tf IG plain+IDGI, XLA", timed(lambda: idgi_tf.attribute(
            model, image, [target], "ig", rule=("plain", "idgi"), steps=steps, batch_size=batch,
            jit_compile=True), repeats))
    if saliency is not None:
        ig = saliency.IntegratedGradients()
        call = pair_call_model_function(model, target)
        row("PAIR IG, batch 1 (default)", timed(lambda: ig.GetMask(image[0], call, x_steps=steps), repeats))
        pair_batch = min(steps, batch)
        row(f"PAIR IG, batch {pair_batch}", timed(
            lambda: ig.GetMask(image[0], call, x_steps=steps, batch_size=pair_batch), repeats))
    if xplique is not None:
        explainer = xplique.attributions.IntegratedGradients(model, steps=steps, batch_size=batch)
        one_hot = np.eye(1000, dtype=np.float32)[[target]]
        row(f"Xplique IG, batch {batch}", timed(lambda: np.asarray(explainer.explain(image, one_hot)), repeats))

    for count in gig_images:
        many = images[:count]
        many_targets = np.argmax(model(many), axis=1)
        floor_name = f"floor, {points} sequential passes of {count}"
        row(floor_name, timed(sequential_floor(model, many, many_targets, points), repeats), count)
        row(f"idgi_tf GIG plain+IDGI, {count} image{'s' * (count > 1)}", timed(lambda: idgi_tf.attribute(
            model, many, many_targets, "gig", rule=("plain", "idgi"), steps=steps), repeats), count,
            own_floor=floor_name)
    row("idgi_tf BlurIG plain+IDGI", timed(lambda: idgi_tf.attribute(
        model, image, [target], "blurig", rule=("plain", "idgi"), steps=steps, batch_size=batch), repeats))
    if saliency is not None:
        from saliency.core import guided_ig

        guided_ig.np = _numpy_with_old_quantile()
        row("PAIR GIG (batch 1)", timed(lambda: saliency.GuidedIG().GetMask(image[0], call, x_steps=steps), 1),
            own_floor=f"floor, {points} sequential passes of 1" if 1 in gig_images else None)
        row("PAIR BlurIG, batch 1 (default)", timed(
            lambda: saliency.BlurIG().GetMask(image[0], call, steps=steps, max_sigma=50), 1))


def _numpy_with_old_quantile():
    """PAIR's guided_ig calls np.quantile(interpolation=...), removed in NumPy 2.4."""
    import types

    shim = types.ModuleType("numpy_shim")
    shim.__dict__.update(np.__dict__)
    shim.quantile = lambda a, q, interpolation=None, **kw: np.quantile(a, q, method=interpolation or "linear")
    return shim


def table(rows: list) -> str:
    """Markdown rows; "× own floor": Guided IG's ratio to its sequential floor (same images per pass)."""
    lines = ["| model | steps | method | s/image | × floor | × own floor |", "|---|---|---|---|---|---|"]
    floors = {(r["model"], r["steps"], r["method"]): r["seconds_per_image"] for r in rows
              if r["method"].startswith("floor")}
    for r in rows:
        ratio = r["seconds_per_image"] / floors[(r["model"], r["steps"], "floor (fwd+bwd only)")]
        own = r.get("own_floor")
        own = f"{r['seconds_per_image'] / floors[(r['model'], r['steps'], own)]:.2f}" if own else ""
        lines.append(f"| {r['model']} | {r['steps']} | {r['method']} | {r['seconds_per_image']:.2f} | {ratio:.2f} "
                     f"| {own} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=comma_list(models.MODELS), default="MobileNetV2,ResNet50V2,EfficientNetLite0")
    parser.add_argument("--steps", type=positive_ints, default="32,200")
    parser.add_argument("--gig-images", type=positive_ints, default="1,2,8",
                        help="comma list: images batched in each GIG run")
    parser.add_argument("--repeats", type=int, default=1, help="timed calls after the warm-up (best kept)")
    parser.add_argument("--xla", action="store_true", help="also time our IG with jit_compile=True")
    parser.add_argument("--auto-tol", type=float, default=0.01,
                        help="also time steps='auto' at this tol, beside the largest --steps (0: skip)")
    parser.add_argument("--auto-only", action="store_true",
                        help="time only the floor, fixed-step IG and steps='auto' rows (no PAIR, Xplique, GIG, BlurIG)")
    parser.add_argument("--out", help="append rows to this JSON-lines file")
    args = parser.parse_args(argv)
    saliency = optional("saliency.core")
    xplique = optional("xplique.attributions")
    if xplique is not None:
        xplique = sys.modules["xplique"]
    rows: list = []
    for model_name in args.models:
        for steps in args.steps:
            run(model_name, steps, args, saliency, xplique, rows)
    print()
    print(machine())
    print(table(rows))
    append_jsonl(args.out, rows)


if __name__ == "__main__":
    main()
