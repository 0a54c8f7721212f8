"""AttributionCallback during a real model.fit: TensorBoard events, schedule, no effect on training, errors."""

import glob
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import idgi_tf
import idgi_tf.metrics
from idgi_tf.callbacks import AttributionCallback

SIZE = 16


def quadrant_data(count=256, seed=0):
    """Noise images; the class is the quadrant holding a bright 5 x 5 square; masks mark the square."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 60, (count, SIZE, SIZE, 1)).astype(np.float32)
    y = rng.integers(0, 4, count)
    masks = np.zeros((count, SIZE, SIZE), bool)
    for image, mask, label in zip(x, masks, y):
        row, col = divmod(int(label), 2)
        top, left = 1 + row * 8 + rng.integers(0, 3), 1 + col * 8 + rng.integers(0, 3)
        image[top:top + 5, left:left + 5] = 255.0
        mask[top:top + 5, left:left + 5] = True
    return x, y.astype(np.int32), masks


def small_cnn(kind="sequential", logits=False, seed=0):
    keras.utils.set_random_seed(seed)
    head = None if logits else "softmax"
    if kind == "sequential":
        return keras.Sequential([keras.Input((SIZE, SIZE, 1)), keras.layers.Rescaling(1 / 255.0),
                                 keras.layers.Conv2D(8, 3, activation="relu"), keras.layers.MaxPooling2D(),
                                 keras.layers.Flatten(), keras.layers.Dense(4, activation=head)])
    if kind == "functional":
        inputs = keras.Input((SIZE, SIZE, 1))
        h = keras.layers.Conv2D(8, 3, activation="relu")(keras.layers.Rescaling(1 / 255.0)(inputs))
        h = keras.layers.GlobalAveragePooling2D()(h)
        return keras.Model(inputs, keras.layers.Dense(4, activation=head)(h))

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(8, 3, activation="relu")
            self.pool = keras.layers.GlobalAveragePooling2D()
            self.dense = keras.layers.Dense(4, activation=head)

        def call(self, inputs):
            return self.dense(self.pool(self.conv(inputs / 255.0)))

    return Subclassed()


def fit(model, callbacks, epochs, logits=False, seed=0):
    x, y, _ = quadrant_data()
    model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=logits))
    keras.utils.set_random_seed(seed)
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, callbacks=callbacks)
    return model


def event_tags(log_dir):
    tags = {}
    for path in glob.glob(f"{log_dir}/**/events.out.tfevents.*", recursive=True):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                tags.setdefault(value.tag, set()).add(event.step)
    return tags


def test_fit_writes_images_scalars_and_histograms_to_tensorboard(tmp_path):
    x, y, masks = quadrant_data(8, seed=1)
    callback = AttributionCallback(x, y, methods=("ig", "vg"), metrics=("insertion", "deletion", "localization"),
                                   masks=masks, steps=8, log_dir=str(tmp_path))
    fit(small_cnn(), [callback], epochs=2)
    tags = event_tags(tmp_path)
    for tag in ("attributions/ig_plain", "attributions/ig_idgi", "attributions/vg_plain", "insertion/ig_idgi",
                "deletion/vg_plain", "localization/ig_plain", "completeness_gap/ig_plain",
                "completeness_gap/ig_idgi", "values/ig_idgi"):
        assert tags.get(tag) == {1, 2}, tag
    assert "completeness_gap/vg_plain" not in tags  # not a path method
    last = callback.history[-1]["scalars"]
    assert last["completeness_gap/ig_idgi"] < 1e-4 < last["completeness_gap/ig_plain"]


def test_every_n_epochs_logs_exactly_those_epochs():
    x, y, _ = quadrant_data(4, seed=2)
    callback = AttributionCallback(x, y, steps=4, every_n_epochs=2, metrics=("insertion",))
    fit(small_cnn(), [callback], epochs=4)
    assert [record["epoch"] for record in callback.history] == [2, 4]


@pytest.mark.parametrize("kind", ["sequential", "functional", "subclassed"])
def test_training_is_unchanged_by_the_callback(kind):
    """Bit for bit, with every metric family on (mufidelity draws its own random cells)."""
    x, y, masks = quadrant_data(4, seed=3)
    plain = fit(small_cnn(kind, seed=5), [], epochs=2, seed=7)
    callback = AttributionCallback(x, y, steps=4, methods=("ig", "gig"), masks=masks,
                                   metrics=("insertion", "deletion", "localization", "mufidelity"))
    watched = fit(small_cnn(kind, seed=5), [callback], epochs=2, seed=7)
    assert len(callback.history) == 2 and "mufidelity/gig_idgi" in callback.history[-1]["scalars"]
    weights = plain.get_weights()
    assert weights and all(np.array_equal(a, b) for a, b in zip(weights, watched.get_weights()))


def test_the_logged_ig_gap_shrinks_with_steps():
    """The plain rule's completeness gap is IG's discretisation error: 8 times the steps, a smaller gap."""
    x, y, _ = quadrant_data(4, seed=3)
    model = fit(small_cnn(seed=5), [], epochs=1, seed=7)
    gaps = {}
    for steps in (4, 32):
        callback = AttributionCallback(x, y, steps=steps, metrics=())
        callback.set_model(model)
        gaps[steps] = callback.log_epoch(0)["scalars"]["completeness_gap/ig_plain"]
    assert 0 < gaps[32] < 0.5 * gaps[4], gaps


@pytest.mark.parametrize("kind, logits", [("functional", True), ("subclassed", False), ("subclassed", True)])
def test_functional_and_subclassed_models_with_softmax_or_logits(kind, logits):
    x, _, _ = quadrant_data(4, seed=4)
    callback = AttributionCallback(x, None, steps=4, metrics=("insertion",), output="logit" if logits else
                                   "probability", at_start=True)
    model = fit(small_cnn(kind, logits), [callback], epochs=1, logits=logits)
    assert [record["epoch"] for record in callback.history] == [0, 1]
    completeness = callback.history[-1]["scalars"]["completeness_gap/ig_idgi"]
    assert completeness < 1e-5  # f is the softmax probability either way, and IDGI is complete for it
    # The logged score is the metric of the trained model's own maps, recomputed here outside the callback.
    explained = (lambda images: tf.nn.softmax(model(images), axis=-1)) if logits else model
    targets = np.argmax(explained(x).numpy(), axis=1).astype(np.int32)
    maps = idgi_tf.attribute(explained, x, targets, "ig", rule="plain", steps=4)
    want = idgi_tf.metrics.insertion(explained, x, targets, maps).means()["probability"]
    assert callback.history[-1]["scalars"]["insertion/ig_plain"] == pytest.approx(want, rel=1e-4, abs=1e-6)


def test_insertion_rises_as_the_model_learns_the_region():
    x, y, masks = quadrant_data(8, seed=5)
    callback = AttributionCallback(x, y, steps=16, metrics=("insertion", "localization"), masks=masks,
                                   at_start=True, every_n_epochs=4)
    fit(small_cnn(), [callback], epochs=8)
    first, last = callback.history[0]["scalars"], callback.history[-1]["scalars"]
    assert last["insertion/ig_idgi"] > first["insertion/ig_idgi"] + 0.1
    assert last["localization/ig_idgi"] > 0.8


def test_bad_arguments_fail_before_training():
    x, y, _ = quadrant_data(4)
    with pytest.raises(ValueError, match="methods must be one of"):
        AttributionCallback(x, y, methods=("ig", "lime"))
    with pytest.raises(ValueError, match="metrics must be one of"):
        AttributionCallback(x, y, metrics=("sic",))
    with pytest.raises(ValueError, match="localization' needs masks"):
        AttributionCallback(x, y, metrics=("localization",))
    with pytest.raises(ValueError, match=r"targets must have shape \(16,\)"):  # x[0]: 16 examples (16, 1)
        AttributionCallback(x[0], y)
    with pytest.raises(ValueError, match="jit_compile must be True, False or 'auto'"):
        AttributionCallback(x, y, jit_compile="xla")
    callback = AttributionCallback(np.zeros((2, 9, 9, 1), np.float32), [0, 1])
    with pytest.raises(ValueError, match="per-example shape"):
        fit(small_cnn(), [callback], epochs=1)  # set_model checks before the first batch
    callback = AttributionCallback(x, [0, 1, 2, 7])
    with pytest.raises(ValueError, match="target"):
        callback.set_model(small_cnn())


@pytest.mark.parametrize("output", ["probability", "logit"])
def test_elrp_and_deeplift_run_on_either_output_and_idgi_is_complete_at_zero_biases(output):
    """elrp explains the logit whatever the model returns; the fresh ReLU net has Keras' zero biases."""
    x, _, _ = quadrant_data(4, seed=2)
    callback = AttributionCallback(x, [0, 1, 2, 3], methods=("ig", "elrp", "deeplift"), steps=8, output=output,
                                   metrics=("insertion",), at_start=True)
    fit(small_cnn(logits=output == "logit"), [callback], epochs=1, logits=output == "logit")
    first, last = callback.history[0]["scalars"], callback.history[-1]["scalars"]
    assert {"insertion/elrp_plain", "insertion/deeplift_plain"} <= set(last)
    # At zero biases the gradient vanishes at black; IDGI's fallback keeps it complete.
    assert first["completeness_gap/ig_idgi"] < 1e-6 and last["completeness_gap/ig_idgi"] < 1e-6


@pytest.mark.parametrize("output", ["probability", "logit"])
def test_gradcam_runs_on_either_output_and_checks_its_layer_before_training(output):
    """Grad-CAM explains the logit whatever the model returns (it runs on the model itself)."""
    x, _, _ = quadrant_data(4, seed=2)
    callback = AttributionCallback(x, [0, 1, 2, 3], methods=("gradcam", "gradcampp"), output=output,
                                   metrics=("insertion", "road"), at_start=True)
    fit(small_cnn(logits=output == "logit"), [callback], epochs=1, logits=output == "logit")
    assert {"insertion/gradcam_plain", "road/gradcampp_plain"} <= set(callback.history[-1]["scalars"])
    with pytest.raises(ValueError, match="method 'gradcam' reads a layer of its own"):
        AttributionCallback(x, [0, 1, 2, 3], methods=("gradcam",), layer="conv")
    epochs = []
    with pytest.raises(TypeError, match="Grad-CAM needs a functional or Sequential Keras model"):
        fit(small_cnn("subclassed"), [AttributionCallback(x, [0, 1, 2, 3], methods=("gradcam",)),
                                      keras.callbacks.LambdaCallback(on_epoch_begin=epochs.append)], 1)
    assert epochs == []


def test_modified_gradient_methods_check_the_model_before_training():
    x, y, _ = quadrant_data(4)
    callback = AttributionCallback(x, y, methods=("elrp",))
    epochs = []
    with pytest.raises(TypeError, match="method 'elrp' needs a functional or Sequential Keras model"):
        fit(small_cnn("subclassed"), [callback, keras.callbacks.LambdaCallback(on_epoch_begin=epochs.append)], 1)
    assert epochs == []  # raised in set_model, before the first epoch
    with pytest.raises(ValueError, match="masks must hold only 0 and 1"):
        AttributionCallback(x, y, metrics=("localization",), masks=np.full(x.shape[:3], np.nan))


def test_the_training_example_runs_and_shows_insertion_rising(tmp_path):
    script = os.path.join(os.path.dirname(__file__), os.pardir, "examples", "train_with_callback.py")
    done = subprocess.run([sys.executable, script, "--epochs", "2", "--log-dir", str(tmp_path)], capture_output=True,
                          text=True, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-2000:]
    table = [line.split("|") for line in done.stdout.splitlines() if line.strip()[:1].isdigit() and "|" in line]
    assert [int(row[0]) for row in table] == [0, 1, 2]
    assert float(table[-1][2]) > float(table[0][2]) + 0.1  # insertion IG+IDGI after training > before
    assert f"TensorBoard logs: {tmp_path}" in done.stdout
