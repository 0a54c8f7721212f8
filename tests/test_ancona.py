"""epsilon-LRP, DeepLIFT-Rescale, Occlusion and SmoothGrad, with Ancona et al. (2018)'s theorems as oracles."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import idgi_tf
import idgi_tf.metrics
from idgi_tf import data
from idgi_tf.attribution.modified_gradients import ModifiedModel, UnsupportedLayerError

SIZE = 10


def relu_net(*, conv: bool, bias: bool, pool: bool = True, activation="relu", softmax=False, seed=0):
    """A small random ReLU (or other activation) network, dense or conv, ending in logits."""
    keras.utils.set_random_seed(seed)
    init = keras.initializers.RandomNormal(0.0, 0.3) if bias else "zeros"
    layers = [keras.Input((SIZE, SIZE, 3)), keras.layers.Rescaling(1 / 255.0)]
    if conv:
        layers += [keras.layers.Conv2D(6, 3, activation=activation, use_bias=bias, bias_initializer=init)]
        layers += [keras.layers.MaxPooling2D()] if pool else [keras.layers.AveragePooling2D(2)]
        layers += [keras.layers.Conv2D(6, 3, use_bias=bias, bias_initializer=init), keras.layers.Activation(activation)]
    layers += [keras.layers.Flatten(), keras.layers.Dense(12, activation=activation, use_bias=bias,
                                                          bias_initializer=init)]
    layers += [keras.layers.Dense(4, use_bias=bias, bias_initializer=init)]
    if softmax:
        layers += [keras.layers.Softmax()]
    return keras.Sequential(layers)


def inputs(count=4, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (count, SIZE, SIZE, 3)).astype(np.float32)


def logits(model, x):
    return ModifiedModel(model, "elrp")(tf.constant(x)).numpy()


TARGETS = np.array([0, 1, 2, 3])


@pytest.mark.parametrize("conv", [False, True], ids=["dense", "conv"])
def test_epsilon_lrp_tends_to_gradient_times_input_on_relu_nets_with_biases(conv):
    model = relu_net(conv=conv, bias=True)
    x = inputs()
    gxi = idgi_tf.attribute(model, x, TARGETS, "gxi")
    scale = np.abs(gxi).max()
    errors = [np.abs(idgi_tf.attribute(model, x, TARGETS, "elrp", epsilon=eps) - gxi).max() / scale
              for eps in (1e-1, 1e-3, 1e-6)]
    assert errors[0] > 1e-2  # the rule really differs from the gradient at large epsilon...
    # ...and the difference is O(epsilon): 1000x smaller epsilon, ~1000x smaller error.
    assert errors[1] < errors[0] and errors[2] < 1e-4 and errors[2] < 1e-2 * errors[1]


@pytest.mark.parametrize("conv", [False, True], ids=["dense", "conv"])
def test_deeplift_with_zero_baseline_equals_gradient_times_input_without_biases(conv):
    model = relu_net(conv=conv, bias=False)
    x = inputs()
    deeplift = idgi_tf.attribute(model, x, TARGETS, "deeplift")
    gxi = idgi_tf.attribute(model, x, TARGETS, "gxi")
    np.testing.assert_allclose(deeplift, gxi, rtol=1e-4, atol=1e-6 * np.abs(gxi).max())


@pytest.mark.parametrize("activation", ["relu", "tanh", "elu", "softplus", "sigmoid"])
def test_deeplift_sums_to_the_output_difference(activation):
    """Summation-to-delta with biases and a random baseline, also through smooth nonlinearities."""
    model = relu_net(conv=True, bias=True, pool=False, activation=activation, softmax=True)
    x, reference = inputs(seed=1), inputs(seed=2) * 0.5
    maps = idgi_tf.attribute(model, x, TARGETS, "deeplift", baseline=reference)
    delta = logits(model, x)[np.arange(4), TARGETS] - logits(model, reference)[np.arange(4), TARGETS]
    np.testing.assert_allclose(maps.sum(axis=(1, 2, 3)), delta, rtol=1e-4, atol=1e-6)
    # The plain gradient times (x - x') does not: the check can fail.
    gradient_times_delta = idgi_tf.attribute(model, x, TARGETS, "vg") * (x - reference)
    assert np.abs(gradient_times_delta.sum(axis=(1, 2, 3)) - delta).max() > 1e-3 * np.abs(delta).max()


def test_modified_forward_pass_is_the_model_without_its_final_softmax():
    model = relu_net(conv=True, bias=True, softmax=True)
    x = inputs()
    np.testing.assert_allclose(tf.nn.softmax(logits(model, x)).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-7)


def test_on_a_linear_model_every_method_gives_the_same_map_and_sensitivity_n_is_one():
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.Flatten(), keras.layers.Dense(4)])
    x = inputs()
    maps = {
        "gxi": idgi_tf.attribute(model, x, TARGETS, "gxi"),
        "ig": idgi_tf.attribute(model, x, TARGETS, "ig", steps=4),
        "elrp": idgi_tf.attribute(model, x, TARGETS, "elrp", epsilon=1e-9),
        "deeplift": idgi_tf.attribute(model, x, TARGETS, "deeplift"),
        "occlusion": idgi_tf.attribute(model, x, TARGETS, "occlusion", patch=1),
    }
    reference = maps["gxi"].sum(axis=-1)
    for name, attribution in maps.items():
        np.testing.assert_allclose(attribution.sum(axis=-1), reference, rtol=2e-3,
                                   atol=2e-5 * np.abs(reference).max(), err_msg=name)
        result = idgi_tf.metrics.sensitivity_n(model, x, TARGETS, attribution, ns=[1, 5, 30, 80], subsets=20)
        np.testing.assert_allclose(result.curves["correlation"], 1.0, atol=1e-4, err_msg=name)


def test_occlusion_1_satisfies_sensitivity_1_on_a_nonlinear_model():
    model = relu_net(conv=True, bias=True, softmax=True)
    x = inputs()
    occlusion = idgi_tf.attribute(model, x, TARGETS, "occlusion", patch=1)
    gradient = idgi_tf.attribute(model, x, TARGETS, "gxi")
    at_one = idgi_tf.metrics.sensitivity_n(model, x, TARGETS, occlusion, ns=[1, 40], subsets=50)
    np.testing.assert_allclose(at_one.curves["correlation"][:, 0], 1.0, atol=1e-6)
    assert at_one.curves["correlation"][:, 1].min() < 0.9999  # not a tautology at larger n
    other = idgi_tf.metrics.sensitivity_n(model, x, TARGETS, gradient, ns=[1], subsets=50)
    assert other.curves["correlation"].min() < 0.9999


def test_occlusion_spreads_each_patch_drop_over_its_elements():
    model = relu_net(conv=True, bias=True, softmax=True)
    x = inputs(1)
    maps = idgi_tf.attribute(model, x, [2], "occlusion", patch=5, batch_size=3)  # 10 px: 2 x 2 tiles
    occluded = x.copy()
    occluded[:, 5:, :5] = 0.0
    drop = idgi_tf.explained_output(model, x, [2]) - idgi_tf.explained_output(model, occluded, [2])
    np.testing.assert_allclose(maps[0, 5:, :5].sum(), drop[0], rtol=1e-5)
    np.testing.assert_allclose(maps[0, 5:, :5], drop[0] / 75, rtol=1e-5)


def test_overlapping_occlusion_windows_give_the_mean_of_their_shares():
    """Re-derived in NumPy: every 3 x 3 window at stride 2 (plus one flush with the edge), its drop
    spread over its 27 elements, each element the mean of the shares of the windows covering it."""
    model = relu_net(conv=True, bias=True, softmax=True)
    x = inputs(2)
    ours = idgi_tf.attribute(model, x, [2, 0], "occlusion", patch=3, stride=2, batch_size=7)
    starts = [0, 2, 4, 6, 7]  # 10 px
    corners = [(top, left) for top in starts for left in starts]
    occluded = np.repeat(x[:, None], len(corners), axis=1)
    for k, (top, left) in enumerate(corners):
        occluded[:, k, top:top + 3, left:left + 3] = 0.0
    for i, target in enumerate([2, 0]):
        drops = idgi_tf.explained_output(model, x[i:i + 1], [target])[0] - idgi_tf.explained_output(
            model, occluded[i], [target] * len(corners))
        shares, covered = np.zeros(x.shape[1:3]), np.zeros(x.shape[1:3])
        for (top, left), drop in zip(corners, drops):
            shares[top:top + 3, left:left + 3] += drop / 27
            covered[top:top + 3, left:left + 3] += 1
        want = np.repeat((shares / covered)[..., None], 3, axis=-1)
        assert np.abs(want).max() > 1e-4
        np.testing.assert_allclose(ours[i], want, rtol=1e-4, atol=1e-7 * np.abs(want).max())


def test_smoothgrad_averages_noisy_gradients_reproducibly():
    model = relu_net(conv=True, bias=True, softmax=True)
    x = inputs()
    first = idgi_tf.attribute(model, x, TARGETS, "smoothgrad", nsamples=7, batch_size=5)
    again = idgi_tf.attribute(model, x, TARGETS, "smoothgrad", nsamples=7, batch_size=64)
    plain = idgi_tf.attribute(model, x, TARGETS, "vg")
    assert np.abs(first - plain).max() > 1e-3 * np.abs(plain).max()  # the noise changed something
    # The same seed draws the same noise per sample, whatever the batching.
    np.testing.assert_allclose(first, again, rtol=1e-4, atol=1e-6 * np.abs(first).max())


def test_smoothgrad_on_a_quadratic_has_the_mean_and_spread_of_its_noise():
    """f(x) = sum(a * x**2) / 2, so grad f(x + e) = a * (x + e): the map minus a * x, divided by a, is the
    mean of ``nsamples`` Gaussian draws of scale ``noise * (max(x) - min(x))`` per element: mean 0 and
    standard deviation ``sigma / sqrt(nsamples)``. A wrong noise scale (or noise shared by the elements)
    fails this."""
    rng = np.random.default_rng(3)
    a = tf.constant(rng.uniform(0.5, 1.5, (1, 12, 10, 3)).astype(np.float32))

    def quadratic(x):
        value = 0.5 * tf.reduce_sum(a * x * x, axis=[1, 2, 3])
        return tf.stack([value, tf.zeros_like(value)], axis=1)

    x = rng.uniform(0, 4, (2, 12, 10, 3)).astype(np.float32)
    noise, nsamples = 0.1, 8
    smooth = idgi_tf.attribute(quadratic, x, [0, 0], "smoothgrad", noise=noise, nsamples=nsamples, batch_size=5)
    for image, mapped in zip(x, smooth):
        draws = (mapped - a.numpy()[0] * image) / a.numpy()[0]
        sigma = noise * (image.max() - image.min()) / np.sqrt(nsamples)
        assert abs(draws.mean()) < 4 * sigma / np.sqrt(draws.size)
        assert draws.std() == pytest.approx(sigma, rel=0.15)


def test_rise_of_a_constant_model_is_that_constant_everywhere():
    """Each pixel's saliency is sum_i f(x * M_i) M_i / (N p); for f = c it averages c over the map (E M = p):
    the 1 / (N p) normalisation, the channel split and the mask density are what this pins."""
    def constant(x):
        return tf.fill([tf.shape(x)[0], 2], 0.7)

    x = inputs(1)
    saliency = idgi_tf.attribute(constant, x, [0], "rise", nmasks=400, cells=4, p=0.3, batch_size=50)
    per_pixel = saliency.sum(axis=-1)
    assert per_pixel.mean() == pytest.approx(0.7, rel=0.05)
    assert np.allclose(saliency[..., 0], saliency[..., 2])


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_smoothgrad_noise_belongs_to_the_image_not_to_its_slot_in_a_batch(batch_size):
    model = relu_net(conv=True, bias=True, softmax=True)
    x = inputs(5)
    x[3] = x[1]  # the same picture at two indices must still get two noise draws
    targets = [0, 1, 2, 1, 3]
    options = {"nsamples": 6, "seed": 4}
    reference = idgi_tf.attribute(model, x, targets, "smoothgrad", batch_size=5, **options)
    got = idgi_tf.attribute(model, x, targets, "smoothgrad", batch_size=batch_size, **options)
    np.testing.assert_allclose(got, reference, rtol=1e-5, atol=1e-6 * np.abs(reference).max())
    twins = np.abs(reference[3] - reference[1]).max() / np.abs(reference[1]).max()
    assert twins > 1e-2  # with noise drawn per batch slot, batch_size=1 gave both the same map
    # Another seed draws other noise; inner methods over a path get it the same way.
    other = idgi_tf.attribute(model, x, targets, "smoothgrad", batch_size=batch_size, nsamples=6, seed=5)
    assert np.abs(other - reference).max() > 1e-2 * np.abs(reference).max()
    inner_ig = {"inner": "ig", "steps": 4, "nsamples": 3}
    np.testing.assert_allclose(
        idgi_tf.attribute(model, x, targets, "smoothgrad", batch_size=batch_size, **inner_ig),
        idgi_tf.attribute(model, x, targets, "smoothgrad", batch_size=64, **inner_ig), rtol=1e-5, atol=1e-7)


def prelu_net(seed=0):
    """A conv net with learnt-slope PReLUs (slopes drawn away from 1) and biases, ending in logits."""
    keras.utils.set_random_seed(seed)
    slopes = keras.initializers.RandomUniform(0.1, 0.5)
    biases = keras.initializers.RandomNormal(0.0, 0.3)
    return keras.Sequential([
        keras.Input((SIZE, SIZE, 3)), keras.layers.Rescaling(1 / 255.0),
        keras.layers.Conv2D(6, 3, bias_initializer=biases), keras.layers.PReLU(alpha_initializer=slopes),
        keras.layers.Flatten(), keras.layers.Dense(8, bias_initializer=biases),
        keras.layers.PReLU(alpha_initializer=slopes), keras.layers.Dense(4, bias_initializer=biases),
    ])


def test_prelu_layers_pass_the_modified_gradients_in_compiled_code():
    model = prelu_net()
    x = inputs()
    gxi = idgi_tf.attribute(model, x, TARGETS, "gxi")
    # PReLU is linear on each side of 0, so epsilon-LRP tends to Gradient x Input...
    elrp = idgi_tf.attribute(model, x, TARGETS, "elrp", epsilon=1e-7)
    np.testing.assert_allclose(elrp, gxi, rtol=1e-3, atol=1e-4 * np.abs(gxi).max())
    # ...and DeepLIFT sums to the logit difference (summation-to-delta).
    baseline = np.full_like(x, 60.0)
    deeplift = idgi_tf.attribute(model, x, TARGETS, "deeplift", baseline=baseline)
    delta = logits(model, x)[np.arange(4), TARGETS] - logits(model, baseline)[np.arange(4), TARGETS]
    np.testing.assert_allclose(deeplift.sum(axis=(1, 2, 3)), delta, rtol=1e-4, atol=1e-5)
    assert np.abs(deeplift - idgi_tf.attribute(model, x, TARGETS, "gxi")).max() > 1e-3 * np.abs(gxi).max()


@pytest.mark.parametrize(
    "layers, message",
    [
        (lambda: [keras.layers.Flatten(), keras.layers.Dense(4), keras.layers.Softmax(name="bad"),
                  keras.layers.Dense(4)],
         "layer 'bad' \\(Softmax\\): softmax is supported only as the model's last layer"),
        (lambda: [keras.layers.LayerNormalization(name="bad"), keras.layers.Flatten(), keras.layers.Dense(4)],
         "layer 'bad' \\(LayerNormalization\\): its gradient rule is not known"),
        (lambda: [keras.layers.Flatten(), keras.layers.Dense(4, activation="softmax", name="bad"),
                  keras.layers.Dense(4)],
         "layer 'bad' \\(Dense\\): softmax is supported only as the model's last layer"),
    ],
)
def test_unsupported_layers_are_named_not_silently_differentiated(layers, message):
    model = keras.Sequential([keras.Input((SIZE, SIZE, 3)), *layers()])
    for method in ("elrp", "deeplift"):
        with pytest.raises(UnsupportedLayerError, match=message):
            idgi_tf.attribute(model, inputs(), TARGETS, method)


@pytest.mark.parametrize(
    "method, options, error, message",
    [
        ("elrp", {"epsilon": 0.0}, ValueError, "epsilon"),
        ("elrp", {"rule": "idgi"}, ValueError, "rule='idgi' does not apply to method 'elrp'"),
        ("elrp", {"baseline": 1.0}, ValueError, "takes no baseline"),
        ("occlusion", {"patch": 11}, ValueError, "patch must be at most the inputs' size on each window axis: axis 1"),
        ("occlusion", {"patch": 0}, ValueError, "patch"),
        ("smoothgrad", {"inner": "smoothgrad"}, ValueError, "inner must be one of"),
        ("smoothgrad", {"nsamples": 0}, ValueError, "nsamples"),
        ("smoothgrad", {"inner": "ig", "patch": 3}, TypeError, "unknown option"),
    ],
)
def test_bad_options_of_the_new_methods(method, options, error, message):
    model = relu_net(conv=False, bias=True)
    with pytest.raises(error, match=message):
        idgi_tf.attribute(model, inputs(), TARGETS, method, **options)


def test_modified_gradients_need_a_keras_graph():
    model = relu_net(conv=False, bias=True)
    with pytest.raises(TypeError, match="needs a functional or Sequential Keras model"):
        idgi_tf.attribute(lambda images: model(images), inputs(), TARGETS, "elrp")


@pytest.mark.skipif(not os.path.isdir(data.FASHION_MNIST_DIR), reason="Debian's dataset-fashion-mnist is not installed")
def test_the_readme_s_sensitivity_n_numbers_are_those_of_the_recorded_run():
    """The README's Fashion-MNIST sentences, number by number, against the run it shows
    (benchmarks/figures/sensitivity_n_fashion_mnist.json, written by the script with its defaults)."""
    folder = os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks", "figures")
    with open(os.path.join(folder, "sensitivity_n_fashion_mnist.json")) as handle:
        record = json.load(handle)
    curves = {name: np.array(values) for name, values in record["curves"].items()}
    assert round(record["accuracy"], 2) == 0.83 and record["images"] == 50 and record["subsets"] == 100
    assert curves["Occlusion-1"][0] == pytest.approx(1.0, abs=1e-6) and record["ns"][-1] == 627
    assert round(curves["Occlusion-1"][-1], 2) == 0.06
    assert np.abs(curves["epsilon-LRP"] - curves["Gradient*Input"]).max() < 0.01  # "within 0.01 at eps = 1e-4"
    assert np.abs(curves["DeepLIFT (Rescale)"] - curves["Integrated Gradients"]).max() < 0.01
    assert [round(curves[name][-1], 2) for name in ("Integrated Gradients", "DeepLIFT (Rescale)", "Gradient*Input")] \
        == [0.69, 0.69, 0.67]


def test_the_sensitivity_n_example_on_fashion_mnist(tmp_path):
    script = os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks", "sensitivity_n_fashion_mnist.py")
    done = subprocess.run(
        [sys.executable, script, "--images", "8", "--train", "3000", "--epochs", "1", "--subsets", "12",
         "--epsilon", "1e-9", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # The two findings that are theorems hold on any trained ReLU network.
    assert "[yes] Occlusion-1 has correlation 1 at n = 1" in done.stdout
    assert "[yes] epsilon-LRP is within 0.01 of Gradient*Input" in done.stdout
    record = json.loads((tmp_path / "sensitivity_n_fashion_mnist.json").read_text())
    assert set(record["curves"]) == {"Gradient*Input", "Integrated Gradients", "epsilon-LRP", "DeepLIFT (Rescale)",
                                     "Occlusion-1"}
    with Image.open(tmp_path / "sensitivity_n_fashion_mnist.png") as image:
        assert image.format == "PNG"
