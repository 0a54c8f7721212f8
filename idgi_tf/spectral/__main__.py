"""``python -m idgi_tf.spectral``: two commands, ``spectra`` and ``rank`` (docs/frequencies.md, docs/spectral.md).

``spectra``: power spectra of attribution maps per method, and the aliasing check.
Writes to ``--out``: ``spectra.png`` (log-log, mean radially averaged power per
method), ``spectra.csv`` (the curves, and VG's on the anti-aliased twin), ``high_frequency.csv`` (per method, the
share of power above the paper's cutoff, 15/224 of the side), and
``aliasing.png``: Vanilla Gradient's spectrum on the model and on the same
model with blur-then-subsample downsampling (:func:`antialias.antialiased`).

``rank``: the method ranking before and after FORGrad's low-pass filter at a
leave-one-out tuned cutoff (:mod:`idgi_tf.spectral.rank`). Writes to ``--out``:
``ranking.csv``, ``ranking.md``, ``scores.csv`` (per image), ``ranking.json``
and ``ranks.png`` (a slope chart).

Progress goes to stderr: a line as each method (and, for ``rank``, each tuning
and metric) starts, then images done (at most one line every 10 s off a
terminal); stdout gets the results.

Example:
  python -m idgi_tf.spectral spectra --model EfficientNetLite0 --out spectral_out
  python -m idgi_tf.spectral rank --model EfficientNetLite0 --limit 2 --out ranking_out
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
from . import METRICS as TUNE_METRICS
from . import PAPER_CUTOFF, high_frequency_ratio, power_spectrum, rank
from .antialias import antialiased

SPECTRA_METHODS = ("vg", "ig", "gig", "blurig", "rise", "occlusion")  # the default: FORGrad's comparison


def common_options(command: argparse.ArgumentParser) -> None:
    """The options both commands take: the model, its weights and size, and the batch size."""
    command.add_argument("--model", default=models.DEFAULT_MODEL, help=f"one of {', '.join(models.MODELS)}")
    command.add_argument("--weights", default="imagenet", help="imagenet (Keras cache), PATH, or none (random)")
    command.add_argument("--input-size", type=positive_int,
                         help="build the model at this side (random or file weights)")
    command.add_argument("--batch-size", type=positive_int, default=32, help="model inputs per pass")


def parser() -> argparse.ArgumentParser:
    parse = ArgumentParser(prog="python -m idgi_tf.spectral", description=__doc__.split("\n\n")[0].split(":", 1)[1]
                           .strip(), formatter_class=HelpFormatter)
    commands = parse.add_subparsers(dest="command", required=True, metavar="{spectra,rank}",
                                    parser_class=ArgumentParser)
    spectra = commands.add_parser("spectra", help="power spectra of attribution maps and the aliasing check",
                                  description=__doc__.split("\n\n")[1], formatter_class=HelpFormatter)
    common_options(spectra)
    spectra.add_argument("--data", choices=("sample",), default="sample", help="the 11 photos shipped with the package")
    spectra.add_argument("--methods", type=comma_list(METHODS), default=",".join(SPECTRA_METHODS),
                         help=f"from {','.join(METHODS)}; shown in METHODS order, by title")
    spectra.add_argument("--steps", type=positive_int, default=200, help="steps of ig, gig, blurig")
    spectra.add_argument("--nmasks", type=positive_int, default=4000, help="RISE masks")
    spectra.add_argument("--out", default="spectral_out", help="output folder")
    ranking = commands.add_parser("rank", help="method ranks before and after FORGrad (leave-one-out cutoffs)",
                                  description=__doc__.split("\n\n")[2], formatter_class=HelpFormatter)
    common_options(ranking)
    ranking.add_argument("--methods", type=comma_list(rank.RANK_METHODS), default=",".join(rank.RANK_METHODS),
                         help=f"rows from {','.join(rank.RANK_METHODS)}")
    ranking.add_argument("--metrics", type=comma_list(rank.RANK_METRICS), default=",".join(rank.RANK_METRICS),
                         help=f"from {','.join(rank.RANK_METRICS)}")
    ranking.add_argument("--limit", type=positive_int, default=11, help="rank on the first N shipped photos (>= 2)")
    ranking.add_argument("--steps", type=positive_int, default=32,
                         help="steps of ig, gig, blurig (expected IG: per reference)")
    ranking.add_argument("--nmasks", type=positive_int, default=1000, help="RISE masks")
    ranking.add_argument("--references", type=positive_int, default=4,
                         help="expected IG: references drawn from the other photos per photo")
    ranking.add_argument("--tune-metric", choices=tuple(TUNE_METRICS), default="insertion",
                         help="the score the cutoff maximises on the held-out photos (deletion: minimises)")
    ranking.add_argument("--out", default="ranking_out", help="output folder")
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


def spectra_command(args) -> int:
    """``spectra``: mean power spectra per method, the high-frequency shares and the aliasing check."""
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


def rank_command(args) -> int:
    """``rank``: every method's scores and ranks before and after FORGrad, per metric."""
    settings = rank.Settings(methods=args.methods, metrics=args.metrics, limit=args.limit, steps=args.steps,
                             nmasks=args.nmasks, nreferences=args.references, batch_size=args.batch_size,
                             tune_metric=args.tune_metric)
    rank.check_settings(settings, len(data.sample_images(8).images))  # before the model loads
    name = models.canonical_name(args.model)
    model = load_model(name, args.weights, args.input_size)
    samples = data.sample_images(int(model.input_shape[1]))
    note = " (random weights)" if args.weights == "none" else ""
    report = rank.run(model, name + note, samples, settings, args.out)
    print(open(os.path.join(args.out, "ranking.md")).read(), end="")
    print(f"seconds: {', '.join(f'{stage} {value:.0f}' for stage, value in report['seconds'].items())}")
    print(f"wrote {args.out}/ranking.csv, ranking.md, scores.csv, ranking.json, ranks.png")
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if argv and argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
            raise CommandError(f"the command comes first: python -m idgi_tf.spectral {{spectra,rank}} {' '.join(argv)} "
                               "(spectra: the power spectra, the command's only form before rank)")
        args = parser().parse_args(argv)
        return spectra_command(args) if args.command == "spectra" else rank_command(args)
    except (CommandError, ValueError, TypeError, FileNotFoundError) as error:
        return report_error("idgi_tf.spectral", error)


if __name__ == "__main__":
    sys.exit(main())
