"""A Keras callback that explains fixed images while a model trains, and scores the explanations.

At the chosen epochs :class:`AttributionCallback` attributes the softmax
probability of each image's target (docs/conventions.md#the-explained-scalar) with every
(method, rule), scores the maps with the chosen metrics, and writes to
TensorBoard (``tf.summary``) or, without ``log_dir``, to ``callback.history``:

* ``attributions/<method>_<rule>``: a :func:`idgi_tf.viz.plot_attributions`
  figure rendered to an image, one row per image (input, heatmap, overlay);
* ``<metric>/<method>_<rule>``: the mean of the metric's first headline score in
  :data:`idgi_tf.metrics.METRICS` (``insertion`` and ``deletion``: the probability AUC;
  ``localization``: ROC-AUC against ``masks``; ``mufidelity``; ...);
* ``completeness_gap/<method>_<rule>``: mean ``|sum A - (f(x) - f(start))|``
  for path methods (0 for IDGI, up to rounding; shrinks with steps for IG);
* ``values/<method>_<rule>``: a histogram of the attribution values.

It only reads the model: attributions run in inference mode in their own
compiled functions, with no random numbers drawn from Keras' or TF's global
generators, so the weights after ``fit`` are the same with or without it.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from . import _checks, metrics, viz
from .attribution.methods import METHODS, PATH_INTEGRALS, attribute
from .attribution.modified_gradients import MODIFIED_GRADIENT_METHODS, modified_model
from .attribution.rules import RULES
from .runtime import JIT_AUTO, call_model, num_classes, resolve_jit

OUTPUTS = ("probability", "logit")


class _Probabilities:
    """``softmax(model(x))`` for a model that returns logits (one object, so compiled functions are cached)."""

    def __init__(self, model):
        self.model = model

    def __call__(self, images):
        return tf.nn.softmax(call_model(self.model, images), axis=-1)


def _writable_folder(path, name: str) -> str:
    """Create the folder ``path`` now and check it takes files, so a bad one fails before training, not after."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a folder path or None, got {path!r}")
    path = os.fspath(path)
    if not path:
        raise ValueError(f"{name} must be a folder path or None, got '' (use '.' for the current folder)")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise ValueError(f"{name} must be a folder the callback can create or write into, got {path!r} "
                         f"({error.strerror or error})") from error
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"{name} must be a folder the callback can write into, got {path!r} (not writable)")
    return path


def _checked_metrics(names, images: np.ndarray, masks) -> tuple:
    """Rows of METRICS whose needs (masks, a minimum size, 8-bit images) these images and masks meet."""
    names = (names,) if isinstance(names, str) else tuple(names)
    for name in names:
        _checks.choice(name, "metrics", tuple(metrics.METRICS))
        metrics.METRICS[name].check(name, side=min(images.shape[1:3]), has_masks=masks is not None, images=images)
    return names


class AttributionCallback(keras.callbacks.Callback):
    """Log attributions of fixed images and their quality during ``model.fit``.

    Args:
      images: (N, H, W, C) inputs of the model (its own input space); the first
        ``max_images`` are used.
      targets: class per image, or one class for all images (as :func:`idgi_tf.attribute`), or None for the
        model's prediction at each logged epoch.
      methods: attribution methods (see :data:`idgi_tf.METHODS`), default IG.
      rules: step rules for path methods; ``"idgi"`` is skipped for methods without it.
      steps: Riemann steps of path methods (default 32: cheap enough for every epoch).
      metrics: names from :data:`idgi_tf.metrics.METRICS` (``insertion``, ``deletion``, ``localization``
        (needs ``masks``), ``mufidelity``, ...); what each row needs (masks, a minimum size, 8-bit images)
        is checked here.
      masks: (N, H, W) region masks for ``localization``, 0/1 or bool.
      every_n_epochs: log after epochs n, 2n, ... (1-based).
      at_start: also log before training (as epoch 0).
      log_dir: TensorBoard folder, created (and checked writable) here; None keeps everything in ``history``.
      max_images: at most this many images are explained (bounds the cost).
      output: what the model returns, ``"probability"`` (ends in a softmax) or
        ``"logit"`` (the callback explains ``softmax(logits)``). elrp and
        deeplift explain the target's logit either way (see :mod:`idgi_tf.attribution.modified_gradients`);
        their layers are checked when training starts (``set_model``).
      batch_size: model inputs per pass.
      jit_compile: XLA for the attributions and the metrics: ``True``, ``False`` or
        ``"auto"`` (XLA on a GPU only; see :func:`idgi_tf.runtime.resolve_jit`).

    ``history`` holds one dict per logged epoch: ``epoch``, ``scalars``
    (tag -> value), ``histograms`` (tag -> values) and ``images`` (tag -> RGB uint8).

    Example:
      >>> callback = AttributionCallback(x_val[:8], methods=("ig",), log_dir="logs/attr")
      >>> model.fit(x, y, epochs=5, callbacks=[callback])   # then: tensorboard --logdir logs
    """

    def __init__(self, images, targets=None, *, methods=("ig",), rules=("plain", "idgi"), steps: int = 32,
                 metrics=("insertion", "deletion"), masks=None, every_n_epochs: int = 1, at_start: bool = False,
                 log_dir: str | None = None, max_images: int = 8, output: str = "probability",
                 batch_size: int | None = None, jit_compile=JIT_AUTO):
        super().__init__()
        self.max_images = _checks.positive_int(max_images, "max_images")
        all_images = _checks.images(images)
        self.images = all_images[: self.max_images]
        self.targets = None if targets is None else _checks.targets(targets, len(all_images), None)[: self.max_images]
        methods = (methods,) if isinstance(methods, str) else tuple(methods)
        for method in methods:
            _checks.choice(method, "methods", tuple(m for m, row in METHODS.items() if row.wraps is None))
        self.methods = methods
        rules = (rules,) if isinstance(rules, str) else tuple(rules)
        for rule in rules:
            _checks.choice(rule, "rules", RULES)
        self.rules = rules
        self.steps = _checks.positive_int(steps, "steps")
        self.metrics = _checked_metrics(metrics, self.images, masks)
        self.masks = None if masks is None else _checks.binary_masks(
            np.asarray(masks)[: self.max_images], self.images.shape[:3], "masks")
        self.every_n_epochs = _checks.positive_int(every_n_epochs, "every_n_epochs")
        self.at_start = bool(at_start)
        self.output = _checks.choice(output, "output", OUTPUTS)
        self.batch_size = batch_size
        self.jit_compile = resolve_jit(jit_compile)
        self.log_dir = None if log_dir is None else _writable_folder(log_dir, "log_dir")
        self.history: list[dict] = []
        self._explained = None
        self._writer = None

    # ------------------------------------------------------------------ Keras hooks

    def set_model(self, model):
        super().set_model(model)
        explained = model if self.output == "probability" else _Probabilities(model)
        classes = num_classes(model, self.images)  # checks the images fit the model
        if self.targets is not None:
            _checks.targets(self.targets, len(self.images), classes)
        for method in self.methods:
            if method in MODIFIED_GRADIENT_METHODS:  # they need a Keras graph of known layers: check now
                modified_model(model, method)
        self._explained = explained

    def on_train_begin(self, logs=None):
        if self.log_dir is not None and self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        if self.at_start:
            self.log_epoch(0)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs == 0:
            self.log_epoch(epoch + 1)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.flush()

    # ------------------------------------------------------------------ the work

    def _current_targets(self) -> np.ndarray:
        if self.targets is not None:
            return self.targets.astype(np.int32)
        scores = call_model(self._explained, tf.constant(self.images)).numpy()
        return np.argmax(scores, axis=1).astype(np.int32)

    def log_epoch(self, epoch: int) -> dict:
        """Explain, score and log now, as ``epoch``; returns the history record."""
        model, images = self._explained, self.images
        targets = self._current_targets()
        record = {"epoch": epoch, "scalars": {}, "histograms": {}, "images": {}}
        run = {"batch_size": self.batch_size, "jit_compile": self.jit_compile}
        for method in self.methods:
            rules = tuple(r for r in self.rules if r in METHODS[method].rules) or ("plain",)
            # elrp and deeplift explain the logit whatever the output, so they run on the model itself.
            explained = self.model if method in MODIFIED_GRADIENT_METHODS else model
            integral = method in PATH_INTEGRALS
            maps = attribute(explained, images, targets, method, rule=rules, steps=self.steps, return_gap=integral,
                             **run)
            maps, gaps = maps if integral else (maps, None)
            for rule, attribution in maps.items():
                tag = f"{method}_{rule}"
                record["scalars"].update(self._scores(tag, model, targets, attribution))
                if gaps is not None:
                    record["scalars"][f"completeness_gap/{tag}"] = float(np.abs(gaps[rule].absolute).mean())
                record["histograms"][f"values/{tag}"] = attribution.ravel()
                record["images"][f"attributions/{tag}"] = self._grid(attribution, epoch, tag)
        self.history.append(record)
        if self._writer is not None:
            self._write(record)
        return record

    def _scores(self, tag: str, model, targets, attribution) -> dict:
        """``<metric>/<tag>``: the mean of each metric's first headline score (its row in METRICS)."""
        scores = {}
        for name in self.metrics:
            metric = metrics.METRICS[name]
            result = metric.compute(model, self.images, targets, attribution, masks=self.masks,
                                    batch_size=self.batch_size, jit_compile=self.jit_compile)
            scores[f"{name}/{tag}"] = result.means()[metric.scores[0].key]
        return scores

    def _grid(self, attribution, epoch: int, tag: str) -> np.ndarray:
        photos = self.images
        if photos.shape[-1] == 1:
            photos = np.repeat(photos, 3, axis=-1)
        low, high = float(photos.min()), float(photos.max())
        photos = (photos - low) / (high - low) * 255.0 if high > low else np.zeros_like(photos)
        figure = viz.plot_attributions(photos, {"map": attribution, "overlay": attribution}, overlay=["overlay"],
                                       image_title="input", title=f"{tag}, epoch {epoch}", cell_inches=1.6)
        return viz.to_array(figure)

    def _write(self, record: dict) -> None:
        with self._writer.as_default(step=record["epoch"]):
            for tag, value in record["scalars"].items():
                tf.summary.scalar(tag, value)
            for tag, values in record["histograms"].items():
                tf.summary.histogram(tag, values)
            for tag, picture in record["images"].items():
                tf.summary.image(tag, picture[None])
        self._writer.flush()
