"""A Keras callback that explains fixed examples while a model trains, and scores the explanations.

At the chosen epochs :class:`AttributionCallback` attributes ``f`` (docs/conventions.md#the-explained-scalar)
of each example with every (method, rule) through :func:`idgi_tf.attribute`, for every model and input
that ``attribute`` takes (images, tabular rows, sequences, several inputs, token ids with ``layer=``;
class, single-output or callable targets), scores the maps with the chosen metrics, and writes to
TensorBoard (``tf.summary``) or, without ``log_dir``, to ``callback.history``:

* ``values/<method>_<rule>``: a histogram of the attribution values (of every map, for several inputs);
* ``completeness_gap/<method>_<rule>``: mean ``|sum A - (f(x) - f(start))|``
  for path methods, the sum running over all maps together for several inputs (0 for IDGI, up to
  rounding; shrinks with steps for IG);
* ``<metric>/<method>_<rule>``: the mean of the metric's first headline score in
  :data:`idgi_tf.metrics.METRICS` (``insertion`` and ``deletion``: the probability AUC;
  ``localization``: ROC-AUC against ``masks``; ``mufidelity``; ...), where the metric takes the inputs;
* ``attributions/<method>_<rule>``: for images (N, H, W, C) a :func:`idgi_tf.viz.plot_attributions`
  figure rendered to an image, one row per image (input, heatmap, overlay); for token ids (N, T)
  explained at an embedding a :func:`idgi_tf.viz.plot_tokens` figure of the per-token sums.

It only reads the model: attributions run in inference mode in their own
compiled functions, with no random numbers drawn from Keras' or TF's global
generators, so the weights after ``fit`` are the same with or without it.
"""

from __future__ import annotations

import inspect
import os

import keras
import numpy as np
import tensorflow as tf

from . import _checks, graph, metrics, viz
from .attribution import arguments
from .attribution.methods import METHODS, PATH_INTEGRALS, attribute
from .attribution.modified_gradients import MODIFIED_GRADIENT_METHODS, modified_model
from .attribution.rules import RULES
from .runtime import JIT_AUTO, batch_size_or_default, call_model, num_classes, resolve_jit, structure_text

OUTPUTS = ("probability", "logit")
DEFAULT_METRICS = ("insertion", "deletion")


class _Probabilities:
    """``softmax(model(x))`` for a model that returns logits (one object, so compiled functions are cached)."""

    def __init__(self, model):
        self.model = model

    def __call__(self, inputs):
        return tf.nn.softmax(call_model(self.model, inputs), axis=-1)


def _probabilities(model, layer):
    """``softmax(model(x))``; with ``layer=`` a Keras model around ``model`` (sharing its layers), so the layer
    is found in it."""
    if layer is None:
        return _Probabilities(model)
    if isinstance(model, keras.Sequential):
        return keras.Sequential([model, keras.layers.Softmax()])
    return keras.Model(model.input, keras.layers.Softmax()(model.output))


def _checked_inputs(inputs, layer, baseline):
    """``(inputs, baseline)`` checked as :func:`idgi_tf.attribute` checks them (one array (N, ...) of rank >= 2,
    or a list, tuple or dict of them with the same N; the baseline a scalar or like them), in the inputs'
    structure. Without ``layer=`` integers are values (8-bit pixels, counts), as float32; token ids need
    ``layer=``, the embedding (:func:`idgi_tf.attribute` refuses them otherwise)."""
    leaves, structure = arguments.input_leaves(inputs, "inputs")
    if layer is None:
        leaves = [leaf.astype(np.float32) for leaf in leaves]
    checked_baseline = None if baseline is None else structure.pack(
        arguments.baseline_leaves(baseline, leaves, structure))
    return structure.pack(leaves), checked_baseline


def _structure(value) -> str:
    return structure_text(value, "arrays") if _several(value) else f"shape {np.shape(value)}"


def _several(inputs) -> bool:
    return isinstance(inputs, (dict, list, tuple))


def _kind(inputs, layer) -> str:
    """``"images"`` (N, H, W, C) floats, ``"tokens"`` int (N, T) ids at a layer, ``"features"`` (one other
    array without a layer, scored by features), or ``"other"`` (several inputs, or other inputs at a layer)."""
    if _several(inputs):
        return "other"
    if layer is None:
        return "images" if inputs.ndim == 4 and inputs.dtype == np.float32 else "features"
    return "tokens" if inputs.ndim == 2 and inputs.dtype == np.int32 else "other"


def _metric_refusal(kind: str, targets) -> str | None:
    """Why no metric can score these maps, or None."""
    if callable(targets):
        return "the metrics score a class's (or the single) output, not a callable target's scalar"
    if kind == "other":
        return ("the metrics take one input array whose features the maps cover (several inputs, or a layer's "
                "activations other than token ids' embedding, are not scored)")
    return None


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


def _checked_metrics(names, inputs, refusal: str | None, masks) -> tuple:
    """Rows of METRICS that take these inputs: those whose needs (images, masks, a minimum size, 8-bit
    images; MuFidelity's cells) the inputs and masks meet; other inputs than images take the rows that are
    not ``image_only`` (docs/metrics.md#inputs-of-any-rank). ``None``: DEFAULT_METRICS where they apply,
    else none."""
    if names is None:
        return DEFAULT_METRICS if refusal is None else ()
    names = (names,) if isinstance(names, str) else tuple(names)
    for name in names:
        _checks.choice(name, "metrics", tuple(metrics.METRICS))
        if refusal is not None:
            raise ValueError(f"metric {name!r} cannot score these maps: {refusal}; pass metrics=()")
        metrics.METRICS[name].check(name, side=min(inputs.shape[1:3]), has_masks=masks is not None, images=inputs)
        if name == "mufidelity":
            _check_cells(metrics.METRICS[name], inputs)
    return names


def _check_cells(row, inputs: np.ndarray) -> None:
    """MuFidelity's ``grid x grid`` cells need an image side of ``grid``; other feature maps (one value per
    position of the inputs without their last axis, per column of tabular rows) ``grid**2`` features."""
    grid = row.options.get("grid", inspect.signature(row.function).parameters["grid"].default)
    if inputs.ndim == 4:
        if min(inputs.shape[1:3]) < grid:
            raise ValueError(f"metric 'mufidelity' cuts images into {grid} x {grid} cells, but the images are "
                             f"{inputs.shape[1]} x {inputs.shape[2]}; leave mufidelity out")
        return
    features = int(np.prod(inputs.shape[1:-1] if inputs.ndim > 2 else inputs.shape[1:]))
    if features < grid**2:
        raise ValueError(f"metric 'mufidelity' cuts the features into grid**2 = {grid**2} groups, but inputs of "
                         f"shape {inputs.shape} have {features} features per example; leave mufidelity out")


class AttributionCallback(keras.callbacks.Callback):
    """Log attributions of fixed examples and their quality during ``model.fit``.

    Args:
      inputs: the examples, in the model's input space, as :func:`idgi_tf.attribute` takes them: one
        array (N, ...) of any rank >= 2 (images (N, H, W, C), tabular (N, D), sequences (N, T, D), ...),
        a list, tuple or dict of arrays for a model with several inputs, or integer token ids with
        ``layer=``; the first ``max_examples`` are used.
      targets: what is explained, as in :func:`idgi_tf.attribute`: a class per example or one class for
        all; a callable ``outputs -> (N,)`` (any scalar of the outputs, explained as the model returns
        them); or None: the single output of a model with one output unit (a regression or a sigmoid),
        and for a classifier the model's prediction at each logged epoch.
      methods: attribution methods (see :data:`idgi_tf.METHODS`), default IG; the image methods (blurig,
        rise) need images.
      rules: step rules for path methods; ``"idgi"`` is skipped for methods without it.
      steps: Riemann steps of path methods (default 32: cheap enough for every epoch).
      metrics: names from :data:`idgi_tf.metrics.METRICS`. For images (N, H, W, C) every row
        (``insertion``, ``deletion``, ``localization`` (needs ``masks``), ``mufidelity``, ...); what each
        row needs (masks, a minimum size, 8-bit images) is checked here. For other inputs the rows that
        score features (the rows that are not ``image_only``: ``insertion``, ``deletion``, ``sensitivity_n``,
        ``mufidelity``); token ids at an embedding are scored by the per-token sums
        of the maps. None (the default): ``insertion`` and ``deletion`` where they apply, no metric for
        several inputs, a callable target, or a layer's activations other than an embedding's.
      masks: (N, H, W) region masks of images for ``localization``, 0/1 or bool.
      layer: attribute to this layer's output activations (:func:`idgi_tf.attribute`'s ``layer=``), e.g.
        ``"embedding"`` for token ids.
      baseline: the baseline of the methods that take one and the value of the features the metrics remove
        (as :func:`idgi_tf.attribute`'s; for token ids the pad id); default zeros (black, token id 0).
      tokens: for token ids, the vocabulary (a list: id -> string) that the tokens figure shows; default
        the ids as strings.
      every_n_epochs: log after epochs n, 2n, ... (1-based).
      at_start: also log before training (as epoch 0).
      log_dir: TensorBoard folder, created (and checked writable) here; None keeps everything in ``history``.
      max_examples: at most this many examples are explained (bounds the cost).
      output: what the model returns, ``"probability"`` (a classifier ending in a softmax, or any model
        whose outputs are explained as they are) or ``"logit"`` (the callback explains
        ``softmax(logits)`` of a class; refused with a callable target or a model with one output unit,
        whose outputs are explained as they are). elrp, deeplift, gradcam and gradcampp explain the target's
        logit either way (see :mod:`idgi_tf.attribution.modified_gradients`); their layers are checked when
        training starts (``set_model``).
      batch_size: model inputs per pass.
      jit_compile: XLA for the attributions and the metrics: ``True``, ``False`` or
        ``"auto"`` (XLA on a GPU only; see :func:`idgi_tf.runtime.resolve_jit`).

    Bad arguments fail here; what needs the model (the inputs against its input structure, the layer, the
    targets against its outputs) fails in ``set_model``, before the first epoch.
    ``history`` holds one dict per logged epoch: ``epoch``, ``scalars``
    (tag -> value), ``histograms`` (tag -> values) and ``images`` (tag -> RGB uint8).

    Example:
      >>> callback = AttributionCallback(x_val[:8], methods=("ig",), log_dir="logs/attr")
      >>> model.fit(x, y, epochs=5, callbacks=[callback])   # then: tensorboard --logdir logs
      >>> AttributionCallback(ids[:4], labels[:4], layer="embedding", baseline=0, tokens=vocabulary)
    """

    def __init__(self, inputs, targets=None, *, methods=("ig",), rules=("plain", "idgi"), steps: int = 32,
                 metrics=None, masks=None, layer=None, baseline=None, tokens=None, every_n_epochs: int = 1,
                 at_start: bool = False, log_dir: str | None = None, max_examples: int = 8,
                 output: str = "probability", batch_size: int | None = None, jit_compile=JIT_AUTO):
        super().__init__()
        self.max_examples = _checks.positive_int(max_examples, "max_examples")
        every, every_baseline = _checked_inputs(inputs, layer, baseline)
        count = len(tf.nest.flatten(every)[0])
        self.inputs = self._first(every)
        if targets is not None and not callable(targets):
            targets = _checks.targets(targets, count, None)[: self.max_examples]
        self.targets = targets
        if layer is not None and not isinstance(layer, (str, keras.layers.Layer)):
            raise TypeError(f"layer must be a layer of the model or its name, got {type(layer).__name__}")
        self.layer = layer
        self.baseline = None if baseline is None else self._first(every_baseline)
        self.kind = _kind(self.inputs, layer)
        self.methods = self._checked_methods(methods)
        rules = (rules,) if isinstance(rules, str) else tuple(rules)
        for rule in rules:
            _checks.choice(rule, "rules", RULES)
        self.rules = rules
        self.steps = _checks.positive_int(steps, "steps")
        if masks is not None and self.kind != "images":
            raise ValueError(f"masks are region masks of images (N, H, W), for localization; these inputs are "
                             f"not images ({_structure(self.inputs)})")
        self.metrics = _checked_metrics(metrics, self.inputs, _metric_refusal(self.kind, targets), masks)
        self.masks = None if masks is None else _checks.binary_masks(
            np.asarray(masks)[: self.max_examples], self.inputs.shape[:3], "masks")
        self.tokens = self._checked_tokens(tokens)
        self.every_n_epochs = _checks.positive_int(every_n_epochs, "every_n_epochs")
        self.at_start = bool(at_start)
        self.output = _checks.choice(output, "output", OUTPUTS)
        if self.output == "logit" and callable(targets):
            raise ValueError("output='logit' puts a softmax over the model's classes, but a callable target picks "
                             "its own scalar from the outputs as the model returns them: leave "
                             "output='probability' (apply a softmax inside the callable if it should see one)")
        self.batch_size = batch_size
        self.jit_compile = resolve_jit(jit_compile)
        self.log_dir = None if log_dir is None else _writable_folder(log_dir, "log_dir")
        self.history: list[dict] = []
        self._explained = None
        self._single = False
        self._per_token = False
        self._writer = None

    def _first(self, structure):
        """The first ``max_examples`` examples of every array of ``structure``."""
        return tf.nest.map_structure(lambda leaf: leaf[: self.max_examples], structure)

    def _checked_methods(self, methods) -> tuple:
        """Method names, refusing image methods on other inputs."""
        methods = (methods,) if isinstance(methods, str) else tuple(methods)
        for method in methods:
            _checks.choice(method, "methods", tuple(m for m, row in METHODS.items() if row.wraps is None))
            if METHODS[method].own_layer is not None and self.layer is not None:
                raise ValueError(f"method {method!r} reads a layer of its own (the last one with 4-D feature maps), "
                                 "while the callback's layer= is where every method attributes: leave layer= out, "
                                 f"or {method!r} out of methods")
            if METHODS[method].image_only and self.kind != "images":
                raise ValueError(f"method {method!r} is an image method: it needs one input of images (N, H, W, C) "
                                 f"without layer=, got {_structure(self.inputs)}")
        return methods

    def _checked_tokens(self, tokens) -> list | None:
        """The vocabulary as strings, checked to cover every id of the inputs."""
        if tokens is None:
            return None
        if self.kind != "tokens":
            raise ValueError(f"tokens is the vocabulary of integer token ids (N, T) explained with layer=, got "
                             f"inputs of {_structure(self.inputs)}{' without layer=' if self.layer is None else ''}")
        if isinstance(tokens, (str, bytes, dict)) or not hasattr(tokens, "__getitem__"):
            raise TypeError(f"tokens must be a list mapping each id to its string, got {type(tokens).__name__}")
        vocabulary = [str(token) for token in tokens]
        if int(self.inputs.max()) >= len(vocabulary) or int(self.inputs.min()) < 0:
            raise ValueError(f"tokens must name every id of the inputs: it has {len(vocabulary)} entries, the inputs "
                             f"hold ids in [{int(self.inputs.min())}, {int(self.inputs.max())}]")
        return vocabulary

    # ------------------------------------------------------------------ Keras hooks

    def set_model(self, model):
        super().set_model(model)
        layer = None if self.layer is None else graph.find_layer(model, self.layer)  # before wrapping the model
        units = self._output_units(model)
        if self.output == "logit" and units == 1:
            raise ValueError("output='logit' puts a softmax over the model's classes, but this model has one output "
                             "unit (its softmax is 1): leave output='probability', which explains the single output "
                             "as it is (or pass a callable target, e.g. lambda out: tf.sigmoid(out[:, 0]))")
        self._single = self.targets is None and units == 1
        explained = model if self.output == "probability" else _probabilities(model, self.layer)
        # Every check attribute makes (input structure, layer, targets against the outputs), before the first epoch.
        arguments.prepare(explained, self.inputs, self._checked_targets(), None, self.layer,
                          method_name="AttributionCallback", method=arguments.FORWARD_PASS,
                          batch_size=batch_size_or_default(self.batch_size), jit_compile=self.jit_compile)
        for method in self.methods:
            if method in MODIFIED_GRADIENT_METHODS:  # they need a Keras graph of known layers: check now
                modified_model(model, method, layer=layer)
            if METHODS[method].own_layer is not None:  # Grad-CAM's layer
                METHODS[method].own_layer(model, None)
        if self.kind == "tokens":
            shape = tuple(layer.output.shape)
            self._per_token = len(shape) >= 3 and shape[1] in (None, self.inputs.shape[1])
            if self.metrics and not self._per_token:
                raise ValueError(f"the metrics score token ids (N, T) by the per-token sums of the maps, but "
                                 f"layer={layer.name!r} outputs {shape}, not one vector per token: pass metrics=()")
        self._explained = explained

    def _output_units(self, model) -> int | None:
        """K of the model's one output (N, K) (1 for (N,)); None for a callable target or other outputs.

        From the model's declared output; a model that declares none runs on one example (for one input
        array without a layer through :func:`idgi_tf.runtime.num_classes`, attribute's own check).
        """
        if callable(self.targets):
            return None
        try:
            output = model.output
        except (AttributeError, ValueError):
            if self.kind in ("images", "features"):
                return num_classes(model, self.inputs)
            output = call_model(model, self._first_example())
        if not (isinstance(output, keras.KerasTensor) or tf.is_tensor(output)) or len(output.shape) not in (1, 2):
            return None
        return 1 if len(output.shape) == 1 else output.shape[-1]

    def _first_example(self):
        return tf.nest.map_structure(lambda leaf: tf.constant(leaf[:1]), self.inputs)

    def _checked_targets(self):
        """The targets for attribute's checks: a class for a classifier's prediction (targets=None)."""
        if self.targets is None and not self._single:
            return 0
        return self.targets

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

    def _current_targets(self):
        """attribute's targets now: the given ones, None for the single output, else the prediction."""
        if self.targets is not None or self._single:
            return self.targets
        scores = call_model(self._explained, tf.nest.map_structure(tf.constant, self.inputs)).numpy()
        return np.argmax(scores, axis=1).astype(np.int32)

    def log_epoch(self, epoch: int) -> dict:
        """Explain, score and log now, as ``epoch``; returns the history record."""
        targets = self._current_targets()
        record = {"epoch": epoch, "scalars": {}, "histograms": {}, "images": {}}
        run = {"batch_size": self.batch_size, "jit_compile": self.jit_compile, "layer": self.layer}
        for method in self.methods:
            rules = tuple(r for r in self.rules if r in METHODS[method].rules) or ("plain",)
            # elrp, deeplift and Grad-CAM explain the logit whatever the output, so they run on the model itself.
            explained = self.model if METHODS[method].explains_logit else self._explained
            integral = method in PATH_INTEGRALS
            start = {"baseline": self.baseline} if METHODS[method].takes_baseline else {}
            maps = attribute(explained, self.inputs, targets, method, rule=rules, steps=self.steps,
                             return_gap=integral, **start, **run)
            maps, gaps = maps if integral else (maps, None)
            for rule, attribution in maps.items():
                tag = f"{method}_{rule}"
                record["scalars"].update(self._scores(tag, targets, attribution))
                if gaps is not None:
                    record["scalars"][f"completeness_gap/{tag}"] = float(np.abs(gaps[rule].absolute).mean())
                values = np.concatenate([a.ravel() for a in tf.nest.flatten(attribution)])
                record["histograms"][f"values/{tag}"] = values
                picture = self._picture(attribution, targets, epoch, tag)
                if picture is not None:
                    record["images"][f"attributions/{tag}"] = picture
        self.history.append(record)
        if self._writer is not None:
            self._write(record)
        return record

    def _scores(self, tag: str, targets, attribution) -> dict:
        """``<metric>/<tag>``: the mean of each metric's first headline score (its row in METRICS), on the maps'
        features (per-token sums for token ids at an embedding), removing features to the baseline."""
        scores = {}
        targets = np.zeros(len(self.inputs), np.int32) if targets is None else targets
        maps = self._token_scores(attribution) if self.kind == "tokens" else attribution
        for name in self.metrics:
            metric = metrics.METRICS[name]
            if self.baseline is not None and "baseline" in inspect.signature(metric.function).parameters:
                result = metric.function(self._explained, self.inputs, targets, maps, baseline=self.baseline,
                                         batch_size=self.batch_size, jit_compile=self.jit_compile, **metric.options)
            else:
                result = metric.compute(self._explained, self.inputs, targets, maps, masks=self.masks,
                                        batch_size=self.batch_size, jit_compile=self.jit_compile)
            scores[f"{name}/{tag}"] = result.means()[metric.scores[0].key]
        return scores

    def _token_scores(self, attribution) -> np.ndarray:
        """Each token's score (N, T): the sum of its map over the layer's other axes (the embedding dims)."""
        return attribution.reshape(*self.inputs.shape, -1).sum(-1)

    def _picture(self, attribution, targets, epoch: int, tag: str) -> np.ndarray | None:
        """The figure of the maps as RGB uint8: images, or tokens at an embedding (a row per example, labelled
        with its class); None for other inputs."""
        if self.kind == "images":
            return self._grid(attribution, epoch, tag)
        if self.kind == "tokens" and self._per_token:
            vocabulary = self.tokens
            rows = [[vocabulary[i] if vocabulary is not None else str(i) for i in row] for row in self.inputs.tolist()]
            labels = None if targets is None or callable(targets) else [f"class {t}" for t in targets]
            figure = viz.plot_tokens(rows, self._token_scores(attribution), row_labels=labels,
                                     title=f"{tag}, epoch {epoch}")
            return viz.to_array(figure)
        return None

    def _grid(self, attribution, epoch: int, tag: str) -> np.ndarray:
        photos = self.inputs
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
