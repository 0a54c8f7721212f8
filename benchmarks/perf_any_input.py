"""Speed and peak memory of IG + IDGI on non-image models (issue 30), against the floor.

Models (random init: the cost of a pass does not depend on the weights):

* ``lstm``: token ids (N, 128) -> Embedding(5000, 64, name="embedding") -> LSTM(64) -> Dense(2), explained
  at the embedding (``layer="embedding"``, baseline the pad id 0): maps (N, 128, 64);
* ``mlp``: tabular rows (N, 64) -> 3 x Dense(256, relu) -> Dense(10), explained at its inputs.

``attribute(..., "ig", rule=("plain", "idgi"), steps=S, batch_size=B)`` (both maps from one pass) against
the floor: the forward+backward passes it makes (same count, same batch shape, one compiled loop per group
of examples, one pass at a time) through what it differentiates, and nothing else. For ``lstm`` that is
the head from the embedding output (the model split at the layer): the integrator's extra work (checks,
the embedding's activations for the inputs and the baseline, path points, rules, sums) is in the ratio.

``--head`` adds, for ``lstm``, IG on the head given the embedding's activations (no ``layer=``): the
difference to ``ig`` is what ``layer=`` costs. Every case runs in a fresh process, the cases alternating
``--repeats`` times, so that the ratios of one repeat share the machine's load. A process makes a tracing
call, then ``--calls`` timed calls (best kept), and reports its peak resident memory (``ru_maxrss``, as
``perf_memory.py``) and the CPU allocator's peak over the timed calls (the tensors alone;
``TF_CPU_ALLOCATOR_USE_BFC``).

Usage::

    python benchmarks/perf_any_input.py [--models lstm,mlp] [--steps 200] [--batch-size 64] [--repeats 3]
        [--calls 2] [--examples N (default: 16 for lstm, 256 for mlp)] [--head] [--out results.jsonl]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = {"lstm": 16, "mlp": 256}
LABELS = {"floor": "floor", "ig": "IG plain+IDGI", "ig-head": "IG plain+IDGI on the head, given the activations"}
VOCABULARY, LENGTH, WIDTH = 5000, 128, 64


def build(name: str):
    """``(model, head, layer)``: the model, what the integrator differentiates (the model itself, or for
    ``lstm`` its layers after the embedding, as a model of the embedding's output) and the ``layer=``."""
    import keras

    keras.utils.set_random_seed(0)
    if name == "lstm":
        ids = keras.Input((LENGTH,), dtype="int32")
        embedded = keras.layers.Embedding(VOCABULARY, WIDTH, name="embedding")(ids)
        lstm, dense = keras.layers.LSTM(64), keras.layers.Dense(2)
        model = keras.Model(ids, dense(lstm(embedded)))
        activations = keras.Input((LENGTH, WIDTH))
        return model, keras.Model(activations, dense(lstm(activations))), "embedding"
    model = keras.Sequential([keras.Input((64,)), *(keras.layers.Dense(256, activation="relu") for _ in range(3)),
                              keras.layers.Dense(10)])
    return model, model, None


def inputs(name: str, count: int):
    """``count`` examples: token ids (pad id 0 left out) or standard-normal rows."""
    import numpy as np

    rng = np.random.default_rng(0)
    if name == "lstm":
        return rng.integers(1, VOCABULARY, (count, LENGTH)).astype(np.int32)
    return rng.normal(size=(count, 64)).astype(np.float32)


def plan(steps: int, examples: int, batch_size: int) -> tuple[int, int, int]:
    """``(groups, passes per group, inputs per pass)`` of ``attribute``'s IG (one replica)."""
    from idgi_tf.attribution import integrate, paths

    path = paths.Straight(steps)
    group = min(examples, batch_size)
    chunk = integrate.chunk_size(path, group, batch_size)
    return -(-examples // group), -(-path.num_points // chunk), chunk * group


def floor_call(head, groups: int, passes: int, per_pass: int, shape):
    """``groups`` calls of one compiled loop of ``passes`` forward+backward passes of ``per_pass`` inputs."""
    import tensorflow as tf

    from idgi_tf.runtime import explained_value_and_grad

    x = tf.random.uniform((per_pass, *shape), -0.05, 0.05)
    targets = tf.zeros([per_pass], tf.int32)

    @tf.function
    def loop(x):
        def body(k, total):  # each pass on other inputs, so that no pass can be hoisted
            _, grad = explained_value_and_grad(head, x * (1.0 - 1e-3 * tf.cast(k, tf.float32)), targets)
            return k + 1, total + tf.reduce_sum(grad)

        return tf.while_loop(lambda k, _: k < passes, body, (0, 0.0), parallel_iterations=1)[1]

    return lambda: [loop(x).numpy() for _ in range(groups)]


def run_case(args) -> dict:
    """One measurement in this process: ``--case floor``, ``ig`` or (``lstm``) ``ig-head``."""
    import numpy as np
    import tensorflow as tf

    import idgi_tf

    sys.path.insert(0, HERE)
    from _timing import timed

    model, head, layer = build(args.model)
    groups, passes, per_pass = plan(args.steps, args.examples, args.batch_size)
    x, targets = inputs(args.model, args.examples), np.arange(args.examples) % 2
    if args.case == "floor":
        call = floor_call(head, groups, passes, per_pass, head.input_shape[1:])
    elif args.case == "ig-head":  # the same integral, given the embedding's activations: layer='s own cost
        embedding = model.get_layer(layer)
        x, baseline = embedding(x).numpy(), embedding(np.zeros((1, LENGTH), np.int32)).numpy()[0]

        def call():
            idgi_tf.attribute(head, x, targets, "ig", rule=("plain", "idgi"), steps=args.steps,
                              baseline=baseline, batch_size=args.batch_size)
    else:

        def call():
            idgi_tf.attribute(model, x, targets, "ig", layer=layer, rule=("plain", "idgi"), steps=args.steps,
                              batch_size=args.batch_size)

    call()  # trace
    tf.config.experimental.reset_memory_stats("CPU:0")
    before = tf.config.experimental.get_memory_info("CPU:0")["current"]
    seconds = timed(call, args.calls, warm_up=False)
    tensor_peak = tf.config.experimental.get_memory_info("CPU:0")["peak"] - before
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"model": args.model, "case": args.case, "seconds": seconds, "peak_gb": peak_kb / 2**20,
            "tensor_peak_mb": tensor_peak / 2**20,
            "examples": args.examples, "steps": args.steps, "batch_size": args.batch_size, "groups": groups,
            "passes_per_group": passes, "inputs_per_pass": per_pass}


def measure(argv: list) -> dict:
    done = subprocess.run([sys.executable, os.path.abspath(__file__), *argv], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"case {argv} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def spread(values: list) -> str:
    """``median (min-max)`` of ratios."""
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def report(name: str, runs: dict) -> None:
    """One Markdown row per case: per-process values, and their ratios to the floor of the same repeat."""
    floors = runs["floor"]
    first = floors[0]
    print(f"\n{name}: {first['examples']} examples, {first['steps']} steps, batch_size={first['batch_size']}: "
          f"{first['groups']} group(s) x {first['passes_per_group']} passes of {first['inputs_per_pass']} inputs\n")
    print("| case | s per call (runs) | × floor, median (min–max) | peak RSS GB (runs) | × floor "
          "| tensor peak MB (runs) | × floor |")
    print("|---|---|---|---|---|---|---|")
    for case, rows in runs.items():
        cells = []
        for key, digits in (("seconds", 2), ("peak_gb", 2), ("tensor_peak_mb", 1)):
            values = " / ".join(f"{row[key]:.{digits}f}" for row in rows)
            cells += [values, spread([row[key] / floor[key] for row, floor in zip(rows, floors)])]
        print(f"| {LABELS[case]} | {' | '.join(cells)} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="lstm,mlp")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--examples", type=int, default=None, help="examples explained (default per model)")
    parser.add_argument("--repeats", type=int, default=3, help="floor/IG process pairs, alternating")
    parser.add_argument("--calls", type=int, default=2, help="timed calls per process after tracing (best kept)")
    parser.add_argument("--head", action="store_true",
                        help="lstm: also time IG on the head given the embedding's activations (no layer=)")
    parser.add_argument("--out", default=None, help="append the rows to this JSON-lines file")
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--model", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case is not None:
        print(json.dumps(run_case(args)))
        return

    sys.path.insert(0, HERE)
    from _timing import append_jsonl, machine

    print(machine())
    rows = []
    for name in args.models.split(","):
        if name not in EXAMPLES:
            parser.error(f"--models: unknown model {name!r}; choose from {', '.join(EXAMPLES)}")
        common = ["--model", name, "--steps", str(args.steps), "--batch-size", str(args.batch_size),
                  "--examples", str(args.examples or EXAMPLES[name]), "--calls", str(args.calls)]
        cases = ["floor", "ig", *(["ig-head"] if name == "lstm" and args.head else [])]
        runs = {case: [] for case in cases}
        for _ in range(args.repeats):
            for case in cases:
                runs[case].append(measure([*common, "--case", case]))
        report(name, runs)
        rows += [row for case in cases for row in runs[case]]
    append_jsonl(args.out, rows)


if __name__ == "__main__":
    main()
