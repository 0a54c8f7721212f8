"""The adaptive-grid study the docs state (issue 33), against its recorded run.

``benchmarks/steps_study/grid/rows.jsonl`` is the run (``python benchmarks/steps_study.py --methods ig,blurig
--grids uniform,adaptive --steps 16,32,64,200 --reference 200 --out benchmarks/steps_study/grid``); its
``grid.md`` and the summary table in docs/results.md must be what the script makes of those rows, so a
stated number that drifts from the run fails. A resumed run must refuse rows of other settings.
"""

import importlib.util
import json
import os

import pytest

ROOT = os.path.join(os.path.dirname(__file__), os.pardir)
RUN = os.path.join(ROOT, "benchmarks", "steps_study", "grid")


@pytest.fixture(scope="module")
def study():
    spec = importlib.util.spec_from_file_location("steps_study", os.path.join(ROOT, "benchmarks", "steps_study.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rows(study):
    return study.read_rows(os.path.join(RUN, "rows.jsonl"))


def read(*parts) -> str:
    with open(os.path.join(ROOT, *parts)) as handle:
        return handle.read()


def test_every_cell_was_run_once_with_one_setting(rows):
    cells = [(r["model"], r["method"], r["grid"], r["steps"]) for r in rows]
    assert len(cells) == len(set(cells)) == 3 * 2 * 2 * 4
    assert {(r["batch_size"], r["reference"]) for r in rows} == {(32, 200)}
    assert {r["model"]: r["images"] for r in rows} == {"EfficientNetLite0": 8, "EfficientNetLite1": 7,
                                                       "EfficientNetLite2": 8}
    for r in rows:  # the reference is itself; IDGI is complete on either grid
        if (r["grid"], r["steps"]) == ("uniform", 200):
            assert r["rel_l1_idgi"] == 0.0 and r["spearman_idgi"] == pytest.approx(1.0)
        assert r["gap_idgi"] < 1e-5


def test_grid_md_and_the_docs_table_are_made_from_the_rows(study, rows, tmp_path):
    study.write_grid_report(rows, str(tmp_path))
    assert (tmp_path / "grid.md").read_text() == read("benchmarks", "steps_study", "grid", "grid.md")
    assert study.summary_markdown(rows) in read("docs", "results.md")


def test_a_resumed_run_refuses_rows_of_other_settings(study, tmp_path):
    row = {"model": "EfficientNetLite0", "method": "ig", "grid": "adaptive", "steps": 32, "images": 8,
           "batch_size": 16, "reference": 200}
    (tmp_path / "rows.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(SystemExit, match="batch size"):
        study.main(["--models", "EfficientNetLite0", "--methods", "ig", "--grids", "uniform,adaptive", "--steps",
                    "32,200", "--reference", "200", "--out", str(tmp_path)])


@pytest.mark.parametrize("argv, message", [
    (["--grids", "uniform,adaptive"], "--grids adaptive takes the methods ig, blurig only"),
    (["--methods", "bogus"], "argument --methods"),
    (["--steps", "16,abc"], "argument --steps"),
    (["--models", "EfficientNetLite0,Bogus"], "argument --models"),
    (["--steps", "16,32", "--reference", "100"], "--reference 100"),
])
def test_the_study_refuses_bad_arguments_before_any_work(study, tmp_path, capsys, argv, message):
    """A usage error (exit 2) before a model is loaded, not a traceback after hours of cells."""
    with pytest.raises(SystemExit) as stop:
        study.main([*argv, "--out", str(tmp_path)])
    assert stop.value.code == 2 and message in capsys.readouterr().err
    assert not os.listdir(tmp_path)


def test_a_finished_run_resumed_loads_no_network_and_writes_the_same_report(study, tmp_path, monkeypatch):
    """Every cell done: nothing is recomputed, not even the reference maps, and the report is the recorded one."""
    (tmp_path / "rows.jsonl").write_text(read("benchmarks", "steps_study", "grid", "rows.jsonl"))
    monkeypatch.setattr(study.models, "load", lambda name: pytest.fail(f"loaded {name}"))
    study.main(["--methods", "ig,blurig", "--grids", "uniform,adaptive", "--steps", "16,32,64,200",
                "--reference", "200", "--out", str(tmp_path)])
    assert (tmp_path / "grid.md").read_text() == read("benchmarks", "steps_study", "grid", "grid.md")


def test_rows_are_appended_whole_and_no_temporary_file_is_left(study, tmp_path):
    path = str(tmp_path / "rows.jsonl")
    study.append_row(path, {"model": "a", "steps": 16})
    study.append_row(path, {"model": "b", "steps": 32})
    assert study.read_rows(path) == [{"model": "a", "steps": 16}, {"model": "b", "steps": 32}]
    assert os.listdir(tmp_path) == ["rows.jsonl"]
