"""One benchmark run: model -> correctly classified images -> attributions -> metric rows.

Each (image, method, rule) becomes one row of ``results.jsonl`` as soon as
its metrics are done. Per image and map the row holds what the paper's
tables aggregate: the Insertion AUCs (Table 1), the 25 SIC/AIC points with
entropy and with MS-SSIM information (Tables 2-3; ``None`` when the image is
skipped by the protocol) and the localization scores (Table 4).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import sys
import time

import numpy as np
import tensorflow as tf

from .. import data, metrics, models, spectral
from .._atomic import write_atomically
from .._cli import CommandError
from .._cli import load_model as cli_load_model
from .._progress import LineProgress
from ..attribution.methods import METHODS, attribute
from ..metrics.table import PAPER_METRICS
from ..runtime import JIT_AUTO, resolve_jit
from .results import (
    SETTINGS,
    append_rows,
    lock_shard,
    open_results,
    read_metadata,
    readable_npz,
    row_key,
    row_settings,
    scan_rows,
    shard_file_name,
    show,
)
from .shards import Shard

PAPER_METHODS = ("ig", "gig", "blurig", "vg")  # the paper's methods, the bench's default (any of METHODS runs)
FIGURE_IMAGES = 2  # images whose maps a run keeps (OUT/maps/) for the report's Figure-3 grids


@dataclasses.dataclass
class Config:
    model: str
    data: str = "sample"
    imagenet_dir: str | None = None
    boxes_dir: str | None = None
    limit: int | None = None
    methods: tuple = PAPER_METHODS
    steps: int = 200
    metrics: tuple = PAPER_METRICS
    weights: str = "imagenet"
    input_size: int | None = None
    batch_size: int = 32
    chunk: int = 8
    out: str | None = None
    shard: Shard = Shard()
    seed: int = 0
    devices: int | None = 1
    lowpass: float | None = None  # FORGrad cutoff: adds "<rule>+lowpass" rows beside the plain ones
    jit: str = "auto"  # --jit: "auto" (XLA on a GPU only), "on" or "off"
    overwrite: bool = False  # --overwrite: delete this shard's rows, run json and maps first

    @property
    def settings(self) -> dict:
        """The settings that change this run's numbers (:data:`results.SETTINGS`): kept in every row and run.json."""
        settings = {"model": models.canonical_name(self.model), "weights": self.weights, "data": self.data,
                    "limit": self.limit, "input_size": self.input_size, "steps": self.steps,
                    "methods": [m for m in METHODS if m in self.methods],
                    "metrics": [m for m in metrics.METRICS if m in self.metrics], "lowpass": self.lowpass,
                    "seed": self.seed}
        assert tuple(settings) == SETTINGS
        return settings

    @property
    def jit_compile(self) -> bool:
        """``--jit`` resolved for this machine (see :func:`idgi_tf.runtime.resolve_jit`)."""
        return resolve_jit(JIT_CHOICES[self.jit])

    @property
    def smoke(self) -> bool:
        return self.weights == "none"

    @property
    def results_path(self) -> str:
        return os.path.join(self.out, self._shard_name("results", "jsonl"))

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.out, self._shard_name("run", "json"))

    @property
    def lock_path(self) -> str:
        return os.path.join(self.out, self._shard_name("results", "lock"))

    def _shard_name(self, stem: str, ext: str) -> str:
        return shard_file_name(stem, ext, self.shard.index, self.shard.count)


def distribution(devices: int | None):
    """The ``tf.distribute`` strategy for ``--devices`` (None = all).

    One device: TF's default strategy (a no-op scope). Several: a
    ``MirroredStrategy`` over the first ``devices`` GPUs TF sees, or over its
    logical CPU devices on a machine without GPUs (how the tests run it).
    """
    found = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    wanted = len(found) if devices is None else devices
    if wanted > len(found):
        kind = found[0].device_type if found else "GPU"
        raise CommandError(f"--devices {devices} needs {devices} devices, but TensorFlow sees {len(found)} {kind}")
    if wanted == 1:
        return tf.distribute.get_strategy()
    return tf.distribute.MirroredStrategy([device.name for device in found[:wanted]])


def load_model(config: Config):
    return cli_load_model(config.model, config.weights, config.input_size, config.seed)


def candidates(config: Config, size: int):
    """(count or None, iterator of (id, image, label, box mask)) for this shard, in a fixed order."""
    index, count = config.shard.index, config.shard.count
    if config.data == "sample":
        samples = data.sample_images(size)
        items = list(zip(samples.names, samples.images, samples.labels, samples.masks))[: config.limit]
        mine = [item for i, item in enumerate(items) if i % count == index]
        return len(mine), iter(mine)
    try:
        dataset = data.imagenet_validation(config.imagenet_dir, size, boxes_dir=config.boxes_dir,
                                           limit=config.limit)
    except FileNotFoundError as error:
        raise CommandError(str(error)) from error
    total = None if config.limit is None else len(range(index, config.limit, count))

    def examples():
        for i, (image, label, mask, name) in enumerate(dataset):
            if i % count == index:
                yield os.path.basename(name.numpy().decode()), image.numpy(), int(label), mask.numpy()

    return total, examples()


def _chunks(items, size: int):
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def score_maps(model, images, labels, masks, maps, names, batch_size, jit_compile) -> list[dict]:
    """The row fields of the metrics ``names`` (rows of :data:`idgi_tf.metrics.METRICS`), one dict per image."""
    fields = [{} for _ in images]
    for name in names:
        metric = metrics.METRICS[name]
        result = metric.compute(model, images, labels, maps, masks=masks, batch_size=batch_size,
                                jit_compile=jit_compile)
        for i, row in enumerate(fields):
            row.update(metric.row_fields(result, i))
    return fields


def run(config: Config, progress: bool = True) -> dict:
    """Run the benchmark (resuming what ``config.results_path`` already holds). Returns counts.

    With ``config.devices`` > 1 the model is built under a ``MirroredStrategy``
    and every chunk of ``chunk x devices`` images is split over the devices.
    """
    strategy = distribution(config.devices)
    with strategy.scope():
        return _run(config, progress, strategy.num_replicas_in_sync)


def _run(config: Config, progress: bool, replicas: int) -> dict:
    name = models.canonical_name(config.model)
    with contextlib.closing(_lock_out(config)):  # before the model loads: a bad --out costs nothing
        if config.overwrite:
            _start_afresh(config)
        earlier = read_metadata(config.metadata_path)
        done_rows, handle = open_results(config.results_path)
        with handle:
            _check_resume(config, done_rows)
            write_metadata(config, name, replicas, earlier if done_rows else {})
            torn_maps = _torn_maps(config.out)
            model = load_model(config)
            return _explain_all(model, name, config, replicas, done_rows, handle, torn_maps, progress)


def _explain_all(model, name, config, replicas, done_rows, handle, torn_maps, progress) -> dict:
    """Go through this shard's images chunk by chunk, explaining those that miss rows (or a torn kept map)."""
    done = {row_key(row) for row in done_rows}
    total, items = candidates(config, int(model.input_shape[1]))
    report = _Progress(progress, total)
    counts = {"seen": 0, "explained": 0, "misclassified": 0, "rows_written": 0, "rows_skipped_done": 0}
    rules_of = {m: rules_for(m, config.lowpass) for m in config.methods}
    keys = [(m, r) for m in config.methods for r in rules_of[m]]
    for chunk in _chunks(items, config.chunk * replicas):
        report.first = counts["seen"] + 1
        counts["seen"] += len(chunk)
        pending = [item for item in chunk if item[0] in torn_maps or any((name, item[0], *k) not in done for k in keys)]
        counts["explained"] += len(chunk) - len(pending)  # every row there: explained before
        counts["rows_skipped_done"] += (len(chunk) - len(pending)) * len(keys)
        if pending:
            counts["rows_written"] += _explain_chunk(model, name, pending, config, rules_of, done, handle, counts,
                                                     torn_maps, report)
        report.images(len(chunk))
    return counts


class _Progress:
    """Plain progress lines: one per (chunk, method) and per scored rule, with the time since the start, and the
    image count with its rate and ETA after each chunk (throttled to one per 10 s while skipping done images)."""

    def __init__(self, enabled: bool, total: int | None):
        self.enabled, self.total, self.first, self.start = enabled, total, 1, time.perf_counter()
        self.bar = LineProgress(total, "image") if enabled else None

    def step(self, count: int, what: str) -> None:
        if self.enabled:
            last = self.first + count - 1
            images = f"image {last}" if count == 1 else f"images {self.first}-{last}"
            print(f"{images}/{self.total if self.total is not None else '?'} · {what} · "
                  f"{time.perf_counter() - self.start:.0f} s", flush=True)

    def images(self, count: int) -> None:
        if self.bar is not None:
            self.bar.add(count)


def _lock_out(config: Config):
    """Create ``--out`` and hold this shard's lock; an unwritable folder is a one-line error."""
    try:
        os.makedirs(config.out, exist_ok=True)
        return lock_shard(config.lock_path)
    except OSError as error:
        raise CommandError(f"--out {config.out!r} is not a folder this run can write to "
                         f"({error.strerror or error}); give a writable --out") from None


def _start_afresh(config: Config) -> None:
    """``--overwrite``: delete this shard's results file and run json, and the kept maps of its rows' images.

    Other shards' files, tables and figures stay (a run rewrites its tables when it ends).
    """
    images = {row["image"] for row in scan_rows(config.results_path).rows}
    maps = [os.path.join(config.out, "maps", f"{image}.npz") for image in sorted(images)]
    removed = [path for path in (config.results_path, config.metadata_path, *maps) if os.path.exists(path)]
    for path in removed:
        os.remove(path)
    print(f"--overwrite: removed {len(removed)} files of shard {config.shard} ({len(images)} images' rows)",
          flush=True)


def _check_resume(config: Config, rows: list[dict]) -> None:
    """Refuse to add rows beside rows made with other settings (every row is checked, not only run.json)."""
    wanted = {**config.settings, "shard": str(config.shard)}
    differ, count = {}, 0
    for row in rows:
        found = {key: value for key, value in row_settings(row, config.results_path).items()
                 if key in wanted and show(value) != show(wanted[key])}
        count += bool(found)
        for key, value in found.items():
            differ.setdefault(key, {})[show(value)] = None
    if differ:
        parts = ", ".join(f"--{key.replace('_', '-')} {' / '.join(values)} (now {show(wanted[key])})"
                          for key, values in differ.items())
        raise CommandError(f"{config.results_path} holds {count} rows made with other settings: {parts}; rerun with "
                         f"those settings, give another --out, or add --overwrite to delete this shard's rows")


def _torn_maps(out: str) -> set:
    """Ids of the kept maps (``OUT/maps/ID.npz``) that do not load, torn by a kill: made again when met."""
    folder = os.path.join(out, "maps")
    names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    torn = {name[: -len(".npz")] for name in names if name.endswith(".npz")
            and not readable_npz(os.path.join(folder, name))}
    for image_id in sorted(torn):
        print(f"warning: {os.path.join(folder, image_id + '.npz')} does not load (torn); it is made again when "
              f"this run reaches that image", file=sys.stderr)
    return torn


LOWPASS_SUFFIX = "+lowpass"
JIT_CHOICES = {"auto": JIT_AUTO, "on": True, "off": False}


def write_metadata(config: Config, name: str, replicas: int, earlier: dict) -> None:
    """``OUT/run.json`` (``run-shardIofN.json`` for a shard): how this run was made, written atomically.

    The settings that change its numbers (``results.SETTINGS``, also in every row: compared on resume
    and by ``report``), the shard and where it came from, what changes only its speed, and the library
    versions and machine (recorded, not compared: ``earlier`` is the run.json of the rows already there;
    if they were made with other versions, those are kept under ``earlier_versions`` and warned about).
    """
    versions = library_versions()
    history = list(earlier.get("earlier_versions", []))
    if earlier.get("versions") not in (None, versions):
        changed = ", ".join(f"{key} {earlier['versions'].get(key)} (now {value})" for key, value in versions.items()
                            if earlier["versions"].get(key) != value)
        print(f"warning: the rows already in {config.results_path} were made with {changed}; versions are recorded "
              f"in {config.metadata_path}, not compared", file=sys.stderr)
        history.append(earlier["versions"])
    metadata = {
        **config.settings, "shard": str(config.shard), "shard_source": config.shard.source,
        "batch_size": config.batch_size, "jit": config.jit, "jit_compile": config.jit_compile, "replicas": replicas,
        "gpus": len(tf.config.list_physical_devices("GPU")), "tensorflow": tf.__version__, "versions": versions,
        **({"earlier_versions": history} if history else {}),
    }
    write_atomically(config.metadata_path, lambda handle: json.dump(metadata, handle, indent=1))


def library_versions() -> dict:
    """What may move the numbers without being a setting: library versions (libwebp: SIC/AIC's entropy), the CPU."""
    import keras
    import PIL
    import skimage
    from PIL import features

    from .. import __version__

    return {"idgi_tf": __version__, "python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__, "pillow": PIL.__version__,
            "libwebp": features.version("webp"), "scikit-image": skimage.__version__,
            "platform": platform.platform(), "cpu": _cpu_name(), "cpu_count": os.cpu_count()}


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def rules_for(method: str, lowpass) -> tuple:
    """The row rules of ``method``: its step rules, and each of them low-passed when ``lowpass`` is set."""
    rules = tuple(r for r in ("plain", "idgi") if r in METHODS[method].rules)
    return rules + (tuple(r + LOWPASS_SUFFIX for r in rules) if lowpass is not None else ())


def _explain_chunk(model, name, chunk, config, rules_of, done, handle, counts, torn_maps, report) -> int:
    """Explain and score the images of ``chunk`` that still miss rows (or a torn kept map); returns rows written."""
    ids = [item[0] for item in chunk]
    images, labels, masks = (np.stack([item[k] for item in chunk]) for k in (1, 2, 3))
    labels = labels.astype(np.int32)
    if not config.smoke:
        right = data.correct_predictions(model, images, labels, batch_size=config.batch_size)
        counts["misclassified"] += int((~right).sum())
        ids = [i for i, keep in zip(ids, right) if keep]
        images, labels, masks = images[right], labels[right], masks[right]
        if not ids:
            return 0
    counts["explained"] += len(ids)
    counts["rows_skipped_done"] += sum((name, i, m, r) in done for i in ids for m in config.methods
                                       for r in rules_of[m])
    remake = bool(torn_maps.intersection(ids))
    written = 0
    kept = {}
    for method in config.methods:
        todo = [r for r in rules_of[method] if any((name, i, method, r) not in done for i in ids)]
        if not todo and not remake:
            continue
        base = rules_for(method, None)
        maps = attribute(model, images, labels, method, rule=base, steps=config.steps, batch_size=config.batch_size,
                         jit_compile=config.jit_compile)
        report.step(len(ids), f"{method} maps")
        if config.lowpass is not None:
            maps.update({f"{rule}{LOWPASS_SUFFIX}": spectral.spread_over_channels(
                spectral.lowpass(maps[rule], config.lowpass), images.shape[-1]) for rule in base})
        kept.update({(method, rule): maps[rule] for rule in base})
        for rule in todo:
            fields = score_maps(model, images, labels, masks, maps[rule], config.metrics, config.batch_size,
                                config.jit_compile)
            rows = [
                {"model": name, "image": image_id, "label": int(label), "method": method, "rule": rule,
                 "steps": config.steps, "smoke": config.smoke, "jit": config.jit_compile, "shard": str(config.shard),
                 "settings": config.settings, **field}
                for image_id, label, field in zip(ids, labels, fields)
                if (name, image_id, method, rule) not in done
            ]
            append_rows(handle, rows)
            done.update(row_key(row) for row in rows)
            written += len(rows)
            report.step(len(ids), f"{method} {rule} scored")
    _keep_maps(config.out, ids, images, labels, kept, len(config.methods), torn_maps)
    return written


def _unit_max(values: np.ndarray) -> np.ndarray:
    top = values.max()
    return values / top if top > 0 else values


def _keep_maps(out: str, ids, images, labels, maps: dict, num_methods: int, torn: set) -> None:
    """Save the maps of the run's first ``FIGURE_IMAGES`` images to ``OUT/maps/ID.npz``, and remake torn ones.

    Each map is stored 2-D (sum of |.| over channels) and divided by its
    maximum, as float16: heatmaps do not depend on the scale. Written atomically.
    """
    if len({method for method, _ in maps}) < num_methods:
        return  # some methods were done before a restart: no complete picture from this chunk
    folder = os.path.join(out, "maps")
    os.makedirs(folder, exist_ok=True)
    kept = {name[: -len(".npz")] for name in os.listdir(folder) if name.endswith(".npz")} - torn
    for i, image_id in enumerate(ids):
        if image_id not in torn and (image_id in kept or len(kept) >= FIGURE_IMAGES):
            continue
        arrays = {f"{method}__{rule}": _unit_max(np.abs(value[i]).sum(axis=-1)).astype(np.float16)
                  for (method, rule), value in maps.items()}
        write_atomically(os.path.join(folder, f"{image_id}.npz"), binary=True, write=lambda handle: np.savez_compressed(
            handle, image=np.uint8(np.clip(images[i], 0, 255)), label=labels[i], **arrays))
        kept.add(image_id)
        torn.discard(image_id)
