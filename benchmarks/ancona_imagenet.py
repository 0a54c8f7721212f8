"""Ancona et al. (2018)'s ImageNet experiment on the trained EfficientNet-Lite0: Sensitivity-n of six methods.

Ancona used Inception V3 on ImageNet; here the network is EfficientNet-Lite0 (``idgi_tf.models.load``,
offline, logits) and the images are the shipped photographs (``idgi_tf.data.sample_images(224)``), of which
the correctly classified ones are explained. The label's logit is explained with Gradient x Input,
epsilon-LRP, DeepLIFT-Rescale (black baseline), Integrated Gradients and IG+IDGI (black baseline, ``--steps``
Riemann steps, 64 by default to stay affordable on two CPU cores) and Occlusion with ``--patch`` x ``--patch``
windows (Ancona: 10x10 on ImageNet; 8, the library's default window, divides 224). Maps are summed over the
channels; Sensitivity-n (``idgi_tf.metrics.sensitivity_n``, pixels as features) sets ``--subsets`` random
pixel subsets per n to black and correlates the logit's drop with the attribution mass removed.

A method that the network's layers do not support (an ``UnsupportedLayerError``) is recorded as skipped
with its reason, never dropped silently.

Writes to ``--out``: sensitivity_n.png (one curve per method), sensitivity_n.csv and .md (the table) and
results.json (images, curves, how alike the maps of epsilon-LRP and Gradient x Input, and of
DeepLIFT and IG, are; skipped methods, timings).

Run: python benchmarks/ancona_imagenet.py [--limit 1 --subsets 8] [--out benchmarks/ancona_imagenet]
"""

from __future__ import annotations

import argparse
import csv
import os
import time

import numpy as np
from ancona_text import gradient_calls, run_methods, write_json  # benchmarks/ancona_text.py: calls, loop, writer
from matplotlib.figure import Figure

import idgi_tf
from idgi_tf import data, metrics, models, viz

NS = (1, 10, 100, 500, 2000, 8000, 20000, 40000)  # of 224 * 224 = 50176 pixels


def method_names(patch: int) -> tuple:
    return ("Gradient*Input", "epsilon-LRP", "DeepLIFT (Rescale)", "IG", "IG+IDGI", f"Occlusion-{patch}")


def pixel_maps(model, images, labels, steps: int, epsilon: float, patch: int) -> tuple[dict, dict, dict]:
    """Channel-summed maps (N, H, W) of every method, seconds per method, and {method: reason} for skipped ones."""
    calls = {
        **gradient_calls(model, images, labels, steps, epsilon, np.zeros_like(images), batch_size=16),
        f"Occlusion-{patch}": lambda: idgi_tf.attribute(model, images, labels, "occlusion", patch=patch,
                                                        baseline=0.0, batch_size=16),
    }
    return run_methods(calls, lambda result: result.sum(-1))


def map_agreement(maps: dict, first: str, second: str) -> dict:
    """How alike two methods' maps are: the mean over images of the Pearson correlation of the pixel maps, and
    the largest ``max|a - b| / max|b|`` (0 where the methods coincide, as epsilon-LRP and Gradient x Input on
    ReLU networks)."""
    if first not in maps or second not in maps:
        return {}
    a, b = maps[first].reshape(len(maps[first]), -1), maps[second].reshape(len(maps[second]), -1)
    correlation = [np.corrcoef(x, y)[0, 1] for x, y in zip(a, b)]
    relative = np.abs(a - b).max(1) / np.maximum(np.abs(b).max(1), 1e-30)
    return {"mean_correlation": float(np.mean(correlation)), "max_relative_difference": float(relative.max())}


def plot(ns, curves: dict, count: int) -> Figure:
    """The paper's layout: one curve per method, x = n (log), y = mean correlation over images."""
    figure = Figure(figsize=(6.0, 4.2), layout="constrained")
    viz.plot_curves(ns, curves, logx=True, ax=figure.subplots(), xlabel="n (pixels set to black)",
                    ylabel="Pearson correlation (mean over images)",
                    title=f"Sensitivity-n, EfficientNet-Lite0 ({count} photos)")
    return figure


def write_tables(out: str, ns, methods, curves: dict, skipped: dict) -> None:
    """sensitivity_n.csv (one row per method, one column per n) and the same as markdown."""
    header = ["method", "status", *[f"n={n}" for n in ns]]
    rows = [[method, "skipped: " + skipped[method], *[""] * len(ns)] if method in skipped
            else [method, "ok", *[f"{v:.3f}" for v in curves[method]]] for method in methods]
    with open(os.path.join(out, "sensitivity_n.csv"), "w", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    lines = ["# Sensitivity-n on EfficientNet-Lite0 (benchmarks/ancona_imagenet.py)", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([row[0], row[1].split(":")[0], *row[2:]]) + " |" for row in rows]
    with open(os.path.join(out, "sensitivity_n.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="explain at most this many photos (default all "
                        "correctly classified ones)")
    parser.add_argument("--steps", type=int, default=64, help="Riemann steps of IG (64: affordable on a CPU)")
    parser.add_argument("--patch", type=int, default=8, help="occlusion window side (Ancona: 10; 8 divides 224)")
    parser.add_argument("--subsets", type=int, default=40, help="random pixel subsets per n (Ancona: 100)")
    parser.add_argument("--epsilon", type=float, default=1e-4, help="epsilon of epsilon-LRP (Ancona: 1e-4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "ancona_imagenet"))
    args = parser.parse_args(argv)
    began = time.perf_counter()

    model = models.load("EfficientNetLite0", logits=True)
    samples = data.sample_images(224)
    predicted = np.argmax(model.predict(samples.images, verbose=0, batch_size=16), axis=1)
    right = np.flatnonzero(predicted == samples.labels)[: args.limit]
    images, labels = samples.images[right].astype(np.float32), samples.labels[right]
    names = [samples.names[i] for i in right]
    print(f"explaining {len(images)} of {len(samples.images)} photos (the correctly classified): {names}")

    maps, seconds, skipped = pixel_maps(model, images, labels, args.steps, args.epsilon, args.patch)
    methods = method_names(args.patch)
    for pair in (("epsilon-LRP", "Gradient*Input"), ("DeepLIFT (Rescale)", "IG")):
        print(f"  maps of {pair[0]} vs {pair[1]}: {map_agreement(maps, *pair)}")
    curves = {}
    for method in methods:
        if method not in maps:
            continue
        start = time.perf_counter()
        result = metrics.sensitivity_n(model, images, labels, maps[method], ns=list(NS), subsets=args.subsets,
                                       baseline=0.0, seed=args.seed, batch_size=16)
        curves[method] = result.aggregate_curves["correlation"]
        seconds[f"sensitivity_n {method}"] = time.perf_counter() - start
        print(f"  {method:>20}: " + " ".join(f"{v:5.2f}" for v in curves[method]))

    os.makedirs(args.out, exist_ok=True)
    viz.save(plot(NS, curves, len(images)), os.path.join(args.out, "sensitivity_n.png"))
    write_tables(args.out, NS, methods, curves, skipped)
    record = {
        "model": "EfficientNetLite0", "images": names, "ns": list(NS), "pixels": int(np.prod(images.shape[1:3])),
        "subsets": args.subsets, "steps": args.steps, "patch": args.patch, "epsilon": args.epsilon,
        "seed": args.seed, "agreement": {
            "epsilon-LRP vs Gradient*Input": map_agreement(maps, "epsilon-LRP", "Gradient*Input"),
            "DeepLIFT (Rescale) vs IG": map_agreement(maps, "DeepLIFT (Rescale)", "IG")},
        "curves": {k: v.tolist() for k, v in curves.items()}, "skipped": skipped,
        "seconds": {**seconds, "total": time.perf_counter() - began},
    }
    write_json(os.path.join(args.out, "results.json"), record)
    print(f"wrote {args.out} in {record['seconds']['total']:.0f} s")
    return record


if __name__ == "__main__":
    main()
