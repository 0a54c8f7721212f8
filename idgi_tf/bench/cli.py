"""Command line of the benchmark: argument parsing, one-line errors, the end-of-run summary."""

from __future__ import annotations

import argparse
import os
import sys

from .. import data, models
from .._cli import HelpFormatter, check_weights, report_error
from ..metrics.information import MS_SSIM_MIN_SIDE
from ..spectral import PAPER_CUTOFF
from .report import write_report
from .run import ALL_METHODS, ALL_METRICS, JIT_CHOICES, BenchError, Config, run
from .shards import parse_shard

USAGE_EXAMPLES = """examples:
  python -m idgi_tf.bench                                         # EfficientNetLite0, trained, offline; 11 photos
  python -m idgi_tf.bench --model ResNet50V2                      # needs Keras' ImageNet weight file
  python -m idgi_tf.bench --model ResNet50V2 --data imagenet --imagenet-dir ~/imagenet
  python -m idgi_tf.bench --model MobileNetV2 --weights none --input-size 64 --steps 8   # smoke run
  python -m idgi_tf.bench --model VGG16 --data imagenet --imagenet-dir D --devices all   # every GPU here
  python -m idgi_tf.bench --model VGG16 --data imagenet --imagenet-dir D --shard 0/4 --out runs/vgg16
  python -m idgi_tf.bench --model VGG16 --data imagenet --imagenet-dir D --shard auto --out runs/vgg16  # SLURM/K8s
  python -m idgi_tf.bench report runs/vgg16 [more run dirs...]
"""


def _names(text: str, allowed, flag: str) -> tuple:
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [name for name in names if name not in allowed]
    if unknown or not names:
        raise BenchError(f"{flag} takes a comma-separated subset of {','.join(allowed)}, got {text!r}")
    return names


def _integer(text: str, flag: str, kind: str = "an integer") -> int:
    try:
        return int(text)
    except ValueError:
        raise BenchError(f"{flag} must be {kind}, got {text!r}") from None


def _positive(text: str, flag: str) -> int:
    value = _integer(text, flag, "a positive integer")
    if value < 1:
        raise BenchError(f"{flag} must be a positive integer, got {text!r}")
    return value


def _jit(text: str) -> str:
    if text not in JIT_CHOICES:
        raise BenchError(f"--jit must be {', '.join(JIT_CHOICES)}, got {text!r}")
    return text


def _lowpass(text: str):
    if text == "none":
        return None
    if text == "auto":
        return PAPER_CUTOFF
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise BenchError(f"--lowpass must be none, auto or a positive cutoff, got {text!r}")
    return value


def run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m idgi_tf.bench",
        usage="python -m idgi_tf.bench [--model NAME] [options]\n       python -m idgi_tf.bench report DIR [DIR ...] "
              "[--to DIR]",
        description="Reproduce the IDGI paper's Tables 1-4 for one model. 'report' re-aggregates run folders "
                    "(and merges shards) into tables and figures.",
        epilog=USAGE_EXAMPLES, formatter_class=HelpFormatter,
    )
    parser.add_argument("--model", default=models.DEFAULT_MODEL, help=f"one of {', '.join(models.MODELS)}")
    parser.add_argument("--data", choices=("sample", "imagenet"), default="sample",
                        help="sample: the 11 photos shipped with the package (7 ImageNet validation images, 4 "
                             "scikit-image photos); imagenet: the validation set")
    parser.add_argument("--imagenet-dir", help="folder holding ILSVRC2012_img_val.tar (tfds manual_dir)")
    parser.add_argument("--boxes-dir", help="ILSVRC2012 validation boxes (default: the copy shipped in the package)")
    parser.add_argument("--limit", help="use only the first N images (default: all)")
    parser.add_argument("--methods", default=",".join(ALL_METHODS),
                        help=f"comma-separated subset of {','.join(ALL_METHODS)}")
    parser.add_argument("--steps", default="200", help="Riemann steps of IG, GIG and BlurIG")
    parser.add_argument("--metrics", default=",".join(ALL_METRICS),
                        help=f"comma-separated subset of {','.join(ALL_METRICS)}")
    parser.add_argument("--weights", default="imagenet",
                        help="imagenet (Keras cache; for EfficientNetLite the installed package), PATH, or none "
                             "(smoke run: random weights, no image skipped)")
    parser.add_argument("--input-size", help="build the model at this side (random or file weights only)")
    parser.add_argument("--batch-size", default="32", help="model inputs per pass")
    parser.add_argument("--chunk", default="8", help="images explained together per device (and written together)")
    parser.add_argument("--lowpass", default="none",
                        help="none, auto (the paper's 15/224 of the side) or a cutoff (fraction of the side < 1, or "
                             "cycles): also score the FORGrad low-passed maps, as extra '+LP' columns")
    parser.add_argument("--devices", default="1",
                        help="N or all: GPUs used by this process, through tf.distribute.MirroredStrategy")
    parser.add_argument("--out", help="output folder (default: bench_out/MODEL)")
    parser.add_argument("--shard", default="0/1",
                        help="I/N: take every N-th image starting at I; auto: I/N from a SLURM job array or a "
                             "Kubernetes Indexed Job (benchmarks/cluster/)")
    parser.add_argument("--seed", default="0", help="seed of random weights (smoke runs)")
    parser.add_argument("--jit", default="auto",
                        help="XLA for attributions and metrics: auto (on a GPU only), on or off; kept in each row")
    parser.add_argument("--overwrite", action="store_true",
                        help="start this shard afresh: delete its rows, run json and kept maps in --out first (a "
                             "rerun without it resumes, and refuses rows made with other settings)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


def config_from(args) -> Config:
    model = models.canonical_name(args.model)
    weights = check_weights(args.weights)  # before any slow work
    if args.data == "imagenet" and not (args.imagenet_dir and os.path.isdir(args.imagenet_dir)):
        raise BenchError(f"--data imagenet needs --imagenet-dir DIR holding {data.VAL_TAR} (got {args.imagenet_dir!r})")
    config = Config(
        model=model,
        data=args.data,
        imagenet_dir=args.imagenet_dir,
        boxes_dir=args.boxes_dir,
        limit=None if args.limit is None else _positive(args.limit, "--limit"),
        methods=_names(args.methods, ALL_METHODS, "--methods"),
        steps=_positive(args.steps, "--steps"),
        metrics=_names(args.metrics, ALL_METRICS, "--metrics"),
        weights=weights,
        input_size=None if args.input_size is None else _positive(args.input_size, "--input-size"),
        batch_size=_positive(args.batch_size, "--batch-size"),
        chunk=_positive(args.chunk, "--chunk"),
        out=args.out or os.path.join("bench_out", model),
        shard=parse_shard(args.shard),
        seed=_integer(args.seed, "--seed"),
        devices=None if args.devices == "all" else _positive(args.devices, "--devices"),
        lowpass=_lowpass(args.lowpass),
        jit=_jit(args.jit),
        overwrite=args.overwrite,
    )
    size = config.input_size or models.MODELS[model].size
    if "msssim" in config.metrics and size < MS_SSIM_MIN_SIDE:
        raise BenchError(f"--metrics msssim needs images of at least {MS_SSIM_MIN_SIDE} px, got --input-size "
                         f"{size}; leave msssim out of --metrics")
    return config


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if argv[:1] == ["report"]:
            parser = argparse.ArgumentParser(prog="python -m idgi_tf.bench report",
                                             description="Aggregate run folders into tables.md, tables.csv and "
                                                         "figures/.")
            parser.add_argument("dirs", nargs="+", help="run folders (shards are merged)")
            parser.add_argument("--to", help="where to write the tables (default: the first folder)")
            args = parser.parse_args(argv[1:])
            for path in write_report(args.dirs, args.to):
                print(path)
            return 0
        args = run_parser().parse_args(argv)
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
    except (BenchError, ValueError, FileNotFoundError) as error:
        return report_error("idgi_tf.bench", error)
