"""Specs every row of the method table meets, parametrised over the table: a new row gets them unchanged."""

import ast
import pathlib

import numpy as np
import pytest
from helpers import CountingModel, bias_free_relu_cnn, photos, smooth_cnn

import idgi_tf
from idgi_tf.attribution.methods import METHODS, PATH_INTEGRALS, smoothed

SIZE = 16
TARGETS = np.array([1, 3, 0], np.int32)
# Cost options shrunk by name so that every call stays small; a new row's other options keep their defaults.
SMALL = {"nmasks": 24, "cells": 3, "patch": 4, "nsamples": 3}
# The rows that are a method of their own (not around another one, as SmoothGrad is).
OWN_ROWS = [name for name, row in METHODS.items() if row.wraps is None]
NETS = {"tanh net with biases": lambda: smooth_cnn(SIZE),
        "bias-free ReLU net": lambda: bias_free_relu_cnn(SIZE, SIZE, 3)}


@pytest.fixture(scope="module")
def net():
    return smooth_cnn(SIZE)


@pytest.fixture(scope="module")
def x():
    return photos(SIZE)


def small_call(name: str) -> dict:
    """Keyword arguments of a small call of ``name``: every rule it has, few steps, its cost options shrunk."""
    row = METHODS[name]
    return {"rule": tuple(sorted(row.rules)), "steps": 6,
            **{key: value for key, value in SMALL.items() if key in row.options}}


def test_the_table_order_is_the_display_order_with_the_agreed_titles():
    assert list(METHODS)[:4] == ["ig", "gig", "blurig", "vg"]
    assert [row.title for row in METHODS.values()] == [
        "IG", "GIG", "BlurIG", "VG", "Gradient×Input", "SmoothGrad", "ε-LRP", "DeepLIFT", "Grad-CAM", "Grad-CAM++",
        "Occlusion", "RISE"]
    assert {name for name, row in METHODS.items() if row.image_only} == {"blurig", "gradcam", "gradcampp", "rise"}
    assert {name for name, row in METHODS.items() if row.explains_logit} == {"elrp", "deeplift", "gradcam", "gradcampp"}


@pytest.mark.parametrize("name", METHODS)
def test_every_row_has_a_title_a_summary_and_its_place_in_the_docstring(name):
    row = METHODS[name]
    assert isinstance(row.title, str) and row.title.strip() and isinstance(row.image_only, bool)
    assert row.summary.strip() and row.rules
    assert f'``"{name}"``' in idgi_tf.attribute.__doc__


@pytest.mark.parametrize("net_name", NETS)
@pytest.mark.parametrize("name", PATH_INTEGRALS)
def test_idgi_maps_of_every_path_integral_sum_to_the_output_change_from_its_start(x, name, net_name):
    model = NETS[net_name]()
    maps = idgi_tf.attribute(model, x, TARGETS, name, rule="idgi", steps=16)
    start = idgi_tf.path_start(name, x)
    change = idgi_tf.explained_output(model, x, TARGETS) - idgi_tf.explained_output(model, start, TARGETS)
    assert np.all(np.abs(change) > 1e-4), "the test images must move the output"
    np.testing.assert_allclose(maps.astype(np.float64).sum(axis=(1, 2, 3)), change, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", METHODS)
def test_results_do_not_depend_on_batching(net, x, name):
    """``batch_size`` 2 and one image a call give the maps of one big batch (``batch_size=1`` changes Guided
    IG's selection, as ``attribute`` documents)."""
    # Grad-CAM at the first convolution: at the last one, ReLU(sum_k w_k A_k) is 0 for these images
    call = small_call(name) | ({"layer": net.layers[1]} if METHODS[name].own_layer else {})
    reference = idgi_tf.attribute(net, x, TARGETS, name, batch_size=64, **call)
    runs = {"batch_size=2": idgi_tf.attribute(net, x, TARGETS, name, batch_size=2, **call)}
    if not METHODS[name].takes_image_index:  # SmoothGrad keys its noise by the image's index in the call
        singles = [idgi_tf.attribute(net, x[i:i + 1], TARGETS[i:i + 1], name, batch_size=5, **call)
                   for i in range(len(x))]
        runs["one image a call"] = {rule: np.concatenate([single[rule] for single in singles]) for rule in reference}
    for label, got in runs.items():
        for rule, want in reference.items():
            assert np.abs(want).max() > 0
            np.testing.assert_allclose(got[rule], want, rtol=1e-4, atol=1e-6 * np.abs(want).max(),
                                       err_msg=f"{label}, {rule}")


def _bad_inputs(name: str, x: np.ndarray):
    """``(case, images, keywords, error, message)``: bad calls of ``name`` that must be named up front."""
    nan = x.copy()
    nan[1, 2, 3, 0] = np.nan
    wrong_baseline = ({"baseline": np.zeros((5, 5, 3))}, "baseline must be a scalar") if METHODS[name].takes_baseline \
        else ({"baseline": 0.0}, "takes no baseline")
    return [
        ("unknown option", x, {"no_such_option": 1}, TypeError, r"unknown option\(s\) \['no_such_option'\]"),
        ("wrong baseline", x, wrong_baseline[0], ValueError, wrong_baseline[1]),
        ("NaN pixel", nan, {}, ValueError, "inputs contains NaN or Inf"),
    ]


@pytest.mark.parametrize("name", METHODS)
def test_bad_input_is_named_before_any_model_pass(net, x, name):
    for case, images, keywords, error, message in _bad_inputs(name, x):
        # a method that reads a layer (Grad-CAM) needs the Keras model itself, which cannot count its inputs
        counting = CountingModel(net) if METHODS[name].own_layer is None else None
        with pytest.raises(error, match=message):
            idgi_tf.attribute(counting or net, images, TARGETS, name, **small_call(name), **keywords)
        # at most the one image a plain callable is probed with to read its number of classes
        assert counting is None or int(counting.inputs.numpy()) <= 1, case


@pytest.mark.parametrize("name", OWN_ROWS)
def test_smoothgrad_without_noise_is_the_method_it_wraps(net, x, name):
    """SmoothGrad wraps any row, as a Method (``smoothed``) and as the table's ``inner=`` option."""
    call = small_call(name)
    plain = idgi_tf.attribute(net, x, TARGETS, name, **call)
    wrapped = idgi_tf.attribute(net, x, TARGETS, smoothed(METHODS[name], nsamples=2, noise=0.0), batch_size=4,
                                **call)
    by_name = idgi_tf.attribute(net, x, TARGETS, "smoothgrad", inner=name, nsamples=2, noise=0.0, batch_size=4,
                                **call)
    for rule, want in plain.items():
        for got in (wrapped[rule], by_name[rule]):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * np.abs(want).max(), err_msg=rule)


def test_smoothed_rows_name_what_they_wrap_and_cannot_refine_their_steps(net, x):
    ig = smoothed(METHODS["ig"], nsamples=2)
    assert ig.title == "SmoothGrad(IG)" and ig.rules == METHODS["ig"].rules and ig.path is None
    with pytest.raises(ValueError, match="steps='auto' needs an integral over a path"):
        idgi_tf.attribute(net, x, TARGETS, ig, steps="auto")
    with pytest.raises(ValueError, match="nsamples must be a positive integer"):
        smoothed(METHODS["vg"], nsamples=0)
    with pytest.raises(ValueError, match="inner must be one of"):
        idgi_tf.attribute(net, x, TARGETS, "smoothgrad", inner="smoothgrad")
    # a row given as a Method is the row given by name
    np.testing.assert_array_equal(idgi_tf.attribute(net, x, TARGETS, METHODS["smoothgrad"], inner="gxi", nsamples=2),
                                  idgi_tf.attribute(net, x, TARGETS, "smoothgrad", inner="gxi", nsamples=2))


# The layers above the attribution core: nothing in idgi_tf/attribution/ may import them.
UPPER_LAYERS = {"spectral", "metrics", "bench", "viz", "callbacks"}


def _imported_modules(path: pathlib.Path):
    """Every module (and ``module.name``) that ``path``, a module of idgi_tf.attribution, imports."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            package = ["idgi_tf", "attribution"][:3 - node.level] if node.level else []
            base = ".".join([*package, *([node.module] if node.module else [])])
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def test_the_attribution_core_imports_nothing_above_it():
    sources = sorted(pathlib.Path(idgi_tf.attribution.__file__).parent.glob("*.py"))
    assert len(sources) > 5
    reached = {f"{path.name}: {module}" for path in sources for module in _imported_modules(path)
               if module.split(".")[:1] == ["idgi_tf"] and module.split(".")[1:2] and
               module.split(".")[1] in UPPER_LAYERS}
    assert not reached
