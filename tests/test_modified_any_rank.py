"""epsilon-LRP and DeepLIFT on tabular, sequence and token inputs, several inputs, and at a layer (issue 30).

Oracles: Ancona et al. (2018) Prop. 1 (epsilon-LRP -> Gradient x Input on ReLU nets as epsilon -> 0, re-derived
with a tape) and DeepLIFT's summation-to-delta (the map sums to logit(x) - logit(baseline)).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import idgi_tf
from idgi_tf import graph
from idgi_tf.attribution.modified_gradients import (
    ModifiedModel,
    UnsupportedLayerError,
    compiled_modified_gradient,
)
from idgi_tf.runtime import Explained, InputStructure

TINY = 1e-10  # epsilon: ReLU's rule a(z) / (z + eps) is 1 to float32 precision wherever z > 0


def explained(model, inputs, layer=None) -> Explained:
    """The logit of class ``targets[i]`` of ``model`` at its inputs (``inputs``: an array or a list) or at
    ``layer``'s output."""
    parts = inputs if isinstance(inputs, list) else [inputs]
    kind = list if isinstance(inputs, list) else None
    return Explained(model, layer=layer, inputs=InputStructure(None, kind, tuple(part.shape[1:] for part in parts)))


def context(inputs, targets):
    """``(targets, *model inputs)``, the per-example context ``Explained`` reads."""
    parts = inputs if isinstance(inputs, list) else [inputs]
    return (tf.constant(targets, tf.int32), *map(tf.constant, parts))


def flat(inputs):
    """Several inputs as one (n, D_total) array."""
    return np.concatenate([np.reshape(part, (len(part), -1)) for part in inputs], axis=1)


def attribution(explained, method, x, baseline, inputs, targets, epsilon=TINY, jit_compile=False):
    run = compiled_modified_gradient(explained, method, epsilon, jit_compile)
    return run(tf.constant(x), tf.constant(baseline), context(inputs, targets))["plain"].numpy()


def activations(model, layer, inputs):
    """``layer``'s output on ``inputs`` (read with a hook)."""
    seen = []

    def call_layer(inner, *args, **kwargs):
        output = graph.inference_call(inner, *args, **kwargs)
        if inner is layer:
            seen.append(output)
        return output

    graph.run(model, inputs, call_layer)
    return seen[0].numpy()


def plain_gradient(explained, x, context):
    """d pick(outputs(x)) / dx with the layers' own derivatives."""
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = explained.pick(explained.outputs(x, context), context)
    return tape.gradient(value, x).numpy()


def logit(model, inputs, targets):
    return np.take_along_axis(model(inputs).numpy(), np.asarray(targets)[:, None], axis=1)[:, 0]


def gradient_times_input(model, x, targets):
    """x * d logit / dx with a plain tape: the Gradient x Input oracle."""
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = tf.gather(model(x), targets, axis=1, batch_dims=1)
    return (x * tape.gradient(value, x)).numpy()


def mlp(bias: bool):
    keras.utils.set_random_seed(0)
    init = keras.initializers.RandomNormal(0.0, 0.3) if bias else "zeros"
    return keras.Sequential([keras.Input((7,)), keras.layers.Dense(9, activation="relu", bias_initializer=init,
                                                                    use_bias=bias),
                             keras.layers.Dense(5, activation="relu", bias_initializer=init, use_bias=bias),
                             keras.layers.Dense(3, bias_initializer=init, use_bias=bias)])


def conv1d_net():
    """A ReLU Conv1D net on (N, T, D) through every sequence layer the rules pass: Dense per step, max pooling,
    global max and average pooling of two branches, Concatenate, Flatten."""
    keras.utils.set_random_seed(1)
    init = keras.initializers.RandomNormal(0.0, 0.3)
    x = keras.Input((12, 4))
    h = keras.layers.Conv1D(6, 3, activation="relu", bias_initializer=init)(x)
    h = keras.layers.MaxPooling1D(2)(h)
    h = keras.layers.Dense(5, activation="relu", bias_initializer=init)(h)  # on (N, T, D)
    pooled = keras.layers.Concatenate()([keras.layers.GlobalMaxPooling1D()(h), keras.layers.GlobalAveragePooling1D()(h),
                                         keras.layers.Flatten()(h)])
    return keras.Model(x, keras.layers.Dense(3, bias_initializer=init)(pooled))


@pytest.mark.parametrize("make, shape", [(lambda: mlp(False), (4, 7)), (lambda: mlp(True), (4, 7)),
                                         (conv1d_net, (4, 12, 4))], ids=["mlp", "mlp-biases", "conv1d"])
def test_epsilon_lrp_equals_gradient_times_input_on_relu_nets_at_every_rank(make, shape):
    model = make()
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    targets = np.array([0, 1, 2, 1])
    elrp = attribution(explained(model, x), "elrp", x, np.zeros_like(x), x, targets)
    want = gradient_times_input(model, x, targets)
    assert np.abs(want).max() > 1e-3
    np.testing.assert_allclose(elrp, want, rtol=1e-5, atol=1e-7 * np.abs(want).max())


def text_cnn(pooling):
    keras.utils.set_random_seed(2)
    init = keras.initializers.RandomNormal(0.0, 0.3)
    return keras.Sequential([keras.Input((10,), dtype="int32"), keras.layers.Embedding(20, 6, name="embedding"),
                             keras.layers.Conv1D(8, 3, activation="relu", bias_initializer=init), pooling(),
                             keras.layers.Dense(3, bias_initializer=init)])


TOKENS = np.random.default_rng(3).integers(1, 20, (4, 10)).astype(np.int32)
PADS = np.zeros_like(TOKENS)


@pytest.mark.parametrize("pooling", [keras.layers.GlobalAveragePooling1D, keras.layers.GlobalMaxPooling1D],
                         ids=["average", "max"])
def test_deeplift_at_the_embedding_sums_to_the_logit_difference_from_the_pad_ids(pooling):
    """Summation-to-delta at the embedding. Through max pooling it holds here because the pad baseline's
    activations are the same at every position (a 'valid' Conv1D over pads only): routing to the input's
    argmax then gives max(z) - max(z'), whichever position wins."""
    model = text_cnn(pooling)
    layer = model.get_layer("embedding")
    targets = np.array([0, 1, 2, 0])
    a, a_pad = activations(model, layer, TOKENS), activations(model, layer, PADS)
    maps = attribution(explained(model, TOKENS, layer), "deeplift", a, a_pad, TOKENS, targets)
    assert maps.shape == (4, 10, 6)
    delta = logit(model, TOKENS, targets) - logit(model, PADS, targets)
    np.testing.assert_allclose(maps.sum(axis=(1, 2)), delta, rtol=1e-4, atol=1e-6)
    # (a - a') times the plain gradient does not sum to the delta: the check can fail.
    plain = plain_gradient(explained(model, TOKENS, layer), a, context(TOKENS, targets))
    assert np.abs((plain * (a - a_pad)).sum(axis=(1, 2)) - delta).max() > 1e-3 * np.abs(delta).max()


def test_epsilon_lrp_at_a_hidden_layer_is_activation_times_its_gradient():
    """At a hidden ReLU layer epsilon-LRP is a * d logit / da (Captum's LayerGradientXActivation), read on the
    sub-model that starts at the layer."""
    model = mlp(True)
    x = np.random.default_rng(4).normal(size=(4, 7)).astype(np.float32)
    targets = np.array([2, 1, 0, 1])
    layer = model.layers[0]
    a = activations(model, layer, x)
    head = keras.Sequential([keras.Input((9,)), *model.layers[1:]])
    want = gradient_times_input(head, a, targets)
    got = attribution(explained(model, x, layer), "elrp", a, np.zeros_like(a), x, targets)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7 * np.abs(want).max())


def two_input_model():
    keras.utils.set_random_seed(5)
    init = keras.initializers.RandomNormal(0.0, 0.3)
    table, sequence = keras.Input((5,)), keras.Input((6, 3))
    h = keras.layers.Concatenate()([keras.layers.Dense(4, activation="tanh", bias_initializer=init)(table),
                                    keras.layers.Flatten()(keras.layers.Conv1D(2, 2, activation="relu",
                                                                               bias_initializer=init)(sequence))])
    h = keras.layers.Dense(6, activation="softplus", bias_initializer=init)(h)
    return keras.Model([table, sequence], keras.layers.Dense(3, activation="softmax", bias_initializer=init)(h))


def test_deeplift_on_two_inputs_sums_over_both_maps_to_the_logit_difference():
    model = two_input_model()
    rng = np.random.default_rng(6)
    inputs = [rng.normal(size=(4, 5)).astype(np.float32), rng.normal(size=(4, 6, 3)).astype(np.float32)]
    baselines = [rng.normal(size=(4, 5)).astype(np.float32) * 0.5, np.zeros((4, 6, 3), np.float32)]
    targets = np.array([0, 1, 2, 2])
    maps = attribution(explained(model, inputs), "deeplift", flat(inputs), flat(baselines), inputs, targets)
    assert maps.shape == (4, 5 + 18)
    logits = ModifiedModel(model, "deeplift")  # the model without its final softmax
    delta = [tf.gather(logits(point), targets, axis=1, batch_dims=1).numpy() for point in (inputs, baselines)]
    np.testing.assert_allclose(maps.sum(axis=1), delta[0] - delta[1], rtol=1e-4, atol=1e-6)
    assert np.abs(maps[:, :5]).max() > 0 and np.abs(maps[:, 5:]).max() > 0


@pytest.mark.parametrize("method", ["elrp", "deeplift"])
def test_xla_on_and_off_give_the_same_maps(method):
    model = text_cnn(keras.layers.GlobalMaxPooling1D)
    layer = model.get_layer("embedding")
    a, a_pad = activations(model, layer, TOKENS), activations(model, layer, PADS)
    maps = [attribution(explained(model, TOKENS, layer), method, a, a_pad, TOKENS, [0, 1, 2, 0], 1e-4, jit)
            for jit in (False, True)]
    np.testing.assert_allclose(maps[1], maps[0], rtol=1e-5, atol=1e-6 * np.abs(maps[0]).max())


def test_an_unsupported_layer_downstream_of_the_attribution_layer_is_named_and_upstream_ones_pass():
    keras.utils.set_random_seed(7)
    model = keras.Sequential([keras.Input((10,), dtype="int32"), keras.layers.Embedding(20, 6, name="embedding"),
                              keras.layers.LayerNormalization(name="norm"), keras.layers.Conv1D(4, 3, name="conv"),
                              keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(3)])
    for method in ("elrp", "deeplift"):
        with pytest.raises(UnsupportedLayerError, match="layer 'norm' \\(LayerNormalization\\)"):
            compiled_modified_gradient(explained(model, TOKENS, model.get_layer("embedding")), method, TINY)
        with pytest.raises(UnsupportedLayerError, match="layer 'embedding' \\(Embedding\\): it takes integer ids"):
            ModifiedModel(model, method)  # an Embedding downstream: integer inputs need layer=
    # At the conv layer the Embedding and the normalisation are upstream: they run plainly, unchecked.
    conv = model.get_layer("conv")
    a = activations(model, conv, TOKENS)
    maps = attribution(explained(model, TOKENS, conv), "deeplift", a, np.zeros_like(a), TOKENS, [0, 1, 2, 0])
    assert np.isfinite(maps).all() and np.abs(maps).max() > 0


def test_the_layers_upstream_of_one_inside_a_nested_model_are_found_across_the_nesting():
    inner_input = keras.Input((4,))
    first = keras.layers.Dense(4, name="first")
    target = keras.layers.Dense(3, name="target")
    after = keras.layers.Dense(3, name="after")
    inner = keras.Model(inner_input, after(target(first(inner_input))), name="inner")
    x = keras.Input((5,))
    before = keras.layers.LayerNormalization(name="before")
    side = keras.layers.Dense(3, name="side")
    h = inner(keras.layers.Dense(4, name="stem")(before(x)))
    model = keras.Model(x, keras.layers.Add(name="add")([h, side(x)]))
    modified = ModifiedModel(model, "elrp", layer=target)
    names = {layer.name for layer in graph.leaf_layers(model) if id(layer) in modified.upstream}
    assert names == {model.layers[0].name, "before", "stem", inner_input._keras_history.operation.name, "first",
                     "target"}
    with pytest.raises(UnsupportedLayerError, match="'before'"):
        ModifiedModel(model, "elrp", layer=side)


def test_the_softmax_of_every_head_of_a_two_headed_model_is_left_out():
    keras.utils.set_random_seed(8)
    x = keras.Input((6,))
    h = keras.layers.Dense(5, activation="relu")(x)
    heads = [keras.layers.Dense(3, activation="softmax")(h), keras.layers.Softmax()(keras.layers.Dense(2)(h))]
    model = keras.Model(x, heads)
    data = np.random.default_rng(9).normal(size=(4, 6)).astype(np.float32)
    logits = ModifiedModel(model, "elrp")(tf.constant(data))
    for head, probabilities in zip(logits, model(data)):
        np.testing.assert_allclose(tf.nn.softmax(head).numpy(), probabilities.numpy(), rtol=1e-5, atol=1e-7)
        assert np.abs(head.numpy().sum(axis=1) - 1).max() > 1e-2  # logits, not probabilities


# Through ``attribute``: the same oracles on the public entry point.


@pytest.mark.parametrize("make, shape", [(lambda: mlp(True), (4, 7)), (conv1d_net, (4, 12, 4))],
                         ids=["mlp-biases", "conv1d"])
def test_attribute_elrp_is_gradient_times_input_at_ranks_2_and_3(make, shape):
    model = make()
    x = np.random.default_rng(10).normal(size=shape).astype(np.float32)
    targets = np.array([2, 0, 1, 1])
    want = gradient_times_input(model, x, targets)
    for method in ("elrp", "gxi"):
        got = idgi_tf.attribute(model, x, targets, method, **({"epsilon": TINY} if method == "elrp" else {}))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7 * np.abs(want).max(), err_msg=method)


def test_attribute_deeplift_at_the_embedding_sums_to_the_delta_with_and_without_xla():
    model = text_cnn(keras.layers.GlobalMaxPooling1D)
    targets = np.array([1, 2, 0, 1])
    maps = [idgi_tf.attribute(model, TOKENS, targets, "deeplift", layer="embedding", baseline=0, jit_compile=jit)
            for jit in (False, True)]
    assert maps[0].shape == (4, 10, 6)
    np.testing.assert_allclose(maps[0].sum(axis=(1, 2)), logit(model, TOKENS, targets) - logit(model, PADS, targets),
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(maps[1], maps[0], rtol=1e-5, atol=1e-6 * np.abs(maps[0]).max())


def test_attribute_deeplift_on_two_inputs_gives_both_maps_summing_to_the_delta():
    model = two_input_model()
    rng = np.random.default_rng(11)
    inputs = [rng.normal(size=(3, 5)).astype(np.float32), rng.normal(size=(3, 6, 3)).astype(np.float32)]
    baselines = [np.full((5,), 0.3, np.float32), 0.0]
    targets = np.array([2, 0, 1])
    maps = idgi_tf.attribute(model, inputs, targets, "deeplift", baseline=baselines)
    assert [m.shape for m in maps] == [(3, 5), (3, 6, 3)]
    logits = ModifiedModel(model, "deeplift")
    ends = [inputs, [np.broadcast_to(baselines[0], (3, 5)), np.zeros((3, 6, 3), np.float32)]]
    delta = np.subtract(*[tf.gather(logits([tf.constant(p) for p in end]), targets, axis=1, batch_dims=1).numpy()
                          for end in ends])
    np.testing.assert_allclose(maps[0].sum(axis=1) + maps[1].sum(axis=(1, 2)), delta, rtol=1e-4, atol=1e-6)


def test_attribute_names_an_unsupported_layer_after_the_attribution_layer():
    keras.utils.set_random_seed(7)
    model = keras.Sequential([keras.Input((10,), dtype="int32"), keras.layers.Embedding(20, 6, name="embedding"),
                              keras.layers.LayerNormalization(name="norm"), keras.layers.GlobalAveragePooling1D(),
                              keras.layers.Dense(3)])
    with pytest.raises(UnsupportedLayerError, match="method 'deeplift' cannot pass layer 'norm'"):
        idgi_tf.attribute(model, TOKENS, [0, 1, 2, 0], "deeplift", layer="embedding", baseline=0)
    maps = idgi_tf.attribute(model, TOKENS, [0, 1, 2, 0], "deeplift", layer="norm", baseline=0)
    assert maps.shape == (4, 10, 6) and np.isfinite(maps).all()
