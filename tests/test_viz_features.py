"""Pictures of non-image scores: plot_tokens (token boxes coloured by score, centred at 0, wrapped inside the
figure) and plot_features (the top |scores| as bars). The colours and lengths are read back from the artists."""

import warnings

import matplotlib
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from idgi_tf import viz
from idgi_tf.viz.scores import text_colour

RDBU = matplotlib.colormaps["RdBu_r"]


def box_colours(ax) -> np.ndarray:
    return np.array([patch.get_facecolor() for patch in ax.patches])


def expected_colours(scores, vmax) -> np.ndarray:
    """cmap(norm(score)) with the norm centred at 0: [-vmax, vmax] -> [0, 1]."""
    return RDBU(0.5 + 0.5 * np.asarray(scores, np.float64) / vmax)


def drawn(figure):
    """The figure drawn by Agg, and its renderer (for the texts' extents)."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return canvas.get_renderer()


def test_token_boxes_are_the_colormap_of_their_score_centred_at_zero():
    scores = np.array([-2.0, -0.5, 0.0, 1.0, 0.25])
    ax = viz.plot_tokens(["a", "b", "c", "d", "e"], scores).axes[0]
    assert len(ax.patches) == 5 and [t.get_text() for t in ax.texts] == ["a", "b", "c", "d", "e"]
    np.testing.assert_allclose(box_colours(ax), expected_colours(scores, 2.0), atol=1e-12)
    colours = box_colours(ax)
    assert colours[0, 2] > colours[0, 0] and colours[3, 0] > colours[3, 2]  # negative blue, positive red
    # a given vmax: +1 and -1 sit at the same distance from the centre, |score| > vmax saturates
    ax = viz.plot_tokens(["a", "b", "c"], [-1.0, 1.0, 3.0], vmax=2.0).axes[0]
    np.testing.assert_allclose(box_colours(ax), expected_colours([-1.0, 1.0, 2.0], 2.0), atol=1e-12)


def test_text_is_dark_on_light_boxes_and_light_on_dark_ones():
    ax = viz.plot_tokens(["low", "mid", "high"], [-1.0, 0.0, 1.0]).axes[0]
    assert [text.get_color() for text in ax.texts] == ["white", "black", "white"]
    assert text_colour((1.0, 1.0, 0.0)) == "black" and text_colour((0.0, 0.0, 0.5)) == "white"


def test_rows_of_different_lengths_share_one_scale_and_start_their_own_lines():
    rows = [["short", "row"], ["a", "longer", "row", "of", "five"]]
    scores = [np.array([0.5, -1.0]), np.array([4.0, 0.0, -2.0, 1.0, 3.0])]
    ax = viz.plot_tokens(rows, scores, row_labels=["first", "second"]).axes[0]
    np.testing.assert_allclose(box_colours(ax), expected_colours(np.concatenate(scores), 4.0), atol=1e-12)
    assert [t.get_text() for t in ax.texts] == [*rows[0], *rows[1], "first", "second"]
    starts = [ax.patches[0], ax.patches[2]]
    assert all(box.get_x() == 0 for box in starts) and starts[1].get_y() > ax.patches[1].get_y()
    # an (N, T) array is N rows of T scores
    ax = viz.plot_tokens([["x", "y"], ["z", "w"]], np.array([[1.0, -1.0], [0.5, 0.0]])).axes[0]
    np.testing.assert_allclose(box_colours(ax), expected_colours([1.0, -1.0, 0.5, 0.0], 1.0), atol=1e-12)


@pytest.mark.parametrize("into_axes", [False, True])
def test_a_long_row_wraps_and_every_box_holds_its_text_inside_the_axes(into_axes):
    tokens = [f"token{i}" for i in range(60)] + ["a" * 400]  # the last is wider than a line: cut with "…"
    scores = np.sin(np.arange(len(tokens)))
    ax = Figure(figsize=(6, 7)).add_subplot() if into_axes else None
    figure = viz.plot_tokens(tokens, scores, title="long", row_labels=["a label " * 40], ax=ax)
    ax = figure.axes[0]
    renderer = drawn(figure)
    frame = ax.get_window_extent(renderer)
    lines = {patch.get_y() for patch in ax.patches}
    assert len(ax.patches) == len(tokens) and len(lines) > 3
    assert ax.texts[len(tokens) - 1].get_text().endswith("…")
    for patch, text in zip(ax.patches, ax.texts):
        box, letters = patch.get_window_extent(renderer), text.get_window_extent(renderer)
        assert frame.x0 - 0.5 <= box.x0 and box.x1 <= frame.x1 + 0.5, text.get_text()
        assert frame.y0 - 0.5 <= box.y0 and box.y1 <= frame.y1 + 0.5, text.get_text()
        assert box.x0 <= letters.x0 and letters.x1 <= box.x1, text.get_text()
        assert box.y0 <= letters.y0 and letters.y1 <= box.y1, text.get_text()
    label = ax.texts[-1].get_window_extent(renderer)
    assert ax.texts[-1].get_text().endswith("…") and frame.x0 - 0.5 <= label.x0 and label.x1 <= frame.x1 + 0.5
    figure_box = figure.bbox
    assert frame.x1 <= figure_box.x1 and frame.y0 >= figure_box.y0


def test_text_taller_than_the_given_axes_is_refused_and_its_colour_bar_taken_back():
    figure = Figure(figsize=(3, 1))
    ax = figure.add_subplot()
    with pytest.raises(ValueError, match="give a taller ax"):
        viz.plot_tokens([f"t{i}" for i in range(200)], np.ones(200), ax=ax)
    assert figure.axes == [ax] and not ax.patches


def test_score_and_token_lengths_must_match_and_the_error_names_the_row():
    with pytest.raises(ValueError, match="row 1 has 3 tokens but 2 scores"):
        viz.plot_tokens([["a"], ["b", "c", "d"]], [[1.0], [1.0, 2.0]])
    with pytest.raises(ValueError, match="row 0 has 2 tokens but 3 scores"):
        viz.plot_tokens(["a", "b"], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="scores has 1 rows but tokens has 2 examples"):
        viz.plot_tokens([["a"], ["b"]], [[1.0]])


def test_per_embedding_scores_are_refused_with_the_sum_to_take():
    with pytest.raises(ValueError, match=r"sum over the embedding axis first: maps\.sum\(-1\)"):
        viz.plot_tokens(["a", "b"], np.ones((2, 8)))
    with pytest.raises(ValueError, match=r"row 0 .*maps\.sum\(-1\)"):
        viz.plot_tokens([["a", "b"], ["c", "d"]], np.ones((2, 2, 8)))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_scores_are_refused(bad):
    with pytest.raises(ValueError, match="row 0 contain NaN or Inf"):
        viz.plot_tokens(["a", "b"], [1.0, bad])


def test_bad_tokens_vmax_and_row_labels_are_refused():
    with pytest.raises(ValueError, match="tokens must be"):
        viz.plot_tokens([], [])
    with pytest.raises(TypeError, match="tokens must be"):
        viz.plot_tokens([["a"], "b"], [[1.0], [1.0]])
    with pytest.raises(ValueError, match="vmax must be a positive"):
        viz.plot_tokens(["a"], [1.0], vmax=0)
    with pytest.raises(ValueError, match="row_labels must have one text per example"):
        viz.plot_tokens(["a"], [1.0], row_labels=["x", "y"])


@pytest.mark.parametrize("colorbar", [True, False])
def test_all_zero_scores_draw_the_white_centre_without_dividing_by_zero(colorbar):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figure = viz.plot_tokens(["nothing", "to", "see"], np.zeros(3), colorbar=colorbar)
        drawn(figure)
    colours = box_colours(figure.axes[0])
    np.testing.assert_allclose(colours, np.tile(RDBU(0.5), (3, 1)), atol=1e-12)
    assert (colours[:, :3] > 0.95).all()


def test_plot_features_shows_the_top_bars_by_magnitude_coloured_by_sign():
    names = ["f0", "f1", "f2", "f3", "f4", "f5"]
    scores = np.array([0.1, -3.0, 2.0, -0.5, 1.0, 0.0])
    ax = viz.plot_features(names, scores, top=4).axes[0]
    assert len(ax.patches) == 4
    assert [bar.get_width() for bar in ax.patches] == [-3.0, 2.0, 1.0, -0.5]
    heights = [bar.get_y() for bar in ax.patches]
    assert heights == sorted(heights, reverse=True)  # the largest at the top
    labels = {round(tick.get_position()[1]): tick.get_text() for tick in ax.get_yticklabels()}
    assert [labels[round(bar.get_y() + bar.get_height() / 2)] for bar in ax.patches] == ["f1", "f2", "f4", "f3"]
    colours = box_colours(ax)
    np.testing.assert_allclose(colours, RDBU(0.5 + 0.35 * np.sign([-3.0, 2.0, 1.0, -0.5])), atol=1e-12)
    assert colours[0, 2] > colours[0, 0] and colours[1, 0] > colours[1, 2]
    assert [text.get_text() for text in ax.texts] == ["-3", "2", "1", "-0.5"]  # the value labels
    assert len(viz.plot_features(names, scores, top=50).axes[0].patches) == 6  # all when fewer than top


def test_plot_features_of_several_examples_plots_the_mean_magnitude():
    scores = np.array([[1.0, -4.0, 0.0], [-3.0, 2.0, 0.5]])
    ax = viz.plot_features(["a", "b", "c"], scores).axes[0]
    assert [bar.get_width() for bar in ax.patches] == [3.0, 2.0, 0.25]  # mean |score| per feature, sorted
    assert "mean |score| over 2 examples" in ax.get_xlabel() and "mean |score|" in ax.get_title()


def test_plot_features_refuses_mismatched_names_and_bad_top():
    with pytest.raises(ValueError, match="names has 2 entries but scores has 3 features"):
        viz.plot_features(["a", "b"], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="top must be a positive integer"):
        viz.plot_features(["a"], [1.0], top=0)
    with pytest.raises(TypeError, match="top must be a positive integer"):
        viz.plot_features(["a"], [1.0], top=2.5)
    with pytest.raises(ValueError, match="NaN or Inf"):
        viz.plot_features(["a"], [np.nan])
