"""Run in a fresh interpreter by ``test_memory.py``: TensorFlow's allocator statistics per method.

The CPU allocator reports its bytes in use and its peak only when it is the BFC allocator, which
``TF_CPU_ALLOCATOR_USE_BFC`` selects before TensorFlow is imported; hence a separate process.
TensorFlow runs one op at a time here (one inter-op thread), so that a peak depends on the graph
and not on how two threads happened to interleave the ops of one pass: on a 2-core machine that
interleaving alone moved a peak by up to 1.5x from call to call. For each method it prints, as JSON:

* ``peak_few`` / ``peak_many``: the largest peak of ``REPEATS`` calls (after a tracing call) with
  few and with many chunks of ``batch_size`` model inputs (steps, windows, masks or samples): 15
  calls of about 6 chunks against 3 of 30, interleaved, so that each side's maximum is taken over as
  many chunks (a peak is a maximum: more draws make it larger) in the same stretch of the process;
  both counts are past the first chunks, whose peak is lower;
* ``kept_8`` / ``kept_16``: the bytes still allocated after the first call for 8 and for 16 images
  (the compiled function stays cached on the model), i.e. what outlives a call.

The same for ``SEQUENCE_METHODS`` on sequences (N, T, D) and at an ``Embedding`` (keys ``ig-sequence``,
``ig-embedding``, ...), with ``batch_bytes``: 8 rows of what is attributed (inputs or activations), and
``floor``: the peak of one compiled forward+backward pass of those 8 rows (the floor of ``batch_size=8``).

``python allocator_probe.py 10`` lets every loop run 10 chunks at once (TensorFlow's default), to
show that the measurement sees the overlap it guards against.
"""

import gc
import json
import os
import sys

os.environ["TF_CPU_ALLOCATOR_USE_BFC"] = "true"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import idgi_tf  # noqa: E402
from idgi_tf import runtime  # noqa: E402
from idgi_tf.runtime import explained_value_and_grad  # noqa: E402

# method: (the option that sets the number of chunks, few, many); occlusion's patch 16 gives 9
# windows of a 48 x 40 image, patch 8 gives 30.
CASES = {
    "ig": ("steps", 6, 30),
    "blurig": ("steps", 6, 30),
    "gig": ("steps", 6, 30),
    "occlusion": ("patch", 16, 8),
    "rise": ("nmasks", 6, 30),
    "smoothgrad": ("nsamples", 6, 30),
}
REPEATS = {"few": 15, "many": 3}
# The same measurement on sequences (N, T, D) and at an Embedding (layer="embedding"), issue 30.
SEQUENCE_METHODS = ("ig", "gig", "smoothgrad")


def _allocated() -> int:
    return tf.config.experimental.get_memory_info("CPU:0")["current"]


def _peak(call) -> int:
    tf.config.experimental.reset_memory_stats("CPU:0")
    before = _allocated()
    call()
    return tf.config.experimental.get_memory_info("CPU:0")["peak"] - before


def _row(net, inputs, method, option, few, many, **fixed) -> dict:
    """``kept_8``/``kept_16`` and ``peak_few``/``peak_many`` of ``method`` on ``net`` (see the module text)."""
    row = {}
    for count in (8, 16):
        gc.collect()  # garbage in reference cycles (a layer= call leaves some) is kept by nothing: not counted
        before = _allocated()
        idgi_tf.attribute(net, inputs[:count], 1, method, batch_size=8, **{option: few}, **fixed)
        gc.collect()
        row[f"kept_{count}"] = _allocated() - before
    calls = {label: lambda value=value: idgi_tf.attribute(
        net, inputs[:8], 1, method, batch_size=8, **{option: value}, **fixed) for label, value in (("few", few),
                                                                                                  ("many", many))}
    for call in calls.values():
        call()
    # Interleaved (a "many" call after every fifth "few" one), so that both see the same stretch of the
    # process: the allocator's state shifts a peak by up to 1.6x from one stretch to another.
    peaks = {"few": [], "many": []}
    for i in range(REPEATS["few"]):
        peaks["few"].append(_peak(calls["few"]))
        if i % (REPEATS["few"] // REPEATS["many"]) == 0:
            peaks["many"].append(_peak(calls["many"]))
    return {**row, **{f"peak_{label}": max(values) for label, values in peaks.items()}}


def _floor_peak(head, rows) -> int:
    """The peak of one compiled forward+backward pass of ``rows`` through ``head``: what a method at
    ``batch_size=len(rows)`` cannot go below."""
    grad = tf.function(lambda x: explained_value_and_grad(head, x, tf.ones([len(rows)], tf.int32))[1])
    grad(rows)
    return max(_peak(lambda: grad(rows).numpy()) for _ in range(REPEATS["few"]))


def sequence_nets() -> dict:
    """``{name: (net, 16 inputs, attribute's extra arguments, 8 rows of what is attributed, the part of the
    net they go through)}``: a Conv1D net on float sequences (N, 960, 8), and a text net on token ids
    (N, 960) explained at its ``Embedding`` (rows (N, 960, 16), through the layers after it)."""
    relu = dict(padding="same", activation="relu")
    conv = keras.Sequential([keras.Input((960, 8)), keras.layers.Conv1D(32, 5, **relu),
                             keras.layers.Conv1D(32, 5, **relu), keras.layers.GlobalAveragePooling1D(),
                             keras.layers.Dense(5)])
    text = keras.Sequential([keras.Input((960,), dtype="int32"), keras.layers.Embedding(50, 16, name="embedding"),
                             keras.layers.Conv1D(32, 5, **relu), keras.layers.Conv1D(32, 5, **relu),
                             keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(5)])
    rng = np.random.default_rng(0)
    sequences, ids = rng.normal(size=(16, 960, 8)).astype(np.float32), rng.integers(1, 50, (16, 960)).astype(np.int32)
    head = keras.Sequential([keras.Input((960, 16)), *text.layers[1:]])
    return {"sequence": (conv, sequences, {}, tf.constant(sequences[:8]), conv),
            "embedding": (text, ids, {"layer": "embedding"}, text.layers[0](ids[:8]), head)}


def main(chunks_in_flight: int) -> None:
    runtime.CHUNKS_IN_FLIGHT = chunks_in_flight
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(0)
    relu = dict(padding="same", activation="relu")
    net = keras.Sequential([keras.Input((48, 40, 3)), keras.layers.Conv2D(32, 3, **relu),
                            keras.layers.Conv2D(32, 3, **relu), keras.layers.GlobalAveragePooling2D(),
                            keras.layers.Dense(5)])
    photos = np.random.default_rng(0).uniform(0, 255, (16, 48, 40, 3)).astype(np.float32)
    result = {"image_batch_bytes": photos[:8].nbytes}
    for method, (option, few, many) in CASES.items():
        result[method] = _row(net, photos, method, option, few, many)
    for name, (seq_net, inputs, fixed, rows, head) in sequence_nets().items():
        extra = {"batch_bytes": rows.numpy().nbytes, "floor": _floor_peak(head, rows)}
        for method in SEQUENCE_METHODS:
            result[f"{method}-{name}"] = {**_row(seq_net, inputs, method, *CASES[method], **fixed), **extra}
    print(json.dumps(result))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
