"""The bench's folder is never silently wrong: settings checked on resume and across report's folders, one run
per shard at a time, files written whole, torn ones repaired with a warning, an unwritable --out refused first."""

import contextlib
import importlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from idgi_tf._atomic import write_atomically
from idgi_tf.bench import main
from idgi_tf.bench.results import read_rows, readable_npz, row_key

BASE = ["run", "--model", "MobileNetV2", "--weights", "none", "--input-size", "32", "--steps", "4", "--limit", "2",
        "--chunk", "1", "--methods", "ig,vg", "--metrics", "localization"]
ROWS = 2 * 3  # 2 images x (IG plain, IG IDGI, VG)
bench_run = importlib.import_module("idgi_tf.bench.run")  # the module, not the function idgi_tf.bench.run


def rows_of(out) -> list[dict]:
    rows = [row for name in sorted(os.listdir(out)) if name.startswith("results") and name.endswith(".jsonl")
            for row in read_rows(os.path.join(out, name))]
    assert len({row_key(row) for row in rows}) == len(rows), "a row was written twice"
    return rows


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished smoke run, with what it printed and every path it wrote through ``os.replace``."""
    out = tmp_path_factory.mktemp("finished") / "run"
    replaced, replace = [], os.replace

    def recording(source, target):
        replaced.append(os.path.realpath(target))
        return replace(source, target)

    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setattr(os, "replace", recording)
        assert main(BASE + ["--out", str(out)]) == 0
    return out, printed.getvalue(), replaced


@pytest.fixture
def copy(finished, tmp_path):
    return shutil.copytree(finished[0], tmp_path / "run")


def one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err, captured.err
    assert "already done" not in captured.out
    return captured.err


@pytest.mark.parametrize("change, named", [
    (["--steps", "16"], "--steps 4 (now 16)"),
    (["--limit", "3"], "--limit 2 (now 3)"),
    (["--seed", "1"], "--seed 0 (now 1)"),
    (["--methods", "vg"], "--methods ig,vg (now vg)"),
    (["--metrics", "insertion,localization"], "--metrics localization (now insertion,localization)"),
    (["--input-size", "48"], "--input-size 32 (now 48)"),
    (["--lowpass", "auto"], "--lowpass none (now 0.066"),
    (["--model", "ResNet50V2"], "--model MobileNetV2 (now ResNet50V2)"),
])
def test_resume_with_other_settings_is_refused_naming_them(copy, capsys, change, named):
    before = {name: (copy / name).read_bytes() for name in ("results.jsonl", "run.json")}
    assert main(BASE + change + ["--quiet", "--out", str(copy)]) == 2
    error = one_line_error(capsys)
    assert f"results.jsonl holds {ROWS} rows made with other settings: {named}" in error and "--overwrite" in error
    assert {name: (copy / name).read_bytes() for name in before} == before  # nothing added, run.json not rewritten


def test_every_row_is_checked_not_only_run_json(copy, capsys):
    lines = (copy / "results.jsonl").read_text().splitlines(keepends=True)
    row = json.loads(lines[2])
    lines[2] = json.dumps({**row, "steps": 64, "settings": {**row["settings"], "steps": 64}}) + "\n"
    (copy / "results.jsonl").write_text("".join(lines))
    assert main(BASE + ["--quiet", "--out", str(copy)]) == 2
    assert "holds 1 rows made with other settings: --steps 64 (now 4)" in one_line_error(capsys)


def test_overwrite_starts_the_shard_afresh_and_keeps_other_files(copy, capsys):
    (copy / "notes.txt").write_text("mine")
    assert main(BASE + ["--steps", "16", "--overwrite", "--quiet", "--out", str(copy)]) == 0
    out = capsys.readouterr().out
    assert "--overwrite: removed" in out and f"{ROWS} rows written, 0 already done" in out
    rows = rows_of(copy)
    assert len(rows) == ROWS and {row["settings"]["steps"] for row in rows} == {16}
    assert json.loads((copy / "run.json").read_text())["steps"] == 16
    assert (copy / "notes.txt").read_text() == "mine"
    assert all(readable_npz(str(path)) for path in (copy / "maps").iterdir())


def test_report_compares_settings_and_finds_shards_across_folders(tmp_path, capsys):
    for folder, shard, steps in (("a", "0/2", "4"), ("b", "1/2", "8"), ("c", "1/2", "4")):
        assert main(BASE + ["--shard", shard, "--steps", steps, "--quiet", "--out", str(tmp_path / folder)]) == 0
    capsys.readouterr()
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    error = one_line_error(capsys)
    assert "the shards of MobileNetV2 differ in steps: 4 in " in error and "results-shard1of2.jsonl" in error
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "c")]) == 0
    assert "not every shard" not in capsys.readouterr().err
    tables = (tmp_path / "a" / "tables.md").read_text()
    assert "INCOMPLETE" not in tables and "| 2 |" in tables  # both shards' images in every cell
    assert main(["report", str(tmp_path / "a")]) == 0
    assert "INCOMPLETE: no results yet from MobileNetV2 shard 1/2" in (tmp_path / "a" / "tables.md").read_text()


def test_a_second_run_of_a_shard_refuses_while_the_first_writes(tmp_path):
    """Two real processes, as a requeued SLURM task: the second is refused at once, naming the lock's holder."""
    out = tmp_path / "run"
    command = [sys.executable, "-m", "idgi_tf.bench", *BASE, "--shard", "1/2", "--quiet", "--out", str(out)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lock = out / "results-shard1of2.lock"
    deadline = time.time() + 120
    while time.time() < deadline and not (lock.exists() and f"pid {first.pid} " in lock.read_text()):
        time.sleep(0.01)
    first.send_signal(signal.SIGSTOP)  # holds the lock, mid-run
    try:
        assert lock.exists(), "the first run took no lock"
        second = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    finally:
        first.send_signal(signal.SIGCONT)
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-2000:]
    assert second.returncode == 2
    last = second.stderr.strip().splitlines()[-1]
    assert f"{lock} is held by pid {first.pid} on " in last and "Traceback" not in second.stderr
    assert len(rows_of(out)) == 3  # shard 1/2: one image, written once
    assert main(["report", str(out)]) == 0


def test_kept_maps_and_tables_are_written_by_rename(finished):
    out, _, replaced = finished
    written = {os.path.realpath(os.path.join(folder, name)) for folder, _, names in os.walk(out) for name in names}
    appended = {os.path.realpath(out / name) for name in ("results.jsonl", "results.lock")}
    assert written - appended <= set(replaced)
    assert {"run.json", "tables.md", "tables.csv"} <= {os.path.basename(path) for path in replaced}
    assert any(path.endswith(".npz") for path in replaced)


def test_write_atomically_keeps_the_old_file_when_the_writer_dies(tmp_path):
    path = tmp_path / "run.json"
    path.write_text('{"old": 1}')

    def dies(handle):
        handle.write('{"new": ')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically(str(path), dies)
    assert path.read_text() == '{"old": 1}' and os.listdir(tmp_path) == ["run.json"]


def test_resume_makes_a_torn_map_again(copy, capsys):
    torn = sorted((copy / "maps").iterdir())[0]
    torn.write_bytes(torn.read_bytes()[: torn.stat().st_size // 2])
    assert main(BASE + ["--quiet", "--out", str(copy)]) == 0
    captured = capsys.readouterr()
    assert f"{torn} does not load (torn)" in captured.err
    assert readable_npz(str(torn)) and f"0 rows written, {ROWS} already done" in captured.out


def test_resume_repairs_a_torn_run_json_and_torn_lines_inside_the_results(copy, capsys):
    (copy / "run.json").write_text((copy / "run.json").read_text()[:40])
    lines = (copy / "results.jsonl").read_text().splitlines(keepends=True)
    lost = row_key(json.loads(lines[2]))
    lines[2] = lines[2][: len(lines[2]) // 2] + "\n"
    (copy / "results.jsonl").write_text("".join(lines[:1] + ["\n"] + lines[1:]))
    assert main(BASE + ["--quiet", "--out", str(copy)]) == 0
    captured = capsys.readouterr()
    assert f"{copy / 'results.jsonl'}: lines 2, 4 not a complete row (blank or torn); dropped" in captured.err
    assert f"1 rows written, {ROWS - 1} already done" in captured.out
    rows = rows_of(copy)
    assert len(rows) == ROWS and lost in {row_key(row) for row in rows}
    assert json.loads((copy / "run.json").read_text())["steps"] == 4


def test_report_leaves_out_torn_lines_and_says_so(copy, capsys):
    (copy / "run.json").write_text("{")
    lines = (copy / "results.jsonl").read_text().splitlines(keepends=True)
    (copy / "results.jsonl").write_text("".join(lines[:2] + ['{"model": "Mob\n'] + lines[2:]))
    assert main(["report", str(copy)]) == 0
    err = capsys.readouterr().err
    assert "results.jsonl: line 3 not a complete row (blank or torn); left out" in err and "run.json is not" in err
    assert "blank or torn lines left out: " in (copy / "tables.md").read_text()


# "unwritable folder": an existing folder in which nobody, root included (as in CI), can create a file;
# a chmod 555 folder would not stop root.
@pytest.mark.parametrize("case", ["under a file", "a file", "unwritable folder"])
def test_an_unwritable_out_is_refused_before_the_model_loads(tmp_path, monkeypatch, capsys, case):
    (tmp_path / "file").write_text("")
    out = {"under a file": tmp_path / "file" / "run", "a file": tmp_path / "file",
           "unwritable folder": Path("/proc/self")}[case]
    monkeypatch.setattr(bench_run, "load_model", lambda config: pytest.fail("the model was loaded first"))
    assert main(BASE + ["--quiet", "--out", str(out)]) == 2
    assert f"--out '{out}' is not a folder this run can write to" in one_line_error(capsys)


def test_library_versions_are_recorded_not_compared(copy, capsys):
    metadata = json.loads((copy / "run.json").read_text())
    versions = metadata["versions"]
    for name in ("tensorflow", "keras", "numpy", "pillow", "libwebp", "scikit-image", "python", "platform", "cpu"):
        assert versions[name], name
    (copy / "run.json").write_text(json.dumps({**metadata, "versions": {**versions, "numpy": "0.1"}}))
    assert main(BASE + ["--quiet", "--out", str(copy)]) == 0
    captured = capsys.readouterr()
    assert f"numpy 0.1 (now {versions['numpy']})" in captured.err and f"{ROWS} already done" in captured.out
    assert json.loads((copy / "run.json").read_text())["earlier_versions"][0]["numpy"] == "0.1"


def test_a_rerun_says_every_row_was_there_with_a_misclassified_image(tmp_path, capsys):
    # EfficientNetLite0 misclassifies the 4th sample photo: chunk 2 holds one right and one wrong image.
    argv = ["run", "--model", "EfficientNetLite0", "--limit", "4", "--chunk", "2", "--methods", "vg", "--metrics",
            "localization", "--quiet", "--out", str(tmp_path)]
    assert main(argv) == 0
    counts = "4 images seen, 3 explained, 1 misclassified (skipped)"
    assert f"{counts}, 3 rows written, 0 already done." in capsys.readouterr().out
    assert main(argv) == 0
    assert f"{counts}, 0 rows written, 3 already done." in capsys.readouterr().out


def test_progress_says_each_image_and_method_as_it_is_done(finished):
    printed = finished[1]
    for image in (1, 2):
        for step in ("ig maps", "ig plain scored", "ig idgi scored", "vg maps", "vg plain scored"):
            assert re.search(rf"^image {image}/2 · {step} · \d+ s$", printed, re.MULTILINE), (image, step)
