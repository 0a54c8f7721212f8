"""The benchmark's results file: one JSON row per (image, method, rule), appended durably.

A row is written with a single ``write`` of one line, then flushed and
fsynced, so a ``kill -9`` can at worst leave one incomplete last line;
:func:`open_results` cuts it off (and drops, with a warning naming the line,
any blank or torn line before it) before appending again. The set of keys
already present is what a restarted run skips. Every row carries the settings
it was made with, so a run never adds rows beside rows of other settings.
One run per shard writes at a time: it holds ``results[-shardIofN].lock``.
Every other file is written whole under a temporary name, then renamed.
"""

from __future__ import annotations

import dataclasses
import fcntl
import glob
import json
import os
import re
import socket
import sys
import time
import zipfile
import zlib

import numpy as np

from .._atomic import write_atomically
from .._cli import CommandError

# The settings that change a run's numbers: the shards merged for one model must agree on each.
SETTINGS = ("model", "weights", "data", "limit", "input_size", "steps", "methods", "metrics", "lowpass", "seed")
_SHARD_FILE = re.compile(r"^results(?:-shard(\d+)of(\d+))?\.jsonl$")


def row_key(row: dict) -> tuple:
    return (row["model"], row["image"], row["method"], row["rule"])


def _is_row(value) -> bool:
    return isinstance(value, dict) and all(key in value for key in ("model", "image", "method", "rule"))


@dataclasses.dataclass
class Scan:
    """What a results file holds: its rows (and their lines), the unreadable lines before the end, a torn end."""

    rows: list[dict]
    lines: list[bytes]
    dropped: list[int]  # 1-based numbers of blank or torn lines followed by more lines
    torn_end: bool


def scan_rows(path: str) -> Scan:
    """Read ``path`` line by line, keeping every line that is one complete row."""
    scan = Scan([], [], [], False)
    if not os.path.exists(path):
        return scan
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            if not line.endswith(b"\n"):
                scan.torn_end = True
                break
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            if _is_row(row):
                scan.rows.append(row)
                scan.lines.append(line)
            else:
                scan.dropped.append(number)
    return scan


def _dropped_warning(path: str, dropped, consequence: str) -> None:
    if dropped:
        lines = ", ".join(map(str, dropped))
        print(f"warning: {path}: line{'s' if len(dropped) > 1 else ''} {lines} not a complete row (blank or torn); "
              f"{consequence}", file=sys.stderr)


def read_rows(path: str) -> list[dict]:
    """The complete rows of one results file (an incomplete last line is ignored, a torn one before it is
    left out with a warning naming its line)."""
    scan = scan_rows(path)
    _dropped_warning(path, scan.dropped, "left out")
    return scan.rows


def open_results(path: str):
    """(rows already in ``path``, a file object to append to), after cutting an incomplete last line and
    dropping any blank or torn line before it (warned about: its row is computed again)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    scan = scan_rows(path)
    if scan.dropped or scan.torn_end:
        _dropped_warning(path, scan.dropped, "dropped, its row is computed again")
        write_atomically(path, lambda handle: handle.writelines(scan.lines), binary=True)
    return scan.rows, open(path, "a", encoding="utf-8")


def append_rows(handle, rows: list[dict]) -> None:
    """Append ``rows`` and make them durable before returning."""
    for row in rows:
        handle.write(json.dumps(row) + "\n")
    handle.flush()
    os.fsync(handle.fileno())


def readable_npz(path: str) -> bool:
    """Whether ``path`` is a complete ``.npz`` (every array decompresses): a torn one is not."""
    try:
        with np.load(path) as stored:
            for key in stored.files:
                stored[key]
        return True
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error):
        return False


def lock_shard(path: str):
    """Hold ``path`` (``fcntl.flock``, exclusive) while this run writes its shard; an open file to close after.

    A second run of the same shard (a requeued SLURM task, a restarted pod) is refused at once, naming
    the PID and host that hold the lock; the kernel releases the lock when the holder ends, even by
    ``kill -9``. On a shared file system this needs working ``flock`` (NFSv4; Lustre mounted with ``flock``).
    """
    handle = open(path, "a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise CommandError(f"{path} is held by {holder}: another run of this shard is writing into this "
                           f"folder; wait for it to end or stop it (two runs of a shard would write rows twice)"
                           ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n")
    handle.flush()
    return handle


def shard_file_name(stem: str, ext: str, index: int, count: int) -> str:
    """``results.jsonl`` for an unsharded run, ``results-shard{I}of{N}.jsonl`` for shard I of N."""
    return f"{stem}.{ext}" if count == 1 else f"{stem}-shard{index}of{count}.{ext}"


def results_files(directory: str) -> list[str]:
    """Every results file of a run directory: ``results.jsonl`` and the shards' ``results-shardIofN.jsonl``."""
    return sorted(path for path in glob.glob(os.path.join(directory, "results*.jsonl"))
                  if _SHARD_FILE.match(os.path.basename(path)))


def _shard_of(path: str) -> tuple[int, int]:
    match = _SHARD_FILE.match(os.path.basename(path))
    return (int(match.group(1)), int(match.group(2))) if match.group(1) else (0, 1)


def metadata_path(results_path: str) -> str:
    """The ``run*.json`` beside a results file."""
    index, count = _shard_of(results_path)
    return os.path.join(os.path.dirname(results_path), shard_file_name("run", "json", index, count))


def read_metadata(path: str) -> dict:
    """A ``run*.json`` ({} when absent, or torn by a kill before it was written atomically: warned about)."""
    if not os.path.exists(path):
        return {}
    try:
        with open(path) as handle:
            metadata = json.load(handle)
    except ValueError:
        metadata = None
    if not isinstance(metadata, dict):
        print(f"warning: {path} is not a complete JSON object (torn?); its rows' own settings are used",
              file=sys.stderr)
        return {}
    return metadata


def row_settings(row: dict, path: str) -> dict:
    """The settings (:data:`SETTINGS` and ``shard``) a row of the results file ``path`` was made with.

    Every row carries them in ``settings``; a row without them was written by an older version, whose
    settings cannot be known, so it is refused.
    """
    if not isinstance(row.get("settings"), dict):
        raise CommandError(f"{path} holds a row without its settings (written by an older version): "
                           f"rerun that run with --overwrite")
    return {**row["settings"], "shard": row.get("shard")}


def show(value) -> str:
    """A setting's value as on the command line: ``ig,vg``, ``none``, ``8``."""
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return "none" if value is None else str(value)


@dataclasses.dataclass
class Merged:
    """The rows of a set of run folders, the shards that were expected but not found, the lines left out."""

    rows: list[dict]
    missing: list[str]
    dropped: list[str]


@dataclasses.dataclass
class _Source:
    """One file's claim about one model's run: a results file's rows or a ``run*.json``."""

    path: str
    model: str | None  # None: a file with neither rows nor run json
    shard: tuple[int, int]
    settings: dict


def _sources(path: str, rows: list[dict]) -> list[_Source]:
    """The settings claimed by one results file (its rows must agree) and by its ``run*.json``."""
    meta_path = metadata_path(path)
    metadata = read_metadata(meta_path)
    claims = {json.dumps({k: v for k, v in row_settings(row, path).items() if k in SETTINGS}, sort_keys=True)
              for row in rows}
    if len(claims) > 1:
        differing = _differences([json.loads(claim) for claim in claims])
        raise CommandError(f"report: {os.path.relpath(path)} holds rows made with other settings ({differing}); "
                           f"it was resumed with other settings by an older version: rerun it with --overwrite")
    model = json.loads(next(iter(claims)))["model"] if claims else metadata.get("model")  # None: not known yet
    sources = [_Source(path, model, _shard_of(path), json.loads(claims.pop()))] if claims else []
    if metadata:
        sources.append(_Source(meta_path, model, _shard_of(path), metadata))
    return sources or [_Source(path, model, _shard_of(path), {})]


def _differences(settings: list[dict]) -> str:
    """``steps 8 / 16, limit 3 / 4``: every setting on which ``settings`` disagree."""
    parts = []
    for key in SETTINGS:
        values = list(dict.fromkeys(show(s[key]) for s in settings if key in s))
        if len(values) > 1:
            parts.append(f"{key} {' / '.join(values)}")
    return ", ".join(parts)


def merged_rows(directories) -> Merged:
    """Merge the results files under ``directories`` (all shards of one or several models' runs).

    The shards of one model may lie in several folders. Refused with a message naming the files: a
    row found in two files, a file whose rows were made with different settings, the shards of one
    model (in any of the folders) disagreeing on a setting of :data:`SETTINGS` in their rows or
    ``run*.json``, or one model's shards from two different splits. Tolerated and listed in
    ``missing``: shards of a split with no results file in any of the folders; in ``dropped``:
    blank or torn lines left out (warned about).
    """
    paths = list(dict.fromkeys(os.path.realpath(p) for directory in directories for p in results_files(directory)))
    owner, rows, sources, dropped = {}, [], [], []
    for path in paths:
        scan = scan_rows(path)
        _dropped_warning(path, scan.dropped, "left out")
        dropped += [f"{os.path.relpath(path)} line {number}" for number in scan.dropped]
        sources += _sources(path, scan.rows)
        for row in scan.rows:
            key = row_key(row)
            if key in owner:
                raise CommandError(f"report: the row {key} is in both {os.path.relpath(owner[key])} and "
                                   f"{os.path.relpath(path)}; merge each run's shards once (one split into N "
                                   f"shards per model)")
            owner[key] = path
            rows.append(row)
    groups = {}
    for source in sources:  # a file with neither rows nor run json belongs to its folder's run
        model = source.model or next((s.model for s in sources if s.model and os.path.dirname(s.path)
                                      == os.path.dirname(source.path)), os.path.dirname(source.path))
        groups.setdefault(model, []).append(source)
    missing = []
    for model, members in groups.items():
        _check_settings(model, members)
        counts = {member.shard[1] for member in members}
        if len(counts) > 1:
            raise CommandError(f"report: the runs of {model} are split into shards in different ways ("
                               + ", ".join(sorted({os.path.relpath(m.path) for m in members}))
                               + "); merge the shards of one split")
        (count,) = counts
        present = {member.shard[0] for member in members}  # each member stems from a results file
        missing += [f"{model} shard {i}/{count} ({shard_file_name('results', 'jsonl', i, count)})"
                    for i in range(count) if i not in present]
    return Merged(rows, missing, dropped)


def _check_settings(model, members) -> None:
    for setting in SETTINGS:
        values = {}
        for member in members:
            if setting in member.settings:
                values.setdefault(show(member.settings[setting]), []).append(os.path.relpath(member.path))
        if len(values) > 1:
            raise CommandError(f"report: the shards of {model} differ in {setting}: "
                               + "; ".join(f"{value} in {_some(paths)}" for value, paths in values.items())
                               + "; merge only shards of one run")


def _some(paths: list[str], shown: int = 3) -> str:
    more = len(paths) - shown
    return ", ".join(paths[:shown]) + (f" and {more} more" if more > 0 else "")
