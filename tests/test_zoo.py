"""The 11 classifiers of the IDGI paper, built in pixel space."""

import os
import subprocess
import sys

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

import idgi_tf
from idgi_tf import models
from idgi_tf.attribution.modified_gradients import ModifiedModel

# The deeper siblings (DenseNet169/201, ResNet101V2/152V2, VGG19, EfficientNetLite1/2) repeat these
# layer types: they are built and checked in pixel space; attributions run on one model per family.
ONE_PER_FAMILY = ("DenseNet121", "InceptionV3", "MobileNetV2", "ResNet50V2", "VGG16", "Xception", "EfficientNetLite0")
SMALL = {name: max(spec.min_size, 32) for name, spec in models.MODELS.items()}


def test_the_table_lists_the_papers_eleven_models_and_efficientnet_lite():
    assert sorted(models.PAPER_MODELS) == sorted([
        "DenseNet121", "DenseNet169", "DenseNet201", "InceptionV3", "MobileNetV2", "ResNet50V2",
        "ResNet101V2", "ResNet152V2", "VGG16", "VGG19", "Xception"])
    assert sorted(models.MODELS) == sorted([*models.PAPER_MODELS, "EfficientNetLite0", "EfficientNetLite1",
                                            "EfficientNetLite2"])
    assert {spec.preprocess for spec in models.PAPER_MODELS.values()} == {"tf", "torch", "caffe"}
    assert {spec.preprocess for spec in models.LITE_MODELS.values()} == {"lite"}
    assert models.canonical_name("ResNet151V2") == "ResNet152V2"
    with pytest.raises(ValueError, match="model name must be one of"):
        models.load("ResNet18", None)


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_architecture_builds_in_pixel_space_and_ig_idgi_and_deeplift_run(name):
    spec = models.MODELS[name]
    size = SMALL[name]
    keras.utils.set_random_seed(0)
    model = models.load(name, None, input_size=size)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (2, size, size, 3)).astype(np.float32)
    probabilities = model(images).numpy()
    assert probabilities.shape == (2, 1000)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    # Black pixels reach the network as the family's preprocessed black.
    network = model.layers[-1]
    black = np.zeros((1, size, size, 3), np.float32)
    if spec.preprocess == "lite":  # EfficientNet-Lite's TF reference: (x - 127) / 128
        preprocessed = (black - 127.0) / 128.0
    else:
        preprocessed = keras.applications.imagenet_utils.preprocess_input(black.copy(), mode=spec.preprocess)
    at_black = model(black).numpy()
    np.testing.assert_allclose(at_black, network(preprocessed).numpy(), rtol=1e-5, atol=1e-7)
    if name not in ONE_PER_FAMILY:
        return  # the deeper siblings repeat their family's layers; tracing their gradients costs CI minutes
    # IDGI over IG is complete on the real architecture (f from the eager calls above, not from the pass).
    targets = np.argmax(probabilities, axis=1)
    maps = idgi_tf.attribute(model, images, targets, "ig", rule="idgi", steps=4, batch_size=10)
    gap = probabilities[[0, 1], targets] - at_black[0, targets]
    np.testing.assert_allclose(maps.sum(axis=(1, 2, 3)), gap, rtol=1e-4, atol=1e-8)
    # epsilon-LRP and DeepLIFT pass every layer of the architecture; the modified
    # network's forward pass is the model up to its softmax.
    logits = ModifiedModel(model, "deeplift")(tf.constant(images)).numpy()
    np.testing.assert_allclose(tf.nn.softmax(logits).numpy(), probabilities, rtol=1e-4, atol=1e-7)
    deeplift = idgi_tf.attribute(model, images, targets, "deeplift")
    assert np.isfinite(deeplift).all() and np.abs(deeplift).max() > 0
    assert np.isfinite(idgi_tf.attribute(model, images, targets, "elrp")).all()
    if not any("MaxPooling" in type(layer).__name__ for layer in network.layers):
        # Summation-to-delta (max pooling keeps its plain gradient, so only without it).
        black_logits = ModifiedModel(model, "deeplift")(tf.constant(0 * images)).numpy()
        delta = (logits - black_logits)[np.arange(2), targets]
        np.testing.assert_allclose(deeplift.sum(axis=(1, 2, 3)), delta, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("suffix", [".weights.h5", ".keras"])
def test_weights_path_round_trips_bit_exactly(tmp_path, suffix):
    keras.utils.set_random_seed(3)
    original = models.load("MobileNetV2", None, input_size=32)
    path = str(tmp_path / f"net{suffix}")
    network = original.layers[-1]
    network.save_weights(path) if suffix == ".weights.h5" else network.save(path)
    keras.utils.set_random_seed(4)
    restored = models.load("MobileNetV2", path, input_size=32)
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    np.testing.assert_array_equal(restored(x).numpy(), original(x).numpy())
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        models.load("MobileNetV2", str(tmp_path / "missing.h5"), input_size=32)


def test_keras_legacy_h5_weights_load_from_a_path_and_from_the_keras_cache(tmp_path):
    """Keras' ImageNet files are legacy HDF5 (layer-named groups, plain ``.h5``): such a file loads bit-exactly
    as ``weights=PATH``, and as ``weights="imagenet"`` once it lies in ``$KERAS_HOME/models`` (offline: the
    Keras cache is read, nothing is downloaded). MobileNetV2 at its native 224 px, random weights."""
    from keras.src.legacy.saving import legacy_h5_format

    keras.utils.set_random_seed(6)
    original = models.load("MobileNetV2", None)
    cache = tmp_path / "models"
    cache.mkdir()
    path = cache / models.MODELS["MobileNetV2"].weights_file
    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, original.layers[-1])
    x = np.random.default_rng(2).uniform(0, 255, (2, 224, 224, 3)).astype(np.float32)
    want = original(x).numpy()
    keras.utils.set_random_seed(7)
    np.testing.assert_array_equal(models.load("MobileNetV2", str(path))(x).numpy(), want)
    np.save(tmp_path / "x.npy", x)
    code = ("import sys, numpy as np, idgi_tf\n"
            "model = idgi_tf.models.load('MobileNetV2')\n"
            "np.save(sys.argv[1], model(np.load(sys.argv[2])).numpy())\n")
    env = {**os.environ, "KERAS_HOME": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "y.npy"), str(tmp_path / "x.npy")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), want)


def test_logits_are_the_softmax_inputs(tmp_path):
    keras.utils.set_random_seed(5)
    probabilities = models.load("ResNet50V2", None, input_size=32)
    path = str(tmp_path / "w.weights.h5")
    probabilities.layers[-1].save_weights(path)
    logits = models.load("ResNet50V2", path, input_size=32, logits=True)
    x = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(keras.ops.softmax(logits(x)).numpy(), probabilities(x).numpy(), rtol=1e-4, atol=1e-7)


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="input_size must be at least 75"):
        models.load("InceptionV3", None, input_size=64)
    with pytest.raises(ValueError, match="need input_size 224"):
        models.load("VGG16", "imagenet", input_size=64)
    with pytest.raises(TypeError, match="weights must be 'imagenet', a file path or None"):
        models.load("VGG16", 3)


def test_offline_imagenet_weights_error_names_the_file_and_the_ways_out(tmp_path):
    code = (
        "import idgi_tf\n"
        "try:\n"
        "    idgi_tf.models.load('MobileNetV2')\n"
        "except idgi_tf.models.WeightsUnavailableError as error:\n"
        "    print('ERROR', error)\n"
    )
    env = {**os.environ, "KERAS_HOME": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    message = out.stdout
    if "ERROR" not in message:
        pytest.fail(f"expected WeightsUnavailableError (this test needs no network access): {out.stdout}{out.stderr}")
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5" in message
    assert os.path.join(str(tmp_path), "models") in message
    assert "weights=PATH" in message
