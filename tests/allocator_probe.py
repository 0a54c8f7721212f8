"""Run in a fresh interpreter by ``test_memory.py``: TensorFlow's allocator statistics per method.

The CPU allocator reports its bytes in use and its peak only when it is the BFC allocator, which
``TF_CPU_ALLOCATOR_USE_BFC`` selects before TensorFlow is imported; hence a separate process. For
each method it prints, as JSON:

* ``peak_few`` / ``peak_many``: the peak bytes of one call (after a tracing call) with few and with
  many chunks of ``batch_size`` model inputs (steps, windows, masks or samples);
* ``kept_8`` / ``kept_16``: the bytes still allocated after the first call for 8 and for 16 images
  (the compiled function stays cached on the model), i.e. what outlives a call.
"""

import json
import os

os.environ["TF_CPU_ALLOCATOR_USE_BFC"] = "true"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import idgi_tf  # noqa: E402

# method: (the option that sets the number of chunks, few, many)
CASES = {
    "ig": ("steps", 2, 30),
    "blurig": ("steps", 2, 30),
    "gig": ("steps", 2, 30),
    "occlusion": ("patch", 24, 4),
    "rise": ("nmasks", 2, 30),
    "smoothgrad": ("nsamples", 2, 40),
}


def _allocated() -> int:
    return tf.config.experimental.get_memory_info("CPU:0")["current"]


def main() -> None:
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
            tf.config.experimental.reset_memory_stats("CPU:0")
            before = _allocated()
            call()
            row[f"peak_{label}"] = tf.config.experimental.get_memory_info("CPU:0")["peak"] - before
        result[method] = row
    print(json.dumps(result))


if __name__ == "__main__":
    main()
