"""Peak memory of idgi_tf's methods against the floor, each case in a fresh process.

The floor runs a few forward+backward passes of ``P`` model inputs in one
compiled loop, one pass at a time, and nothing else; a method at ``batch_size=B`` should need no more than
that (plus its running sums) whatever the number of images or steps. Every
case runs in its own interpreter and reports its peak resident memory
(``ru_maxrss``), so cases cannot inherit each other's allocations. Ratios are
to the floor at the same number of inputs per pass, measured in the same run.

Usage::

    python benchmarks/perf_memory.py [--model EfficientNetLite0] [--images 8,32,64] [--steps 16]
        [--batch-size 64] [--methods ig,gig,blurig] [--repeats 2] [--out results.jsonl]

Prints a Markdown table (peak GB, ratio to the floor, seconds per model input
and its ratio to the floor's).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = os.path.dirname(os.path.abspath(__file__))
FLOOR_PASSES = 4


def inputs_per_pass(method: str, images: int, steps: int, batch_size: int) -> int:
    """Model inputs in one pass of ``attribute`` (one group of ``images`` images)."""
    from idgi_tf.attribution import integrate, paths

    group = min(images, batch_size)
    path = {"ig": paths.Straight(steps), "blurig": paths.Blur(steps), "gig": paths.Guided(steps)}.get(method)
    per_image = 1 if path is None else integrate.chunk_size(path, group, batch_size)
    return per_image * group


def run_case(args) -> dict:
    """One measurement in this process: the floor at ``--inputs`` or ``attribute`` over ``--images``."""
    import numpy as np
    import tensorflow as tf

    import idgi_tf
    from idgi_tf import models
    from idgi_tf.runtime import explained_value_and_grad

    sys.path.insert(0, HERE)
    from _timing import photo

    model = models.load(args.model)
    size = model.input_shape[1]
    if args.case == "floor":
        batch = tf.constant(photo(size, args.inputs))
        targets = tf.zeros([args.inputs], tf.int32)

        @tf.function
        def passes(x, t):  # FLOOR_PASSES forward+backward passes in one compiled loop, one at a time
            def body(k, total):
                _, grad = explained_value_and_grad(model, x * (1.0 - 1e-3 * tf.cast(k, tf.float32)), t)
                return k + 1, total + tf.reduce_sum(grad)

            return tf.while_loop(lambda k, _: k < FLOOR_PASSES, body, (0, 0.0), parallel_iterations=1)[1]

        passes(batch, targets).numpy()  # trace, as the methods' first call does
        start = time.perf_counter()
        passes(batch, targets).numpy()
        seconds, model_inputs = time.perf_counter() - start, FLOOR_PASSES * args.inputs
    else:
        count = int(args.images)
        images = photo(size, count)
        targets = np.arange(count) % 1000

        def call():
            idgi_tf.attribute(model, images, targets, args.case, rule=("plain", "idgi"), steps=args.steps,
                              batch_size=args.batch_size)

        call()  # trace; the peak covers both calls
        start = time.perf_counter()
        call()
        seconds, model_inputs = time.perf_counter() - start, count * (args.steps + 1)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"case": args.case, "images": None if args.case == "floor" else int(args.images), "inputs": args.inputs,
            "peak_gb": peak_kb / 2**20,
            "seconds": seconds, "seconds_per_input": seconds / model_inputs}


def measure(argv: list) -> dict:
    done = subprocess.run([sys.executable, os.path.abspath(__file__), *argv], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"case {argv} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="EfficientNetLite0")
    parser.add_argument("--images", default="8,32,64")
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--methods", default="ig,gig,blurig")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default=None, help="append the rows to this JSON-lines file")
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--inputs", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case is not None:
        print(json.dumps(run_case(args)))
        return

    common = ["--model", args.model, "--steps", str(args.steps), "--batch-size", str(args.batch_size)]
    counts = [int(c) for c in args.images.split(",")]
    cases = [(m, n, inputs_per_pass(m, n, args.steps, args.batch_size)) for m in args.methods.split(",")
             for n in counts]
    floors = {}
    for inputs in sorted({p for _, _, p in cases}):
        runs = [measure([*common, "--case", "floor", "--inputs", str(inputs)]) for _ in range(args.repeats)]
        floors[inputs] = runs
    rows = []
    print(f"{args.model}, {args.steps} steps, batch_size={args.batch_size}, rule=('plain', 'idgi'); "
          f"{os.cpu_count()} CPU cores; peak RSS per process, {args.repeats} runs each\n")
    print("| case | images | inputs per pass | peak GB (runs) | × floor | s per input | × floor |")
    print("|---|---|---|---|---|---|---|")
    for inputs, runs in floors.items():
        peaks = [r["peak_gb"] for r in runs]
        print(f"| floor | — | {inputs} | {' / '.join(f'{p:.2f}' for p in peaks)} | 1.00 | "
              f"{min(r['seconds_per_input'] for r in runs):.4f} | 1.00 |")
        rows += runs
    for method, images, inputs in cases:
        runs = [measure([*common, "--case", method, "--images", str(images), "--inputs", str(inputs)])
                for _ in range(args.repeats)]
        floor_peak = max(r["peak_gb"] for r in floors[inputs])
        floor_time = min(r["seconds_per_input"] for r in floors[inputs])
        peaks = [r["peak_gb"] for r in runs]
        time_per_input = min(r["seconds_per_input"] for r in runs)
        print(f"| {method} | {images} | {inputs} | {' / '.join(f'{p:.2f}' for p in peaks)} | "
              f"{max(peaks) / floor_peak:.2f} | {time_per_input:.4f} | {time_per_input / floor_time:.2f} |",
              flush=True)
        rows += [{**r, "floor_peak_gb": floor_peak, "floor_seconds_per_input": floor_time} for r in runs]
    if args.out:
        with open(args.out, "a") as handle:
            for row in rows:
                handle.write(json.dumps({**row, "model": args.model, "steps": args.steps,
                                         "batch_size": args.batch_size}) + "\n")


if __name__ == "__main__":
    main()
