"""``python -m idgi_tf.spectral``: power spectra of attribution maps per method, and the aliasing check.

Writes to ``--out``: ``spectra.png`` (log-log, mean radially averaged power per
method), ``spectra.csv`` (the curves, and VG's on the anti-aliased twin), ``high_frequency.csv`` (per method, the
share of power above the paper's cutoff, 15/224 of the side), and
``aliasing.png``: Vanilla Gradient's spectrum on the model and on the same
model with blur-then-subsample downsampling (:func:`antialias.antialiased`).

Progress goes to stderr: a line as each method starts, then images done (at
most one line every 10 s off a terminal); stdout gets the results.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys

import numpy as np

from .. import data, models
from .._cli import ArgumentParser, CommandError, HelpFormatter, comma_list, load_model, positive_int, report_error
from .._progress import StderrProgress
from ..attribution.methods import METHODS, attribute
from ..viz import figure_title, plot_spectra, save
from . import PAPER_CUTOFF, high_frequency_ratio, power_spectrum
from .antialias import antialiased

SPECTRA_METHODS = ("vg", "ig", "gig", "blurig", "rise", "occlusion")  # the default: FORGrad's comparison


def parser() -> argparse.ArgumentParser:
    parse = ArgumentParser(
        prog="python -m idgi_tf.spectral", description=__doc__.split("\n\n")[0].split(":", 1)[1].strip(),
        formatter_class=HelpFormatter,
    )
    parse.add_argument("--model", default=models.DEFAULT_MODEL, help=f"one of {', '.join(models.MODELS)}")
    parse.add_argument("--data", choices=("sample",), default="sample", help="the 11 photos shipped with the package")
    parse.add_argument("--methods", type=comma_list(METHODS), default=",".join(SPECTRA_METHODS),
                       help=f"from {','.join(METHODS)}; shown in METHODS order, by title")
    parse.add_argument("--weights", default="imagenet", help="imagenet (Keras cache), PATH, or none (random)")
    parse.add_argument("--input-size", type=positive_int, help="build the model at this side (random or file weights)")
    parse.add_argument("--steps", type=positive_int, default=200, help="steps of ig, gig, blurig")
    parse.add_argument("--nmasks", type=positive_int, default=4000, help="RISE masks")
    parse.add_argument("--batch-size", type=positive_int, default=32, help="model inputs per pass")
    parse.add_argument("--out", default="spectral_out", help="output folder")
    return parse


def method_options(method: str, size: int, args) -> dict:
    """The options each method runs with here (occlusion: overlapping windows of 1/14 of the side)."""
    if method in ("ig", "gig", "blurig"):
        return {"steps": args.steps}
    if method == "rise":
        return {"nmasks": args.nmasks}
    if method == "occlusion":
        patch = max(1, size // 14)
        return {"patch": patch, "stride": max(1, patch // 2)}
    return {}


def mean_spectrum(model, images, labels, method, options, batch_size, title: str):
    """One image at a time, so that progress can be reported per image."""
    print(f"{title}: {len(images)} images", file=sys.stderr, flush=True)
    progress = StderrProgress(len(images), unit_name="image")
    maps = []
    for index in range(len(images)):
        maps.append(attribute(model, images[index:index + 1], labels[index:index + 1], method,
                              batch_size=batch_size, **options))
        progress.add(1)
    maps = np.concatenate(maps)
    frequencies, spectra = power_spectrum(maps)
    ratios = high_frequency_ratio(maps, PAPER_CUTOFF)  # NaN for a flat map (no power at all)
    return (
        frequencies,
        spectra.mean(axis=0),
        float(np.mean(ratios[np.isfinite(ratios)])) if np.isfinite(ratios).any() else float("nan"),
    )


def main(argv=None) -> int:
    try:
        args = parser().parse_args(sys.argv[1:] if argv is None else argv)
        methods = [m for m in METHODS if m in args.methods]
        name = models.canonical_name(args.model)
        model = load_model(name, args.weights, args.input_size)
        size = int(model.input_shape[1])
        samples = data.sample_images(size)
        images, labels = samples.images, samples.labels
        note = " (random weights)" if args.weights == "none" else ""
        os.makedirs(args.out, exist_ok=True)

        curves_by_method, ratios = {}, {}
        for number, method in enumerate(methods, start=1):
            frequencies, spectrum, ratio = mean_spectrum(
                model, images, labels, method, method_options(method, size, args), args.batch_size,
                f"method {number}/{len(methods)}: {method}"
            )
            curves_by_method[method], ratios[method] = spectrum, ratio
            print(f"{method:>10}: high-frequency share (above {PAPER_CUTOFF * size:.1f} cycles) {ratio:.3f}")
        axis = f"frequency (cycles per {size} px)"
        titled = {METHODS[method].title: curve for method, curve in curves_by_method.items()}
        save(plot_spectra(frequencies, titled, cutoff=PAPER_CUTOFF * size, xlabel=axis,
                          ylabel="share of the power (mean spectrum over images)",
                          title=figure_title("Power spectra of attribution maps", name + note, len(images))),
             os.path.join(args.out, "spectra.png"))

        smooth_model = antialiased(model)
        _, aliased, ratio_before = mean_spectrum(model, images, labels, "vg", {}, args.batch_size,
                                                 "aliasing check 1/2: vg on the model")
        _, smoothed, ratio_after = mean_spectrum(smooth_model, images, labels, "vg", {}, args.batch_size,
                                                 "aliasing check 2/2: vg on the blur-then-subsample twin")
        print(
            f"aliasing check, vg: high-frequency share {ratio_before:.3f} (strided) -> {ratio_after:.3f} "
            "(blur-then-subsample)"
        )
        save(plot_spectra(frequencies, {"strided (as built)": aliased, "blur-then-subsample": smoothed},
                          cutoff=PAPER_CUTOFF * size, xlabel=axis, ylabel="share of the power of VG maps",
                          title=figure_title("Aliasing check", name + note, len(images))),
             os.path.join(args.out, "aliasing.png"))
        columns = {**curves_by_method, "vg_blur_then_subsample": smoothed}
        with open(os.path.join(args.out, "spectra.csv"), "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["frequency", *columns])
            writer.writerows([f, *(c[i] for c in columns.values())] for i, f in enumerate(frequencies))
        with open(os.path.join(args.out, "high_frequency.csv"), "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["method", "model", "high_frequency_share", "cutoff_cycles"])
            writer.writerows([m, name, f"{r:.6f}", f"{PAPER_CUTOFF * size:.3f}"] for m, r in ratios.items())
            writer.writerow(["vg", f"{name} (blur-then-subsample)", f"{ratio_after:.6f}", f"{PAPER_CUTOFF * size:.3f}"])
        print(f"wrote {args.out}/spectra.png, spectra.csv, high_frequency.csv, aliasing.png")
        return 0
    except (CommandError, ValueError, TypeError, FileNotFoundError) as error:
        return report_error("idgi_tf.spectral", error)


if __name__ == "__main__":
    sys.exit(main())
