"""The benchmark CLI end to end on a random-init model: rows, tables, resume after SIGKILL, shards, errors."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from idgi_tf.bench import main
from idgi_tf.bench.report import COLUMNS, paper_values
from idgi_tf.bench.results import read_rows, row_key

SMOKE = ["--model", "MobileNetV2", "--weights", "none", "--input-size", "32", "--steps", "8", "--limit", "3",
         "--chunk", "1", "--quiet"]
LIGHT = ["--metrics", "insertion,localization"]


def rows_by_key(directory):
    rows = [row for name in sorted(os.listdir(directory)) if name.startswith("results")
            for row in read_rows(os.path.join(directory, name))]
    keys = [row_key(row) for row in rows]
    assert len(keys) == len(set(keys)), "a row was written twice"
    return {row_key(row): row for row in rows}


def assert_same_rows(ours, reference):
    assert ours.keys() == reference.keys()
    for key, row in reference.items():
        for field in ("insertion_probability", "insertion_ratio", "roc_auc", "f1", "mae"):
            assert ours[key][field] == pytest.approx(row[field], rel=1e-5, abs=1e-7), (key, field)


@pytest.fixture(scope="module")
def single_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    assert main(SMOKE + LIGHT + ["--out", str(out)]) == 0
    return out


def test_end_to_end_rows_and_tables(tmp_path, capsys):
    assert main(SMOKE + ["--metrics", "insertion,sic_aic,localization", "--out", str(tmp_path)]) == 0
    rows = rows_by_key(tmp_path)
    # 3 images x (IG, GIG, BlurIG) x (plain, IDGI) + VG
    assert len(rows) == 3 * 7
    assert {(key[2], key[3]) for key in rows} == set(COLUMNS)
    assert all(row["smoke"] and row["steps"] == 8 and "sic_aic_entropy" in row for row in rows.values())
    table = (tmp_path / "tables.md").read_text()
    assert "SMOKE RUN" in table
    header = "| Model | " + " | ".join(COLUMNS.values()) + " | images |"
    assert header in table and "Table 1" in table and "Table 4" in table
    assert header.split(" | ")[1:8] == ["IG", "IG+IDGI", "GIG", "GIG+IDGI", "BlurIG", "BlurIG+IDGI", "VG"]
    with open(tmp_path / "tables.csv") as handle:
        records = list(csv.DictReader(handle))
    paper = paper_values()
    roc = [r for r in records if r["metric"] == "roc_auc" and r["column"] == "IG+IDGI"][0]
    assert float(roc["paper"]) == paper[("roc_auc", "MobileNetV2", "IG+IDGI")] == 0.811
    assert float(roc["difference"]) == pytest.approx(float(roc["ours"]) - 0.811)
    mean_roc = np.mean([r["roc_auc"] for k, r in rows.items() if k[2:] == ("ig", "idgi")])
    assert float(roc["ours"]) == pytest.approx(mean_roc)
    assert "21 rows written" in capsys.readouterr().out
    figures = sorted(os.listdir(tmp_path / "figures"))
    assert "insertion.png" in figures and len([f for f in figures if f.startswith("figure3_")]) == 2


def test_paper_values_cover_tables_1_to_4():
    paper = paper_values()
    assert len(paper) == 9 * 11 * 7
    assert paper[("aic_entropy", "MobileNetV2", "IG")] == 0.098  # Table 2
    assert paper[("insertion_probability", "ResNet152V2", "VG")] == 0.242  # the paper's "ResNet151V2"


def test_resume_after_sigkill_gives_each_row_once(tmp_path, single_run):
    command = [sys.executable, "-m", "idgi_tf.bench", *SMOKE, *LIGHT, "--out", str(tmp_path)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    results = tmp_path / "results.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if results.exists() and len(read_rows(str(results))) >= 2:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = len(read_rows(str(results)))
    assert 0 < partial < 21
    with open(results, "a") as handle:  # a row torn by the kill
        handle.write('{"model": "MobileNetV2", "image": "chel')
    assert main(SMOKE + LIGHT + ["--out", str(tmp_path)]) == 0
    assert_same_rows(rows_by_key(tmp_path), rows_by_key(single_run))
    assert all(json.loads(line) for line in results.read_text().splitlines())


def test_shards_cover_the_single_run(tmp_path, single_run):
    for shard in ("0/2", "1/2"):
        assert main(SMOKE + LIGHT + ["--out", str(tmp_path), "--shard", shard]) == 0
    halves = [read_rows(str(tmp_path / f"results-shard{i}of2.jsonl")) for i in (0, 1)]
    assert {row["image"] for row in halves[0]}.isdisjoint({row["image"] for row in halves[1]})
    assert_same_rows(rows_by_key(tmp_path), rows_by_key(single_run))
    assert main(["report", str(tmp_path)]) == 0
    assert "| 3 |" in (tmp_path / "tables.md").read_text()  # merged: 3 images per cell


def test_lowpass_adds_filtered_columns_beside_the_plain_ones(tmp_path, single_run):
    assert main(SMOKE + LIGHT + ["--out", str(tmp_path), "--lowpass", "auto"]) == 0
    rows = rows_by_key(tmp_path)
    assert len(rows) == 3 * 14  # every (method, rule) twice: as computed and low-passed
    plain = {key: row for key, row in rows.items() if not key[3].endswith("+lowpass")}
    assert_same_rows(plain, rows_by_key(single_run))  # the unfiltered rows are untouched
    table = (tmp_path / "tables.md").read_text()
    assert "IG+IDGI+LP" in table
    assert "BlurIG+LP" in table and "VG+LP" in table
    filtered = [row["roc_auc"] for key, row in rows.items() if key[2:] == ("vg", "plain+lowpass")]
    unfiltered = [row["roc_auc"] for key, row in rows.items() if key[2:] == ("vg", "plain")]
    assert filtered != unfiltered


def test_two_devices_in_one_process_give_the_single_run(tmp_path, single_run):
    """--devices 2 through MirroredStrategy, on two logical CPU devices (no GPU in CI)."""
    script = (
        "import sys, tensorflow as tf\n"
        "cpu = tf.config.list_physical_devices('CPU')[0]\n"
        "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)\n"
        "from idgi_tf.bench import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, *SMOKE, *LIGHT, "--devices", "2", "--out", str(tmp_path)],
                          capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert_same_rows(rows_by_key(tmp_path), rows_by_key(single_run))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "ResNet9000"], "model name must be one of"),
        (["--model", "MobileNetV2", "--shard", "2/2"], "--shard I/N needs 0 <= I < N"),
        (["--model", "MobileNetV2", "--shard", "half"], "--shard must look like I/N"),
        (["--model", "MobileNetV2", "--data", "imagenet", "--weights", "none", "--imagenet-dir", "/nonexistent"],
         "--data imagenet needs --imagenet-dir"),
        (["--model", "MobileNetV2", "--methods", "ig,lrp"], "--methods takes a comma-separated subset"),
        (["--model", "MobileNetV2", "--weights", "none", "--input-size", "64"], "--metrics msssim needs images"),
        (["--model", "MobileNetV2", "--weights", "/no/such.h5"], "--weights must be imagenet, none or an existing"),
        (["--model", "MobileNetV2", "--weights", "none", "--devices", "64"], "--devices 64 needs 64 devices"),
        (["--model", "MobileNetV2", "--devices", "two"], "--devices must be a positive integer"),
        (["--model", "MobileNetV2", "--lowpass", "-3"], "--lowpass must be none, auto or a positive cutoff"),
    ],
)
def test_bad_arguments_give_one_line_errors(argv, message, capsys):
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1 and "Traceback" not in error


def test_missing_weights_error_from_the_command_line(tmp_path):
    env = {**os.environ, "KERAS_HOME": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-m", "idgi_tf.bench", "--model", "MobileNetV2", "--out", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert "Traceback" not in done.stderr
    assert "--weights PATH" in last and "--weights none" in last


def test_main_command_runs_on_the_trained_network(tmp_path, capsys):
    # `make bench` on EfficientNetLite0 with the real weights, shortened (2 photos, 2 steps, IG and VG):
    # no smoke banner, every metric family, misclassified images checked.
    assert main(["--model", "EfficientNetLite0", "--steps", "2", "--limit", "2", "--chunk", "2", "--methods", "ig,vg",
                 "--quiet", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    tables = (tmp_path / "tables.md").read_text()
    assert "SMOKE" not in tables and "SMOKE" not in out
    for title in ("Table 1", "Table 2", "Table 3", "Table 4", "Does IDGI improve its base path? EfficientNetLite0: IG"):
        assert title in tables
    assert "2 images seen" in out and "misclassified (skipped)" in out and "tables.csv" in out
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert rows and all(not row["smoke"] and row["model"] == "EfficientNetLite0" for row in rows)
    assert any(row["sic_aic_msssim"] is not None for row in rows)  # a confident network: Table 3 is filled
