"""XLA through the attributions, every metric and the bench: ``jit_compile=True`` gives the ``False`` numbers.

Tolerances are float32 reassociation: XLA fuses and reorders the same float32
operations, so values agree to ~1e-6 relative (1e-5 asserted), not bit for bit.
"""

import json

import numpy as np
import pytest
import tensorflow as tf

import idgi_tf
from idgi_tf import metrics, models
from idgi_tf.bench.cli import main as bench_main
from idgi_tf.runtime import resolve_jit

RTOL = 1e-5


def test_auto_means_xla_on_a_gpu_only(monkeypatch):
    assert not tf.config.list_physical_devices("GPU")  # CI and this machine
    assert resolve_jit("auto") is False
    real = tf.config.list_physical_devices

    def with_a_gpu(kind=None):
        found = real(kind)
        return [tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU")] if kind == "GPU" else found

    monkeypatch.setattr(tf.config, "list_physical_devices", with_a_gpu)
    assert resolve_jit("auto") is True
    assert resolve_jit(False) is False and resolve_jit(np.bool_(True)) is True
    with pytest.raises(ValueError, match="jit_compile must be True, False or 'auto', got 'xla'"):
        resolve_jit("xla")
    with pytest.raises(TypeError, match="jit_compile must be True, False or 'auto', got 1"):
        resolve_jit(1)


def _perturbation_scores(model, images, labels, maps, jit):
    """The metrics that perturb pixels by rank, with ``jit_compile=jit``: {name: array}."""
    run = {"jit_compile": jit, "batch_size": 6}
    out = {
        "f": idgi_tf.explained_output(model, images, labels, **run),
        "insertion": metrics.insertion(model, images, labels, maps, **run).curves["probability"],
        "deletion": metrics.deletion(model, images, labels, maps, **run).curves["probability"],
    }
    for mode in ("paper", "pair"):
        result = metrics.sic_aic(model, images, labels, maps, thresholds=7, min_pred=0.0, mode=mode, workers=2, **run)
        out[f"sic_{mode}"], out[f"aic_{mode}"] = result.curves["sic"], result.curves["aic"]
    return out


def test_attributions_and_perturbation_metrics_agree_under_xla_on_a_trained_cnn(trained_model):
    model, images, labels = trained_model  # 4 held-out images; batch_size 6 leaves uneven last chunks
    maps = idgi_tf.attribute(model, images, labels, "ig", rule=("plain", "idgi"), steps=8, jit_compile=False)
    compiled = idgi_tf.attribute(model, images, labels, "ig", rule=("plain", "idgi"), steps=8, jit_compile=True)
    for rule in maps:
        np.testing.assert_allclose(compiled[rule], maps[rule], rtol=RTOL, atol=RTOL * np.abs(maps[rule]).max())
    plain = _perturbation_scores(model, images, labels, maps["idgi"], False)
    xla = _perturbation_scores(model, images, labels, maps["idgi"], True)
    for name in plain:
        np.testing.assert_allclose(xla[name], plain[name], rtol=RTOL, atol=1e-6, equal_nan=True, err_msg=name)
    assert np.isfinite(plain["sic_paper"]).all() and np.isfinite(plain["sic_pair"]).any()  # pair skips one


def test_correlation_metrics_agree_under_xla(model, images, targets):
    """On the smooth random CNN (unsaturated softmax): the trained one's output drops are ~1e-7 for most
    subsets, and a correlation of rounding noise is not a score (NaN or anything, with or without XLA)."""
    maps = idgi_tf.attribute(model, images, targets, "ig", steps=8, jit_compile=False)
    results = {}
    for jit in (False, True):
        run = {"jit_compile": jit, "batch_size": 6}
        results[jit] = (
            metrics.sensitivity_n(model, images, targets, maps, ns=[4, 100], subsets=7, **run).curves["correlation"],
            metrics.mufidelity(model, images, targets, maps, grid=4, samples=9, **run).scores["mufidelity"],
        )
    for plain, xla in zip(results[False], results[True]):
        assert np.isfinite(plain).all()
        np.testing.assert_allclose(xla, plain, rtol=1e-4, atol=1e-5)


def test_ms_ssim_bokeh_images_and_a_zoo_model_under_xla():
    model = models.load("MobileNetV2", None, input_size=168)
    images = np.random.default_rng(0).uniform(0, 255, (3, 168, 168, 3)).astype(np.float32)
    labels = np.array([1, 2, 3])
    maps = np.random.default_rng(1).normal(size=(3, 168, 168))
    results = [metrics.sic_aic(model, images, labels, maps, information="msssim", thresholds=5, min_pred=0.0,
                               jit_compile=jit, batch_size=4) for jit in (False, True)]
    for key in ("points_information", "points_sic"):
        np.testing.assert_allclose(results[1].curves[key], results[0].curves[key], rtol=RTOL, atol=1e-6,
                                   equal_nan=True)
    assert results[1].options["jit_compile"] is True and results[0].options["jit_compile"] is False


def test_bench_rows_with_and_without_xla_agree(tmp_path, capsys):
    rows = {}
    for jit in ("on", "off"):
        out = tmp_path / jit
        assert bench_main(["run", "--model", "MobileNetV2", "--weights", "none", "--input-size", "48", "--steps", "3",
                           "--limit", "2", "--chunk", "2", "--methods", "ig,vg", "--metrics", "insertion,localization",
                           "--jit", jit, "--quiet", "--out", str(out)]) == 0
        rows[jit] = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
        assert json.loads((out / "run.json").read_text())["jit_compile"] is (jit == "on")
    assert len(rows["on"]) == len(rows["off"]) == 6
    for on, off in zip(rows["on"], rows["off"]):
        assert on["jit"] is True and off["jit"] is False
        assert (on["image"], on["method"], on["rule"]) == (off["image"], off["method"], off["rule"])
        np.testing.assert_allclose(on["insertion_curve"], off["insertion_curve"], rtol=RTOL, atol=1e-7)
        np.testing.assert_allclose(on["roc_auc"], off["roc_auc"], rtol=1e-4)
    capsys.readouterr()
    assert bench_main(["run", "--model", "MobileNetV2", "--jit", "bogus"]) == 2
    error = capsys.readouterr().err
    assert "argument --jit: invalid choice: 'bogus' (choose from 'auto', 'on', 'off')" in error
    assert error.count("\n") == 1
