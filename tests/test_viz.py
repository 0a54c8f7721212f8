"""Heatmaps (PAIR's scalings, matplotlib's colormaps exactly), Figures whose artists carry the data, saving,
and the Figure-3 CLI. Headless: the figures never touch pyplot or a display."""

import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

import idgi_tf
from idgi_tf import metrics, spectral, viz


def cell_colours(artist) -> np.ndarray:
    """The RGB uint8 colours an ``imshow`` artist shows for its data."""
    return artist.to_rgba(artist.get_array(), bytes=True)[..., :3]


@pytest.mark.parametrize("cmap", ["magma", "gray", "inferno", "viridis"])
def test_heatmap_colours_are_the_named_matplotlib_colormap_of_the_scaled_values(cmap):
    attribution = np.random.default_rng(0).normal(size=(13, 17, 3))
    scaled = viz.scaled_map(attribution)
    assert scaled.min() == 0.0 and scaled.max() == 1.0
    expected = matplotlib.colormaps[cmap](scaled, bytes=True)[..., :3]
    np.testing.assert_array_equal(viz.heatmap(attribution, cmap=cmap), expected)


@pytest.mark.parametrize("cmap", ["magma", "gray", "inferno", "diverging"])
def test_the_hottest_pixel_of_a_one_hot_map_is_the_colormaps_top_colour(cmap):
    """The 99th percentile of a map with one nonzero pixel is its minimum: the scale must not collapse."""
    sparse = np.zeros((20, 30))
    sparse[4, 9] = 3.0
    heat = viz.heatmap(sparse, cmap=cmap, how="sum")
    top = matplotlib.colormaps["RdBu_r" if cmap == "diverging" else cmap](1.0, bytes=True)[:3]
    assert tuple(heat[4, 9]) == tuple(top)
    rest = np.delete(heat.reshape(-1, 3), 4 * 30 + 9, axis=0)
    assert (rest == rest[0]).all() and tuple(rest[0]) != tuple(top)


def test_diverging_scale_is_pairs_and_symmetric_around_zero():
    attribution = np.zeros((4, 4))
    attribution[0, 0], attribution[1, 1], attribution[2, 2] = 2.0, -2.0, 1.0
    scaled = viz.scaled_map(attribution, how="sum", scale="diverging", clip_percentile=100)
    np.testing.assert_array_equal(scaled, attribution / 2.0)  # v / percentile(|v|, 100)
    heat = viz.heatmap(attribution, cmap="diverging", how="sum", clip_percentile=100)
    np.testing.assert_array_equal(heat, matplotlib.colormaps["RdBu_r"]((scaled + 1) / 2, bytes=True)[..., :3])
    red, blue = heat[0, 0].astype(int), heat[1, 1].astype(int)
    assert red[0] > red[2] and blue[2] > blue[0]  # positive red, negative blue
    # Any colormap takes the diverging scale; the 3-D map whose channel sum is the 2-D one gives the same colours.
    three_d = np.repeat(attribution[..., None] / 3, 3, axis=-1)
    np.testing.assert_array_equal(viz.heatmap(three_d, cmap="coolwarm", scale="diverging", how="sum",
                                              clip_percentile=100),
                                  matplotlib.colormaps["coolwarm"]((scaled + 1) / 2, bytes=True)[..., :3])


def test_grayscale_scale_is_pairs_percentile_clip():
    values = np.arange(100.0).reshape(10, 10)
    scaled = viz.scaled_map(values, clip_percentile=90)
    np.testing.assert_allclose(scaled, np.clip(values / np.percentile(values, 90), 0, 1))


def test_overlay_with_alpha_zero_is_the_photo_and_one_the_heatmap():
    photo = np.random.default_rng(1).uniform(0, 255, (12, 10, 3)).astype(np.float32)
    attribution = np.random.default_rng(2).normal(size=(12, 10, 3))
    np.testing.assert_array_equal(viz.overlay(photo, attribution, alpha=0.0), viz.as_rgb8(photo))
    np.testing.assert_array_equal(viz.overlay(photo, attribution, alpha=1.0), viz.heatmap(attribution))
    with pytest.raises(ValueError, match="same height and width"):
        viz.overlay(photo, attribution[:5])


def test_bad_maps_and_colormaps_are_named():
    with pytest.raises(ValueError, match="maps contain NaN or Inf"):
        viz.heatmap(np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match="cmap must be a matplotlib colormap name .* got 'magmaa'"):
        viz.heatmap(np.eye(4), cmap="magmaa")
    with pytest.raises(ValueError, match="scale must be one of"):
        viz.heatmap(np.eye(4), scale="log")
    with pytest.raises(ValueError, match=r"map must have shape \(H, W\) or \(H, W, C\)"):
        viz.heatmap(np.zeros(5))


def test_attribution_grid_cells_carry_the_heatmaps_and_the_named_colormap():
    rng = np.random.default_rng(3)
    images = rng.uniform(0, 255, (3, 9, 11, 3)).astype(np.float32)
    plain, idgi = rng.normal(size=(3, 9, 11, 3)), rng.normal(size=(3, 9, 11, 3))
    figure = viz.plot_attributions(images, {"plain": plain, "+IDGI": idgi}, row_labels=["a", "b", "c"],
                                   title="grid", cmap="inferno", colorbar=True)
    assert isinstance(figure, Figure)
    grid = np.array(figure.axes[:9]).reshape(3, 3)  # the colorbar's axes come last
    assert [ax.get_title() for ax in grid[0]] == ["image", "plain", "+IDGI"]
    assert [ax.get_ylabel() for ax in grid[:, 0]] == ["a", "b", "c"]
    assert figure.get_suptitle() == "grid" and len(figure.axes) == 10
    for r in range(3):
        np.testing.assert_array_equal(grid[r, 0].images[0].get_array(), viz.as_rgb8(images[r]))
        for c, maps in ((1, plain), (2, idgi)):
            artist = grid[r, c].images[-1]
            assert artist.get_cmap().name == "inferno"
            np.testing.assert_array_equal(cell_colours(artist), viz.heatmap(maps[r], cmap="inferno"))


def test_one_image_with_rows_per_method_empty_cells_and_overlays():
    image = np.random.default_rng(4).uniform(0, 255, (8, 8, 3))
    maps = np.random.default_rng(5).normal(size=(2, 8, 8))
    figure = viz.plot_attributions(image, {"plain": [maps[0], maps[1]], "+IDGI": [maps[1], None]},
                                   overlay=["+IDGI"], cmap="diverging", how="sum")
    grid = np.array(figure.axes).reshape(2, 3)
    assert not grid[1, 2].axison and not grid[1, 2].images  # the empty cell
    over = grid[0, 2].images
    assert len(over) == 2 and over[1].get_alpha() == 0.5  # the photo, then the map over it
    np.testing.assert_array_equal(over[0].get_array(), viz.as_rgb8(image))
    np.testing.assert_array_equal(cell_colours(over[1]), viz.heatmap(maps[1], cmap="diverging", how="sum"))
    assert grid[0, 1].images[0].get_cmap().name == "RdBu_r"


def test_attribution_grid_errors_name_the_argument():
    image, maps = np.zeros((2, 6, 6, 3)), np.ones((2, 6, 6))
    with pytest.raises(ValueError, match="row_labels must have one text per row"):
        viz.plot_attributions(image, maps, row_labels=["only one"])
    with pytest.raises(ValueError, match="one map .* per row"):
        viz.plot_attributions(image, {"a": maps, "b": maps[:1]})
    with pytest.raises(ValueError, match="images must hold one image per row"):
        viz.plot_attributions(np.zeros((3, 6, 6, 3)), maps)
    with pytest.raises(ValueError, match="maps contain NaN"):
        viz.plot_attributions(image, np.full((2, 6, 6), np.nan))
    with pytest.raises(ValueError, match="is \\(6, 6\\) but its image is \\(5, 5\\)"):
        viz.plot_attributions(np.zeros((2, 5, 5, 3)), maps)
    with pytest.raises(ValueError, match="overlay names columns that maps does not have"):
        viz.plot_attributions(image, {"a": maps}, overlay=["b"])
    with pytest.raises(ValueError, match="axes must be 2 x 2"):
        viz.plot_attributions(image, maps, axes=Figure().subplots(1, 2))


def test_a_grid_drawn_into_given_axes_is_drawn_there():
    figure = Figure()
    axes = figure.subplots(2, 2)
    returned = viz.plot_attributions(np.zeros((2, 5, 5, 3)), np.eye(5)[None].repeat(2, axis=0), axes=axes)
    assert returned is figure and all(ax.images for ax in axes.flat)


def test_curves_figure_lines_and_legend_carry_the_data():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    up, down = x / 4, 1 - x / 4
    figure = viz.plot_curves(x, [up, down], labels=["up", "down"], xlabel="x", ylabel="y", title="t")
    ax = figure.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["up", "down"]
    for line, expected in zip(ax.get_lines(), (up, down)):
        np.testing.assert_array_equal(line.get_xdata(), x)
        np.testing.assert_array_equal(line.get_ydata(), expected)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["up", "down"]
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("x", "y", "t")
    # A dict names its series; one x per series; log axes.
    other = viz.plot_curves([x, x[:3]], {"a": up, "b": down[:3]}, logx=True, logy=True).axes[0]
    assert [t.get_text() for t in other.get_legend().get_texts()] == ["a", "b"]
    assert other.get_xscale() == "log" and other.get_yscale() == "log"
    np.testing.assert_array_equal(other.get_lines()[1].get_xdata(), x[:3])


def test_curves_errors_name_the_argument():
    with pytest.raises(ValueError, match="logx=True needs positive x"):
        viz.plot_curves([0.0, 1.0], [[1.0, 2.0]], logx=True)
    with pytest.raises(ValueError, match="series 0 has 3 points but its x has 2"):
        viz.plot_curves([1.0, 2.0], [[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="labels must have one text per series"):
        viz.plot_curves([1.0, 2.0], [[1.0, 2.0]], labels=["a", "b"])
    with pytest.raises(TypeError, match="ax must be a matplotlib Axes"):
        viz.plot_curves([1.0, 2.0], [[1.0, 2.0]], ax="left")


def test_all_nan_curves_draw_empty_axes_with_their_legend():
    ax = viz.plot_curves(np.arange(5), [np.full(5, np.nan), np.full(5, np.nan)], labels=["IG", "IDGI"]).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["IG", "IDGI"]
    viz.to_array(ax.figure)  # renders


def test_curves_drawn_into_a_given_axes_are_drawn_there():
    figure = Figure()
    left, right = figure.subplots(1, 2)
    assert viz.plot_curves([1, 2], [[3, 4]], ax=right) is figure
    assert not left.get_lines() and len(right.get_lines()) == 1


def test_metric_curves_are_the_results_curves(model, images, targets):
    maps = idgi_tf.attribute(model, images, targets, "ig", rule=("plain", "idgi"), steps=8)
    runs = {rule: metrics.insertion(model, images, targets, maps[rule], step=0.25) for rule in maps}
    ax = viz.plot_metric_curves(runs).axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["plain", "idgi"]
    for line, result in zip(ax.get_lines(), runs.values()):
        np.testing.assert_array_equal(line.get_xdata(), result.x)
        np.testing.assert_allclose(line.get_ydata(), result.curves["probability"].mean(axis=0))
    ratio = viz.plot_metric_curves(runs["idgi"], curve="ratio").axes[0].get_lines()[0]
    np.testing.assert_allclose(ratio.get_ydata(), runs["idgi"].curves["ratio"].mean(axis=0))
    sens = metrics.sensitivity_n(model, images, targets, maps["idgi"], ns=[1, 4, 16], subsets=5)
    line_ax = viz.plot_metric_curves({"IG+IDGI": sens}).axes[0]
    assert line_ax.get_xscale() == "log"
    np.testing.assert_array_equal(line_ax.get_lines()[0].get_ydata(), sens.aggregate_curves["correlation"])
    with pytest.raises(ValueError, match="curve must be one of \\['probability', 'ratio'\\]"):
        viz.plot_metric_curves(runs, curve="sic")
    with pytest.raises(ValueError, match="results must all come from one metric"):
        viz.plot_metric_curves({"a": runs["plain"], "b": sens})
    with pytest.raises(ValueError, match="has no curves to plot"):
        viz.plot_metric_curves(metrics.localization(maps["idgi"], np.ones((3, 32, 32))))


def test_spectra_and_cutoff_search_figures_carry_their_data(model, images, targets):
    maps = idgi_tf.attribute(model, images, targets, "vg")
    frequencies, power = spectral.power_spectrum(maps)
    ax = viz.plot_spectra(frequencies, {"VG": power.mean(axis=0)}, normalise=False).axes[0]
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), frequencies[1:])  # no zero frequency on log x
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), power.mean(axis=0)[1:])
    assert ax.get_xscale() == ax.get_yscale() == "log"
    with pytest.raises(ValueError, match="spectrum 'VG' has 3 values but there are"):
        viz.plot_spectra(frequencies, {"VG": power.mean(axis=0)[:3]})
    search = spectral.tune_cutoff(model, images, targets, maps, grid=[2, 4, 8])
    lines = viz.plot_cutoff_search(search).axes[0].get_lines()
    np.testing.assert_array_equal(lines[0].get_xdata(), search.cutoffs)
    np.testing.assert_array_equal(lines[0].get_ydata(), search.scores)
    assert lines[1].get_ydata()[0] == search.unfiltered and lines[2].get_xdata()[0] == search.best


def test_save_writes_readable_png_svg_and_pdf(tmp_path):
    figure = viz.plot_curves([1, 2, 3], {"a": [1, 4, 9]})
    png = viz.save(figure, tmp_path / "sub" / "curves.png")
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size[0] > 100
    assert ElementTree.parse(viz.save(figure, tmp_path / "curves.svg")).getroot().tag.endswith("svg")
    with open(viz.save(figure, tmp_path / "curves.pdf"), "rb") as handle:
        pdf = handle.read()
    assert pdf.startswith(b"%PDF") and b"%%EOF" in pdf[-32:]
    heat = viz.heatmap(np.eye(5))
    with Image.open(viz.save(heat, tmp_path / "map.png")) as image:  # arrays: pixel for pixel
        np.testing.assert_array_equal(np.asarray(image), heat)
    assert ElementTree.parse(viz.save(heat, tmp_path / "map.svg")).getroot().tag.endswith("svg")
    with pytest.raises(ValueError, match="path must end in .png, .svg, .pdf"):
        viz.save(figure, tmp_path / "curves.jpg")
    with pytest.raises(TypeError, match="got an Axes"):
        viz.save(figure.axes[0], tmp_path / "x.png")


def test_to_array_renders_the_figure_at_its_size():
    figure = viz.plot_curves([1, 2], [[1, 2]], figsize=(3, 2))
    pixels = viz.to_array(figure, dpi=50)
    assert pixels.shape == (100, 150, 3) and pixels.dtype == np.uint8 and pixels.min() < 100


def test_figure3_command_writes_its_file_and_bad_arguments_give_one_line(tmp_path, capsys):
    from idgi_tf.viz.__main__ import main

    common = ["--model", "MobileNetV2", "--image", "coffee", "--weights", "none", "--input-size", "32",
              "--steps", "4", "--methods", "ig,vg"]
    out = tmp_path / "fig.png"
    assert main([*common, "--out", str(out)]) == 0
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size[0] > 3 * 32 and image.size[1] > 2 * 32
    assert main([*common, "--cmap", "inferno", "--out", str(tmp_path / "fig.pdf")]) == 0
    assert (tmp_path / "fig.pdf").read_bytes().startswith(b"%PDF")
    capsys.readouterr()
    assert main(["--model", "MobileNetV2", "--image", str(tmp_path / "missing.jpg"), "--weights", "none"]) == 2
    error = capsys.readouterr().err
    assert "--image must be an image file" in error and error.count("\n") == 1
    assert main(["--model", "MobileNetV2", "--image", "coffee", "--methods", "ig,nope", "--weights", "none"]) == 2
    assert main([*common, "--cmap", "nope"]) == 2
    assert "cmap must be a matplotlib colormap name" in capsys.readouterr().err
    assert main([*common, "--out", str(tmp_path / "fig.gif")]) == 2


def test_figure3_rows_are_methods_and_vg_has_no_idgi_cell(model, images, targets):
    figure = viz.figure3(model, images[0], int(targets[0]), methods=("ig", "vg"), steps=4, title="t")
    grid = np.array(figure.axes[:6]).reshape(2, 3)  # the colour bar's axes come last
    assert [ax.get_ylabel() for ax in grid[:, 0]] == ["IG", "VG"]  # the titles of METHODS
    assert not grid[1, 2].images and grid[0, 2].images
    ig = idgi_tf.attribute(model, images[:1], targets[:1], "ig", steps=4)[0]
    np.testing.assert_array_equal(cell_colours(grid[0, 1].images[0]), viz.heatmap(ig, cmap="gray"))


def test_figure3_command_as_a_subprocess(tmp_path):
    done = subprocess.run([sys.executable, "-m", "idgi_tf.viz", "--model", "Nope", "--image", "coffee"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "model name must be one of" in done.stderr.strip().splitlines()[-1]


def sic_result(seed: int, images: int = 4, skipped: int = 0, information: str = "msssim") -> metrics.MetricResult:
    """A SIC/AIC result as sic_aic returns it: 25 points per image (the first ``skipped`` images NaN)."""
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0, 1, (images, 25)), axis=1)
    sic, aic = np.clip(x + rng.normal(0, 0.2, x.shape), 0, 1), (rng.uniform(0, 1, x.shape) < x).astype(float)
    for array in (x, sic, aic):
        array[:skipped] = np.nan
    scores = {"sic": np.where(np.arange(images) < skipped, np.nan, 0.5),
              "aic": np.where(np.arange(images) < skipped, np.nan, 0.5)}
    return metrics.MetricResult(name="sic_aic", scores=scores, x=(np.arange(100) + 0.5) / 100,
                                curves={"points_information": x, "points_sic": sic, "points_aic": aic},
                                counts={"images": images}, options={"information": information})


def test_binned_curves_have_as_many_bins_as_the_points_support_and_a_band():
    """4 images x 25 points are 10 bins of 10 points, not the paper's 100 bins of one point (a zig-zag)."""
    from idgi_tf.metrics.sic_aic import binned_curve

    result = sic_result(0)
    x, y = result.curves["points_information"].ravel(), result.curves["points_sic"].ravel()
    assert viz.plots.supported_bins(x.size) == 10 and viz.plots.supported_bins(50_000 * 25) == 100
    ax = viz.plot_binned_curves([x], {"IG": y}, statistic="median", title="SIC").axes[0]
    line, band = ax.get_lines()[0], ax.collections[0]
    np.testing.assert_allclose(line.get_xdata(), (np.arange(10) + 0.5) / 10)
    np.testing.assert_allclose(line.get_ydata(), binned_curve(x, y, 10, np.median))
    low = binned_curve(x, y, 10, lambda v: np.percentile(v, 25))
    high = binned_curve(x, y, 10, lambda v: np.percentile(v, 75))
    vertices = band.get_paths()[0].vertices
    assert np.isclose(vertices[:, 1].min(), low.min()) and np.isclose(vertices[:, 1].max(), high.max())
    assert ax.get_title() == "SIC (10 bins)"
    centres, mean, below, above = viz.binned_band(x, y, statistic="mean", bins=5)
    assert centres.size == 5 and (below <= mean).all() and (mean <= above).all()
    with pytest.raises(ValueError, match="statistic must be one of"):
        viz.binned_band(x, y, statistic="mode")


def test_binned_curves_put_each_path_beside_its_idgi_line_in_one_panel():
    x = np.linspace(0, 1, 200)
    figure = viz.plot_binned_curves(x, {"IG": x, "IG+IDGI": x ** 2, "VG": 1 - x}, panels=True, title="AIC")
    assert [ax.get_title() for ax in figure.axes] == ["IG", "VG"]
    assert [[line.get_label() for line in ax.get_lines()] for ax in figure.axes] == [["IG", "IG+IDGI"], ["VG"]]
    assert figure.get_suptitle() == "AIC (20 bins)"
    with pytest.raises(ValueError, match="ax takes one panel"):
        viz.plot_binned_curves(x, {"IG": x, "VG": x}, panels=True, ax=Figure().subplots())


def test_metric_curve_titles_name_the_metric_as_the_paper_the_model_and_the_images(model, images, targets):
    maps = idgi_tf.attribute(model, images, targets, "vg")
    insertion = metrics.insertion(model, images, targets, maps, step=0.25)
    assert viz.plot_metric_curves(insertion, model="tiny").axes[0].get_title() == "Insertion: tiny, 3 images"
    results = {"IG": sic_result(1, skipped=1), "IG+IDGI": sic_result(2, skipped=1)}
    ax = viz.plot_metric_curves(results, curve="sic", model="EfficientNetLite0").axes[0]
    assert ax.get_title() == "SIC, MS-SSIM: EfficientNetLite0, 3 images (7 bins)"  # 75 points of 3 scored images
    assert len(ax.get_lines()) == 2 and len(ax.collections) == 2
    aic = viz.plot_metric_curves(sic_result(3, information="entropy"), curve="aic").axes[0]
    assert aic.get_title() == "AIC, normalised entropy: 4 images (10 bins)"
    assert viz.figure_title("Insertion", "VGG16", 1) == "Insertion: VGG16, 1 image"


def test_spectra_are_normalised_to_compare_shapes_and_mark_the_cutoff():
    frequencies = np.arange(0.0, 17.0)
    shape = 1.0 / (1.0 + frequencies) ** 2
    ax = viz.plot_spectra(frequencies, {"VG": 1e6 * shape, "RISE": shape}, cutoff=15).axes[0]
    vg, rise = ax.get_lines()[:2]
    np.testing.assert_allclose(vg.get_ydata(), rise.get_ydata())  # same shape, scales a million apart
    np.testing.assert_allclose(vg.get_ydata().sum(), 1.0)
    assert ax.get_ylabel() == "share of the power"
    cutoff = [line for line in ax.get_lines() if line.get_label() == "cutoff (15 cycles)"]
    assert len(cutoff) == 1 and list(cutoff[0].get_xdata()) == [15, 15]
    assert "cutoff (15 cycles)" in [text.get_text() for text in ax.get_legend().get_texts()]
    with pytest.raises(ValueError, match="cutoff must be a positive frequency"):
        viz.plot_spectra(frequencies, {"VG": shape}, cutoff=0)


def test_figure3_grids_say_what_the_gray_levels_mean(model, images, targets):
    figure = viz.figure3(model, images[0], int(targets[0]), methods=("vg",), steps=4)
    assert len(figure.axes) == 4  # image, plain, +IDGI, and the colour bar
    note = figure.axes[-1].get_ylabel()
    assert note == "Σ|map| over channels / its 99th percentile, clipped to [0, 1]" == viz.scale_note()
    assert figure.get_suptitle() == f"target {int(targets[0])} {idgi_tf.data.class_name(int(targets[0]))}: " \
        f"{model.name}, 1 image"
