"""Watch explanations improve while a CNN learns: idgi_tf.callbacks.AttributionCallback during model.fit.

The script makes its own data: 32 x 32 noise images whose class (0-3) is the
quadrant holding a bright 6 x 6 square. A small CNN learns it in a few epochs;
the callback explains 8 held-out images with IG and IG+IDGI before training
and after every epoch, and logs Insertion, Deletion and localization (ROC-AUC
of the map against the square) to TensorBoard. The table printed at the end
shows the insertion AUC rising and the maps moving onto the square.

Run: python examples/train_with_callback.py [--epochs 6] [--log-dir DIR]

The TensorBoard logs go to ``idgi_tf_logs/attribution`` under the system's
temporary folder (``tempfile.gettempdir()``, e.g. /tmp), never into the
repository; ``--log-dir`` moves them (``logs/`` in the repository root is
ignored by git).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import keras
import numpy as np

from idgi_tf.callbacks import AttributionCallback

SIZE = 32
DEFAULT_LOG_DIR = os.path.join(tempfile.gettempdir(), "idgi_tf_logs", "attribution")


def quadrant_images(count: int, seed: int):
    """Images (count, 32, 32, 1) in [0, 255], labels (the square's quadrant) and the squares' masks."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 80, (count, SIZE, SIZE, 1)).astype(np.float32)
    labels = rng.integers(0, 4, count).astype(np.int32)
    masks = np.zeros((count, SIZE, SIZE), bool)
    for image, mask, label in zip(images, masks, labels):
        row, col = divmod(int(label), 2)
        top, left = 2 + row * 16 + rng.integers(0, 8), 2 + col * 16 + rng.integers(0, 8)
        image[top:top + 6, left:left + 6] = 255.0
        mask[top:top + 6, left:left + 6] = True
    return images, labels, masks


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--log-dir", default=DEFAULT_LOG_DIR)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    x, y, _ = quadrant_images(2000, args.seed)
    x_val, y_val, masks_val = quadrant_images(8, args.seed + 1)
    keras.utils.set_random_seed(args.seed)
    model = keras.Sequential([
        keras.Input((SIZE, SIZE, 1)), keras.layers.Rescaling(1 / 255.0),
        keras.layers.Conv2D(16, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(16, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Flatten(), keras.layers.Dense(4, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    callback = AttributionCallback(x_val, y_val, methods=("ig",), rules=("plain", "idgi"), steps=32,
                                   metrics=("insertion", "deletion", "localization"), masks=masks_val,
                                   at_start=True, log_dir=args.log_dir)
    start = time.perf_counter()
    model.fit(x, y, epochs=args.epochs, batch_size=64, verbose=2, callbacks=[callback])
    print(f"\ntrained {args.epochs} epochs with the callback in {time.perf_counter() - start:.0f} s\n")
    print("epoch | insertion IG | insertion IG+IDGI | deletion IG+IDGI | localization IG+IDGI | IG completeness gap")
    for record in callback.history:
        s = record["scalars"]
        print(f"{record['epoch']:5d} | {s['insertion/ig_plain']:12.3f} | {s['insertion/ig_idgi']:17.3f} | "
              f"{s['deletion/ig_idgi']:16.3f} | {s['localization/ig_idgi']:20.3f} | "
              f"{s['completeness_gap/ig_plain']:.2e}")
    print(f"\nTensorBoard logs: {args.log_dir}  (tensorboard --logdir {args.log_dir})")
    return callback.history


if __name__ == "__main__":
    main()
