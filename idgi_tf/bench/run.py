"""One benchmark run: model -> correctly classified images -> attributions -> metric rows.

Each (image, method, rule) becomes one row of ``results.jsonl`` as soon as
its metrics are done. Per image and map the row holds what the paper's
tables aggregate: the Insertion AUCs (Table 1), the 25 SIC/AIC points with
entropy and with MS-SSIM information (Tables 2-3; ``None`` when the image is
skipped by the protocol) and the localization scores (Table 4).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

import numpy as np
import tensorflow as tf

from .. import data, metrics, models, spectral
from .._cli import CommandError
from .._cli import load_model as cli_load_model
from .._model import JIT_AUTO, resolve_jit
from .._progress import progress_bar
from ..attribution.methods import METHODS, attribute, spread_over_channels
from .results import append_rows, open_results, row_key, shard_file_name
from .shards import Shard

ALL_METHODS = ("ig", "gig", "blurig", "vg")
ALL_METRICS = ("insertion", "sic_aic", "msssim", "localization")
FIGURE_IMAGES = 2  # images whose maps a run keeps (OUT/maps/) for the report's Figure-3 grids


BenchError = CommandError


@dataclasses.dataclass
class Config:
    model: str
    data: str = "sample"
    imagenet_dir: str | None = None
    boxes_dir: str | None = None
    limit: int | None = None
    methods: tuple = ALL_METHODS
    steps: int = 200
    metrics: tuple = ALL_METRICS
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

    @property
    def jit_compile(self) -> bool:
        """``--jit`` resolved for this machine (see :func:`idgi_tf._model.resolve_jit`)."""
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
        raise BenchError(f"--devices {devices} needs {devices} devices, but TensorFlow sees {len(found)} {kind}")
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
        raise BenchError(str(error)) from error
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


def _points(result: metrics.MetricResult, i: int):
    """One image's SIC/AIC points, or None when the protocol skipped it."""
    if np.isnan(result.curves["points_sic"][i]).all():
        return None
    return {key: result.curves[f"points_{key}"][i].tolist() for key in ("information", "sic", "aic")}


def score_maps(model, images, labels, masks, maps, names, batch_size, jit_compile) -> list[dict]:
    """The metric values of one map per image, as row fields."""
    fields = [{} for _ in images]
    run = {"batch_size": batch_size, "jit_compile": jit_compile}
    if "insertion" in names:
        result = metrics.insertion(model, images, labels, maps, **run)
        for i, row in enumerate(fields):
            row["insertion_probability"] = float(result.scores["probability"][i])
            row["insertion_ratio"] = float(result.scores["ratio"][i])
            row["insertion_curve"] = [round(float(v), 6) for v in result.curves["probability"][i]]
    for name, information in (("sic_aic", "entropy"), ("msssim", "msssim")):
        if name in names:
            result = metrics.sic_aic(model, images, labels, maps, information=information, **run)
            for i, row in enumerate(fields):
                row[f"sic_aic_{information}"] = _points(result, i)
    if "localization" in names:
        result = metrics.localization(maps, masks)
        for i, row in enumerate(fields):
            row.update({key: float(result.scores[key][i]) for key in ("roc_auc", "f1", "mae")})
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
    model = load_model(config)
    name = models.canonical_name(config.model)
    size = int(model.input_shape[1])
    done_rows, handle = open_results(config.results_path)
    write_metadata(config, name, replicas)
    done = {row_key(row) for row in done_rows}
    total, items = candidates(config, size)
    bar = progress_bar(total, unit_name="image", stateful_metrics=["images/s"]) if progress else None
    counts = {"seen": 0, "explained": 0, "misclassified": 0, "rows_written": 0, "rows_skipped_done": 0}
    start = time.perf_counter()
    rules_of = {m: rules_for(m, config.lowpass) for m in config.methods}
    with handle:
        for chunk in _chunks(items, config.chunk * replicas):
            counts["seen"] += len(chunk)
            wanted = [(name, item[0], m, r) for item in chunk for m in config.methods for r in rules_of[m]]
            if all(key in done for key in wanted):
                counts["rows_skipped_done"] += len(wanted)
            else:
                counts["rows_written"] += _explain_chunk(model, name, chunk, config, rules_of, done, handle, counts)
            if bar is not None:
                rate = counts["seen"] / max(time.perf_counter() - start, 1e-9)
                bar.add(len(chunk), values=[("images/s", rate)])
    return counts


LOWPASS_SUFFIX = "+lowpass"
JIT_CHOICES = {"auto": JIT_AUTO, "on": True, "off": False}


def write_metadata(config: Config, name: str, replicas: int) -> None:
    """``OUT/run.json`` (``run-shardIofN.json`` for a shard): how this run was made.

    The settings that change its numbers (``results.SETTINGS``, compared by ``report`` across
    shards), the shard and where it came from, and what changes only its speed.
    """
    os.makedirs(config.out, exist_ok=True)
    metadata = {
        "model": name, "weights": config.weights, "data": config.data, "limit": config.limit,
        "input_size": config.input_size, "steps": config.steps, "methods": list(config.methods),
        "metrics": list(config.metrics), "lowpass": config.lowpass, "seed": config.seed,
        "shard": str(config.shard), "shard_source": config.shard.source,
        "batch_size": config.batch_size, "jit": config.jit, "jit_compile": config.jit_compile, "replicas": replicas,
        "gpus": len(tf.config.list_physical_devices("GPU")), "tensorflow": tf.__version__,
    }
    with open(config.metadata_path, "w") as handle:
        json.dump(metadata, handle, indent=1)


def rules_for(method: str, lowpass) -> tuple:
    """The row rules of ``method``: its step rules, and each of them low-passed when ``lowpass`` is set."""
    rules = tuple(r for r in ("plain", "idgi") if r in METHODS[method].rules)
    return rules + (tuple(r + LOWPASS_SUFFIX for r in rules) if lowpass is not None else ())


def _explain_chunk(model, name, chunk, config, rules_of, done, handle, counts) -> int:
    ids = [item[0] for item in chunk]
    images, labels, masks = (np.stack([item[k] for item in chunk]) for k in (1, 2, 3))
    labels = labels.astype(np.int32)
    if not config.smoke:
        right = np.argmax(model.predict(images, verbose=0, batch_size=config.batch_size), axis=1) == labels
        counts["misclassified"] += int((~right).sum())
        ids = [i for i, keep in zip(ids, right) if keep]
        images, labels, masks = images[right], labels[right], masks[right]
        if not ids:
            return 0
    counts["explained"] += len(ids)
    written = 0
    kept = {}
    for method in config.methods:
        todo = [r for r in rules_of[method] if any((name, i, method, r) not in done for i in ids)]
        if not todo:
            continue
        base = rules_for(method, None)
        maps = attribute(model, images, labels, method, rule=base, steps=config.steps, batch_size=config.batch_size,
                         jit_compile=config.jit_compile)
        if config.lowpass is not None:
            maps.update({f"{rule}{LOWPASS_SUFFIX}": spread_over_channels(spectral.lowpass(maps[rule], config.lowpass),
                                                                         images.shape[-1]) for rule in base})
        kept.update({(method, rule): maps[rule] for rule in base})
        for rule in todo:
            fields = score_maps(model, images, labels, masks, maps[rule], config.metrics, config.batch_size,
                                config.jit_compile)
            rows = [
                {"model": name, "image": image_id, "label": int(label), "method": method, "rule": rule,
                 "steps": config.steps, "smoke": config.smoke, "jit": config.jit_compile, "shard": str(config.shard),
                 **field}
                for image_id, label, field in zip(ids, labels, fields)
                if (name, image_id, method, rule) not in done
            ]
            append_rows(handle, rows)
            done.update(row_key(row) for row in rows)
            written += len(rows)
    _keep_maps(config.out, ids, images, labels, kept, len(config.methods))
    return written


def _unit_max(values: np.ndarray) -> np.ndarray:
    top = values.max()
    return values / top if top > 0 else values


def _keep_maps(out: str, ids, images, labels, maps: dict, num_methods: int) -> None:
    """Save the maps of the run's first ``FIGURE_IMAGES`` images to ``OUT/maps/ID.npz``.

    Each map is stored 2-D (sum of |.| over channels) and divided by its
    maximum, as float16: heatmaps do not depend on the scale.
    """
    if len({method for method, _ in maps}) < num_methods:
        return  # some methods were done before a restart: no complete picture from this chunk
    folder = os.path.join(out, "maps")
    os.makedirs(folder, exist_ok=True)
    for i, image_id in enumerate(ids):
        if len(os.listdir(folder)) >= FIGURE_IMAGES:
            return
        arrays = {f"{method}__{rule}": _unit_max(np.abs(value[i]).sum(axis=-1)).astype(np.float16)
                  for (method, rule), value in maps.items()}
        np.savez_compressed(os.path.join(folder, f"{image_id}.npz"), image=np.uint8(np.clip(images[i], 0, 255)),
                            label=labels[i], **arrays)
