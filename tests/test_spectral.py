"""Spectra, the FORGrad low-pass filter (against Xplique's), the cutoff search, RISE, the aliasing check."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from xplique_forgrad import _low_pass_real_signal_mask, forgrad

import idgi_tf
from idgi_tf import spectral
from idgi_tf.spectral.__main__ import main as spectral_main
from idgi_tf.spectral.antialias import antialiased


def sinusoid(height, width, cycles_along_width):
    columns = np.cos(2 * np.pi * cycles_along_width * np.arange(width) / width)
    return np.repeat(columns[None], height, axis=0)[None]


@pytest.mark.parametrize("height, width, cycles, radius", [(32, 32, 5, 5.0), (24, 40, 10, 6.0)])
def test_a_sinusoid_peaks_at_its_frequency(height, width, cycles, radius):
    frequencies, spectra = spectral.power_spectrum(sinusoid(height, width, cycles))
    assert frequencies[np.argmax(spectra[0])] == radius  # radius in cycles per min(H, W)
    assert spectra[0].max() > 100 * np.delete(spectra[0], np.argmax(spectra[0])).max()


def test_white_noise_has_a_flat_spectrum():
    _, spectra = spectral.power_spectrum(np.random.default_rng(0).normal(size=(400, 32, 32)))
    mean = spectra.mean(axis=0)[1:]
    assert mean.min() > 0.85 and mean.max() < 1.15  # unit variance -> unit power at every radius


@pytest.mark.parametrize("kind", ["ideal", "gaussian"])
def test_a_lowpassed_map_loses_its_high_frequencies(kind):
    noise = np.random.default_rng(1).normal(size=(3, 48, 48))
    smooth = spectral.lowpass(noise, 6, kind=kind, signed=True)
    before = spectral.high_frequency_ratio(noise, 6)
    after = spectral.high_frequency_ratio(smooth, 6)
    assert before.min() > 0.9
    if kind == "ideal":
        np.testing.assert_allclose(after, 0.0, atol=1e-9)  # nothing above the cutoff
    else:  # a Gaussian only attenuates: little is left two sigmas out
        far_before, far_after = (spectral.high_frequency_ratio(m, 12) for m in (noise, smooth))
        assert far_after.max() < 0.05 * far_before.min()


@pytest.mark.parametrize("shape", [(2, 32, 32), (2, 7, 9), (1, 15, 10, 3)])
def test_a_cutoff_beyond_every_frequency_is_the_identity(shape):
    maps = np.random.default_rng(2).normal(size=shape)
    mean = maps.mean(axis=-1) if maps.ndim == 4 else maps
    everything = float(np.hypot(*shape[1:3]))  # beyond the corner radius
    np.testing.assert_allclose(spectral.lowpass(maps, everything, signed=True), mean, atol=1e-5)
    np.testing.assert_allclose(spectral.lowpass(maps, everything), np.abs(mean), atol=1e-5)  # FORGrad's |.|
    assert spectral.lowpass(maps, 0.2).shape == mean.shape  # odd and non-square sizes keep their shape


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("sigma", [1, 3, 8, 15, 16])
def test_lowpass_equals_xplique_forgrad_on_square_even_maps(size, sigma):
    maps = np.random.default_rng(sigma).normal(size=(3, size, size, 3)).astype(np.float32)
    theirs = forgrad(tf.constant(maps), sigma).numpy()
    np.testing.assert_allclose(spectral.lowpass(maps, sigma), theirs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(spectral.lowpass(maps, sigma / size) if sigma < size else theirs, theirs,
                               rtol=1e-5, atol=1e-6)  # the same cutoff as a fraction of the side


@pytest.mark.parametrize("size", [33, 45, 224])
@pytest.mark.parametrize("sigma", [1, 4, 15])
def test_the_ideal_mask_is_xplique_forgrad_s_disc_at_odd_sizes_too(size, sigma):
    """Xplique's mask is a disc around ``size // 2`` moved to the origin with ``fftshift``. At odd sizes that
    misses by one pixel (``ifftshift`` is the inverse of the centring; they agree at even sizes), which
    drops the mean from Xplique's result, and its inverse transform drops a pixel and resizes back. Ours is
    the disc moved with ``ifftshift``, and Xplique's own mask at even sizes."""
    y, x = np.ogrid[:size, :size]
    disc = np.sqrt((x - size // 2) ** 2 + (y - size // 2) ** 2) <= sigma
    ours = spectral._mask(size, size, float(sigma), "ideal")
    np.testing.assert_array_equal(ours, np.fft.ifftshift(disc)[:, : size // 2 + 1])
    xplique = _low_pass_real_signal_mask(size, sigma).numpy()
    assert np.array_equal(ours, xplique) == (size % 2 == 0)


def test_tune_cutoff_finds_a_smooth_truth_under_noise():
    size = 32
    yy, xx = np.mgrid[:size, :size]
    window = np.exp(-((yy - 10) ** 2 + (xx - 20) ** 2) / (2 * 5.0**2))
    weights = np.concatenate([window.ravel()[:, None] / window.sum(), np.zeros((size * size, 1))], axis=1)
    model = keras.Sequential([keras.Input((size, size, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
    model.layers[-1].set_weights([weights.astype(np.float32), np.zeros(2, np.float32)])
    images = np.full((6, size, size, 1), 200.0, np.float32)
    truth = window[None] * 200.0 / window.sum()
    noisy = truth + np.random.default_rng(3).normal(0, 3 * truth.max(), size=(6, size, size))
    search = spectral.tune_cutoff(model, images, [0] * 6, noisy, metric="insertion")
    assert search.best < size / 2  # below Nyquist
    assert search.scores.max() > search.unfiltered + 0.01  # filtering helps
    assert len(search.scores) == len(search.cutoffs) and search.better == "higher"
    assert search.best == search.cutoffs[np.argmax(search.scores)]
    deletion = spectral.tune_cutoff(model, images, [0] * 6, noisy, metric="deletion", grid=[2, 4, 0.5])
    np.testing.assert_allclose(deletion.cutoffs, [2, 4, 16])
    assert deletion.scores.min() < deletion.unfiltered
    assert deletion.best == deletion.cutoffs[np.argmin(deletion.scores)]  # lower is better for deletion


@pytest.mark.parametrize("cycles", [0, 2, 5, 9])
def test_the_gaussian_lowpass_scales_a_cosine_by_its_transfer_function(cycles):
    """A cosine of ``k`` cycles across the width comes out scaled by exp(-r^2 / (2 c^2)), the Gaussian mask at
    its radius r = k * min(H, W) / W (radii count cycles per shorter side)."""
    height, width, cutoff = 30, 36, 4.0
    wave = np.cos(2 * np.pi * cycles * np.arange(width) / width)[None, None, :] * np.ones((1, height, 1))
    filtered = spectral.lowpass(wave.astype(np.float32), cutoff, kind="gaussian", signed=True)
    radius = cycles * height / width
    np.testing.assert_allclose(filtered, np.exp(-radius**2 / (2 * cutoff**2)) * wave, atol=1e-5)


def region_model(x):
    """Class 0 score = mean brightness of the top-left 8 x 8 corner; the rest is ignored."""
    s = tf.reduce_mean(x[:, :8, :8, :], axis=[1, 2, 3]) / 255.0
    return tf.stack([s, 1 - s], axis=1)


def test_rise_puts_its_weight_on_the_only_region_the_model_sees():
    x = np.random.default_rng(0).uniform(100, 255, (2, 24, 24, 3)).astype(np.float32)
    maps = idgi_tf.attribute(region_model, x, [0, 0], "rise", nmasks=600, batch_size=64)
    again = idgi_tf.attribute(region_model, x, [0, 0], "rise", nmasks=600, batch_size=7)
    np.testing.assert_allclose(again, maps, rtol=1e-5, atol=1e-9)  # seeded per mask: batching does not matter
    share = 64 / 24**2
    for saliency in maps.sum(axis=-1):
        top = np.unravel_index(np.argsort(-saliency.ravel())[:64], saliency.shape)
        assert ((top[0] < 8) & (top[1] < 8)).mean() > 0.8
        above_floor = saliency - saliency.min()  # RISE has a constant offset E[f] / p everywhere
        assert above_floor[:8, :8].sum() / above_floor.sum() > 2.5 * share


def test_blur_then_subsample_removes_the_high_frequencies_of_the_gradient():
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255.0),
        keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu"),
        keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2, strides=2), keras.layers.Flatten(), keras.layers.Dense(3)])
    smooth = antialiased(model)
    x = np.random.default_rng(4).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    assert smooth(x).shape == model(x).shape
    weights = [w for layer in model.layers for w in layer.get_weights()]
    twin = [w for layer in smooth.layers for w in layer.get_weights()]
    assert len(twin) == len(weights) == 6 and all(np.array_equal(a, b) for a, b in zip(weights, twin))
    before = spectral.high_frequency_ratio(idgi_tf.attribute(model, x, [0] * 4, "vg"), 0.25)
    after = spectral.high_frequency_ratio(idgi_tf.attribute(smooth, x, [0] * 4, "vg"), 0.25)
    assert after.mean() < 0.7 * before.mean()
    flat = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no stride-2"):
        antialiased(flat)


def test_spectral_command_writes_its_files(tmp_path, capsys):
    out = tmp_path / "spectra"
    assert spectral_main(["spectra", "--model", "MobileNetV2", "--weights", "none", "--input-size", "32",
                          "--steps", "4", "--nmasks", "16", "--methods", "vg,ig,rise", "--out", str(out)]) == 0
    assert sorted(os.listdir(out)) == ["aliasing.png", "high_frequency.csv", "spectra.csv", "spectra.png"]
    header = (out / "spectra.csv").read_text().splitlines()[0]
    assert header == "frequency,ig,vg,rise,vg_blur_then_subsample"  # METHODS order
    assert spectral_main(["spectra", "--model", "MobileNetV2", "--methods", "vg,nope", "--weights", "none"]) == 2
    assert "argument --methods: takes a comma-separated subset" in capsys.readouterr().err


def test_tune_cutoff_says_when_no_cutoff_can_be_scored():
    """A model whose output ignores the image leaves every muFidelity correlation undefined."""
    images = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 1)).astype(np.float32)
    flat = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(2, kernel_initializer="zeros")])
    maps = np.random.default_rng(1).normal(size=(2, 16, 16))
    with pytest.raises(ValueError, match="metric 'mufidelity' is undefined on every image at every cutoff"):
        spectral.tune_cutoff(flat, images, [0, 1], maps, metric="mufidelity", grid=[2, 4])
