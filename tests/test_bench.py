"""The benchmark CLI end to end on a random-init model: rows, tables, resume after SIGKILL, shards, errors."""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

import idgi_tf
from idgi_tf import data, metrics, spectral
from idgi_tf._cli import CommandError, load_model
from idgi_tf.bench import main
from idgi_tf.bench.cli import config_from, parser
from idgi_tf.bench.report import COLUMNS, paper_values
from idgi_tf.bench.results import read_rows, row_key
from idgi_tf.bench.run import PAPER_METHODS
from idgi_tf.bench.shards import KUBERNETES_VARIABLES, parse_shard
from idgi_tf.spectral import spread_over_channels

SMOKE = ["run", "--model", "MobileNetV2", "--weights", "none", "--input-size", "32", "--steps", "8", "--limit", "3",
         "--chunk", "1", "--quiet"]
# IG (both rules) and VG: what resuming, sharding and devices must keep; every method runs end to end
# in test_end_to_end_rows_and_tables.
LIGHT = ["--metrics", "insertion,localization", "--methods", "ig,vg"]
LIGHT_ROWS = 3 * 3


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
    columns = {key: column for key, column in COLUMNS.items() if key[0] in PAPER_METHODS}
    assert {(key[2], key[3]) for key in rows} == set(columns)
    assert all(row["smoke"] and row["steps"] == 8 and "sic_aic_entropy" in row for row in rows.values())
    table = (tmp_path / "tables.md").read_text()
    assert "SMOKE RUN" in table
    header = "| Model | " + " | ".join(columns.values()) + " | images |"  # titles and order from METHODS
    assert header in table and "Table 1" in table and "Table 4" in table
    assert set(header.split(" | ")[1:8]) == {"IG", "IG+IDGI", "GIG", "GIG+IDGI", "BlurIG", "BlurIG+IDGI", "VG"}
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


def test_every_method_and_metric_of_the_tables_runs_in_the_bench(tmp_path):
    """The bench takes every row of METHODS and METRICS; the methods the default run leaves out write their rows
    (RISE and SmoothGrad, the costly ones, run in the ranking command's test)."""
    args = parser().parse_args(["run", "--methods", ",".join(idgi_tf.METHODS), "--metrics", ",".join(metrics.METRICS)])
    assert list(args.methods) == list(idgi_tf.METHODS) and list(args.metrics) == list(metrics.METRICS)
    others = ["gxi", "elrp", "deeplift", "gradcam", "gradcampp", "occlusion"]
    assert main([*SMOKE[:9], "--limit", "1", "--chunk", "1", "--quiet", "--methods", ",".join(others),
                 "--metrics", "insertion,road", "--out", str(tmp_path)]) == 0
    rows = rows_by_key(tmp_path)
    assert sorted((key[2], key[3]) for key in rows) == sorted((name, "plain") for name in others)
    for row in rows.values():
        assert np.isfinite([row["insertion_probability"], row["road_morf"], row["road_lerf"]]).all(), row
    assert "Does IDGI improve" not in (tmp_path / "tables.md").read_text()  # no path method: no verdict


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
    assert 0 < partial < LIGHT_ROWS
    with open(results, "a") as handle:  # a row torn by the kill
        handle.write('{"model": "MobileNetV2", "image": "chel')
    assert main(SMOKE + LIGHT + ["--out", str(tmp_path)]) == 0
    assert_same_rows(rows_by_key(tmp_path), rows_by_key(single_run))
    assert all(json.loads(line) for line in results.read_text().splitlines())


def _start_shard(out, scheduler_env):
    """A benchmark process with ``--shard auto`` under a fake scheduler's environment."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("SLURM_", "JOB_COMPLETION"))}
    command = [sys.executable, "-m", "idgi_tf.bench", *SMOKE, *LIGHT, "--shard", "auto", "--out", str(out)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**env, "TF_CPP_MIN_LOG_LEVEL": "3", **scheduler_env})


@pytest.fixture(scope="module")
def sharded_run(tmp_path_factory):
    """Two shards running at the same time into one folder: task 1 of a SLURM array whose ids start at 1
    (shard 0/2) and pod 1 of a Kubernetes Indexed Job with 2 completions (shard 1/2)."""
    out = tmp_path_factory.mktemp("sharded")
    processes = [
        _start_shard(out, {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "2",
                           "SLURM_ARRAY_TASK_COUNT": "2"}),
        _start_shard(out, {"JOB_COMPLETION_INDEX": "1", "JOB_COMPLETIONS": "2"}),
    ]
    outputs = [process.communicate(timeout=600) for process in processes]
    for process, (_, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-2000:]
    return out, [stdout for stdout, _ in outputs]


def test_concurrent_auto_shards_cover_the_single_run(sharded_run, single_run):
    out, stdouts = sharded_run
    assert "shard 0/2 (SLURM array)" in stdouts[0] and "shard 1/2 (Kubernetes Indexed Job)" in stdouts[1]
    halves = [read_rows(str(out / f"results-shard{i}of2.jsonl")) for i in (0, 1)]
    assert all(halves) and {row["image"] for row in halves[0]}.isdisjoint({row["image"] for row in halves[1]})
    assert [{row["shard"] for row in half} for half in halves] == [{"0/2"}, {"1/2"}]
    sources = [json.loads((out / f"run-shard{i}of2.json").read_text())["shard_source"] for i in (0, 1)]
    assert sources == ["SLURM array", "Kubernetes Indexed Job"]
    assert not (out / "tables.md").exists()  # shards leave the merging to report: no shared file written
    assert_same_rows(rows_by_key(out), rows_by_key(single_run))
    assert main(["report", str(out)]) == 0
    tables = (out / "tables.md").read_text()
    assert "| 3 |" in tables and "INCOMPLETE" not in tables  # merged: 3 images per cell


def _copy_run(source, target, shards=(0, 1)):
    target.mkdir()
    for i in shards:
        for name in (f"results-shard{i}of2.jsonl", f"run-shard{i}of2.json"):
            (target / name).write_bytes((source / name).read_bytes())
    return target


def test_report_lists_a_missing_shard_and_tables_the_others(sharded_run, tmp_path, capsys):
    out = _copy_run(sharded_run[0], tmp_path / "half", shards=(1,))
    assert main(["report", str(out)]) == 0
    assert "MobileNetV2 shard 0/2 (results-shard0of2.jsonl)" in capsys.readouterr().err
    tables = (out / "tables.md").read_text()
    assert "INCOMPLETE: no results yet from MobileNetV2 shard 0/2" in tables
    images = len({row["image"] for row in read_rows(str(out / "results-shard1of2.jsonl"))})
    assert f"| {images} |" in tables and images < 3


@pytest.mark.parametrize("break_it, message", [
    (lambda out: (out / "run-shard1of2.json").write_text(
        json.dumps({**json.loads((out / "run-shard1of2.json").read_text()), "steps": 16})),
     "the shards of MobileNetV2 differ in steps"),
    (lambda out: (out / "results.jsonl").write_bytes((out / "results-shard0of2.jsonl").read_bytes()),
     "is in both"),
    (lambda out: (out / "results-shard3of4.jsonl").write_text(""), "split into shards in different ways"),
])
def test_report_refuses_shards_that_do_not_belong_together(sharded_run, tmp_path, capsys, break_it, message):
    out = _copy_run(sharded_run[0], tmp_path / "run")
    break_it(out)
    assert main(["report", str(out)]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1


SLURM_ARRAY = {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "8",
               "SLURM_ARRAY_TASK_COUNT": "8"}


@pytest.mark.parametrize("environ, shard, source", [
    (SLURM_ARRAY, "4/8", "SLURM array"),
    ({**SLURM_ARRAY, "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_MAX": "7"}, "0/8",
     "SLURM array"),
    # --array=3-17:2, a sparse array: ids 3, 5, ..., 17
    ({"SLURM_ARRAY_TASK_ID": "9", "SLURM_ARRAY_TASK_MIN": "3", "SLURM_ARRAY_TASK_MAX": "17",
      "SLURM_ARRAY_TASK_COUNT": "8", "SLURM_ARRAY_TASK_STEP": "2"}, "3/8", "SLURM array"),
    ({"JOB_COMPLETION_INDEX": "0", "JOB_COMPLETIONS": "3"}, "0/3", "Kubernetes Indexed Job"),
    ({"JOB_COMPLETION_INDEX": "2", "JOB_COMPLETIONS": "3"}, "2/3", "Kubernetes Indexed Job"),
])
def test_shard_auto_reads_the_scheduler(environ, shard, source):
    found = parse_shard("auto", environ)
    assert (str(found), found.source) == (shard, source)


def test_an_explicit_shard_wins_over_the_scheduler(monkeypatch):
    for name, value in SLURM_ARRAY.items():
        monkeypatch.setenv(name, value)
    config = config_from(parser().parse_args(["run", "--weights", "none", "--shard", "1/2"]))
    assert (str(config.shard), config.shard.source) == ("1/2", "--shard")
    assert str(config_from(parser().parse_args(["run", "--weights", "none", "--shard", "auto"])).shard) == "4/8"


@pytest.mark.parametrize("environ, message", [
    ({}, "it reads a SLURM job array (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_COUNT, optionally "
         "SLURM_ARRAY_TASK_STEP) or a Kubernetes Indexed Job (JOB_COMPLETION_INDEX, JOB_COMPLETIONS)"),
    # --array=1,4,5: no step maps these ids to 0..2
    ({"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "5",
      "SLURM_ARRAY_TASK_COUNT": "3"}, "is not a range A-B or A-B:S"),
    ({"SLURM_ARRAY_TASK_ID": "4"}, "SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_COUNT is not"),
    ({"JOB_COMPLETION_INDEX": "1"}, "JOB_COMPLETIONS is not"),
    ({"JOB_COMPLETION_INDEX": "3", "JOB_COMPLETIONS": "3"}, "needs 0 <= I < N, got 3/3"),
    ({"JOB_COMPLETION_INDEX": "one", "JOB_COMPLETIONS": "3"}, "JOB_COMPLETION_INDEX must be an integer"),
])
def test_shard_auto_errors_name_the_variables(environ, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        parse_shard("auto", environ)


def test_cluster_job_files():
    folder = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "cluster")
    for script in ("bench-array.sbatch", "submit-slurm.sh", "../reproduce_all.sh"):
        done = subprocess.run(["bash", "-n", os.path.join(folder, script)], capture_output=True, text=True)
        assert done.returncode == 0, (script, done.stderr)
    sbatch = open(os.path.join(folder, "bench-array.sbatch")).read()
    assert "--shard auto" in sbatch and "--devices" in sbatch
    assert "--dependency=afterany:" in open(os.path.join(folder, "submit-slurm.sh")).read()
    text = open(os.path.join(folder, "indexed-job.yaml")).read()
    job = yaml.safe_load(text)
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert job["kind"] == "Job" and job["spec"]["completionMode"] == "Indexed"
    assert env["JOB_COMPLETIONS"] == str(job["spec"]["completions"])
    assert all(name in text for name in KUBERNETES_VARIABLES)
    assert container["args"][container["args"].index("--shard") + 1] == "auto"
    report = yaml.safe_load(open(os.path.join(folder, "report-pod.yaml")).read())
    assert report["spec"]["containers"][0]["command"][-2:] == ["report", container["args"][-2]]


def test_lowpass_adds_filtered_columns_beside_the_plain_ones(tmp_path, single_run):
    assert main(SMOKE + LIGHT + ["--out", str(tmp_path), "--lowpass", "auto"]) == 0
    rows = rows_by_key(tmp_path)
    assert len(rows) == 2 * LIGHT_ROWS  # every (method, rule) twice: as computed and low-passed
    plain = {key: row for key, row in rows.items() if not key[3].endswith("+lowpass")}
    assert_same_rows(plain, rows_by_key(single_run))  # the unfiltered rows are untouched
    table = (tmp_path / "tables.md").read_text()
    assert "IG+IDGI+LP" in table and "VG+LP" in table
    # The low-passed rows score FORGrad's filter of the map, recomputed here from the smoke model (seed 0).
    model = load_model("MobileNetV2", "none", 32, 0)
    samples = data.sample_images(32)
    x, labels, masks = samples.images[:3], samples.labels[:3].astype(np.int32), samples.masks[:3]
    smooth = spread_over_channels(spectral.lowpass(idgi_tf.attribute(model, x, labels, "vg"), spectral.PAPER_CUTOFF),
                                  3)
    want = metrics.localization(smooth, masks).scores["roc_auc"]
    filtered = [rows[("MobileNetV2", name, "vg", "plain+lowpass")]["roc_auc"] for name in samples.names[:3]]
    unfiltered = [rows[("MobileNetV2", name, "vg", "plain")]["roc_auc"] for name in samples.names[:3]]
    np.testing.assert_allclose(filtered, want, rtol=1e-6)
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
        (["--model", "MobileNetV2", "--weights", "none", "--shard", "auto"], "--shard auto found no scheduler"),
        (["--model", "MobileNetV2", "--data", "imagenet", "--weights", "none", "--imagenet-dir", "/nonexistent"],
         "--data imagenet needs --imagenet-dir"),
        (["--model", "MobileNetV2", "--methods", "ig,lrp"], "argument --methods: takes a comma-separated subset"),
        (["--model", "MobileNetV2", "--weights", "none", "--input-size", "64"],
         "metric 'msssim' needs images of at least 161 px, got 64"),
        (["--model", "MobileNetV2", "--weights", "/no/such.h5"], "--weights must be imagenet, none or an existing"),
        (["--model", "MobileNetV2", "--weights", "none", "--devices", "64"], "--devices 64 needs 64 devices"),
        (["--model", "MobileNetV2", "--devices", "two"], "argument --devices: must be a positive integer or all"),
        (["--model", "MobileNetV2", "--lowpass", "-3"], "argument --lowpass: must be none, auto or a positive cutoff"),
    ],
)
def test_bad_arguments_give_one_line_errors(argv, message, capsys):
    assert main(["run", *argv]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1 and "Traceback" not in error


def test_missing_weights_error_from_the_command_line(tmp_path):
    env = {**os.environ, "KERAS_HOME": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-m", "idgi_tf.bench", "run", "--model", "MobileNetV2", "--out",
                           str(tmp_path)], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert "Traceback" not in done.stderr
    assert "--weights PATH" in last and "--weights none" in last


def test_main_command_runs_on_the_trained_network(tmp_path, capsys):
    # `make bench` on EfficientNetLite0 with the real weights, shortened (2 photos, 2 steps, IG and VG):
    # no smoke banner, every metric family, misclassified images checked.
    assert main(["run", "--model", "EfficientNetLite0", "--steps", "2", "--limit", "2", "--chunk", "2", "--methods",
                 "ig,vg", "--quiet", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    tables = (tmp_path / "tables.md").read_text()
    assert "SMOKE" not in tables and "SMOKE" not in out
    for title in ("Table 1", "Table 2", "Table 3", "Table 4", "Does IDGI improve its base path? EfficientNetLite0: IG"):
        assert title in tables
    assert "2 images seen" in out and "misclassified (skipped)" in out and "tables.csv" in out
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert rows and all(not row["smoke"] and row["model"] == "EfficientNetLite0" for row in rows)
    assert any(row["sic_aic_msssim"] is not None for row in rows)  # a confident network: Table 3 is filled
