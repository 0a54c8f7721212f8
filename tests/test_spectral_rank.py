"""The method ranking before and after FORGrad (``python -m idgi_tf.spectral rank``, idgi_tf/spectral/rank.py)."""

from __future__ import annotations

import csv
import json
import os

import keras
import numpy as np
import pytest

from idgi_tf import metrics, spectral
from idgi_tf.data.samples import Samples
from idgi_tf.spectral import __main__ as command
from idgi_tf.spectral import rank
from idgi_tf.spectral.__main__ import main as spectral_main


def brute_force_picks(scores: np.ndarray, higher: bool) -> np.ndarray:
    """Photo i's pick from the mean of the other photos' rows, computed with the rows deleted."""
    pick = np.nanargmax if higher else np.nanargmin
    return np.array([pick(np.nanmean(np.delete(scores, i, axis=0), axis=0)) for i in range(len(scores))])


def test_the_held_out_pick_never_uses_the_scored_photo():
    # photo 0's own row would pull the mean to cutoff 2 (mean with it: [0.67, 0, 3.3]); the others say cutoff 0
    scores = np.array([[0.0, 0.0, 10.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    assert rank.held_out_cutoffs(scores).tolist() == [0, 2, 2]
    assert rank.held_out_cutoffs(-scores, higher=False).tolist() == [0, 2, 2]  # deletion: the argmin
    noisy = np.random.default_rng(0).normal(size=(7, 5))
    noisy[2, 3] = np.nan  # an undefined score is left out of the others' mean
    for higher in (True, False):
        np.testing.assert_array_equal(rank.held_out_cutoffs(noisy, higher), brute_force_picks(noisy, higher))


def test_the_held_out_pick_refuses_too_few_photos_and_undefined_folds():
    with pytest.raises(ValueError, match=r"photos >= 2"):
        rank.held_out_cutoffs(np.ones((1, 4)))
    with pytest.raises(ValueError, match="undefined on every other photo"):
        rank.held_out_cutoffs(np.array([[1.0, 2.0], [np.nan, np.nan]]))  # photo 0 has no defined other photo


def test_ranks_are_a_permutation_best_first_with_undefined_last():
    means = np.array([0.2, 0.5, np.nan, 0.3, 0.5])
    assert rank.ranks(means, higher=True).tolist() == [4, 1, 5, 3, 2]  # the tie in table order
    assert rank.ranks(means, higher=False).tolist() == [1, 3, 5, 2, 4]


def test_expected_ig_references_are_the_other_photos():
    photos = np.arange(4)[:, None, None, None] * np.ones((4, 2, 2, 3), np.float32)
    references = rank.expected_references(photos, 1)
    assert references[:, 0, 0, 0].tolist() == [0, 2, 3]
    with pytest.raises(ValueError, match="index must be in"):
        rank.expected_references(photos, 4)


def test_tune_cutoff_keeps_every_images_score(model, images, targets):
    maps = np.random.default_rng(1).normal(size=images.shape).astype(np.float32)
    search = spectral.tune_cutoff(model, images, targets, maps, grid=[2, 4, 8], options={"step": 0.25})
    assert search.per_image.shape == (3, 3)
    np.testing.assert_allclose(search.scores, search.per_image.mean(axis=0))
    one = metrics.insertion(model, images, targets, spectral.lowpass(maps, 4), step=0.25)
    np.testing.assert_allclose(search.per_image[:, 1], one.scores["probability"])


@pytest.fixture(scope="module")
def ranked(model, images, targets, tmp_path_factory):
    """One small run on the tiny CNN: 3 photos, every kind of row (a plain/IDGI pair from one call, expected IG,
    black-box), a one-score metric and ROAD's two scores."""
    out = tmp_path_factory.mktemp("ranking")
    samples = Samples(images=images, labels=targets, masks=None, names=["a", "b", "c"])
    methods = ("vg", "ig", "ig_idgi", "eig", "rise")
    settings = rank.Settings(methods=methods, metrics=("deletion", "insertion", "road"), limit=3, steps=4,
                             nmasks=16, nreferences=2, batch_size=64, tune_metric="insertion")
    return rank.run(model, "tiny", samples, settings, str(out)), out


def test_the_ranking_writes_its_files_with_ranks_that_are_permutations(ranked):
    report, out = ranked
    assert sorted(os.listdir(out)) == ["ranking.csv", "ranking.json", "ranking.md", "ranks.png", "scores.csv"]
    rows = list(csv.DictReader(open(out / "ranking.csv")))
    assert len(rows) == 5 + 4  # every method, and every white-box one filtered
    for score in ("deletion", "insertion", "road_morf", "road_lerf"):
        for stage in ("before", "after"):
            given = [int(row[f"{score}_rank_{stage}"]) for row in rows if row[f"{score}_rank_{stage}"]]
            assert sorted(given) == list(range(1, 6))
    black = [row for row in rows if row["white_box"] == "False"]
    assert all(row["deletion_rank_before"] and row["deletion_rank_after"] for row in black)
    assert json.load(open(out / "ranking.json"))["settings"]["limit"] == 3
    scores = list(csv.DictReader(open(out / "scores.csv")))
    assert len(scores) == 9 * 4 * 3  # entries x scores x photos
    assert report["ranks"]["road_morf"]["higher"] is False and report["ranks"]["road_lerf"]["higher"] is True
    table = (out / "ranking.md").read_text()
    assert all(f"| {title} |" in table for title in ("VG", "IG", "IG+IDGI", "Expected IG", "RISE"))


def test_the_reported_cutoffs_are_the_held_out_picks_of_the_reported_scores(ranked):
    report, _ = ranked
    grid = np.array(report["cutoff_grid_cycles"])
    assert set(report["cutoffs"]) == {"vg", "ig", "ig_idgi", "eig"}  # the white-box rows
    for key, matrix in report["tuning_scores"].items():
        picks = brute_force_picks(np.array(matrix, np.float64), higher=True)
        np.testing.assert_allclose(report["cutoffs"][key], grid[picks], rtol=1e-6)


def test_each_photo_is_filtered_at_the_cutoff_its_held_out_photos_chose(model, images, targets, monkeypatch):
    """A tuning matrix whose best cutoff overall (the last) is not photo 0's held-out pick (the first)."""
    matrix = np.array([[0.0, 0.0, 10.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    grid = np.array([2.0, 4.0, 8.0])

    def fake_search(*args, **kwargs):
        return spectral.CutoffSearch(best=8.0, cutoffs=grid, scores=matrix.mean(axis=0), unfiltered=0.0,
                                     metric="insertion", better="higher", per_image=matrix)

    monkeypatch.setattr(rank, "tune_cutoff", fake_search)
    maps = {"vg": np.random.default_rng(2).normal(size=images.shape).astype(np.float32)}
    smooth, cutoffs, _ = rank.filtered_maps(model, images, targets, maps, [rank.RANK_METHODS["vg"]],
                                            tune_metric="insertion", batch_size=8)
    assert cutoffs["vg"].tolist() == [2.0, 8.0, 8.0]
    for i, cutoff in enumerate([2.0, 8.0, 8.0]):
        np.testing.assert_allclose(smooth["vg"][i], spectral.lowpass(maps["vg"][i:i + 1], cutoff)[0], atol=1e-6)


def imagenet_sized_cnn(size: int) -> keras.Model:
    """A tiny random CNN with 1000 softmax outputs: the shipped photos' ImageNet labels index it."""
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((size, size, 3)), keras.layers.Rescaling(1 / 255),
                             keras.layers.Conv2D(4, 3, activation="tanh"), keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(1000), keras.layers.Softmax()])


def test_the_rank_command_writes_its_files_and_reports_progress(tmp_path, capsys, monkeypatch):
    loaded = []
    monkeypatch.setattr(command, "load_model", lambda name, weights, size: loaded.append((name, weights, size))
                        or imagenet_sized_cnn(size))
    out = tmp_path / "ranking"
    assert spectral_main(["rank", "--model", "MobileNetV2", "--weights", "none", "--input-size", "32",
                          "--methods", "vg,rise", "--metrics", "deletion", "--limit", "2", "--nmasks", "8",
                          "--out", str(out)]) == 0
    assert loaded == [("MobileNetV2", "none", 32)]
    captured = capsys.readouterr()
    assert "method 1/2: VG: 2 images" in captured.err and "metric 1/1: deletion" in captured.err
    assert "| VG |" in captured.out and "ranks.png" in captured.out
    assert sorted(os.listdir(out)) == ["ranking.csv", "ranking.json", "ranking.md", "ranks.png", "scores.csv"]
    assert json.load(open(out / "ranking.json"))["model"] == "MobileNetV2 (random weights)"


@pytest.mark.parametrize("arguments, message", [
    (["--limit", "1"], "--limit must be between 2 and 11"),
    (["--limit", "12"], "--limit must be between 2 and 11"),
    (["--methods", "vg,nope"], "argument --methods: takes a comma-separated subset"),
    (["--methods", "rise,occlusion"], "--methods must name at least one white-box method"),
    (["--metrics", "sic_aic"], "argument --metrics: takes a comma-separated subset"),
    (["--steps", "0"], "argument --steps: must be a positive integer"),
    (["--tune-metric", "road"], "argument --tune-metric: invalid choice"),
])
def test_bad_rank_options_fail_in_one_line_before_the_model_loads(arguments, message, tmp_path, capsys):
    assert spectral_main(["rank", "--model", "NoSuchNet", *arguments, "--out", str(tmp_path / "o")]) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_the_command_needs_a_subcommand(capsys):
    assert spectral_main(["--model", "MobileNetV2"]) == 2  # the form before the subcommands
    assert "the command comes first: python -m idgi_tf.spectral {spectra,rank} --model" in capsys.readouterr().err
    assert spectral_main([]) == 2
    assert "required: {spectra,rank}" in capsys.readouterr().err


def test_every_row_names_a_method_and_a_metric_of_the_tables():
    """The ranking's rows are rows of the attribution and metric tables (what --methods and --metrics reach)."""
    from idgi_tf import metrics
    from idgi_tf.attribution.methods import METHODS
    from idgi_tf.spectral.rank import RANK_METHODS, RANK_METRICS

    for row in RANK_METHODS.values():
        assert row.method in METHODS and row.rule in METHODS[row.method].rules, row
        assert not row.references or METHODS[row.method].takes_baseline, row
    for row in RANK_METRICS.values():
        assert {score.key for score in metrics.METRICS[row.key].scores} >= set(row.scores), row
