"""Heatmaps, overlays, grids and curve plots drawn with PIL; the Figure-3 CLI."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from idgi_tf import viz


def test_the_hottest_pixel_gets_the_brightest_colour_and_a_zero_map_is_uniform():
    attribution = np.random.default_rng(0).uniform(0, 1, (16, 16))
    attribution[3, 7] = 5.0
    for cmap, brightest in (("magma", (252, 253, 191)), ("gray", (255, 255, 255))):
        heat = viz.heatmap(attribution, cmap=cmap, clip_percentile=100)
        assert heat.shape == (16, 16, 3) and heat.dtype == np.uint8
        assert tuple(heat[3, 7]) == brightest
        assert heat.astype(int).sum(axis=-1).argmax() == 3 * 16 + 7
    zero = viz.heatmap(np.zeros((8, 8, 3)))
    assert (zero == zero[0, 0]).all()
    assert (viz.heatmap(np.zeros((8, 8)), cmap="diverging") == 255).all()  # zero is white


def test_diverging_maps_are_symmetric_around_zero():
    attribution = np.zeros((4, 4))
    attribution[0, 0], attribution[1, 1] = 2.0, -2.0
    heat = viz.heatmap(attribution, cmap="diverging", how="sum", clip_percentile=100).astype(int)
    red, blue, white = heat[0, 0], heat[1, 1], heat[2, 2]
    assert tuple(white) == (255, 255, 255)
    assert red[0] > red[2] and blue[2] > blue[0]  # positive red, negative blue
    three_d = np.repeat(attribution[..., None] / 3, 3, axis=-1)  # channel sum = the 2-D map
    np.testing.assert_array_equal(viz.heatmap(three_d, cmap="diverging", how="sum", clip_percentile=100), heat)


def test_overlay_with_alpha_zero_is_the_photo_and_one_the_heatmap():
    photo = np.random.default_rng(1).uniform(0, 255, (12, 10, 3)).astype(np.float32)
    attribution = np.random.default_rng(2).normal(size=(12, 10, 3))
    np.testing.assert_array_equal(viz.overlay(photo, attribution, alpha=0.0), viz.as_rgb8(photo))
    np.testing.assert_array_equal(viz.overlay(photo, attribution, alpha=1.0), viz.heatmap(attribution))
    with pytest.raises(ValueError, match="same height and width"):
        viz.overlay(photo, attribution[:5])


def test_grid_size_is_its_cells_plus_labels_and_text_renders_offline():
    cell = np.full((20, 30, 3), 100, np.uint8)
    bare = viz.grid([[cell, cell, cell], [cell, None, cell]], pad=4)
    assert bare.shape == (2 * 20 + 3 * 4, 3 * 30 + 4 * 4, 3)
    labelled = viz.grid([[cell, cell, cell], [cell, None, cell]], row_labels=["IG", "Guided IG"],
                        col_labels=["image", "plain", "IDGI"], title="Figure 3", pad=4)
    assert labelled.shape[0] > bare.shape[0] and labelled.shape[1] > bare.shape[1]
    # The label margins hold dark text pixels; the empty cell stays white.
    top, left = labelled.shape[0] - bare.shape[0], labelled.shape[1] - bare.shape[1]
    assert (labelled[:top] < 100).any() and (labelled[:, :left] < 100).any()
    empty = labelled[top + 4 + 20 + 4:top + 4 + 20 + 4 + 20, left + 4 + 30 + 4:left + 4 + 30 + 4 + 30]
    assert (empty == 255).all()
    with pytest.raises(ValueError, match="row_labels must have one text per row"):
        viz.grid([[cell]], row_labels=["a", "b"])


def test_curves_draw_each_series_in_its_own_colour_inside_the_axes():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    up, down = x / 4, 1 - x / 4
    image = viz.curves(x, [up, down], labels=["up", "down"], xlabel="x", ylabel="y", title="t", size=(400, 300))
    assert image.shape == (300, 400, 3)
    colours = [tuple(c) for c in viz.PALETTE[:2]]
    pixels = {tuple(p) for p in image.reshape(-1, 3)}
    assert all(c in pixels for c in colours)
    # Each colour's pixels rise (up) or fall (down) from left to right.
    for colour, sign in zip(colours, (1, -1)):
        rows, cols = np.nonzero((image == colour).all(axis=-1))
        inside = cols < 300  # leave the legend (top right) out
        slope = np.polyfit(cols[inside], -rows[inside], 1)[0]
        assert np.sign(slope) == sign
    log_image = viz.curves(np.geomspace(1, 1000, 5), [np.arange(5.0)], log=True)
    assert log_image.shape == (420, 640, 3)
    with pytest.raises(ValueError, match="log=True needs positive x"):
        viz.curves([0.0, 1.0], [[1.0, 2.0]], log=True)
    with pytest.raises(ValueError, match="series 0 has 3 points but its x has 2"):
        viz.curves([1.0, 2.0], [[1.0, 2.0, 3.0]])


def test_save_writes_a_png(tmp_path):
    path = viz.save(viz.heatmap(np.eye(5)), tmp_path / "sub" / "map.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (5, 5)


def test_figure3_command_writes_a_png_and_bad_paths_give_one_line(tmp_path, capsys):
    from idgi_tf.viz.__main__ import main

    out = tmp_path / "fig.png"
    assert main(["--model", "MobileNetV2", "--image", "coffee", "--weights", "none", "--input-size", "32",
                 "--steps", "4", "--methods", "ig,vg", "--out", str(out)]) == 0
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size[0] > 3 * 32 and image.size[1] > 2 * 32
    assert main(["--model", "MobileNetV2", "--image", str(tmp_path / "missing.jpg"), "--weights", "none"]) == 2
    error = capsys.readouterr().err
    assert "--image must be an image file" in error and error.count("\n") == 1
    assert main(["--model", "MobileNetV2", "--image", "coffee", "--methods", "ig,nope", "--weights", "none"]) == 2


def test_figure3_command_as_a_subprocess(tmp_path):
    done = subprocess.run([sys.executable, "-m", "idgi_tf.viz", "--model", "Nope", "--image", "coffee"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "model name must be one of" in done.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("cmap, top", [("magma", (252, 253, 191)), ("gray", (255, 255, 255)),
                                       ("diverging", (178, 24, 43))])
def test_a_single_hot_pixel_is_the_brightest_pixel(cmap, top):
    """The 99th percentile of a map with one nonzero pixel is its minimum: the scale must not collapse."""
    sparse = np.zeros((20, 30))
    sparse[4, 9] = 3.0
    heat = viz.heatmap(sparse, cmap=cmap, how="sum")
    assert tuple(heat[4, 9]) == top
    rest = np.delete(heat.reshape(-1, 3), 4 * 30 + 9, axis=0)
    assert (rest == rest[0]).all() and tuple(rest[0]) != top


def test_all_nan_curves_draw_empty_axes_with_their_legend():
    picture = viz.curves(np.arange(5), [np.full(5, np.nan), np.full(5, np.nan)], labels=["IG", "IDGI"])
    assert picture.shape == (420, 640, 3)
    colours = {tuple(c) for c in picture.reshape(-1, 3)}
    assert tuple(viz.PALETTE[0]) in colours and tuple(viz.PALETTE[1]) in colours  # the legend's swatches
