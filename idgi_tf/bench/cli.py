"""Command line of the benchmark: argument parsing, one-line errors, the end-of-run summary."""

from __future__ import annotations

import argparse
import os
import sys

from .. import data, metrics, models
from .._cli import ArgumentParser, CommandError, HelpFormatter, check_weights, comma_list, positive_int, report_error
from ..attribution.methods import METHODS
from ..metrics.table import PAPER_METRICS
from ..spectral import PAPER_CUTOFF
from .report import write_report
from .run import JIT_CHOICES, PAPER_METHODS, Config, run
from .shards import parse_shard

USAGE_EXAMPLES = """examples:
  python -m idgi_tf.bench run                                     # EfficientNetLite0, trained, offline; 11 photos
  python -m idgi_tf.bench run --model ResNet50V2                  # needs Keras' ImageNet weight file
  python -m idgi_tf.bench run --model ResNet50V2 --data imagenet --imagenet-dir ~/imagenet
  python -m idgi_tf.bench run --model MobileNetV2 --weights none --input-size 64 --steps 8   # smoke run
  python -m idgi_tf.bench run --model VGG16 --data imagenet --imagenet-dir D --devices all   # every GPU here
  python -m idgi_tf.bench run --model VGG16 --data imagenet --imagenet-dir D --shard 0/4 --out runs/vgg16
  python -m idgi_tf.bench run --model VGG16 --data imagenet --imagenet-dir D --shard auto --out runs/vgg16  # SLURM/K8s
  python -m idgi_tf.bench report runs/vgg16 [more run dirs...]
"""


def _lowpass(text: str):
    """``--lowpass``: none, auto (the paper's cutoff) or a positive cutoff."""
    if text in ("none", "auto"):
        return None if text == "none" else PAPER_CUTOFF
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be none, auto or a positive cutoff, got {text!r}")
    return value


def _devices(text: str):
    """``--devices``: all (None) or a positive count."""
    if text == "all":
        return None
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be a positive integer or all, got {text!r}") from None


def parser() -> argparse.ArgumentParser:
    """``bench run`` and ``bench report``; choices of --methods and --metrics from the METHODS and METRICS tables."""
    top = ArgumentParser(
        prog="python -m idgi_tf.bench",
        description="Reproduce the IDGI paper's Tables 1-4 for one model ('run'), or re-aggregate run folders "
                    "(and merge shards) into tables and figures ('report').",
        epilog=USAGE_EXAMPLES, formatter_class=HelpFormatter,
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="{run,report}")
    _add_run(commands.add_parser("run", help="explain and score images, then write the tables",
                                 epilog=USAGE_EXAMPLES, formatter_class=HelpFormatter))
    report = commands.add_parser("report", help="aggregate run folders into tables.md, tables.csv and figures/",
                                 formatter_class=HelpFormatter)
    report.add_argument("dirs", nargs="+", help="run folders (shards are merged)")
    report.add_argument("--to", help="where to write the tables (default: the first folder)")
    return top


def _add_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=models.DEFAULT_MODEL, help=f"one of {', '.join(models.MODELS)}")
    parser.add_argument("--data", choices=("sample", "imagenet"), default="sample",
                        help="sample: the 11 photos shipped with the package (7 ImageNet validation images, 4 "
                             "scikit-image photos); imagenet: the validation set")
    parser.add_argument("--imagenet-dir", help="folder holding ILSVRC2012_img_val.tar (tfds manual_dir)")
    parser.add_argument("--boxes-dir", help="ILSVRC2012 validation boxes (default: the copy shipped in the package)")
    parser.add_argument("--limit", type=positive_int, help="use only the first N images (default: all)")
    parser.add_argument("--methods", type=comma_list(METHODS), default=",".join(PAPER_METHODS),
                        help=f"comma-separated subset of {','.join(METHODS)}")
    parser.add_argument("--steps", type=positive_int, default="200", help="Riemann steps of IG, GIG and BlurIG")
    parser.add_argument("--metrics", type=comma_list(metrics.METRICS), default=",".join(PAPER_METRICS),
                        help=f"comma-separated subset of {','.join(metrics.METRICS)}")
    parser.add_argument("--weights", default="imagenet",
                        help="imagenet (Keras cache; for EfficientNetLite the installed package), PATH, or none "
                             "(smoke run: random weights, no image skipped)")
    parser.add_argument("--input-size", type=positive_int,
                        help="build the model at this side (random or file weights only)")
    parser.add_argument("--batch-size", type=positive_int, default="32", help="model inputs per pass")
    parser.add_argument("--chunk", type=positive_int, default="8",
                        help="images explained together per device (and written together)")
    parser.add_argument("--lowpass", type=_lowpass, default="none",
                        help="none, auto (the paper's 15/224 of the side) or a cutoff (fraction of the side < 1, or "
                             "cycles): also score the FORGrad low-passed maps, as extra '+LP' columns")
    parser.add_argument("--devices", type=_devices, default="1",
                        help="N or all: GPUs used by this process, through tf.distribute.MirroredStrategy")
    parser.add_argument("--out", help="output folder (default: bench_out/MODEL)")
    parser.add_argument("--shard", default="0/1",
                        help="I/N: take every N-th image starting at I; auto: I/N from a SLURM job array or a "
                             "Kubernetes Indexed Job (benchmarks/cluster/)")
    parser.add_argument("--seed", type=int, default="0", help="seed of random weights (smoke runs)")
    parser.add_argument("--jit", choices=tuple(JIT_CHOICES), default="auto",
                        help="XLA for attributions and metrics: auto (on a GPU only), on or off; kept in each row")
    parser.add_argument("--overwrite", action="store_true",
                        help="start this shard afresh: delete its rows, run json and kept maps in --out first (a "
                             "rerun without it resumes, and refuses rows made with other settings)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def config_from(args) -> Config:
    """The run's Config from parsed ``bench run`` arguments; what argparse cannot check is checked here."""
    model = models.canonical_name(args.model)
    weights = check_weights(args.weights)  # before any slow work
    if args.data == "imagenet" and not (args.imagenet_dir and os.path.isdir(args.imagenet_dir)):
        raise CommandError(f"--data imagenet needs --imagenet-dir DIR holding {data.VAL_TAR} "
                           f"(got {args.imagenet_dir!r})")
    config = Config(
        model=model, data=args.data, imagenet_dir=args.imagenet_dir, boxes_dir=args.boxes_dir, limit=args.limit,
        methods=args.methods, steps=args.steps, metrics=args.metrics, weights=weights, input_size=args.input_size,
        batch_size=args.batch_size, chunk=args.chunk, out=args.out or os.path.join("bench_out", model),
        shard=parse_shard(args.shard), seed=args.seed, devices=args.devices, lowpass=args.lowpass, jit=args.jit,
        overwrite=args.overwrite,
    )
    side = config.input_size or models.MODELS[model].size
    for name in config.metrics:  # the bench has boxes (masks) and 8-bit images: only the size can fail
        metrics.METRICS[name].check(name, side=side, has_masks=True)
    return config


def main(argv=None) -> int:
    try:
        args = parser().parse_args(sys.argv[1:] if argv is None else list(argv))
        if args.command == "report":
            for path in write_report(args.dirs, args.to):
                print(path)
            return 0
        config = config_from(args)
        if config.smoke:
            print("SMOKE RUN: random weights; the numbers mean nothing.", flush=True)
        if config.shard.count > 1 or config.shard.source != "--shard":
            print(f"shard {config.shard} ({config.shard.source}): writing {config.results_path}", flush=True)
        counts = run(config, progress=not args.quiet)
        skipped = "not checked (smoke run)" if config.smoke else f"{counts['misclassified']} misclassified (skipped)"
        summary = (f"{counts['seen']} images seen, {counts['explained']} explained, {skipped}, "
                   f"{counts['rows_written']} rows written, {counts['rows_skipped_done']} already done.")
        if config.shard.count > 1:  # other shards may still be writing: merging is report's job, once
            print(f"{summary}\nWrote: {config.results_path} (rows). When every shard is done: "
                  f"python -m idgi_tf.bench report {config.out}")
            return 0
        tables, table_csv, *figures = write_report([config.out])
        with open(tables) as handle:
            print("\n" + handle.read())
        maps = os.path.join(config.out, "maps")
        print(f"{summary}\nWrote: {config.results_path} (rows), {tables}, {table_csv}, {len(figures)} figures in "
              f"{os.path.join(config.out, 'figures')}" + (f", maps of the first images in {maps}"
                                                           if os.path.isdir(maps) else ""))
        return 0
    except (CommandError, ValueError, FileNotFoundError) as error:
        return report_error("idgi_tf.bench", error)
