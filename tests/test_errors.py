"""Bad input gets a clear error that names the argument."""

import numpy as np
import pytest

import idgi_tf


@pytest.mark.parametrize(
    "change, error, pattern",
    [
        (lambda x, t: (x[0], t, {}), ValueError, r"inputs have shape \(32, 32, 3\) but the model expects inputs"),
        (lambda x, t: (x[..., :2], t, {}), ValueError, r"inputs have shape \(3, 32, 32, 2\) but the model expects"),
        (lambda x, t: (x[:, :16], t, {}), ValueError, "model expects"),
        (lambda x, t: (np.where(np.arange(3)[:, None, None, None] == 1, np.nan, x), t, {}), ValueError,
         "inputs contains NaN or Inf"),
        (lambda x, t: (x.astype(np.complex64), t, {}), TypeError, "inputs must hold real numbers"),
        (lambda x, t: (x, np.array([0, 1, 5]), {}), ValueError, r"targets must lie in \[0, 5\)"),
        (lambda x, t: (x, np.array([0, -1, 2]), {}), ValueError, "targets must lie in"),
        (lambda x, t: (x, np.array([0, 1]), {}), ValueError, r"targets must have shape \(3,\)"),
        (lambda x, t: (x, np.array([0.5, 1, 2]), {}), TypeError, "targets must be integer"),
        (lambda x, t: (x, t, {"steps": 0}), ValueError, "steps must be a positive integer"),
        (lambda x, t: (x, t, {"steps": 2.5}), TypeError, "steps must be a positive integer"),
        (lambda x, t: (x, t, {"batch_size": -1}), ValueError, "batch_size must be a positive"),
        (lambda x, t: (x, t, {"method": "lime"}), ValueError, "method must be one of"),
        (lambda x, t: (x, t, {"rule": "fancy"}), ValueError, "rule must be one of"),
        (lambda x, t: (x, t, {"rule": ()}), ValueError, "rule must name at least one"),
        (lambda x, t: (x, t, {"method": "vg", "rule": "idgi"}), ValueError, "does not apply to method 'vg'"),
        (lambda x, t: (x, t, {"baseline": np.zeros((5, 5, 3))}), ValueError, "baseline must be a scalar"),
        (lambda x, t: (x, t, {"baseline": np.full(x.shape[1:], np.inf)}), ValueError,
         "baseline contains NaN"),
        (lambda x, t: (x, t, {"method": "blurig", "baseline": 0.0}), ValueError, "takes no baseline"),
        (lambda x, t: (x, t, {"fraction": 0.3}), TypeError, "unknown option"),
        (lambda x, t: (x, t, {"method": "gig", "fraction": 0.0}), ValueError, r"fraction must lie in \(0"),
        (lambda x, t: (x, t, {"method": "gig", "max_dist": 2}), ValueError, "max_dist must lie in"),
        (lambda x, t: (x, t, {"method": "blurig", "max_sigma": -3}), ValueError, "max_sigma must lie in"),
        (lambda x, t: (x, t, {"method": "blurig", "sqrt": "yes"}), TypeError, "sqrt must be True or False"),
        (lambda x, t: (x, t, {"rule": None}), TypeError, "rule must be 'plain', 'idgi' or a tuple of them, got None"),
        (lambda x, t: (x, np.array([0, 1e20, 2]), {}), ValueError, r"targets must lie in \[0, 5\).*got 1e\+20"),
        (lambda x, t: (x, np.array([0, 2**40, 2]), {}), ValueError, "got 1099511627776"),
        (lambda x, t: (x, t, {"baseline": 1e39}), ValueError, "baseline holds values beyond float32's range"),
    ],
)
def test_bad_input_is_named(model, images, targets, change, error, pattern):
    x, t, options = change(images, targets)
    kwargs = {"method": "ig", "steps": 4, **options}
    with pytest.raises(error, match=pattern):
        idgi_tf.attribute(model, x, t, **kwargs)


def test_model_must_return_class_scores(images, targets):
    with pytest.raises(ValueError, match=r"model returns shape \(1, 32, 32, 3\), not one tensor of class scores"):
        idgi_tf.attribute(lambda x: x, images, targets, "vg")
    with pytest.raises(TypeError, match="model must be a Keras model or a callable"):
        idgi_tf.attribute("resnet", images, targets, "vg")


def test_explained_output_checks_targets(model, images):
    with pytest.raises(ValueError, match="targets must lie in"):
        idgi_tf.explained_output(model, images, [0, 1, 99])


class CountingModel:
    """A callable model that counts its calls: an argument error must come before any real work."""

    def __init__(self, model):
        self.model, self.calls = model, 0

    def __call__(self, x):
        self.calls += 1
        return self.model(x)


@pytest.mark.parametrize(
    "method, options, error, pattern",
    [
        ("occlusion", {"patch": 40}, ValueError, r"^patch must be at most .*: axis 1 of .* has 32, got patch 40$"),
        ("occlusion", {"patch": 4, "stride": 12}, ValueError, "stride must be at most patch \\(4\\).*stride=12"),
        ("rise", {"seed": 1.7}, TypeError, "seed must be an integer, got 1.7"),
        ("rise", {"seed": -1}, ValueError, r"seed must lie in \[0, 2\*\*31\)"),
        ("smoothgrad", {"seed": 2.5}, TypeError, "seed must be an integer"),
    ],
)
def test_option_errors_come_before_any_model_pass(model, images, targets, method, options, error, pattern):
    counting = CountingModel(model)
    with pytest.raises(error, match=pattern):
        idgi_tf.attribute(counting, images, targets, method, **options)
    assert counting.calls <= 1  # at most the one call that reads the number of classes
