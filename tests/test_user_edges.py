"""Issue 28's edges met by a new user: images in [0, 1], overlay names, the callback's arguments, empty or
scalar plot data, silent command lines, and the example's log folder."""

import importlib.util
import os
import tempfile
import warnings

import keras
import numpy as np
import pytest
from helpers import photos
from skimage import data as skdata
from skimage.transform import resize

import idgi_tf
from idgi_tf import data, metrics, models, viz
from idgi_tf.callbacks import AttributionCallback

SIZE = 32
REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def pixels_model():
    """A small pixel_model: it takes pixels in [0, 255], like every zoo model."""
    keras.utils.set_random_seed(0)
    network = keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.Conv2D(4, 3, activation="tanh"),
                                keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="softmax")])
    return models.pixel_model(network, "tf")


@pytest.fixture(scope="module")
def chelsea():
    """scikit-image's cat as a new user would scale it: chelsea() / 255, in [0, 1]."""
    return (resize(skdata.chelsea(), (SIZE, SIZE), anti_aliasing=True, preserve_range=True) / 255.0)[None]


# ------------------------------------------------------------------ item 16: images in [0, 1]


def test_pixel_models_declare_their_range_and_so_do_the_zoos():
    network = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(2)])
    assert models.pixel_model(network, "none").pixel_range == (0.0, 255.0)
    assert models.load("MobileNetV2", None, input_size=32).pixel_range == (0.0, 255.0)


def test_unit_range_images_warn_in_attribute_and_the_metrics(pixels_model, chelsea):
    with pytest.warns(UserWarning, match=r"attribute: the images all lie in \[0, 1\].*\[0, 255\].*images \* 255"):
        maps = idgi_tf.attribute(pixels_model, chelsea, 0, "vg")
    with pytest.warns(UserWarning, match=r"insertion: the images all lie in \[0, 1\]"):
        metrics.insertion(pixels_model, chelsea, 0, maps)
    with pytest.warns(UserWarning, match=r"mufidelity: the images all lie in \[0, 1\]"):
        metrics.mufidelity(pixels_model, chelsea, 0, maps, samples=4)
    with pytest.warns(UserWarning, match=r"explained_output: the images all lie in \[0, 1\]"):
        idgi_tf.explained_output(pixels_model, chelsea, 0)


def test_a_dict_of_maps_given_to_a_metric_says_to_pass_one_rule_s_maps(pixels_model, chelsea):
    maps = idgi_tf.attribute(pixels_model, chelsea * 255, 0, "ig", steps=2, rule=("plain", "idgi"))
    expected = r"maps must be one array, got a dict with keys \['idgi', 'plain'\].*maps\['idgi'\]"
    with pytest.raises(TypeError, match=expected):
        metrics.insertion(pixels_model, chelsea * 255, 0, maps)


def test_the_figure3_command_names_a_target_out_of_range_before_loading_a_model(capsys):
    from idgi_tf.viz.__main__ import main

    assert main(["--image", "chelsea", "--methods", "vg", "--target", "5000", "--weights", "none"]) != 0
    assert "--target must be an ImageNet class in [0, 1000), got 5000" in capsys.readouterr().err


def test_unit_range_warns_once_per_call_site(pixels_model, chelsea):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # Python's own filter for UserWarning
        for _ in range(3):
            idgi_tf.attribute(pixels_model, chelsea, 0, "vg")
    assert [str(w.message).split(":")[0] for w in caught] == ["attribute"]


def test_no_warning_for_pixels_in_0_255_or_for_models_without_a_declared_range(pixels_model, chelsea, model):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        maps = idgi_tf.attribute(pixels_model, chelsea * 255, 0, "vg")
        metrics.insertion(pixels_model, chelsea * 255, 0, maps)
        idgi_tf.attribute(model, photos() / 255, [0, 1, 2], "vg")  # a user's model: its range is its own
        data.load_image(skdata.chelsea(), SIZE)  # uint8 pixels


def test_load_image_warns_for_a_float_array_in_unit_range():
    with pytest.warns(UserWarning, match=r"load_image: the images all lie in \[0, 1\].*\* 255"):
        data.load_image(skdata.chelsea() / 255.0, SIZE)


# ------------------------------------------------------------------ item 8: SIC/AIC rounds [0, 1] to {0, 1}


def test_sic_aic_refuses_float_images_in_unit_range(model, targets):
    images = photos()
    maps = np.random.default_rng(0).normal(size=images.shape[:3])
    with pytest.raises(ValueError, match=r"images are float pixels with maximum 0\.9.*SIC/AIC.*8-bit.*\[0, 255\]"
                                         r".*images \* 255"):
        metrics.sic_aic(model, images / 255.0, targets, maps)
    with pytest.raises(ValueError, match=r"base_images are float pixels .*base_images \* 255"):
        metrics.sic_aic(model, images, targets, maps, base_images=images / 255.0)


# ------------------------------------------------------------------ item 10: overlay names one column


def test_an_overlay_string_is_one_column_name():
    image = np.random.default_rng(1).uniform(0, 255, (8, 8, 3))
    maps = np.random.default_rng(2).normal(size=(1, 8, 8))
    figure = viz.plot_attributions(image, {"a": maps, "b": maps, "ab": maps}, overlay="ab")
    assert [len(ax.images) for ax in figure.axes] == [1, 1, 1, 2]  # image, a, b, then ab over its photo
    figure = viz.plot_attributions(image, {"IG": maps, "IG+IDGI": maps}, overlay="IG+IDGI")
    assert [len(ax.images) for ax in figure.axes] == [1, 1, 2]
    with pytest.raises(ValueError, match=r"overlay names columns that maps does not have: \['IDGI'\]"):
        viz.plot_attributions(image, {"IG": maps}, overlay="IDGI")


# ------------------------------------------------------------------ item 13: the callback's arguments


def test_the_callback_takes_one_target_for_all_images_as_attribute_does():
    x = np.random.default_rng(3).uniform(0, 255, (3, SIZE, SIZE, 1)).astype(np.float32)
    network = keras.Sequential([keras.Input((SIZE, SIZE, 1)), keras.layers.Flatten(),
                                keras.layers.Dense(4, activation="softmax")])
    callback = AttributionCallback(x, 3, methods=("vg",), rules=("plain",), metrics=())
    np.testing.assert_array_equal(callback.targets, [3, 3, 3])
    callback.set_model(network)
    assert "values/vg_plain" in callback.log_epoch(0)["histograms"]
    with pytest.raises(ValueError, match=r"targets must have shape \(3,\)"):
        AttributionCallback(x, [1, 2])


def test_the_callback_checks_its_log_dir_when_built(tmp_path):
    x, y = np.zeros((2, SIZE, SIZE, 1), np.float32), [0, 1]
    with pytest.raises(ValueError, match=r"log_dir must be a folder path or None, got ''"):
        AttributionCallback(x, y, log_dir="")
    a_file = tmp_path / "events"
    a_file.write_text("not a folder")
    with pytest.raises(ValueError, match=r"log_dir must be a folder .*events"):
        AttributionCallback(x, y, log_dir=str(a_file))
    with pytest.raises(ValueError, match=r"log_dir must be a folder"):
        AttributionCallback(x, y, log_dir=str(a_file / "below"))
    fresh = tmp_path / "runs" / "attribution"
    assert AttributionCallback(x, y, log_dir=fresh).log_dir == str(fresh) and fresh.is_dir()


# ------------------------------------------------------------------ item 14: plots of scalar or empty data


def test_plot_spectra_names_a_scalar_spectrum():
    with pytest.raises(ValueError, match=r"spectrum 'VG' must be an array of one value per frequency \(4\), "
                                         r"got the scalar 2.0"):
        viz.plot_spectra(np.arange(4.0), {"VG": 2.0})


def test_empty_curves_on_a_log_axis_draw_empty_axes():
    ax = viz.plot_curves([], [[]], logx=True).axes[0]
    assert ax.get_xscale() == "log" and len(ax.get_lines()) == 1 and ax.get_lines()[0].get_xdata().size == 0
    viz.to_array(ax.figure)  # renders


# ------------------------------------------------------------------ item 19: the command lines report progress


def test_the_figure3_command_reports_progress_per_method_on_stderr(tmp_path, capsys):
    from idgi_tf.viz.__main__ import main

    assert main(["--model", "MobileNetV2", "--image", "coffee", "--weights", "none", "--input-size", "32",
                 "--steps", "2", "--methods", "vg,ig", "--out", str(tmp_path / "fig.png")]) == 0
    out, err = capsys.readouterr()
    assert "method 1/2" in err and "method 2/2" in err and "method" not in out


def test_the_spectral_command_reports_progress_per_method_and_image_on_stderr(tmp_path, capsys):
    from idgi_tf.spectral.__main__ import main

    assert main(["spectra", "--model", "MobileNetV2", "--weights", "none", "--input-size", "32", "--methods", "vg",
                 "--out", str(tmp_path / "spectra")]) == 0
    out, err = capsys.readouterr()
    for line in ("method 1/1: vg: 11 images", "aliasing check 1/2", "aliasing check 2/2", "image 1/11",
                 "image 11/11"):
        assert line in err
    assert "image 1/11" not in out and "high-frequency share" in out


# ------------------------------------------------------------------ item 20: the example's logs


def test_the_training_example_logs_under_the_temporary_folder_not_the_repository():
    path = os.path.join(REPOSITORY, "examples", "train_with_callback.py")
    spec = importlib.util.spec_from_file_location("train_with_callback", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert example.DEFAULT_LOG_DIR.startswith(tempfile.gettempdir() + os.sep)
    assert "idgi_tf_logs/attribution" in example.__doc__ and "temporary folder" in example.__doc__  # says where
