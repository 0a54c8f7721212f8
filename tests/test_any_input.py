"""attribute() on any Keras model: inputs of any rank, several inputs, ``layer=``, and every form of targets.

Completeness (IDGI maps sum to f(x) - f(baseline)), oracles (the model split at the layer, PAIR's IG on
tabular rows), one pass for both rules, batching, and the errors named before any model pass.
"""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import CountingModel
from saliency.core import integrated_gradients

import idgi_tf
from idgi_tf import viz

RNG = np.random.default_rng(0)
STEPS = 24


def _mlp(bias: bool = False):
    """A bias-free ReLU MLP (its gradient vanishes at the zero baseline, the hard case for IDGI)."""
    keras.utils.set_random_seed(1)
    return keras.Sequential([keras.Input((7,)), keras.layers.Dense(16, activation="relu", use_bias=bias),
                             keras.layers.Dense(16, activation="relu", use_bias=bias), keras.layers.Dense(3)])


def _conv1d():
    keras.utils.set_random_seed(2)
    return keras.Sequential([keras.Input((9, 4)), keras.layers.Conv1D(6, 3, activation="relu"),
                             keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(3)])


def _conv3d():
    keras.utils.set_random_seed(3)
    return keras.Sequential([keras.Input((4, 5, 3, 2)), keras.layers.Conv3D(4, 2, activation="tanh"),
                             keras.layers.Flatten(), keras.layers.Dense(2)])


def _text(mask_zero: bool = False, recurrent: bool = False):
    """Token ids (N, 6) -> Embedding -> a ReLU Conv1D (or an LSTM) -> two logits."""
    keras.utils.set_random_seed(4)
    ids = keras.Input((6,), dtype="int32")
    embedded = keras.layers.Embedding(20, 5, mask_zero=mask_zero, name="embedding")(ids)
    if recurrent:
        hidden = keras.layers.LSTM(4)(embedded)
    else:
        hidden = keras.layers.GlobalAveragePooling1D()(keras.layers.Conv1D(4, 2, activation="relu")(embedded))
    return keras.Model(ids, keras.layers.Dense(2, name="logits")(hidden))


def _two_inputs():
    keras.utils.set_random_seed(5)
    a, b = keras.Input((4,), name="a"), keras.Input((3, 2), name="b")
    joined = keras.layers.Concatenate()([keras.layers.Dense(5, activation="tanh")(a), keras.layers.Flatten()(b)])
    hidden = keras.layers.Dense(6, activation="relu")(joined)
    return a, b, keras.layers.Dense(2)(hidden)


def _segmenter():
    """A fully convolutional net: a mask of 3-class logits per pixel (N, 8, 10, 3)."""
    keras.utils.set_random_seed(6)
    return keras.Sequential([keras.Input((8, 10, 1)), keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
                             keras.layers.Conv2D(3, 3, padding="same")])


def _region(outputs):
    return tf.reduce_sum(outputs[:, 2:5, 3:7, 1], axis=(1, 2))


def _head(outputs):
    return outputs["score"][:, 0]


def _multi_output():
    keras.utils.set_random_seed(7)
    x = keras.Input((5,))
    hidden = keras.layers.Dense(8, activation="tanh")(x)
    heads = {"classes": keras.layers.Dense(3)(hidden), "score": keras.layers.Dense(1, name="score")(hidden)}
    return keras.Model(x, heads)


def _regressor():
    keras.utils.set_random_seed(8)
    return keras.Sequential([keras.Input((5,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])


def _cases():
    """(name, model, inputs, targets, keyword arguments of attribute, zero-baseline inputs)."""
    text_ids = RNG.integers(1, 20, size=(3, 6))
    a, b, out = _two_inputs()
    two = {"a": RNG.normal(size=(4, 4)).astype("float32"), "b": RNG.normal(size=(4, 3, 2)).astype("float32")}
    keras.utils.set_random_seed(9)
    hidden_model = _mlp(bias=True)
    return [
        ("mlp (N, D)", _mlp(), RNG.normal(size=(5, 7)).astype("float32"), [0, 1, 2, 0, 1], {}),
        ("conv1d (N, T, D)", _conv1d(), RNG.normal(size=(3, 9, 4)).astype("float32"), 1, {}),
        ("conv3d (N, D, H, W, C)", _conv3d(), RNG.normal(size=(2, 4, 5, 3, 2)).astype("float32"), 0, {}),
        ("two inputs (dict)", keras.Model({"a": a, "b": b}, out), two, 1, {}),
        ("two inputs (list)", keras.Model([a, b], out), [two["a"], two["b"]], 0, {}),
        ("layer embedding", _text(), text_ids, 1, {"layer": "embedding", "baseline": 0}),
        ("layer hidden dense", hidden_model, RNG.normal(size=(3, 7)).astype("float32"), 2,
         {"layer": hidden_model.layers[0].name}),
        ("segmentation region", _segmenter(), RNG.normal(size=(2, 8, 10, 1)).astype("float32"), _region, {}),
        ("regression, targets=None", _regressor(), RNG.normal(size=(4, 5)).astype("float32"), None, {}),
        ("multi-output head", _multi_output(), RNG.normal(size=(3, 5)).astype("float32"), _head, {}),
    ]


CASES = _cases()


def _zeros_like(inputs):
    return tf.nest.map_structure(np.zeros_like, inputs)


def _total(maps) -> np.ndarray:
    """Each example's sum over every map (all inputs together)."""
    return sum(m.reshape(len(m), -1).sum(axis=1).astype(np.float64) for m in tf.nest.flatten(maps))


@pytest.mark.parametrize("method", ["ig", "gig"])
@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_idgi_maps_sum_to_the_output_change_at_every_rank(case, method):
    _, model, inputs, targets, options = case
    maps = idgi_tf.attribute(model, inputs, targets, method, rule=("plain", "idgi"), steps=STEPS, **options)
    change = (idgi_tf.explained_output(model, inputs, targets).astype(np.float64)
              - idgi_tf.explained_output(model, _zeros_like(inputs), targets))
    for got, want in zip(tf.nest.flatten(maps["idgi"]), tf.nest.flatten(maps["plain"])):
        assert got.shape == want.shape
    np.testing.assert_allclose(_total(maps["idgi"]), change, rtol=1e-5, atol=1e-6 * np.abs(change).max())
    assert np.abs(_total(maps["idgi"])).max() > 0  # a real change, not an empty map


def test_maps_have_the_shape_of_the_inputs_or_of_the_layer():
    shapes = {name: tf.nest.map_structure(lambda m: m.shape, idgi_tf.attribute(
        model, inputs, targets, "vg", **{key: value for key, value in opts.items() if key != "baseline"}))
        for name, model, inputs, targets, opts in CASES}
    assert shapes["conv3d (N, D, H, W, C)"] == (2, 4, 5, 3, 2)
    assert shapes["two inputs (dict)"] == {"a": (4, 4), "b": (4, 3, 2)}
    assert shapes["two inputs (list)"] == [(4, 4), (4, 3, 2)]
    assert shapes["layer embedding"] == (3, 6, 5)
    assert shapes["layer hidden dense"] == (3, 16)


def test_layer_ig_equals_input_ig_of_the_model_split_at_the_layer():
    model = _mlp(bias=True)
    x = RNG.normal(size=(4, 7)).astype("float32")
    base = RNG.normal(size=(4, 7)).astype("float32")
    first = model.layers[0]
    head = keras.Sequential([keras.Input((16,)), *model.layers[1:]])  # the same layers from the split on
    at_layer = idgi_tf.attribute(model, x, 1, "ig", layer=first.name, baseline=base, rule=("plain", "idgi"),
                                 steps=STEPS)
    activations, base_activations = first(x).numpy(), first(base).numpy()
    on_head = idgi_tf.attribute(head, activations, 1, "ig", baseline=base_activations, rule=("plain", "idgi"),
                                steps=STEPS)
    for rule in ("plain", "idgi"):
        np.testing.assert_allclose(at_layer[rule], on_head[rule], rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("error::RuntimeWarning")  # no mask, no bypass: the path starts at f(baseline)
def test_layer_ig_at_an_embedding_equals_ig_of_the_head_on_the_embedded_tokens():
    model = _text()
    ids = RNG.integers(1, 20, size=(3, 6))
    pads = np.zeros_like(ids)
    table = model.get_layer("embedding").embeddings.numpy()
    head = keras.Sequential([keras.Input((6, 5)), *model.layers[2:]])
    got = idgi_tf.attribute(model, ids, [0, 1, 1], "ig", layer="embedding", baseline=pads, steps=STEPS)
    want = idgi_tf.attribute(head, table[ids], [0, 1, 1], "ig", baseline=table[pads], steps=STEPS)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_ig_on_tabular_rows_equals_pair_saliency():
    model = _mlp(bias=True)
    rows = RNG.normal(size=(3, 7)).astype("float32")
    m = 20
    ours = idgi_tf.attribute(model, rows, 2, "ig", steps=m)
    gxi = idgi_tf.attribute(model, rows, 2, "gxi")

    def call(batch, call_model_args=None, expected_keys=None):
        batch = tf.constant(np.asarray(batch, np.float32))
        with tf.GradientTape() as tape:
            tape.watch(batch)
            value = model(batch, training=False)[:, 2]
        return {integrated_gradients.INPUT_OUTPUT_GRADIENTS: tape.gradient(value, batch).numpy()}

    for row, got, at_input in zip(rows, ours, gxi):
        want = integrated_gradients.IntegratedGradients().GetMask(row, call, x_steps=m + 1, batch_size=4)
        # PAIR: alphas linspace(0, 1, m + 1) / (m + 1); ours j / m, j < m (see test_reference_pair).
        np.testing.assert_allclose(m * got + at_input, (m + 1) * want, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("shape", [(5, 7), (3, 9, 4)], ids=["rank 2", "rank 3"])
def test_one_pass_serves_both_rules_at_every_rank(shape):
    model = _mlp() if len(shape) == 2 else _conv1d()
    counting = CountingModel(model)
    x = RNG.normal(size=shape).astype("float32")
    idgi_tf.attribute(counting, x, 1, "ig", rule=("plain", "idgi"), steps=STEPS, batch_size=8)
    count = int(counting.inputs.numpy())
    idgi_tf.attribute(counting, x, 1, "ig", rule="plain", steps=STEPS, batch_size=8)
    assert count == int(counting.inputs.numpy()) - count
    # steps + 1 points per example, padded to whole chunks of at most batch_size inputs.
    assert shape[0] * (STEPS + 1) <= count <= shape[0] * (STEPS + 1) + 8 * shape[0]


class _Counter(keras.layers.Layer):
    """Identity that counts the rows through it (after the attribution layer: the head's passes)."""

    def build(self, input_shape):
        self.rows = self.add_weight(shape=(), dtype="int64", initializer="zeros", trainable=False)

    def call(self, x):
        self.rows.assign_add(tf.cast(tf.shape(x)[0], tf.int64))
        return x


def test_layer_attribution_runs_steps_plus_one_head_passes_per_example():
    ids = keras.Input((6,), dtype="int32")
    counter = _Counter(name="counter")
    embedded = counter(keras.layers.Embedding(20, 5, name="embedding")(ids))
    model = keras.Model(ids, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(embedded)))
    tokens = RNG.integers(1, 20, size=(4, 6))
    idgi_tf.attribute(model, tokens, 0, "ig", layer="embedding", rule=("plain", "idgi"), steps=STEPS, batch_size=25)
    # 4 * 25 head rows, plus one pass each for the inputs' and the baseline's activations and one for f(baseline)
    # (is the path's start the baseline's? 4 rows each; the targets are checked from the model's declared
    # output): nothing runs twice for the second rule.
    assert int(counter.rows.numpy()) == 4 * (STEPS + 1) + 3 * 4


@pytest.mark.parametrize("case", [CASES[1], CASES[3], CASES[5]], ids=["conv1d", "two inputs", "embedding"])
def test_results_do_not_depend_on_batch_size_or_xla(case):
    _, model, inputs, targets, options = case
    reference = idgi_tf.attribute(model, inputs, targets, "ig", rule=("plain", "idgi"), steps=STEPS,
                                  batch_size=1, **options)
    for settings in ({"batch_size": 7}, {"batch_size": 64, "jit_compile": True}):
        got = idgi_tf.attribute(model, inputs, targets, "ig", rule=("plain", "idgi"), steps=STEPS,
                                **settings, **options)
        for a, b in zip(tf.nest.flatten(got), tf.nest.flatten(reference)):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_a_masked_embedding_keeps_the_inputs_mask_and_the_gap_reports_the_start():
    model = _text(mask_zero=True, recurrent=True)
    ids = np.array([[3, 4, 5, 0, 0, 0], [7, 1, 2, 9, 0, 0]])
    with pytest.warns(RuntimeWarning, match=r"layer='embedding': for 2 of 2 examples the path starts at f = .* "
                                            r"where f\(baseline\) = .*Embedding\(mask_zero=True\)"):
        maps, gap = idgi_tf.attribute(model, ids, 1, "ig", layer="embedding", rule="idgi", steps=STEPS,
                                      return_gap=True)
    # Completeness to the change the path made; its end is the model itself, padding masked as in model(ids).
    np.testing.assert_allclose(gap.absolute, 0.0, atol=1e-6)
    with pytest.warns(RuntimeWarning, match="bypasses the layer"):
        start = idgi_tf.attribute(model, ids, 1, "ig", layer="embedding", rule="idgi", steps=1, return_gap=True)[1]
    end = model(ids).numpy()[:, 1]
    np.testing.assert_allclose(maps.sum(axis=(1, 2)), gap.output_change, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(start.output_change, gap.output_change, rtol=1e-5)
    np.testing.assert_allclose(idgi_tf.explained_output(model, ids, 1), end, rtol=1e-6)
    np.testing.assert_allclose(maps[ids == 0], 0.0, atol=1e-7)  # masked steps do not reach the output
    assert (np.abs(maps[ids != 0]).sum(axis=-1) > 0).all()


def test_smoothgrad_elrp_and_occlusion_take_any_rank():
    model, x = _mlp(bias=True), RNG.normal(size=(3, 7)).astype("float32")
    for method in ("smoothgrad", "elrp", "deeplift", "occlusion", "gxi"):
        maps = idgi_tf.attribute(model, x, 1, method, **({"nsamples": 4} if method == "smoothgrad" else {}))
        assert maps.shape == x.shape and np.isfinite(maps).all() and np.abs(maps).max() > 0


# --------------------------------------------------------------------------- errors, before any pass


def _counting_mlp():
    return CountingModel(_mlp())


@pytest.mark.parametrize("method", ["blurig", "rise"])
def test_image_methods_on_other_ranks_are_refused_before_any_pass(method):
    counting = _counting_mlp()
    with pytest.raises(ValueError, match=rf"method '{method}' is an image method.*\(3, 7\)"):
        idgi_tf.attribute(counting, RNG.normal(size=(3, 7)), 0, method)
    assert int(counting.inputs.numpy()) == 0


def test_image_methods_at_a_layer_are_refused():
    with pytest.raises(ValueError, match="method 'blurig' is an image method.*not a layer's activations"):
        idgi_tf.attribute(_text(), RNG.integers(1, 20, size=(2, 6)), 0, "blurig", layer="embedding")


def test_integer_inputs_without_a_layer_are_refused_with_the_way_out():
    with pytest.raises(ValueError, match="integers.*layer=.*embedding"):
        idgi_tf.attribute(_text(), RNG.integers(1, 20, size=(2, 6)), 0, "ig")


def test_a_layer_not_in_the_model_gets_close_names():
    with pytest.raises(ValueError, match=r"layer='embeding' is not a layer of model .*did you mean 'embedding'"):
        idgi_tf.attribute(_text(), RNG.integers(1, 20, size=(2, 6)), 0, "ig", layer="embeding")
    with pytest.raises(ValueError, match="not one of this model's"):
        idgi_tf.attribute(_text(), RNG.integers(1, 20, size=(2, 6)), 0, "ig", layer=keras.layers.Dense(2))


def test_a_shared_layer_is_refused():
    x = keras.Input((4,))
    shared = keras.layers.Dense(4, name="shared")
    model = keras.Model(x, keras.layers.Dense(2)(shared(shared(x))))
    with pytest.raises(ValueError, match="layer='shared' is called 2 times"):
        idgi_tf.attribute(model, RNG.normal(size=(2, 4)), 0, "ig", layer="shared")


def test_a_callable_target_of_the_wrong_shape_is_named():
    counting = _counting_mlp()
    with pytest.raises(ValueError, match=r"targets, a callable, must return one scalar per example.*\(1, 3\)"):
        idgi_tf.attribute(counting, RNG.normal(size=(3, 7)), lambda out: out, "ig")
    assert int(counting.inputs.numpy()) == 1  # the one-example check, nothing more


def test_targets_none_needs_one_output_unit_and_structured_outputs_need_a_callable():
    with pytest.raises(ValueError, match="targets=None needs a model with one output unit.*3 outputs"):
        idgi_tf.attribute(_mlp(), RNG.normal(size=(2, 7)), None, "ig")
    with pytest.raises(ValueError, match="pass targets as a callable"):
        idgi_tf.attribute(_multi_output(), RNG.normal(size=(2, 5)), 0, "ig")


@pytest.mark.parametrize("inputs, pattern", [
    (lambda two: [two["a"], two["b"], two["b"]], "takes 2 input.*got 3 array"),
    (lambda two: {"a": two["a"], "c": two["b"]}, r"must have the model's input names \['a', 'b'\]"),
    (lambda two: {"a": two["a"], "b": two["b"][:, :2]}, r"input 1 \('b'\) has shape \(4, 2, 2\)"),
    (lambda two: {"a": two["a"], "b": two["b"][:3]}, "same number of examples"),
    (lambda two: two["a"], "takes 2 input.*must be a list or dict of 2 arrays"),
])
def test_inputs_that_do_not_match_the_model_structure_are_named(inputs, pattern):
    a, b, out = _two_inputs()
    two = {"a": RNG.normal(size=(4, 4)), "b": RNG.normal(size=(4, 3, 2))}
    with pytest.raises(ValueError, match=pattern):
        idgi_tf.attribute(keras.Model({"a": a, "b": b}, out), inputs(two), 0, "ig")


def test_a_baseline_in_another_structure_is_named():
    a, b, out = _two_inputs()
    two = {"a": RNG.normal(size=(4, 4)), "b": RNG.normal(size=(4, 3, 2))}
    with pytest.raises(ValueError, match="baseline must have the inputs' structure"):
        idgi_tf.attribute(keras.Model({"a": a, "b": b}, out), two, 0, "ig", baseline=[0.0, 0.0])
    maps = idgi_tf.attribute(keras.Model({"a": a, "b": b}, out), two, 0, "ig", baseline={"a": 1.0, "b": 0.0},
                             rule="idgi", steps=8)
    start = {"a": np.ones((4, 4)), "b": np.zeros((4, 3, 2))}
    change = (idgi_tf.explained_output(keras.Model({"a": a, "b": b}, out), two, 0)
              - idgi_tf.explained_output(keras.Model({"a": a, "b": b}, out), start, 0))
    np.testing.assert_allclose(_total(maps), change, rtol=1e-5, atol=1e-7)


def test_integer_pixels_are_values_and_floats_for_token_ids_are_refused():
    keras.utils.set_random_seed(10)
    model = keras.Sequential([keras.Input((6, 5, 3)), keras.layers.Rescaling(1 / 255.0), keras.layers.Conv2D(2, 3),
                              keras.layers.Flatten(), keras.layers.Dense(2)])
    pixels = RNG.integers(0, 256, size=(2, 6, 5, 3)).astype(np.uint8)
    got = idgi_tf.attribute(model, pixels, 1, "ig", steps=8)
    np.testing.assert_array_equal(got, idgi_tf.attribute(model, pixels.astype(np.float32), 1, "ig", steps=8))
    with pytest.raises(TypeError, match=r"model takes integers \(int32: token ids\?\).*got floats.*layer="):
        idgi_tf.attribute(_text(), RNG.integers(1, 20, size=(2, 6)).astype(np.float32), 0, "ig", layer="embedding")


def test_callable_targets_defined_anew_do_not_grow_the_cache_without_bound(monkeypatch):
    monkeypatch.setattr(idgi_tf.runtime, "MOST_CACHED", 4)
    model, x = _regressor(), RNG.normal(size=(2, 5)).astype("float32")
    first = lambda out: out[:, 0]  # noqa: E731
    want = idgi_tf.attribute(model, x, first, "vg")
    for _ in range(6):
        np.testing.assert_allclose(idgi_tf.attribute(model, x, lambda out: out[:, 0], "vg"), want)
    assert len(model._idgi_tf_compiled) <= 4


def test_forward_only_work_takes_several_inputs_with_token_ids():
    keras.utils.set_random_seed(11)
    ids, values = keras.Input((6,), dtype="int32"), keras.Input((3,))
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(50, 8, name="embedding")(ids))
    model = keras.Model([ids, values], keras.layers.Dense(2)(keras.layers.Concatenate()([pooled, values])))
    tokens, rows = RNG.integers(1, 50, size=(3, 6)), RNG.normal(size=(3, 3)).astype("float32")
    want = model([tokens, rows]).numpy()[:, 1]
    np.testing.assert_allclose(idgi_tf.explained_output(model, [tokens, rows], 1), want, rtol=1e-6)
    maps = idgi_tf.attribute(model, [tokens, rows], 1, "occlusion", baseline=[0, 0.0])
    dropped = tokens.copy()
    dropped[:, 2] = 0
    np.testing.assert_allclose(maps[0][:, 2], want - model([dropped, rows]).numpy()[:, 1], rtol=1e-5, atol=1e-7)
    assert maps[0].dtype == np.float32 and maps[1].shape == (3, 3)
    # The values bypass the embedding: they keep their inputs along the path, so a baseline of zeros for them
    # is not where the path starts (warned); with the values themselves as their baseline, it is.
    with pytest.warns(RuntimeWarning, match="for 3 of 3 examples the path starts at"):
        idgi_tf.attribute(model, [tokens, rows], 1, "ig", layer="embedding", rule="idgi", steps=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ig = idgi_tf.attribute(model, [tokens, rows], 1, "ig", layer="embedding", baseline=[0, rows], rule="idgi",
                               steps=8)
    change = want - idgi_tf.explained_output(model, [np.zeros_like(tokens), rows], 1)
    np.testing.assert_allclose(ig.sum(axis=(1, 2)), change, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="integers.*needs gradients.*layer="):
        idgi_tf.attribute(model, [tokens, rows], 1, "ig")


def test_several_inputs_where_one_array_is_expected_and_rule_dicts_are_named():
    model = _mlp()
    with pytest.raises(ValueError, match="images must be one array .*list of arrays of different shapes"):
        idgi_tf.metrics.deletion(model, [np.ones((2, 7)), np.ones((2, 3))], 0, np.ones((2, 7)))
    with pytest.raises(TypeError, match=r"images must be one array .*a dict with keys \['a'\]"):
        idgi_tf.metrics.deletion(model, {"a": np.ones((2, 7))}, 0, np.ones((2, 7)))
    with pytest.raises(ValueError, match=r"maps at a token embedding \(N, T, D\): pass the per-token sums maps.sum"):
        idgi_tf.metrics.deletion(_text(), np.ones((2, 6), np.int32), 0, np.ones((2, 6, 5)))
    with pytest.raises(TypeError, match=r"scores must be an array, got a dict.*maps\['idgi'\]"):
        viz.plot_features(list("abcdefg"), {"plain": np.ones((2, 7)), "idgi": np.ones((2, 7))})


@pytest.mark.parametrize("recurrent", [keras.layers.LSTM, keras.layers.GRU])
def test_a_sequential_model_keeps_its_mask_at_the_layer(recurrent):
    keras.utils.set_random_seed(12)
    embedding = keras.layers.Embedding(20, 4, name="embedding", mask_zero=True)
    model = keras.Sequential([keras.Input((6,), dtype="int32"), embedding, recurrent(3), keras.layers.Dense(2)])
    ids = np.array([[3, 4, 5, 0, 0, 0], [7, 1, 2, 9, 8, 0]], np.int32)
    activations = embedding(ids)
    with tf.GradientTape() as tape:
        tape.watch(activations)
        logit = model.layers[2](model.layers[1](activations, mask=embedding.compute_mask(ids)))[:, 1]
    want = (tape.gradient(logit, activations) * activations).numpy()
    got = idgi_tf.attribute(model, ids, 1, "gxi", layer="embedding")
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    assert (got[ids == 0] == 0).all() and (np.abs(got[ids != 0]).sum(-1) > 0).all()



def test_elrp_is_gradient_times_input_on_a_relu_text_cnn_at_its_embedding():
    model, ids = _text(), RNG.integers(1, 20, size=(4, 6))  # Embedding -> Conv1D(ReLU) -> average -> Dense
    elrp = idgi_tf.attribute(model, ids, [0, 1, 1, 0], "elrp", layer="embedding", epsilon=1e-9)
    gxi = idgi_tf.attribute(model, ids, [0, 1, 1, 0], "gxi", layer="embedding")
    np.testing.assert_allclose(elrp, gxi, rtol=1e-4, atol=1e-6 * np.abs(gxi).max())
    assert np.abs(gxi).max() > 0


def test_maps_that_overflow_are_warned_naming_the_examples():
    def root(x):  # sqrt(|x|): its gradient is infinite at 0
        return tf.reduce_sum(tf.sqrt(tf.abs(x)), axis=1, keepdims=True)

    rows = np.array([[1.0, 2.0], [0.0, 3.0], [4.0, 5.0]], np.float32)
    with pytest.warns(RuntimeWarning, match=r"method 'vg' \(rule 'plain'\): the maps of 1 of 3 examples hold NaN or "
                                            r"Inf \(first: example 1\)"):
        idgi_tf.attribute(root, rows, None, "vg")

