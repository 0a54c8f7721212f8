"""AttributionCallback on every model and input that attribute takes: tabular rows, token ids at an embedding,
several inputs, a regression (targets=None), a callable target; what is logged for each, and what is refused."""

import functools

import keras
import numpy as np
import pytest

import idgi_tf
import idgi_tf.metrics
from idgi_tf import viz
from idgi_tf.callbacks import AttributionCallback

FEATURES, LENGTH, VOCABULARY = 5, 6, 12
RUN = {"steps": 8, "jit_compile": False}


def tabular(count=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (count, FEATURES)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.int32) + (x[:, 2] > 1).astype(np.int32)


def token_ids(count=64, seed=0):
    """Ids in [1, VOCABULARY) (0 is the pad); the class is whether id 3 occurs."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, VOCABULARY, (count, LENGTH)).astype(np.int32)
    return ids, (ids == 3).any(axis=1).astype(np.int32)


def mlp(units=3, head="softmax", seed=0, norm=False):
    keras.utils.set_random_seed(seed)
    norms = [keras.layers.BatchNormalization()] if norm else []  # moving statistics: a training-mode call moves them
    return keras.Sequential([keras.Input((FEATURES,)), *norms, keras.layers.Dense(8, activation="tanh"),
                             keras.layers.Dense(units, activation=head)])


def text_model(head="softmax", seed=0):
    keras.utils.set_random_seed(seed)
    ids = keras.Input((LENGTH,), dtype="int32")
    h = keras.layers.Embedding(VOCABULARY, 4, name="embedding")(ids)
    h = keras.layers.GlobalAveragePooling1D()(h)
    return keras.Model(ids, keras.layers.Dense(2, activation=head, name="head")(h))


def fit(model, x, y, callbacks, loss="sparse_categorical_crossentropy", epochs=2, seed=7):
    model.compile(keras.optimizers.Adam(0.02), loss)
    keras.utils.set_random_seed(seed)
    model.fit(x, y, epochs=epochs, batch_size=16, verbose=0, callbacks=callbacks)
    return model


def change(model, x, start, targets) -> np.ndarray:
    """f(x) - f(start) per example, from the model's outputs (NumPy, not the library)."""
    rows = np.arange(len(targets))
    return np.asarray(model(x))[rows, targets] - np.asarray(model(start))[rows, targets]


def test_a_tabular_mlp_logs_histograms_metrics_and_an_idgi_gap_near_zero():
    x, y = tabular()
    baseline = x.mean(axis=0)
    callback = AttributionCallback(x[:4], y[:4], baseline=baseline, metrics=("insertion", "deletion"), **RUN)
    model = fit(mlp(), x, y, [callback])
    assert [r["epoch"] for r in callback.history] == [1, 2]
    last = callback.history[-1]
    assert last["images"] == {}  # no picture for tabular rows
    values = last["histograms"]["values/ig_idgi"]
    assert values.shape == (4 * FEATURES,)
    # The logged maps sum to f(x) - f(baseline) of the trained model (completeness), and the logged gap says so.
    want = change(model, x[:4], np.broadcast_to(baseline, (4, FEATURES)), y[:4])
    np.testing.assert_allclose(values.reshape(4, FEATURES).sum(1), want, rtol=1e-4, atol=1e-6)
    assert last["scalars"]["completeness_gap/ig_idgi"] < 1e-6 < last["scalars"]["completeness_gap/ig_plain"]
    # The metric scalar is the metric of those maps, with features removed to the same baseline.
    deletion = idgi_tf.metrics.deletion(model, x[:4], y[:4], values.reshape(4, FEATURES), baseline=baseline,
                                        jit_compile=False).means()["probability"]
    assert last["scalars"]["deletion/ig_idgi"] == pytest.approx(deletion, rel=1e-5, abs=1e-7)


def test_a_text_model_at_its_embedding_logs_a_tokens_figure_and_an_idgi_gap_near_zero(monkeypatch):
    ids, y = token_ids()
    vocabulary = ["<pad>"] + [f"w{i}" for i in range(1, VOCABULARY)]
    drawn = []

    def plot_tokens(tokens, scores, **options):
        drawn.append((tokens, np.asarray(scores)))
        return real(tokens, scores, **options)

    real = viz.plot_tokens
    monkeypatch.setattr(viz, "plot_tokens", plot_tokens)
    callback = AttributionCallback(ids[:3], y[:3], layer="embedding", baseline=0, tokens=vocabulary,
                                   metrics=("insertion",), **RUN)
    model = fit(text_model(), ids, y, [callback])
    last = callback.history[-1]
    picture = last["images"]["attributions/ig_idgi"]
    assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[-1] == 3 and picture.std() > 0
    maps = last["histograms"]["values/ig_idgi"].reshape(3, LENGTH, 4)  # (N, T, D) at the embedding
    np.testing.assert_allclose(maps.sum((1, 2)), change(model, ids[:3], np.zeros_like(ids[:3]), y[:3]),
                               rtol=1e-4, atol=1e-6)
    assert last["scalars"]["completeness_gap/ig_idgi"] < 1e-6
    tokens, scores = drawn[-1]  # the last figure: ig_idgi of epoch 2
    assert tokens == [[vocabulary[i] for i in row] for row in ids[:3]]
    np.testing.assert_allclose(scores, maps.sum(-1), rtol=1e-6)
    insertion = idgi_tf.metrics.insertion(model, ids[:3], y[:3], maps.sum(-1), baseline=0, jit_compile=False)
    assert last["scalars"]["insertion/ig_idgi"] == pytest.approx(insertion.means()["probability"], rel=1e-5)


def test_token_ids_are_shown_as_strings_without_a_vocabulary(monkeypatch):
    ids, y = token_ids(2)
    drawn = []
    real = viz.plot_tokens
    monkeypatch.setattr(viz, "plot_tokens",
                        lambda tokens, scores, **o: drawn.append(tokens) or real(tokens, scores, **o))
    callback = AttributionCallback(ids, y, layer="embedding", methods="vg", rules="plain", metrics=(), **RUN)
    callback.set_model(text_model())
    assert "attributions/vg_plain" in callback.log_epoch(0)["images"]
    assert drawn == [[[str(i) for i in row] for row in ids]]


def test_a_logit_text_model_explains_the_softmax_probability_at_its_embedding():
    ids, y = token_ids(3)
    model = text_model(head=None)
    callback = AttributionCallback(ids, y, layer="embedding", output="logit", rules="idgi", metrics=(), **RUN)
    callback.set_model(model)
    maps = callback.log_epoch(0)["histograms"]["values/ig_idgi"].reshape(3, -1)
    probability = keras.Sequential([model, keras.layers.Softmax()])
    np.testing.assert_allclose(maps.sum(1), change(probability, ids, np.zeros_like(ids), y), rtol=1e-4, atol=1e-7)


def two_input_model(seed=0):
    keras.utils.set_random_seed(seed)
    a, b = keras.Input((3,), name="a"), keras.Input((2, 2), name="b")
    joined = keras.layers.Concatenate()([a, keras.layers.Flatten()(b)])
    hidden = keras.layers.Dense(6, activation="tanh")(joined)
    return keras.Model({"a": a, "b": b}, keras.layers.Dense(3, activation="softmax")(hidden))


def test_a_two_input_model_logs_both_maps_and_completeness_over_both():
    rng = np.random.default_rng(1)
    x = {"a": rng.normal(size=(48, 3)).astype(np.float32), "b": rng.normal(size=(48, 2, 2)).astype(np.float32)}
    y = (x["a"][:, 0] > 0).astype(np.int32)
    few = {key: value[:4] for key, value in x.items()}
    callback = AttributionCallback(few, y[:4], **RUN)
    assert callback.metrics == ()  # the default metrics take one input array
    model = fit(two_input_model(), x, y, [callback])
    last = callback.history[-1]
    values = last["histograms"]["values/ig_idgi"]
    assert values.shape == (4 * (3 + 4),) and last["images"] == {}
    a, b = values[: 4 * 3].reshape(4, 3), values[4 * 3:].reshape(4, 4)  # tf.nest order: "a", then "b"
    zeros = {key: np.zeros_like(value) for key, value in few.items()}
    np.testing.assert_allclose(a.sum(1) + b.sum(1), change(model, few, zeros, y[:4]), rtol=1e-4, atol=1e-6)
    assert set(last["scalars"]) == {"completeness_gap/ig_plain", "completeness_gap/ig_idgi"}
    assert last["scalars"]["completeness_gap/ig_idgi"] < 1e-6
    with pytest.raises(ValueError, match="metric 'insertion' cannot score these maps: .*several inputs"):
        AttributionCallback(few, y[:4], metrics=("insertion",))


def test_a_regression_with_targets_none_explains_its_single_output():
    x, _ = tabular()
    y = (2 * x[:, 0] - x[:, 3]).astype(np.float32)
    callback = AttributionCallback(x[:4], None, **RUN)
    model = fit(mlp(units=1, head=None), x, y, [callback], loss="mse")
    last = callback.history[-1]["scalars"]
    assert last["completeness_gap/ig_idgi"] < 1e-5
    maps = callback.history[-1]["histograms"]["values/ig_idgi"].reshape(4, FEATURES)
    want = np.asarray(model(x[:4]))[:, 0] - np.asarray(model(np.zeros_like(x[:4])))[:, 0]
    np.testing.assert_allclose(maps.sum(1), want, rtol=1e-4, atol=1e-6)
    insertion = idgi_tf.metrics.insertion(model, x[:4], np.zeros(4, np.int32), maps, jit_compile=False)
    assert last["insertion/ig_idgi"] == pytest.approx(insertion.means()["probability"], rel=1e-5, abs=1e-7)
    with pytest.raises(ValueError, match="output='logit' puts a softmax .* one output unit"):
        AttributionCallback(x[:4], None, output="logit").set_model(model)


def test_a_callable_target_is_explained_on_the_outputs_as_they_are():
    x, _ = tabular(4)
    model = mlp()

    def margin(outputs):
        return outputs[:, 1] - outputs[:, 0]

    callback = AttributionCallback(x, margin, metrics=None, rules="idgi", **RUN)
    assert callback.metrics == ()
    callback.set_model(model)
    maps = callback.log_epoch(0)["histograms"]["values/ig_idgi"].reshape(4, FEATURES)
    out, start = np.asarray(model(x)), np.asarray(model(np.zeros_like(x)))
    np.testing.assert_allclose(maps.sum(1), (out[:, 1] - out[:, 0]) - (start[:, 1] - start[:, 0]), rtol=1e-4,
                               atol=1e-6)


@pytest.mark.parametrize("kind", ["tabular", "text"])
def test_training_is_unchanged_by_the_callback_on_non_image_models(kind):
    x, y = tabular() if kind == "tabular" else token_ids()
    build = functools.partial(mlp, norm=True) if kind == "tabular" else text_model
    options = {"layer": "embedding", "tokens": [str(i) for i in range(VOCABULARY)]} if kind == "text" else {}
    plain = fit(build(seed=5), x, y, [])
    callback = AttributionCallback(x[:4], None, methods=("ig", "gxi"), metrics=("insertion", "sensitivity_n"),
                                   at_start=True, **options, **RUN)
    watched = fit(build(seed=5), x, y, [callback])
    assert len(callback.history) == 3 and "sensitivity_n/ig_idgi" in callback.history[-1]["scalars"]
    weights = plain.get_weights()
    assert weights and all(np.array_equal(a, b) for a, b in zip(weights, watched.get_weights()))


@pytest.mark.parametrize("make, error, message", [
    (lambda x, ids: AttributionCallback(x, metrics=("localization",)), ValueError,
     r"metric 'localization' is an image metric.*\(N, H, W, C\), got inputs of shape \(4, 5\)"),
    (lambda x, ids: AttributionCallback(x, metrics=("sic_aic",)), ValueError,
     r"'sic_aic' is an image metric.*\(4, 5\)"),
    (lambda x, ids: AttributionCallback(x, metrics=("mufidelity",)), ValueError,
     r"'mufidelity' cuts the features into grid\*\*2 = 81 groups, but inputs of shape \(4, 5\) have 5 features"),
    (lambda x, ids: AttributionCallback(ids, layer="embedding", metrics=("msssim",)), ValueError,
     r"'msssim' is an image metric.*\(4, 6\)"),
    (lambda x, ids: AttributionCallback(x, lambda out: out[:, 0], output="logit", metrics=()), ValueError,
     "output='logit' puts a softmax over the model's classes, but a callable target"),
    (lambda x, ids: AttributionCallback(x, lambda out: out[:, 0], metrics=("insertion",)), ValueError,
     "metric 'insertion' cannot score these maps: .*callable target"),
    (lambda x, ids: AttributionCallback(x, methods=("blurig",)), ValueError,
     r"method 'blurig' is an image method.*shape \(4, 5\)"),
    (lambda x, ids: AttributionCallback(x, tokens=["a", "b"]), ValueError, "tokens is the vocabulary of integer"),
    (lambda x, ids: AttributionCallback(ids, layer="embedding", tokens=["a", "b"]), ValueError,
     r"tokens must name every id of the inputs: it has 2 entries"),
    (lambda x, ids: AttributionCallback(x, masks=np.ones((4, 5), bool)), ValueError, "masks are region masks"),
    (lambda x, ids: AttributionCallback(x, layer=3), TypeError, "layer must be a layer of the model or its name"),
    (lambda x, ids: AttributionCallback(ids, layer="embedding", baseline=0.5), TypeError,
     "baseline must hold integer ids"),
    (lambda x, ids: AttributionCallback([x, x], baseline=[0.0]), ValueError,
     r"baseline must have the inputs' structure \(a list of 2 arrays\), got a list of 1"),
])
def test_bad_combinations_are_refused_at_construction(make, error, message):
    x, ids = tabular(4)[0], token_ids(4)[0]
    with pytest.raises(error, match=message):
        make(x, ids)


def test_what_needs_the_model_is_refused_in_set_model_before_any_epoch():
    ids, y = token_ids(4)
    callback = AttributionCallback(ids, y, layer="head", metrics=("insertion",))
    with pytest.raises(ValueError, match=r"layer='head' outputs \(None, 2\), not one vector per token"):
        callback.set_model(text_model())
    with pytest.raises(ValueError, match="layer='embeding' is not a layer of model .*did you mean 'embedding'"):
        AttributionCallback(ids, y, layer="embeding").set_model(text_model())
    # Without layer= integers are values (8-bit pixels): a model that takes token ids refuses them as floats.
    with pytest.raises(TypeError, match=r"model takes integers \(int32: token ids\?\).*layer="):
        AttributionCallback(ids, y).set_model(text_model())
    x, y = tabular(4)
    with pytest.raises(ValueError, match=r"inputs have per-example shape \(3,\) but the model expects \(5,\)"):
        AttributionCallback(x[:, :3], y).set_model(mlp())
    with pytest.raises(ValueError, match="the model takes 2 input"):
        AttributionCallback(x, y).set_model(two_input_model())


def test_modified_gradients_at_an_embedding_are_checked_from_the_layer_on():
    ids, y = token_ids(4)
    callback = AttributionCallback(ids, y, layer="embedding", methods=("elrp", "deeplift"), rules="plain",
                                   metrics=(), baseline=0, **RUN)
    callback.set_model(text_model())  # the Embedding is at the layer: not run through the rules
    callback.on_epoch_end(0)
    assert {"values/elrp_plain", "values/deeplift_plain"} <= set(callback.history[-1]["histograms"])
