"""Expected IG (``references=``): the mean of single-baseline IG/GIG calls, IDGI's completeness against the mean
over references, seeded subsampling, batching, several inputs and layers, and clear errors."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import bias_free_relu_cnn
from test_any_input import _text, _two_inputs

import idgi_tf

RNG = np.random.default_rng(0)
IMAGES = RNG.uniform(0, 255, (3, 9, 7, 1)).astype(np.float32)
REFERENCES = RNG.uniform(0, 255, (4, 9, 7, 1)).astype(np.float32)
TARGETS = np.array([0, 1, 3])


def _tanh_cnn():
    keras.utils.set_random_seed(7)
    return keras.Sequential([keras.Input((9, 7, 1)), keras.layers.Rescaling(1 / 255.0),
                             keras.layers.Conv2D(4, 3, activation="tanh"), keras.layers.Flatten(),
                             keras.layers.Dense(4), keras.layers.Softmax()])


@pytest.fixture(scope="module", params=["bias_free_relu", "tanh"])
def model(request):
    return bias_free_relu_cnn(9, 7, 1) if request.param == "bias_free_relu" else _tanh_cnn()


@pytest.mark.parametrize("method", ["ig", "gig"])
def test_equals_the_mean_of_single_baseline_calls(model, method):
    expected = idgi_tf.attribute(model, IMAGES, TARGETS, method, rule=("plain", "idgi"), references=REFERENCES,
                                 steps=16)
    single = [idgi_tf.attribute(model, IMAGES, TARGETS, method, rule=("plain", "idgi"), baseline=r, steps=16)
              for r in REFERENCES]
    for rule in ("plain", "idgi"):
        mean = np.mean([maps[rule] for maps in single], axis=0, dtype=np.float64)
        scale = np.abs(mean).max()
        assert scale > 0
        np.testing.assert_allclose(expected[rule], mean, rtol=1e-5, atol=1e-6 * scale)


def _mean_reference_output(model, references):
    return np.mean([idgi_tf.explained_output(model, np.broadcast_to(r, IMAGES.shape), TARGETS)
                    for r in references], axis=0, dtype=np.float64)


def test_idgi_sums_to_the_output_minus_the_mean_over_references(model):
    maps, gaps = idgi_tf.attribute(model, IMAGES, TARGETS, "ig", rule="idgi", references=REFERENCES, steps=8,
                                   return_gap=True)
    change = idgi_tf.explained_output(model, IMAGES, TARGETS) - _mean_reference_output(model, REFERENCES)
    assert np.abs(change).min() > 1e-4
    np.testing.assert_allclose(maps.sum(axis=(1, 2, 3), dtype=np.float64), change, rtol=1e-5)
    np.testing.assert_allclose(gaps.output_change, change, rtol=1e-5)
    assert gaps.relative.max() < 1e-5


def test_batch_size_does_not_change_the_maps(model):
    one = idgi_tf.attribute(model, IMAGES, TARGETS, "ig", rule="idgi", references=REFERENCES, steps=8, batch_size=1)
    many = idgi_tf.attribute(model, IMAGES, TARGETS, "ig", rule="idgi", references=REFERENCES, steps=8, batch_size=27)
    np.testing.assert_allclose(one, many, rtol=1e-5, atol=1e-7 * np.abs(one).max())


def test_nreferences_draws_a_seeded_subset():
    model = _tanh_cnn()
    drawn = idgi_tf.attribute(model, IMAGES, TARGETS, "ig", references=REFERENCES, nreferences=2, steps=8,
                              references_seed=3)
    chosen = np.sort(np.random.default_rng(3).choice(len(REFERENCES), 2, replace=False))
    on_those = idgi_tf.attribute(model, IMAGES, TARGETS, "ig", references=REFERENCES[chosen], steps=8)
    np.testing.assert_allclose(drawn, on_those, rtol=1e-6)
    seeds = {idgi_tf.attribute(model, IMAGES, TARGETS, "ig", references=REFERENCES, nreferences=2, steps=8,
                               references_seed=seed).sum().round(6) for seed in range(6)}
    assert len(seeds) > 1


def test_several_inputs_and_a_layer():
    a, b, output = _two_inputs()
    model = keras.Model({"a": a, "b": b}, output)
    inputs = {"a": RNG.normal(size=(3, 4)).astype(np.float32), "b": RNG.normal(size=(3, 3, 2)).astype(np.float32)}
    references = {"a": RNG.normal(size=(2, 4)), "b": RNG.normal(size=(2, 3, 2))}
    maps = idgi_tf.attribute(model, inputs, [0, 1, 0], "ig", rule="idgi", references=references, steps=8)
    single = [idgi_tf.attribute(model, inputs, [0, 1, 0], "ig", rule="idgi", steps=8,
                                baseline={key: value[k] for key, value in references.items()}) for k in range(2)]
    for key in inputs:
        np.testing.assert_allclose(maps[key], (single[0][key] + single[1][key]) / 2, rtol=1e-5, atol=1e-7)

    text, ids = _text(), RNG.integers(1, 20, size=(3, 6))
    pads = np.array([[0] * 6, [1] * 6])
    at_layer = idgi_tf.attribute(text, ids, [0, 1, 0], "ig", rule="idgi", layer="embedding", references=pads, steps=8)
    per_pad = [idgi_tf.attribute(text, ids, [0, 1, 0], "ig", rule="idgi", layer="embedding", baseline=p, steps=8)
               for p in pads]
    assert at_layer.shape == (3, 6, 5)
    np.testing.assert_allclose(at_layer, np.mean(per_pad, axis=0), rtol=1e-5, atol=1e-7)


def test_steps_auto_with_references():
    model = _tanh_cnn()
    maps, gaps = idgi_tf.attribute(model, IMAGES, TARGETS, "ig", references=REFERENCES, steps="auto", tol=0.02,
                                   return_gap=True)
    change = idgi_tf.explained_output(model, IMAGES, TARGETS) - _mean_reference_output(model, REFERENCES)
    np.testing.assert_allclose(gaps.output_change, change, rtol=1e-5)
    np.testing.assert_allclose(maps.sum(axis=(1, 2, 3)) - change, gaps.absolute, atol=1e-6)
    assert (gaps.steps >= 16).all()


def test_clear_errors():
    model = _tanh_cnn()
    call = dict(model=model, inputs=IMAGES, targets=TARGETS, steps=4)
    with pytest.raises(ValueError, match="references= .*takes the place of baseline=.*and baseline="):
        idgi_tf.attribute(method="ig", references=REFERENCES, baseline=0.0, **call)
    with pytest.raises(ValueError, match="references= .*got method 'vg'"):
        idgi_tf.attribute(method="vg", references=REFERENCES, **call)
    with pytest.raises(ValueError, match="got method 'blurig'"):
        idgi_tf.attribute(method="blurig", references=REFERENCES, **call)
    with pytest.raises(ValueError, match=r"references must have shape \(K, \*one example's shape\) = \(K, 9, 7, 1\)"):
        idgi_tf.attribute(method="ig", references=REFERENCES[0], **call)
    with pytest.raises(ValueError, match="nreferences must be at most the 4 references"):
        idgi_tf.attribute(method="ig", references=REFERENCES, nreferences=5, **call)
    with pytest.raises(ValueError, match="nreferences and references_seed apply only with references="):
        idgi_tf.attribute(method="ig", nreferences=2, **call)
    with pytest.raises(ValueError, match="nreferences and references_seed apply only with references="):
        idgi_tf.attribute(method="ig", references_seed=1, **call)
    with pytest.raises(ValueError, match="got method 'smoothgrad'"):
        idgi_tf.attribute(method="smoothgrad", inner="ig", references=REFERENCES, **call)
    nan = REFERENCES.copy()
    nan[2, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="references contains NaN or Inf"):
        idgi_tf.attribute(method="ig", references=nan, **call)
    pixels = idgi_tf.attribute(method="ig", references=REFERENCES.round().astype(np.uint8), **call)
    np.testing.assert_allclose(pixels, idgi_tf.attribute(method="ig", references=REFERENCES.round(), **call))
    with pytest.raises(TypeError, match="references_seed must be an integer"):
        idgi_tf.attribute(method="ig", references=REFERENCES, nreferences=2, references_seed=0.5, **call)
