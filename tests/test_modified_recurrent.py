"""epsilon-LRP and DeepLIFT-Rescale through LSTM and GRU layers (issue 31, item 1).

Oracles: Keras' own layers (the step-by-step re-run must give their outputs), a NumPy re-derivation of the
rules on a one-unit LSTM (forward and modified backward written out by hand), the theory (the rules differ
from plain gradients on sigmoid/tanh; summation-to-delta fails through multiplicative gates), masking
(a masked step keeps the previous state, so its token gets no attribution), XLA.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import idgi_tf
from idgi_tf.attribution.modified_gradients import EPSILON, ModifiedModel, UnsupportedLayerError

RNG = np.random.default_rng(31)
T, D = 5, 3


def _recurrent(kind, **options):
    biases = keras.initializers.RandomNormal(0.0, 0.5)
    if kind == "lstm":
        return keras.layers.LSTM(4, bias_initializer=biases, **options)
    if kind == "gru-reset-before":
        return keras.layers.GRU(4, bias_initializer=biases, reset_after=False, **options)
    return keras.layers.GRU(4, bias_initializer=biases, **options)


def _sequence_model(layer):
    """(N, T, D) floats and an (N, T) boolean mask -> ``layer`` (its mask given as Keras' graph gives it)."""
    keras.utils.set_random_seed(0)
    x, mask = keras.Input((T, D)), keras.Input((T,), dtype="bool")
    return keras.Model([x, mask], layer(x, mask=mask))


CASES = [(kind, {"return_sequences": sequences, "go_backwards": backwards})
         for kind in ("lstm", "gru", "gru-reset-before") for sequences in (False, True) for backwards in (False, True)]


@pytest.mark.parametrize("kind, options", CASES, ids=[f"{k}-{'seq' if o['return_sequences'] else 'last'}"
                                                      f"{'-backwards' if o['go_backwards'] else ''}"
                                                      for k, o in CASES])
def test_the_step_by_step_rerun_gives_keras_outputs_with_and_without_mask(kind, options):
    model = _sequence_model(_recurrent(kind, **options))
    x = RNG.normal(size=(4, T, D)).astype("float32")
    masks = [np.ones((4, T), bool), np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 1, 1, 0, 1], [1, 0, 0, 0, 0]],
                                             bool)]
    for mask in masks:
        for method in ("elrp", "deeplift"):
            rerun = ModifiedModel(model, method)([x, mask]).numpy()
            np.testing.assert_allclose(rerun, model([x, mask]).numpy(), rtol=1e-5, atol=1e-6)


def test_bidirectional_and_states_rerun_as_keras():
    """Bidirectional in every merge mode, return_state and initial_state (an encoder feeding a decoder),
    zero_output_for_mask."""
    keras.utils.set_random_seed(1)
    x, mask = keras.Input((T, D)), keras.Input((T,), dtype="bool")
    outputs = [keras.layers.Bidirectional(_recurrent(kind, return_sequences=True), merge_mode=merge)(x, mask=mask)
               for kind, merge in (("lstm", "concat"), ("gru", "mul"), ("lstm", "ave"), ("gru", "sum"))]
    outputs += list(keras.layers.Bidirectional(_recurrent("lstm"), merge_mode=None)(x, mask=mask))
    encoded, *states = _recurrent("lstm", return_state=True)(x, mask=mask)
    outputs += [encoded, _recurrent("lstm", return_sequences=True, go_backwards=True)(x, initial_state=states)]
    outputs.append(_recurrent("gru", return_sequences=True, zero_output_for_mask=True)(x, mask=mask))
    model = keras.Model([x, mask], outputs)
    inputs = [RNG.normal(size=(3, T, D)).astype("float32"), np.array([[1, 1, 0, 0, 0], [1] * 5, [0, 1, 1, 0, 1]], bool)]
    for got, want in zip(ModifiedModel(model, "elrp")(inputs), model(inputs)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- a one-unit LSTM by hand

def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _forward(x, kernel, recurrent, bias):
    """The one-unit LSTM on ``x`` (T, D) in NumPy, keeping every gate's pre-activation ``z`` and state."""
    h, c, steps = 0.0, 0.0, []
    for x_t in x:
        z = x_t @ kernel + h * recurrent + bias  # (4,): i, f, c, o
        i, f, g, o = _sigmoid(z[0]), _sigmoid(z[1]), np.tanh(z[2]), _sigmoid(z[3])
        c_new = f * c + i * g
        steps.append({"z": z, "c": c, "c_new": c_new, "i": i, "f": f, "g": g, "o": o})
        h, c = o * np.tanh(c_new), c_new
    return h, steps


def _multiplier(a, z, z_ref, method):
    """The modified derivative of ``y = a(z)``: a(z)/(z + eps sign z) or (a(z) - a(z'))/(z - z')."""
    if method == "elrp":
        return a(z) / (z + EPSILON * (1.0 if z >= 0 else -1.0))
    return (a(z) - a(z_ref)) / (z - z_ref)


def _modified_input_gradient(x, x_ref, kernel, recurrent, bias, method):
    """d h_T / d x with every sigmoid/tanh's derivative replaced by the rule, the products differentiated by
    the ordinary product rule at ``x``'s own values (reverse mode through the two steps, by hand)."""
    _, steps = _forward(x, kernel, recurrent, bias)
    _, ref_steps = _forward(x_ref, kernel, recurrent, bias)
    grad_x = np.zeros_like(x)
    dh, dc = 1.0, 0.0
    for t in reversed(range(len(x))):
        s, r = steps[t], ref_steps[t]
        # h = o * tanh(c_new)
        d_o = dh * np.tanh(s["c_new"])
        dc = dc + dh * s["o"] * _multiplier(np.tanh, s["c_new"], r["c_new"], method)
        # c_new = f * c + i * g
        d_f, d_i, d_g = dc * s["c"], dc * s["g"], dc * s["i"]
        dz = np.array([d_i * _multiplier(_sigmoid, s["z"][0], r["z"][0], method),
                       d_f * _multiplier(_sigmoid, s["z"][1], r["z"][1], method),
                       d_g * _multiplier(np.tanh, s["z"][2], r["z"][2], method),
                       d_o * _multiplier(_sigmoid, s["z"][3], r["z"][3], method)])
        grad_x[t] = kernel @ dz
        dh, dc = recurrent @ dz, dc * s["f"]
    return grad_x


def test_a_one_unit_lstm_matches_a_numpy_rederivation_of_the_rules():
    kernel = np.array([[0.8, -0.5, 1.2, 0.3], [-0.4, 0.9, 0.7, -1.1]], np.float32)  # (D=2, 4 gates)
    recurrent = np.array([0.6, -0.7, 0.5, 0.9], np.float32)
    bias = np.array([0.1, 0.4, -0.2, 0.3], np.float32)
    layer = keras.layers.LSTM(1)
    model = keras.Sequential([keras.Input((2, 2)), layer])
    layer.set_weights([kernel, recurrent[None, :], bias])
    x = np.array([[[0.7, -1.3], [1.5, 0.4]], [[-0.9, 0.6], [0.3, 1.1]]], np.float32)
    baseline = np.array([[-0.2, 0.5], [0.4, -0.6]], np.float32)
    h = np.array([_forward(example, kernel, recurrent, bias)[0] for example in x])
    np.testing.assert_allclose(model(x).numpy()[:, 0], h, rtol=1e-6)
    for method, options in (("elrp", {}), ("deeplift", {"baseline": baseline})):
        got = idgi_tf.attribute(model, x, None, method, **options)
        reference = baseline if method == "deeplift" else np.zeros_like(baseline)
        want = np.stack([(example - reference) * _modified_input_gradient(example, baseline, kernel, recurrent,
                                                                           bias, method) for example in x])
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
        plain = np.stack([(example - reference) * _modified_input_gradient(example, example + 1e-3, kernel,
                                                                             recurrent, bias, "deeplift")
                          for example in x])  # close to the plain gradient: the rules must differ from it
        assert np.abs(got - plain).max() > 1e-2 * np.abs(plain).max()


# --------------------------------------------------------------------------- text models at the embedding

LENGTH, VOCABULARY = 8, 30


def _embedding(mask_zero=False):
    """Embeddings of unit scale, as trained ones grow: the gates work in their nonlinear range."""
    return keras.layers.Embedding(VOCABULARY, 6, embeddings_initializer=keras.initializers.RandomNormal(0.0, 1.0),
                                  mask_zero=mask_zero, name="embedding")


def _text_model(kind):
    """Token ids (N, 8) -> Embedding(name="embedding") -> a head (LSTM or GRU -> Dense(2)), the head a nested
    model so that the plain gradient at the embedding can be read directly."""
    keras.utils.set_random_seed(3)
    head = keras.Sequential([keras.Input((LENGTH, 6)), _recurrent(kind), keras.layers.Dense(2)], name="head")
    return keras.Sequential([keras.Input((LENGTH,), dtype="int32"), _embedding(), head])


def _ids():
    return np.array([[4, 9, 17, 2, 25, 11, 6, 3], [12, 5, 8, 21, 14, 1, 29, 7], [19, 3, 3, 10, 22, 16, 28, 13]],
                    np.int32)


LABELS = np.array([0, 1, 1])


def _plain_gradient(model, activations):
    """d logit[label] / d a at the embedding's output, with the layers' own derivatives."""
    a = tf.constant(activations)
    with tf.GradientTape() as tape:
        tape.watch(a)
        value = tf.gather(model.get_layer("head")(a), LABELS, axis=1, batch_dims=1)
    return tape.gradient(value, a).numpy()


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_at_the_embedding_the_rules_differ_from_plain_gradients_and_deeplift_misses_the_delta(kind):
    model = _text_model(kind)
    ids, pads = _ids(), np.zeros_like(_ids())
    embed = model.get_layer("embedding")
    a, a_ref = embed(ids).numpy(), embed(pads).numpy()
    gradient = _plain_gradient(model, a)
    elrp = idgi_tf.attribute(model, ids, LABELS, "elrp", layer="embedding")
    deeplift = idgi_tf.attribute(model, ids, LABELS, "deeplift", layer="embedding", baseline=pads)
    for maps, plain in ((elrp, a * gradient), (deeplift, (a - a_ref) * gradient)):
        assert maps.shape == a.shape and np.isfinite(maps).all()
        assert np.abs(maps - plain).max() > 1e-2 * np.abs(plain).max()  # sigmoid and tanh are not ReLU
    logits = model(ids).numpy()[np.arange(3), LABELS] - model(pads).numpy()[np.arange(3), LABELS]
    gap = np.abs(deeplift.sum(axis=(1, 2)) - logits) / np.abs(logits)
    assert gap.max() > 1e-3  # summation-to-delta fails through the gates' products (float error is ~1e-6)


def test_a_masked_gru_gives_padding_no_attribution():
    """With Embedding(mask_zero=True) a masked step keeps the previous state: pad tokens never reach the logit."""
    keras.utils.set_random_seed(4)
    tokens = keras.Input((LENGTH,), dtype="int32")
    model = keras.Model(tokens, keras.layers.Dense(2)(_recurrent("gru")(_embedding(mask_zero=True)(tokens))))
    ids = _ids()
    ids[:, 5:] = 0
    ids[1, 2] = 0
    for method, options in (("elrp", {}), ("deeplift", {"baseline": np.zeros_like(ids)})):
        maps = idgi_tf.attribute(model, ids, LABELS, method, layer="embedding", **options)
        assert np.isfinite(maps).all()
        np.testing.assert_array_equal(maps[ids == 0], 0.0)
        assert (np.abs(maps[ids != 0]).sum(axis=-1) > 0).all()


def test_xla_on_and_off_agree():
    model = _text_model("lstm")
    ids, pads = _ids(), np.zeros_like(_ids())
    for method, options in (("elrp", {}), ("deeplift", {"baseline": pads})):
        maps = [idgi_tf.attribute(model, ids, LABELS, method, layer="embedding", jit_compile=jit, **options)
                for jit in (False, True)]
        np.testing.assert_allclose(maps[1], maps[0], rtol=1e-4, atol=1e-4 * np.abs(maps[0]).max())


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda x: keras.layers.Bidirectional(keras.layers.SimpleRNN(3))(x),
         "Bidirectional is supported around LSTM or GRU, not SimpleRNN"),
        (lambda x: keras.layers.LSTM(3, activation="softmax")(x), "activation 'softmax' is not a known"),
        (lambda x: keras.layers.SimpleRNN(3)(x), "its gradient rule is not known"),
    ],
    ids=["bidirectional-simple-rnn", "softmax-activation", "simple-rnn"],
)
def test_recurrent_layers_the_rules_cannot_pass_are_named(make, message):
    x = keras.Input((T, D))
    model = keras.Model(x, keras.layers.Dense(2)(make(x)))
    with pytest.raises(UnsupportedLayerError, match=message):
        idgi_tf.attribute(model, RNG.normal(size=(2, T, D)).astype("float32"), 0, "elrp")


def test_an_unknown_number_of_steps_or_a_stateful_layer_is_refused():
    x = keras.Input((None, D))
    model = keras.Model(x, keras.layers.Dense(2)(keras.layers.LSTM(3, name="rnn")(x)))
    with pytest.raises(UnsupportedLayerError, match="layer 'rnn' \\(LSTM\\): its number of steps is not static"):
        ModifiedModel(model, "deeplift")
    stateful = keras.Sequential([keras.Input((T, D), batch_size=2), keras.layers.GRU(3, stateful=True, name="rnn")])
    with pytest.raises(UnsupportedLayerError, match="layer 'rnn' \\(GRU\\): a stateful layer"):
        ModifiedModel(stateful, "elrp")
