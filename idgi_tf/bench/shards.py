"""Which share of the images one benchmark process takes: ``--shard I/N``, or ``--shard auto``.

Shard ``I`` of ``N`` takes images ``I, I+N, I+2N, ...`` of the fixed image order, so the ``N``
shards are disjoint and together cover the run. ``auto`` reads ``I/N`` from the cluster
scheduler that started the process:

* a SLURM job array (``sbatch --array=A-B[:S]``): task ids ``A, A+S, ..., B`` in
  ``SLURM_ARRAY_TASK_ID``, with ``SLURM_ARRAY_TASK_MIN``, ``SLURM_ARRAY_TASK_COUNT`` and, for a
  stepped array, ``SLURM_ARRAY_TASK_STEP``; ``I = (id - min) / step``, ``N = count``. Ids need not
  start at 0. An array given as an irregular list (``--array=1,4,5``) has no step that maps its
  ids to ``0..N-1`` and is refused;
* a Kubernetes Indexed Job: ``JOB_COMPLETION_INDEX`` (set by Kubernetes in every pod) and
  ``JOB_COMPLETIONS`` (the Job's ``.spec.completions``; Kubernetes does not pass it, the shipped
  manifest ``benchmarks/cluster/indexed-job.yaml`` sets it).

Each shard writes its own files (``results-shardIofN.jsonl``, ``run-shardIofN.json``), so shards
sharing an output folder on a shared file system never write the same file; ``report`` merges them.
"""

from __future__ import annotations

import dataclasses
import os

from .._cli import CommandError

SLURM_VARIABLES = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_COUNT")
SLURM_STEP = "SLURM_ARRAY_TASK_STEP"
SLURM_MAX = "SLURM_ARRAY_TASK_MAX"
KUBERNETES_VARIABLES = ("JOB_COMPLETION_INDEX", "JOB_COMPLETIONS")


@dataclasses.dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (``0 <= index < count``) and where that came from."""

    index: int = 0
    count: int = 1
    source: str = "--shard"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def _integers(environ, names, where: str) -> list[int]:
    values = []
    for name in names:
        try:
            values.append(int(environ[name]))
        except ValueError:
            raise CommandError(f"--shard auto: {where} variable {name} must be an integer, "
                               f"got {environ[name]!r}") from None
    return values


def _checked(index: int, count: int, source: str = "--shard") -> Shard:
    if count < 1 or not 0 <= index < count:
        where = "I/N " if source == "--shard" else f"auto ({source}) "
        raise CommandError(f"--shard {where}needs 0 <= I < N, got {index}/{count}")
    return Shard(index, count, source)


def _from_slurm(environ) -> Shard:
    task, first, count = _integers(environ, SLURM_VARIABLES, "SLURM")
    step = _integers(environ, (SLURM_STEP,), "SLURM")[0] if environ.get(SLURM_STEP) else 1
    last = _integers(environ, (SLURM_MAX,), "SLURM")[0] if environ.get(SLURM_MAX) else first + step * (count - 1)
    if step < 1 or last != first + step * (count - 1) or (task - first) % step:
        raise CommandError(
            f"--shard auto: this SLURM array ({_slurm_summary(environ)}) is not a range A-B or A-B:S, so its "
            f"task ids do not map to shards 0..{count - 1}; submit --array=0-{count - 1} or give --shard I/N")
    return _checked((task - first) // step, count, "SLURM array")


def _slurm_summary(environ) -> str:
    return ", ".join(f"{name}={environ[name]}" for name in (*SLURM_VARIABLES, SLURM_STEP, SLURM_MAX)
                     if name in environ)


def _from_kubernetes(environ) -> Shard:
    if "JOB_COMPLETIONS" not in environ:
        raise CommandError("--shard auto: JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job) but JOB_COMPLETIONS "
                           "is not; set it to the Job's .spec.completions in the pod's env, as "
                           "benchmarks/cluster/indexed-job.yaml does")
    index, count = _integers(environ, KUBERNETES_VARIABLES, "Kubernetes")
    return _checked(index, count, "Kubernetes Indexed Job")


def parse_shard(text: str, environ=None) -> Shard:
    """``--shard``'s value: ``I/N``, or ``auto`` read from ``environ`` (default ``os.environ``).

    SLURM's variables are looked at first; with neither scheduler's variables present the error
    names every variable looked for.
    """
    if text == "auto":
        environ = os.environ if environ is None else environ
        if "SLURM_ARRAY_TASK_ID" in environ:
            missing = [name for name in SLURM_VARIABLES if name not in environ]
            if missing:
                raise CommandError(f"--shard auto: SLURM_ARRAY_TASK_ID is set but {', '.join(missing)} is not")
            return _from_slurm(environ)
        if "JOB_COMPLETION_INDEX" in environ:
            return _from_kubernetes(environ)
        raise CommandError(
            "--shard auto found no scheduler: it reads a SLURM job array (" + ", ".join(SLURM_VARIABLES)
            + f", optionally {SLURM_STEP}) or a Kubernetes Indexed Job (" + ", ".join(KUBERNETES_VARIABLES)
            + "); none is set. Give --shard I/N instead")
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise CommandError(f"--shard must look like I/N (e.g. 0/4) or be auto, got {text!r}") from None
    return _checked(index, count)
