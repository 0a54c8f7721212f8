"""The benchmark's results file: one JSON row per (image, method, rule), appended durably.

A row is written with a single ``write`` of one line, then flushed and
fsynced, so a ``kill -9`` can at worst leave one incomplete last line;
:func:`open_results` cuts it off before appending again. The set of keys
already present is what a restarted run skips.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import re

from .._cli import CommandError

# The settings that change a run's numbers: the shards merged for one model must agree on each.
SETTINGS = ("model", "weights", "data", "limit", "input_size", "steps", "methods", "metrics", "lowpass", "seed")
_SHARD_FILE = re.compile(r"^results(?:-shard(\d+)of(\d+))?\.jsonl$")


def row_key(row: dict) -> tuple:
    return (row["model"], row["image"], row["method"], row["rule"])


def read_rows(path: str) -> list[dict]:
    """The complete rows of one results file (an incomplete last line is ignored)."""
    if not os.path.exists(path):
        return []
    rows = []
    with open(path, "rb") as handle:
        for line in handle:
            if not line.endswith(b"\n"):
                break
            rows.append(json.loads(line))
    return rows


def open_results(path: str):
    """(rows already in ``path``, a file object to append to), after cutting an incomplete last line."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    rows = read_rows(path)
    if os.path.exists(path):
        with open(path, "rb") as handle:
            data = handle.read()
        complete = data.rfind(b"\n") + 1
        if complete != len(data):
            with open(path, "r+b") as handle:
                handle.truncate(complete)
    return rows, open(path, "a", encoding="utf-8")


def append_rows(handle, rows: list[dict]) -> None:
    """Append ``rows`` and make them durable before returning."""
    for row in rows:
        handle.write(json.dumps(row) + "\n")
    handle.flush()
    os.fsync(handle.fileno())


def shard_file_name(stem: str, ext: str, index: int, count: int) -> str:
    """``results.jsonl`` for an unsharded run, ``results-shard{I}of{N}.jsonl`` for shard I of N."""
    return f"{stem}.{ext}" if count == 1 else f"{stem}-shard{index}of{count}.{ext}"


def results_files(directory: str) -> list[str]:
    """Every results file of a run directory: ``results.jsonl`` and the shards' ``results-shard*.jsonl``."""
    return sorted(glob.glob(os.path.join(directory, "results.jsonl"))
                  + glob.glob(os.path.join(directory, "results-shard*.jsonl")))


def _shard_of(path: str) -> tuple[int, int]:
    match = _SHARD_FILE.match(os.path.basename(path))
    return (int(match.group(1)), int(match.group(2))) if match.group(1) else (0, 1)


def _metadata(results_path: str) -> dict:
    """The ``run*.json`` written beside a results file ({} for a run older than the metadata)."""
    index, count = _shard_of(results_path)
    path = os.path.join(os.path.dirname(results_path), shard_file_name("run", "json", index, count))
    if not os.path.exists(path):
        return {}
    with open(path) as handle:
        return json.load(handle)


@dataclasses.dataclass
class Merged:
    """The rows of a set of run folders, and the shards that were expected but not found."""

    rows: list[dict]
    missing: list[str]


def merged_rows(directories) -> Merged:
    """Merge the results files under ``directories`` (all shards of one or several models' runs).

    Each folder holds one run (one model), possibly split into shards. Refused with a message naming
    the files: a row found in two files, the shards of a folder disagreeing on a setting of
    :data:`SETTINGS` (the model among them), or a folder's shards from two different splits.
    Tolerated and listed in ``missing``: shards of a split with no results file (yet).
    """
    paths = list(dict.fromkeys(os.path.realpath(p) for directory in directories for p in results_files(directory)))
    owner, rows, groups = {}, [], {}
    for path in paths:
        mine = read_rows(path)
        metadata = _metadata(path)
        if "model" not in metadata and mine:
            metadata = {**metadata, "model": mine[0]["model"]}
        groups.setdefault(os.path.dirname(path), []).append((path, metadata))  # a run folder holds one run
        for row in mine:
            key = row_key(row)
            if key in owner:
                raise CommandError(f"report: the row {key} is in both {os.path.relpath(owner[key])} and "
                                   f"{os.path.relpath(path)}; merge each run's shards once (one split into N "
                                   f"shards per model and folder)")
            owner[key] = path
            rows.append(row)
    missing = []
    for folder, members in groups.items():
        model = next((metadata["model"] for _, metadata in members if "model" in metadata), folder)
        _check_settings(model, members)
        counts = {_shard_of(path)[1] for path, _ in members}
        if len(counts) > 1:
            raise CommandError(f"report: the runs of {model} are split into shards in different ways ("
                               + ", ".join(sorted(os.path.relpath(p) for p, _ in members))
                               + "); merge the shards of one split")
        (count,) = counts
        present = {_shard_of(path)[0] for path, _ in members}
        missing += [f"{model} shard {i}/{count} ({shard_file_name('results', 'jsonl', i, count)})"
                    for i in range(count) if i not in present]
    return Merged(rows, missing)


def _check_settings(model, members) -> None:
    for setting in SETTINGS:
        values = {path: metadata[setting] for path, metadata in members if setting in metadata}
        if len({json.dumps(value, sort_keys=True) for value in values.values()}) > 1:
            raise CommandError(f"report: the shards of {model} differ in {setting}: "
                               + ", ".join(f"{os.path.relpath(p)} has {v!r}" for p, v in values.items())
                               + "; merge only shards of one run")
