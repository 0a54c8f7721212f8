"""The attribution API's promises at their edges (issue 28): path starts, RISE under XLA, IDGI at extreme
scales, models with structured outputs or other inputs, the completeness gap's denominator, misspelt options."""

import keras
import numpy as np
import pytest

import idgi_tf

PATH_CASES = [
    ("ig", {}),
    ("ig", {"baseline": 120.0}),
    ("ig", {"baseline": np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3))}),
    ("gig", {}),
    ("gig", {"baseline": 120.0, "fraction": 0.5}),
    ("blurig", {}),
    ("blurig", {"max_sigma": 9.0, "sqrt": False}),
    ("blurig", {"max_sigma": 9.0, "sqrt": True}),
]


def _change_from_path_start(model, images, targets, method, options):
    """``f(x) - f(path_start(...))``, computed apart from any attribution."""
    start = idgi_tf.path_start(method, images, **options)
    return idgi_tf.explained_output(model, images, targets) - idgi_tf.explained_output(model, start, targets)


@pytest.mark.parametrize("method, options", PATH_CASES)
def test_idgi_maps_sum_to_the_output_change_from_path_start(model, images, targets, method, options):
    maps = idgi_tf.attribute(model, images, targets, method, rule="idgi", steps=16, **options)
    change = _change_from_path_start(model, images, targets, method, options)
    assert np.all(np.abs(change) > 1e-3), "the test images must move the output"
    np.testing.assert_allclose(maps.astype(np.float64).sum(axis=(1, 2, 3)), change, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("method, options", [case for case in PATH_CASES if case[0] != "ig" or case[1]])
def test_gap_relative_is_the_gap_over_the_output_change_from_the_start(model, images, targets, method, options):
    """Non-black starts, where ``f(start)`` is far from 0: a denominator of ``f(x)`` would be caught."""
    _, gaps = idgi_tf.attribute(model, images, targets, method, steps=8, return_gap=True, **options)
    change = _change_from_path_start(model, images, targets, method, options)
    f_start = idgi_tf.explained_output(model, idgi_tf.path_start(method, images, **options), targets)
    assert np.all(np.abs(f_start) > 0.2 * np.abs(change)) and np.all(np.abs(gaps.absolute) > 1e-5)
    np.testing.assert_allclose(gaps.output_change, change, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(gaps.relative, np.abs(gaps.absolute) / np.abs(change), rtol=1e-4)


def test_rise_gives_the_same_maps_under_xla_and_at_any_batch_size(model, images, targets):
    runs = {(jit, batch): idgi_tf.attribute(model, images, targets, "rise", nmasks=40, cells=4, seed=3,
                                            batch_size=batch, jit_compile=jit)
            for jit in (False, True) for batch in (1, 64)}
    reference = runs[False, 64]
    for key, maps in runs.items():
        np.testing.assert_allclose(maps, reference, rtol=1e-5, atol=1e-6 * np.abs(reference).max(), err_msg=str(key))


@pytest.mark.parametrize("method, options", [
    ("vg", {}), ("gxi", {}), ("ig", {"rule": "idgi"}), ("gig", {"rule": "idgi"}), ("blurig", {"rule": "idgi"}),
    ("elrp", {}), ("deeplift", {}), ("occlusion", {}), ("rise", {"nmasks": 20}),
    ("smoothgrad", {"inner": "ig", "nsamples": 3}),
])
def test_every_method_agrees_under_xla(model, images, targets, method, options):
    """The README's promise: maps with ``jit_compile=True`` are the ``False`` ones to 1e-5 relative L1."""
    plain, xla = (idgi_tf.attribute(model, images, targets, method, steps=4, jit_compile=jit, **options)
                  for jit in (False, True))
    assert np.abs(xla - plain).sum() <= 1e-5 * np.abs(plain).sum()


def test_rise_masks_depend_only_on_the_seed_and_their_index():
    grids, shifts = idgi_tf.attribution.rise.mask_draws(50, 7, 4, 0.5, 20, 30)
    fewer = idgi_tf.attribution.rise.mask_draws(10, 7, 4, 0.5, 20, 30)
    np.testing.assert_array_equal(fewer[0], grids[:10])
    np.testing.assert_array_equal(fewer[1], shifts[:10])
    assert set(np.unique(grids)) == {0.0, 1.0} and (shifts >= 0).all() and (shifts < [5, 8]).all()


@pytest.fixture(scope="module")
def logits(model):
    """The smooth CNN's logits (its softmax left out), so that scaling them scales f."""
    return keras.Model(model.inputs, model.layers[-2].output)


@pytest.mark.parametrize("scale", [1e23, 1e24, 1e-30])
def test_idgi_is_finite_complete_and_scales_with_the_logits(logits, images, targets, scale):
    """Σg² overflows float32 at 1e23-1e24 (old: zero maps, then NaN) and g² underflows at 1e-30 (old: the
    gradient looked vanished); the IDGI map of ``scale * f`` is ``scale`` times the map of ``f``."""
    unit = idgi_tf.attribute(logits, images, targets, "ig", rule="idgi", steps=8)
    scaled, gaps = idgi_tf.attribute(lambda x: logits(x) * scale, images, targets, "ig", rule="idgi", steps=8,
                                     return_gap=True)
    assert np.isfinite(scaled).all()
    np.testing.assert_allclose(scaled / scale, unit, rtol=1e-4, atol=1e-5 * np.abs(unit).max())
    assert np.all(gaps.relative < 1e-5), gaps.relative


def _outputs(structure):
    """A functional model on (32, 32, 3) images whose outputs are ``structure(scores)``."""
    inputs = keras.Input((32, 32, 3))
    scores = keras.layers.Dense(5)(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, structure(scores))


STRUCTURES = {
    "dict": lambda s: {"scores": s},
    "dict of two": lambda s: {"a": s, "b": s},
    "nested dict": lambda s: {"a": [s]},
    "list of two": lambda s: [s, s],
    "tuple of two": lambda s: (s, s),
}


@pytest.mark.parametrize("entry", ["attribute", "explained_output"])
@pytest.mark.parametrize("structure", STRUCTURES)
def test_a_model_with_structured_outputs_is_refused_before_tracing(images, targets, structure, entry):
    model = _outputs(STRUCTURES[structure])
    run = {"attribute": lambda: idgi_tf.attribute(model, images, targets, "ig", steps=2),
           "explained_output": lambda: idgi_tf.explained_output(model, images, targets)}[entry]
    with pytest.raises(ValueError, match=r"model returns a (dict|list|tuple).*, not one tensor of class scores "
                                         r"\(N, K\).*pass targets as a callable"):
        run()


def test_a_callable_returning_a_dict_is_refused_and_one_output_in_a_list_still_works(model, images, targets):
    with pytest.raises(ValueError, match="model returns a dict with keys"):
        idgi_tf.attribute(lambda x: {"scores": model(x)}, images, targets, "vg")
    single = _outputs(lambda s: [s])  # Keras returns the tensor itself
    assert idgi_tf.attribute(single, images, targets, "vg").shape == images.shape


def test_a_model_that_does_not_take_images_is_refused_before_any_pass(images, targets):
    flat = keras.Sequential([keras.Input((10,)), keras.layers.Dense(5)])
    with pytest.raises(ValueError, match=r"model expects inputs of shape \(None, 10\)"):
        idgi_tf.attribute(flat, images, targets, "ig", steps=2)
    two = [keras.Input((32, 32, 3)), keras.Input((4,))]
    joined = keras.layers.Concatenate()([keras.layers.Flatten()(two[0]), two[1]])
    with pytest.raises(ValueError, match="the model takes 2 input.*inputs must be a list or dict of 2 arrays"):
        idgi_tf.attribute(keras.Model(two, keras.layers.Dense(5)(joined)), images, targets, "vg")


@pytest.mark.parametrize(
    "call, hint",
    [
        (lambda m, x, t: idgi_tf.attribute(m, x, t, "ig", step=8), "did you mean 'steps'"),
        (lambda m, x, t: idgi_tf.attribute(m, x, t, "ig", batchsize=8), "did you mean 'batch_size'"),
        (lambda m, x, t: idgi_tf.attribute(m, x, t, "blurig", max_sigm=3), "did you mean 'max_sigma'"),
        (lambda m, x, t: idgi_tf.attribute(m, x, t, "smoothgrad", nsample=3), "did you mean 'nsamples'"),
        (lambda m, x, t: idgi_tf.path_start("blurig", x, sqr=True), "did you mean 'sqrt'"),
    ],
)
def test_a_misspelt_option_gets_the_close_names(model, images, targets, call, hint):
    with pytest.raises(TypeError, match=f"unknown option.*{hint}"):
        call(model, images, targets)
