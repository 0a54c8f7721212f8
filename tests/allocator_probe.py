"""Run in a fresh interpreter by ``test_memory.py``: TensorFlow's allocator statistics per method.

The CPU allocator reports its bytes in use and its peak only when it is the BFC allocator, which
``TF_CPU_ALLOCATOR_USE_BFC`` selects before TensorFlow is imported; hence a separate process.
TensorFlow runs one op at a time here (one inter-op thread), so that a peak depends on the graph
and not on how two threads happened to interleave the ops of one pass: on a 2-core machine that
interleaving alone moved a peak by up to 1.5x from call to call. For each method it prints, as JSON:

* ``peak_few`` / ``peak_many``: the largest peak of ``REPEATS`` calls (after a tracing call) with
  few and with many chunks of ``batch_size`` model inputs (steps, windows, masks or samples): 15
  calls of about 6 chunks against 3 of 30, so that each side's maximum is taken over as many chunks
  (a peak is a maximum: more draws make it larger); both counts are past the first chunks, whose
  peak is lower;
* ``kept_8`` / ``kept_16``: the bytes still allocated after the first call for 8 and for 16 images
  (the compiled function stays cached on the model), i.e. what outlives a call.

``python allocator_probe.py 10`` lets every loop run 10 chunks at once (TensorFlow's default), to
show that the measurement sees the overlap it guards against.
"""

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


def _allocated() -> int:
    return tf.config.experimental.get_memory_info("CPU:0")["current"]


def _peak(call) -> int:
    tf.config.experimental.reset_memory_stats("CPU:0")
    before = _allocated()
    call()
    return tf.config.experimental.get_memory_info("CPU:0")["peak"] - before


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
        row = {}
        for count in (8, 16):
            before = _allocated()
            idgi_tf.attribute(net, photos[:count], 1, method, batch_size=8, **{option: few})
            row[f"kept_{count}"] = _allocated() - before
        for label, value in (("few", few), ("many", many)):
            call = lambda: idgi_tf.attribute(net, photos[:8], 1, method, batch_size=8, **{option: value})  # noqa: E731
            call()
            row[f"peak_{label}"] = max(_peak(call) for _ in range(REPEATS[label]))
        result[method] = row
    print(json.dumps(result))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
