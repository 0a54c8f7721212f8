"""The benchmark's results file: one JSON row per (image, method, rule), appended durably.

A row is written with a single ``write`` of one line, then flushed and
fsynced, so a ``kill -9`` can at worst leave one incomplete last line;
:func:`open_results` cuts it off before appending again. The set of keys
already present is what a restarted run skips.
"""

from __future__ import annotations

import glob
import json
import os


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


def results_files(directory: str) -> list[str]:
    """Every results file of a run directory: ``results.jsonl`` and the shards' ``results-*.jsonl``."""
    return sorted(glob.glob(os.path.join(directory, "results.jsonl"))
                  + glob.glob(os.path.join(directory, "results-*.jsonl")))


def merged_rows(directories) -> list[dict]:
    """The rows of all results files under ``directories``, each key once (first seen wins)."""
    seen, rows = set(), []
    for directory in directories:
        for path in results_files(directory):
            for row in read_rows(path):
                if row_key(row) not in seen:
                    seen.add(row_key(row))
                    rows.append(row)
    return rows
