"""Speed of the non-path methods: batched against one-at-a-time, and modified gradients against plain ones.

On one random-init Keras Application (224 px, pixel space) and the same images:

* elrp / deeplift vs gxi: the cost of re-running the network layer by layer
  with custom-gradient nonlinearities (DeepLIFT doubles the batch);
* occlusion, RISE and SmoothGrad(vg) with their perturbations batched
  (``batch_size`` model inputs per pass) vs one perturbation per pass
  (``batch_size`` = number of images), which is what a plain Python loop over
  windows, masks or noise samples would do;
* the floor: the same number of forward passes in batches of ``batch_size``.

Ratios are within one run, so the noisy shared machine cancels.
Usage::

    python benchmarks/perf_methods.py [--model MobileNetV2] [--images 2] [--batch-size 64] [--out results.jsonl]
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import idgi_tf  # noqa: E402
from idgi_tf import models  # noqa: E402
from idgi_tf.runtime import compiled_value  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import append_jsonl, machine, photo, timed  # noqa: E402


def forward_floor(model, images, targets, passes: int, batch: int) -> float:
    """Time of ``passes`` forward passes per image through one compiled function, ``batch`` inputs at a time."""
    run = compiled_value(model)
    block = np.repeat(images, max(1, batch // len(images)), axis=0)[:batch]
    block_targets = np.resize(targets, len(block))
    calls = -(-passes * len(images) // len(block))
    x, t = tf.constant(block), tf.constant(block_targets)
    return timed(lambda: [run(x, t).numpy() for _ in range(calls)], repeats=2)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="MobileNetV2")
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out")
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(0)
    model = models.load(args.model, None)
    size = int(model.input_shape[1])
    images = photo(size, args.images)
    targets = np.arange(args.images, dtype=np.int32) + 1
    n, batch = args.images, args.batch_size
    print(machine())
    print(f"{args.model} at {size} px, {n} images, batch_size {batch}\n")

    def attribute_time(method, batch_size, **options):
        return timed(lambda: idgi_tf.attribute(model, images, targets, method, batch_size=batch_size, **options),
                     repeats=2)

    rows = []
    gxi = attribute_time("gxi", batch)
    for method in ("elrp", "deeplift"):
        seconds = attribute_time(method, batch)
        rows.append({"case": f"{method} vs gxi", "ours_s": seconds, "baseline_s": gxi})
    perturbations = {
        "occlusion (16-px windows)": ("occlusion", {"patch": 16}, 1 + (size // 16) ** 2),
        "rise (256 masks)": ("rise", {"nmasks": 256}, 256),
        "smoothgrad of vg (32 samples)": ("smoothgrad", {"nsamples": 32}, None),  # backward passes: no floor
    }
    for name, (method, options, passes) in perturbations.items():
        batched = attribute_time(method, batch, **options)
        one_by_one = attribute_time(method, n, **options)
        row = {"case": name, "ours_s": batched, "baseline_s": one_by_one}
        if passes is not None:
            row["forward_floor_s"] = forward_floor(model, images, targets, passes, batch)
        rows.append(row)

    print(f"{'case':32s} {'ours (s)':>9s} {'baseline (s)':>12s} {'base/ours':>9s} {'forward floor (s)':>18s}")
    for row in rows:
        floor = f"{row['forward_floor_s']:18.2f}" if "forward_floor_s" in row else f"{'':18s}"
        print(f"{row['case']:32s} {row['ours_s']:9.2f} {row['baseline_s']:12.2f} "
              f"{row['baseline_s'] / row['ours_s']:8.2f}x {floor}")
    append_jsonl(args.out, [{**row, "model": args.model, "images": n, "batch_size": batch} for row in rows])


if __name__ == "__main__":
    main()
