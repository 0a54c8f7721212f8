"""Grad-CAM against Xplique's ``GradCAM`` (an oracle from a side folder, not a dependency).

Xplique upsamples its maps bicubically and idgi_tf bilinearly, so the two are compared where the layer has
the images' size (no upsampling): a small random CNN with stride-1 convolutions, 6 images.

    pip install --no-deps --target /tmp/side_xq xplique deprecated opencv-python-headless \
        tensorflow-probability tf-keras dm-tree
    PYTHONPATH=/tmp/side_xq python benchmarks/gradcam_xplique.py

Prints the largest difference relative to the maps' largest value (recorded in RESULTS.md).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

import idgi_tf


def main() -> None:
    from xplique.attributions import GradCAM

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 12, 3))
    hidden = keras.layers.Conv2D(6, 3, activation="relu", padding="same")(inputs)
    hidden = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="last_conv")(hidden)
    hidden = keras.layers.Dense(8, activation="tanh")(keras.layers.Flatten()(hidden))
    model = keras.Model(inputs, keras.layers.Dense(3)(hidden))
    images = np.random.default_rng(0).uniform(0, 255, (6, 16, 12, 3)).astype(np.float32)
    targets = np.array([0, 1, 2, 1, 0, 2])
    theirs = np.asarray(GradCAM(model, conv_layer="last_conv").explain(images, tf.one_hot(targets, 3)))[..., 0]
    ours = idgi_tf.attribute(model, images, targets, "gradcam").sum(axis=-1)
    nonzero = int((theirs.reshape(len(images), -1).max(axis=1) > 0).sum())
    difference = np.abs(ours - theirs).max() / np.abs(theirs).max()
    print(f"Grad-CAM vs Xplique GradCAM: max |difference| / max |map| = {difference:.2e} over {len(images)} images "
          f"({nonzero} non-zero maps)")


if __name__ == "__main__":
    main()
