"""Occlusion at any input rank: windows over every per-example axis but the channels, re-derived eagerly."""

import itertools
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import idgi_tf
from idgi_tf.attribution.occlusion import check_window, compiled_occlusion


def occlude(model, x, targets, baseline, patch=None, stride=None, windows_per_pass=3):
    """The compiled group function on one group, as ``attribute`` runs it."""
    patch, stride = check_window(patch, stride, x.shape[1:])
    run = compiled_occlusion(model, patch, stride, windows_per_pass)
    full = np.broadcast_to(np.asarray(baseline, x.dtype), x.shape)
    return run(tf.constant(x), tf.constant(full), tf.constant(targets, tf.int32))["plain"].numpy()


def explained(model, x, targets):
    return model(x).numpy()[np.arange(len(x)), targets].astype(np.float64)


def eager_occlusion(model, x, targets, baseline, starts, patch):
    """Every window (one start per window axis, from ``starts``) set to the baseline, all channels; its drop
    f(x) - f(occluded) spread over its prod(patch) * C elements; each element the mean of its windows' shares."""
    baseline = np.broadcast_to(np.asarray(baseline, x.dtype), x.shape)
    channels = 1 if x.ndim == 2 else x.shape[-1]
    shares, covered = np.zeros(x.shape), np.zeros(x.shape[1:])
    reference = explained(model, x, targets)
    for corner in itertools.product(*starts):
        window = tuple(slice(start, start + side) for start, side in zip(corner, patch))
        occluded = x.copy()
        occluded[(slice(None), *window)] = baseline[(slice(None), *window)]
        drops = reference - explained(model, occluded, targets)
        shares[(slice(None), *window)] += drops.reshape((-1,) + (1,) * (x.ndim - 1)) / (math.prod(patch) * channels)
        covered[window] += 1
    assert covered.min() >= 1
    return shares / covered[None]


def mlp(width):
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((width,)), keras.layers.Dense(8, activation="tanh"),
                             keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3, activation="softmax")])


def sequence_net(length, depth):
    keras.utils.set_random_seed(1)
    return keras.Sequential([keras.Input((length, depth)), keras.layers.Conv1D(5, 3, activation="tanh"),
                             keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])


def volume_net(shape):
    keras.utils.set_random_seed(2)
    return keras.Sequential([keras.Input(shape), keras.layers.Conv3D(3, 2, activation="tanh"),
                             keras.layers.Flatten(), keras.layers.Dense(4, activation="softmax")])


def token_net(length, vocabulary=20):
    keras.utils.set_random_seed(3)
    return keras.Sequential([keras.Input((length,), dtype="int32"), keras.layers.Embedding(vocabulary, 4),
                             keras.layers.Conv1D(6, 2, activation="tanh"), keras.layers.Flatten(),
                             keras.layers.Dense(3, activation="softmax")])


def test_patch_1_on_tabular_inputs_is_feature_ablation():
    """A[n, i] = f(x_n) - f(x_n with feature i set to the baseline's), for every feature i."""
    model, rng = mlp(6), np.random.default_rng(0)
    x = rng.normal(size=(4, 6)).astype(np.float32)
    baseline = rng.normal(size=6).astype(np.float32)
    targets = np.array([0, 1, 2, 1])
    maps = occlude(model, x, targets, baseline, patch=1)
    want = np.zeros(x.shape)
    for feature in range(6):
        ablated = x.copy()
        ablated[:, feature] = baseline[feature]
        want[:, feature] = explained(model, x, targets) - explained(model, ablated, targets)
    assert maps.shape == x.shape and np.abs(want).max() > 1e-3
    np.testing.assert_allclose(maps, want, rtol=1e-5, atol=1e-7)


def test_tabular_default_is_one_feature_at_a_time():
    model, x = mlp(6), np.random.default_rng(1).normal(size=(2, 6)).astype(np.float32)
    np.testing.assert_array_equal(occlude(model, x, [0, 2], 0.0), occlude(model, x, [0, 2], 0.0, patch=1, stride=1))


def test_overlapping_token_windows_on_sequences_average_their_shares_over_the_embedding():
    model, rng = sequence_net(7, 4), np.random.default_rng(2)
    x = rng.normal(size=(3, 7, 4)).astype(np.float32)
    targets = np.array([2, 0, 1])
    maps = occlude(model, x, targets, 0.5, patch=2, stride=1)
    want = eager_occlusion(model, x, targets, 0.5, [range(6)], (2,))
    assert np.abs(want).max() > 1e-4
    np.testing.assert_allclose(maps, want, rtol=1e-4, atol=1e-6 * np.abs(want).max())
    np.testing.assert_array_equal(maps, np.repeat(maps[..., :1], 4, axis=-1))  # one value per token


def test_volume_windows_take_a_patch_and_a_stride_per_axis():
    model, rng = volume_net((4, 5, 6, 2)), np.random.default_rng(3)
    x = rng.normal(size=(2, 4, 5, 6, 2)).astype(np.float32)
    targets = np.array([3, 1])
    maps = occlude(model, x, targets, 0.0, patch=(2, 3, 4), stride=(1, 2, 3))
    # starts: D 0, 1, 2; H 0, 2; W 0, then 2 flush with the end
    want = eager_occlusion(model, x, targets, 0.0, [[0, 1, 2], [0, 2], [0, 2]], (2, 3, 4))
    assert np.abs(want).max() > 1e-4
    np.testing.assert_allclose(maps, want, rtol=1e-4, atol=1e-6 * np.abs(want).max())


def test_token_ids_are_occluded_with_the_pad_id():
    model, rng = token_net(8), np.random.default_rng(4)
    tokens = rng.integers(2, 20, (3, 8)).astype(np.int32)
    targets, pad = np.array([0, 1, 2]), 1
    maps = occlude(model, tokens, targets, pad, patch=2, stride=2)
    want = eager_occlusion(model, tokens, targets, pad, [[0, 2, 4, 6]], (2,))
    assert maps.shape == tokens.shape and np.abs(want).max() > 1e-4
    np.testing.assert_allclose(maps, want, rtol=1e-4, atol=1e-6 * np.abs(want).max())


@pytest.mark.parametrize("make_model, shape", [(lambda: mlp(6), (6,)), (lambda: sequence_net(7, 4), (7, 4)),
                                              (lambda: volume_net((4, 5, 6, 2)), (4, 5, 6, 2))])
def test_windows_per_pass_and_group_size_do_not_change_the_maps(make_model, shape):
    model = make_model()
    x = np.random.default_rng(5).normal(size=(5, *shape)).astype(np.float32)
    targets = np.array([0, 1, 2, 0, 1])
    patch = 2 if len(shape) > 1 else 1
    together = occlude(model, x, targets, 0.0, patch=patch, stride=1, windows_per_pass=7)
    alone = np.concatenate([occlude(model, x[i:i + 1], targets[i:i + 1], 0.0, patch=patch, stride=1,
                                    windows_per_pass=1) for i in range(len(x))])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-7 * np.abs(together).max())


def test_patch_none_is_8_on_images_and_1_elsewhere():
    assert check_window(None, None, (10, 12, 3)) == ((8, 8), (8, 8))
    assert check_window(None, None, (5,)) == ((1,), (1,))
    assert check_window(None, None, (5, 16)) == ((1,), (1,))
    assert check_window(None, 1, (4, 5, 6, 2)) == ((1, 1, 1), (1, 1, 1))
    assert check_window(3, None, (10, 12, 3)) == ((3, 3), (3, 3))
    assert check_window([2, 3], (1, 2), (10, 12, 3)) == ((2, 3), (1, 2))


@pytest.mark.parametrize("patch, stride, shape, pattern", [
    ((2, 2), None, (7, 4), (r"^patch must be an int or a tuple of 1 int\(s\), one per window axis \(axis 1 of "
                            r"inputs \(N, 7, 4\); axis 2, the channels, is occluded whole\), got patch=\(2, 2\)$")),
    (2, (1, 1, 1), (10, 12, 3), r"stride must be an int or a tuple of 2 int\(s\).*\(axes 1, 2 of inputs"),
    (2, 3, (7, 4), r"^stride must be at most patch \(2\) on every window axis .*, got stride=3$"),
    ((2, 2, 2), (1, 3, 1), (4, 5, 6, 2), r"^stride must be at most patch \(2, 2, 2\) .*got stride=1, 3, 1$"),
    ((2, 6, 2), None, (4, 5, 6, 2), (r"^patch must be at most .*: axis 2 of inputs \(N, 4, 5, 6, 2\) has 5, "
                                     r"got patch 6$")),
    (9, None, (8,), r"axis 1 of inputs \(N, 8\) has 8, got patch 9$"),
])
def test_bad_windows_are_refused_naming_the_axes(patch, stride, shape, pattern):
    with pytest.raises(ValueError, match=pattern):
        check_window(patch, stride, shape)


@pytest.mark.parametrize("options, error", [({"patch": 0}, ValueError), ({"patch": (2, 0)}, ValueError),
                                            ({"patch": 2.5}, TypeError), ({"stride": ()}, ValueError),
                                            ({"patch": (2, 2, 2)}, ValueError)])
def test_attribute_refuses_bad_windows_before_any_model_pass(model, images, targets, options, error):
    calls = []

    def counting(x):
        calls.append(len(x))
        return model(x)

    with pytest.raises(error, match="patch|stride"):
        idgi_tf.attribute(counting, images, targets, "occlusion", **options)
    assert len(calls) <= 1  # at most the one call that reads the number of classes


def _case(name):
    """``(model, inputs, targets, baseline, options, starts, patch)``: one call of each rank, with its windows."""
    rng = np.random.default_rng(6)
    if name == "tabular":
        return mlp(6), rng.normal(size=(5, 6)).astype(np.float32), [0, 1, 2, 1, 0], \
            rng.normal(size=6).astype(np.float32), {"patch": 1}, [range(6)], (1,)
    if name == "sequence":
        return sequence_net(7, 4), rng.normal(size=(5, 7, 4)).astype(np.float32), [2, 0, 1, 1, 0], 0.5, \
            {"patch": 2, "stride": 1}, [range(6)], (2,)
    if name == "volume":
        return volume_net((4, 5, 6, 2)), rng.normal(size=(3, 4, 5, 6, 2)).astype(np.float32), [3, 1, 0], 0.0, \
            {"patch": (2, 3, 4), "stride": (1, 2, 3)}, [[0, 1, 2], [0, 2], [0, 2]], (2, 3, 4)
    return token_net(8), rng.integers(2, 20, (5, 8)).astype(np.int32), [0, 1, 2, 0, 1], 1, \
        {"patch": 3, "stride": 2}, [[0, 2, 4, 5]], (3,)


@pytest.mark.parametrize("name", ["tabular", "sequence", "volume", "tokens"])
def test_attribute_at_every_rank_matches_the_eager_maps_whatever_the_batch_size(name):
    model, x, targets, baseline, options, starts, patch = _case(name)
    want = eager_occlusion(model, x, np.asarray(targets), baseline, starts, patch)
    assert np.abs(want).max() > 1e-4
    for batch_size in (1, 7):
        maps = idgi_tf.attribute(model, x, targets, "occlusion", baseline=baseline, batch_size=batch_size, **options)
        assert maps.shape == x.shape and maps.dtype == np.float32
        np.testing.assert_allclose(maps, want, rtol=1e-4, atol=1e-6 * np.abs(want).max(), err_msg=str(batch_size))


def test_attribute_refuses_a_tuple_for_the_wrong_axes_on_sequences_before_any_model_pass():
    model, calls = sequence_net(7, 4), []

    def counting(x):
        calls.append(len(x))
        return model(x)

    with pytest.raises(ValueError, match=r"tuple of 1 int\(s\), one per window axis \(axis 1 of inputs \(N, 7, 4\)"):
        idgi_tf.attribute(counting, np.ones((2, 7, 4), np.float32), [0, 1], "occlusion", patch=(2, 2))
    assert len(calls) <= 1  # at most the one call that reads the number of classes
