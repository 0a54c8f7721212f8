"""Ancona et al. (2018)'s Sensitivity-n comparison, on a small CNN trained here on Fashion-MNIST.

Trains a ReLU CNN (conv, max pooling, dense) on real Fashion-MNIST (Debian's
``dataset-fashion-mnist``), explains the target logit of correctly classified
test images with Gradient x Input, Integrated Gradients, epsilon-LRP,
DeepLIFT-Rescale (black baseline) and Occlusion-1, and measures Sensitivity-n
(100 random subsets per n, removed pixels set to black). Writes the curves as
a PNG and a JSON file, and prints the paper's qualitative findings as checks:

1. Occlusion-1 satisfies Sensitivity-1 (correlation 1 at n = 1);
2. on a ReLU network epsilon-LRP tends to Gradient x Input as epsilon -> 0;
3. DeepLIFT-Rescale stays close to Integrated Gradients (it approximates IG);
4. at large n the gradient-based methods beat Occlusion-1 (which only sees single pixels).

Run: python benchmarks/sensitivity_n_fashion_mnist.py [--images 50] [--out benchmarks/figures]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import keras
import numpy as np

import idgi_tf
from idgi_tf import data, metrics, viz

METHODS = {
    "Gradient*Input": ("gxi", {}),
    "Integrated Gradients": ("ig", {"steps": 64}),
    "epsilon-LRP": ("elrp", {}),
    "DeepLIFT (Rescale)": ("deeplift", {}),
    "Occlusion-1": ("occlusion", {"patch": 1}),
}


def train(train_images, train_labels, epochs: int, seed: int) -> keras.Model:
    """A small ReLU CNN ending in logits (the explained output of every method here)."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Rescaling(1 / 255.0),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10),
    ])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(train_images, train_labels, epochs=epochs, batch_size=128, verbose=2)
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50, help="test images explained")
    parser.add_argument("--train", type=int, default=20000, help="training images used")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--subsets", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epsilon", type=float, default=1e-4, help="epsilon of epsilon-LRP (Ancona: 1e-4)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "figures"))
    args = parser.parse_args(argv)

    train_x, train_y = data.fashion_mnist("train", limit=args.train)
    test_x, test_y = data.fashion_mnist("test")
    model = train(train_x[..., None].astype(np.float32), train_y, args.epochs, args.seed)
    test = test_x[..., None].astype(np.float32)
    predicted = np.argmax(model.predict(test, verbose=0), axis=1)
    accuracy = float((predicted == test_y).mean())
    right = np.flatnonzero(predicted == test_y)[: args.images]
    images, labels = test[right], test_y[right]
    print(f"test accuracy {accuracy:.3f}; explaining {len(images)} correctly classified test images")

    curves, timings = {}, {}
    for name, (method, options) in METHODS.items():
        options = {**options, "epsilon": args.epsilon} if method == "elrp" else options
        start = time.perf_counter()
        maps = idgi_tf.attribute(model, images, labels, method, batch_size=256, **options)
        result = metrics.sensitivity_n(model, images, labels, maps, subsets=args.subsets, seed=args.seed,
                                       batch_size=256)
        timings[name] = time.perf_counter() - start
        curves[name] = result.aggregate_curves["correlation"]
        ns = result.x
        print(f"{name:>22}: " + " ".join(f"{v:5.2f}" for v in curves[name]) + f"   ({timings[name]:.1f} s)")

    os.makedirs(args.out, exist_ok=True)
    png = viz.save(viz.plot_curves(ns, curves, logx=True, xlabel="n (pixels set to black)",
                                   ylabel="Pearson correlation (mean over images)",
                                   title=f"Sensitivity-n, CNN on Fashion-MNIST ({len(images)} test images)"),
                   os.path.join(args.out, "sensitivity_n_fashion_mnist.png"))
    record = {"ns": ns.tolist(), "curves": {k: v.tolist() for k, v in curves.items()}, "accuracy": accuracy,
              "images": len(images), "subsets": args.subsets, "seconds": timings}
    with open(os.path.join(args.out, "sensitivity_n_fashion_mnist.json"), "w") as handle:
        json.dump(record, handle, indent=1)

    occlusion, gradient = curves["Occlusion-1"], curves["Gradient*Input"]
    findings = {
        "Occlusion-1 has correlation 1 at n = 1": bool(abs(occlusion[0] - 1) < 1e-6),
        "epsilon-LRP is within 0.01 of Gradient*Input at every n (equal as epsilon -> 0 on ReLU networks)": bool(
            np.abs(curves["epsilon-LRP"] - gradient).max() < 0.01),
        "DeepLIFT-Rescale stays within 0.01 of IG at every n (it approximates IG)": bool(
            np.abs(curves["DeepLIFT (Rescale)"] - curves["Integrated Gradients"]).max() < 0.01),
        "at the largest n, IG and DeepLIFT beat Occlusion-1": bool(
            min(curves["Integrated Gradients"][-1], curves["DeepLIFT (Rescale)"][-1]) > occlusion[-1]),
    }
    for finding, holds in findings.items():
        print(f"[{'yes' if holds else 'NO '}] {finding}")
    print(f"wrote {png}")
    return findings


if __name__ == "__main__":
    main()
