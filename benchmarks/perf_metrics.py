"""Speed of idgi_tf's SIC/AIC and Insertion against PAIR ``pic.py`` and against their floors.

On random-init MobileNetV2 at 224 px (pixel space) and real scikit-image
photos, with the same images, maps (Vanilla Gradient) and 25 thresholds:

* PAIR ``compute_pic_metric`` once for SIC and once for AIC (its API computes
  one curve per call), one image at a time;
* ours: ``sic_aic`` in paper mode (entropy; MS-SSIM) and in pair mode (PAIR's
  semantics: the same numbers as PAIR, see tests/test_sic_aic.py);
* Insertion (21 canvases) against its floor: 21 forward passes of the same
  images through one compiled function doing nothing else, in the same batch size.

Targets are chosen so that SIC skips no image in either implementation
(``min_pred=0`` and a class both bases score lower), so both do all the work.
AIC skips an image whose base is still classified right; PAIR then stops
early while ours has done the work, which only favours PAIR. Usage::

    python benchmarks/perf_metrics.py [--images 2] [--pair-images 1] [--out results.jsonl]
    python benchmarks/perf_metrics.py --xla [--images 2]   # every metric with and without XLA
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
from idgi_tf import metrics  # noqa: E402
from idgi_tf.metrics import information, pic_pair  # noqa: E402
from idgi_tf.models import pixel_model  # noqa: E402
from idgi_tf.runtime import compiled_value  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import append_jsonl, machine, optional, photo, timed  # noqa: E402

THRESHOLDS = np.linspace(0.0, 1.0, 25)
BATCH = 32


def sharpened_mobilenet(images):
    """Random-init MobileNetV2 whose logits are scaled to a spread of ~10 on ``images``.

    A random net's softmax is almost flat (differences ~1e-6, below batching
    noise), so whether the blurred base scores lower would be a coin toss.
    """
    keras.utils.set_random_seed(0)
    net = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3), classifier_activation=None)
    logits = pixel_model(net, "tf")(tf.constant(images)).numpy()
    scale = 10.0 / float(np.std(logits))
    return pixel_model(keras.Sequential([net, keras.layers.Rescaling(scale), keras.layers.Softmax()]), "tf")


def unskipped_targets(model, pixels, masks):
    """The class each image beats both bases on by the most: f(original) > f(base) for either protocol."""
    blurred = information.gaussian_blurred(pixels, 20)
    interpolated = np.stack([pic_pair.interpolated_image(p, m) for p, m in zip(pixels, masks)])
    scores = [model(tf.constant(x, tf.float32)).numpy() for x in (pixels, blurred, interpolated)]
    return np.argmax(scores[0] - np.maximum(scores[1], scores[2]), axis=1).astype(np.int32)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2, help="images for our runs")
    parser.add_argument("--pair-images", type=int, default=1, help="images for PAIR (about 100 s each on 2 cores)")
    parser.add_argument("--out", help="append rows to this JSON-lines file")
    parser.add_argument("--xla", action="store_true",
                        help="instead: every metric with jit_compile=False and True, on EfficientNet-Lite0")
    args = parser.parse_args(argv)
    if args.xla:
        return xla_table(args.images, args.out)
    pic = optional("saliency.metrics.pic")
    if pic is not None and not hasattr(np, "trapz"):
        np.trapz = np.trapezoid  # PAIR calls np.trapz, removed in NumPy 2.4

    images = np.round(photo(224, args.images))
    model = sharpened_mobilenet(images)
    pixels = images.astype(np.uint8)
    masks = pic_pair.draw_random_masks(len(images), 224, 224, seed=0)
    targets = unskipped_targets(model, pixels, masks)
    maps = idgi_tf.attribute(model, images, targets, "vg")
    rows = []

    def row(name, seconds, count, baseline=None):
        rows.append({"method": name, "seconds_per_image": seconds / count, "baseline": baseline})
        print(f"{name:44s} {seconds / count:8.3f} s/image", flush=True)

    def ours(**options):
        result = metrics.sic_aic(model, images, targets, maps, thresholds=THRESHOLDS, min_pred=0.0,
                                 batch_size=BATCH, **options)
        skipped = {k: v for k, v in result.counts.items() if k.startswith("skipped") and v}
        label = {k: v for k, v in options.items() if k in ("mode", "information")} or "paper, entropy"
        print(f"  {label}: skipped {skipped or 'none'}", flush=True)
        return result

    value = compiled_value(model)
    canvases = tf.random.uniform((21 * len(images), 224, 224, 3), 0, 255)
    row("insertion floor: 21 forward passes", timed(
        lambda: [value(canvases[i:i + BATCH], tf.zeros([len(canvases[i:i + BATCH])], tf.int32)).numpy()
                 for i in range(0, len(canvases), BATCH)], 2), len(images))
    row("idgi_tf insertion", timed(lambda: metrics.insertion(model, images, targets, maps, batch_size=BATCH), 2),
        len(images), "insertion floor: 21 forward passes")
    row("WebP sizes of 25 images, serial (context)", timed(
        lambda: [information.webp_size(pixels[0]) for _ in THRESHOLDS], 1), 1)
    row("idgi_tf sic_aic paper, entropy", timed(lambda: ours(), 1), len(images), "PAIR pic SIC + AIC")
    row("idgi_tf sic_aic paper, msssim", timed(lambda: ours(information="msssim"), 1), len(images),
        "PAIR pic SIC + AIC")
    row("idgi_tf sic_aic pair mode", timed(lambda: ours(mode="pair", random_masks=masks), 1), len(images),
        "PAIR pic SIC + AIC")
    if pic is not None:
        flat = metrics.reduce_channels(maps)
        scores = tf.function(model)  # PAIR's pred_func over a compiled model (its best case)
        scores(tf.constant(pixels[:1], tf.float32))

        def pair_run():
            for i in range(args.pair_images):
                t = int(targets[i])
                for pred in (lambda b: scores(tf.constant(b, tf.float32)).numpy()[:, t],
                             lambda b: (np.argmax(scores(tf.constant(b, tf.float32)).numpy(), 1) == t) * 1.0):
                    try:
                        pic.compute_pic_metric(pixels[i], flat[i], masks[i], pred, THRESHOLDS, min_pred_value=0.0)
                    except pic.ComputePicMetricError:  # AIC: the base is classified right too (see above)
                        pass

        row("PAIR pic SIC + AIC", timed(pair_run, 1, warm_up=False), args.pair_images)

    seconds = {r["method"]: r["seconds_per_image"] for r in rows}
    print()
    print(machine())
    print("| method | s/image | speed-up over / cost vs |")
    print("|---|---|---|")
    for r in rows:
        base = r["baseline"]
        if base in seconds and base.startswith("PAIR"):
            note = f"{seconds[base] / r['seconds_per_image']:.1f}× faster than {base}"
        elif base in seconds:
            note = f"{r['seconds_per_image'] / seconds[base]:.2f}× {base}"
        else:
            note = ""
        print(f"| {r['method']} | {r['seconds_per_image']:.3f} | {note} |")
    append_jsonl(args.out, rows)


def xla_table(count: int, out) -> None:
    """Seconds per image of every model-running metric without and with XLA, in the same run.

    EfficientNet-Lite0 with its trained weights on the shipped photos, IG+IDGI maps
    (32 steps); each timing is one call after a warm-up call (which
    traces and, under XLA, compiles). On a GPU machine the same command prints the GPU's table.
    """
    from idgi_tf import data, models

    model = models.load("EfficientNetLite0")
    samples = data.sample_images(224)
    images, labels = samples.images[:count], samples.labels[:count]
    maps = idgi_tf.attribute(model, images, labels, "ig", rule="idgi", steps=32)
    calls = {
        "insertion": lambda jit: metrics.insertion(model, images, labels, maps, jit_compile=jit),
        "deletion": lambda jit: metrics.deletion(model, images, labels, maps, jit_compile=jit),
        "sic_aic entropy": lambda jit: metrics.sic_aic(model, images, labels, maps, min_pred=0.0, jit_compile=jit),
        "sic_aic msssim": lambda jit: metrics.sic_aic(model, images, labels, maps, information="msssim",
                                                      min_pred=0.0, jit_compile=jit),
        "sensitivity_n (4 sizes x 20 subsets)": lambda jit: metrics.sensitivity_n(
            model, images, labels, maps, ns=[10, 100, 1000, 10000], subsets=20, jit_compile=jit),
        "mufidelity (50 samples)": lambda jit: metrics.mufidelity(model, images, labels, maps, samples=50,
                                                                  jit_compile=jit),
    }
    rows = []
    print(machine())
    print("| metric | tf.function s/image | XLA s/image | XLA / tf.function |")
    print("|---|---|---|---|")
    for name, call in calls.items():
        plain, xla = (timed(lambda jit=jit: call(jit), 1) / count for jit in (False, True))
        rows.append({"metric": name, "seconds_per_image": plain, "xla_seconds_per_image": xla})
        print(f"| {name} | {plain:.3f} | {xla:.3f} | {xla / plain:.2f} |", flush=True)
    append_jsonl(out, rows)


if __name__ == "__main__":
    main()
