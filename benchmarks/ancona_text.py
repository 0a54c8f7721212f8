"""Ancona et al. (2018)'s text experiment: Sensitivity-n of six attribution methods on a text CNN and an LSTM.

IMDB cannot be downloaded here, so the text is Debian's ``fortunes`` (``apt-get install fortunes``):
``computers`` vs ``politics`` fortunes, split, tokenised and padded by ``idgi_tf.data.text.fortunes``
(docs/models-and-data.md). Two classifiers ending in logits are trained, seeded, for a fixed number of
epochs: a ReLU Conv1D network and an LSTM (no mask: padding comes before the text, and a removed token reads
as the pad id, as in every baseline here; docs/models-and-data.md). On held-out
texts of at least ``--min-tokens`` words that both classify correctly, the label's logit is explained
with Gradient x Input, epsilon-LRP, DeepLIFT-Rescale (pad-id baseline), Integrated Gradients and IG+IDGI
(pad-id baseline) at the embedding's output, summed per token, and with Occlusion-1 on the token ids
(each token set to the pad id). Sensitivity-n draws ``--subsets`` random token subsets per n, sets them to
the pad id and correlates the output drop with the attribution mass removed.

A method that a model's layers do not support (an ``UnsupportedLayerError``) is recorded as skipped with
its reason, never dropped silently.

Writes to ``--out``: sensitivity_n.png (one panel per model), sensitivity_n.csv and .md (the table),
results.json (accuracies, curves, skipped methods, timings), tokens_cnn.png and tokens_lstm.png.

Run: python benchmarks/ancona_text.py [--limit 8 --subsets 20] [--out benchmarks/ancona_text]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure

import idgi_tf
from idgi_tf import metrics, viz
from idgi_tf._atomic import write_atomically
from idgi_tf.attribution.modified_gradients import UnsupportedLayerError
from idgi_tf.data import text

METHODS = ("Gradient*Input", "epsilon-LRP", "DeepLIFT (Rescale)", "IG", "IG+IDGI", "Occlusion-1")
NS = (1, 2, 3, 4, 6, 8, 10, 13, 16, 20, 25, 30)


def cnn(vocab_size: int, length: int) -> keras.Model:
    """Embedding -> Conv1D (ReLU) -> global max pooling -> Dense logits (Kim 2014's shape, one width)."""
    ids = keras.Input((length,), dtype="int32")
    embedded = keras.layers.Embedding(vocab_size, 32, name="embedding")(ids)
    hidden = keras.layers.Conv1D(64, 3, activation="relu")(embedded)
    return keras.Model(ids, keras.layers.Dense(2)(keras.layers.GlobalMaxPooling1D()(hidden)), name="cnn")


def lstm(vocab_size: int, length: int) -> keras.Model:
    """Embedding (no mask: the pad steps come before the text) -> LSTM -> Dense logits."""
    ids = keras.Input((length,), dtype="int32")
    hidden = keras.layers.LSTM(32)(keras.layers.Embedding(vocab_size, 32, name="embedding")(ids))
    return keras.Model(ids, keras.layers.Dense(2)(hidden), name="lstm")


def train(build, data: text.TextData, epochs: int, seed: int) -> tuple[keras.Model, float]:
    """``build(vocab_size, length)`` seeded, fit with Adam for a fixed number of epochs (no early stopping: the
    test split stays unseen); the model and its test accuracy. Deterministic ops: the same weights on every run."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    model = build(len(data.vocabulary), data.x_train.shape[1])
    model.compile(keras.optimizers.Adam(2e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=32, verbose=0)
    return model, float((predict(model, data.x_test) == data.y_test).mean())


def predict(model: keras.Model, ids: np.ndarray) -> np.ndarray:
    return np.argmax(model.predict(ids, verbose=0, batch_size=256), axis=1)


def gradient_calls(model, inputs, labels, steps: int, epsilon: float, baseline, **options) -> dict:
    """The gradient methods of Ancona et al.'s comparison as ``{name: call}`` (for :func:`run_methods`):
    Gradient*Input, epsilon-LRP, DeepLIFT and IG (plain and IDGI from one call) from ``baseline``, each
    with ``options`` (``batch_size``, ``layer``)."""
    return {
        "Gradient*Input": lambda: idgi_tf.attribute(model, inputs, labels, "gxi", **options),
        "epsilon-LRP": lambda: idgi_tf.attribute(model, inputs, labels, "elrp", epsilon=epsilon, **options),
        "DeepLIFT (Rescale)": lambda: idgi_tf.attribute(model, inputs, labels, "deeplift", baseline=baseline,
                                                        **options),
        "IG": lambda: idgi_tf.attribute(model, inputs, labels, "ig", rule=("plain", "idgi"), steps=steps,
                                        baseline=baseline, **options),
    }


def token_maps(model, ids, labels, steps: int, epsilon: float) -> tuple[dict, dict, dict]:
    """Per-token maps (N, T) of every method, seconds per method, and {method: reason} for skipped ones."""
    calls = {
        **gradient_calls(model, ids, labels, steps, epsilon, np.full_like(ids, text.PAD_ID), layer="embedding",
                         batch_size=256),
        "Occlusion-1": lambda: idgi_tf.attribute(model, ids, labels, "occlusion", patch=1, baseline=text.PAD_ID,
                                                 batch_size=256),
    }
    return run_methods(calls, lambda result: result if result.ndim == 2 else result.sum(-1))


def run_methods(calls: dict, scores) -> tuple[dict, dict, dict]:
    """Run each ``{name: call}``: ``({name: scores(maps)}, {name: seconds}, {name: why skipped})``. "IG" returns
    ``{rule: maps}`` from one pass over the path (its IDGI maps become "IG+IDGI"); a method whose layers the
    rules cannot pass (``UnsupportedLayerError``) is recorded as skipped with its reason, never dropped."""
    maps, seconds, skipped = {}, {}, {}
    for name, call in calls.items():
        start = time.perf_counter()
        try:
            result = call()
        except UnsupportedLayerError as error:
            skipped[name] = f"UnsupportedLayerError: {error}"
            print(f"  {name}: skipped ({skipped[name]})")
            continue
        if name == "IG":
            maps["IG"], maps["IG+IDGI"] = scores(np.asarray(result["plain"])), scores(np.asarray(result["idgi"]))
        else:
            maps[name] = scores(np.asarray(result))
        seconds[name] = time.perf_counter() - start
        print(f"  {name}: {seconds[name]:.0f} s")
    if "IG" in skipped:
        skipped["IG+IDGI"] = skipped["IG"]
    return maps, seconds, skipped


def explained_texts(data: text.TextData, models: dict, min_tokens: int, limit: int | None):
    """Indices of held-out texts with at least ``min_tokens`` tokens that every model classifies correctly."""
    long_enough = (data.x_test != text.PAD_ID).sum(1) >= min_tokens
    right = np.all([predict(model, data.x_test) == data.y_test for model in models.values()], axis=0)
    return np.flatnonzero(long_enough & right)[:limit]


def plot_panels(ns, curves: dict, count: int) -> Figure:
    """The paper's layout: one panel per model, one curve per method, x = n (log), y = mean correlation."""
    figure = Figure(figsize=(5.2 * len(curves), 4.0), layout="constrained")
    axes = figure.subplots(1, len(curves), sharey=True, squeeze=False)[0]
    for ax, (model_name, by_method) in zip(axes, curves.items()):
        viz.plot_curves(ns, by_method, logx=True, ax=ax, xlabel="n (tokens set to the pad id)",
                        ylabel="Pearson correlation (mean over texts)" if ax is axes[0] else "",
                        title=f"Sensitivity-n, {model_name.upper()} ({count} texts)")
    return figure


def plot_maps(data: text.TextData, ids, labels, maps: dict, model_name: str, rows: int) -> Figure:
    """The per-token maps of the first ``rows`` texts, one row per method, each row scaled by its max |score|."""
    tokens, scores, row_labels = [], [], []
    for i in range(rows):
        words = ids[i] != text.PAD_ID
        for name, values in maps.items():
            row = values[i, words]
            tokens.append(data.words(ids[i]))
            scores.append(row / max(np.abs(row).max(), 1e-12))
            row_labels.append(f"text {i + 1} ({data.classes[labels[i]]}), {name}")
    return viz.plot_tokens(tokens, scores, row_labels=row_labels, vmax=1.0, fontsize=8, width=11,
                           title=f"{model_name.upper()}: per-token maps (each row / its max |score|)")


def write_tables(out: str, ns, curves: dict, skipped: dict) -> None:
    """sensitivity_n.csv (one row per model and method, one column per n) and the same as markdown."""
    header = ["model", "method", "status", *[f"n={n}" for n in ns]]
    rows = []
    for model_name in curves:
        for method in METHODS:
            if method in skipped[model_name]:
                rows.append([model_name, method, "skipped: " + skipped[model_name][method], *[""] * len(ns)])
            else:
                rows.append([model_name, method, "ok", *[f"{v:.3f}" for v in curves[model_name][method]]])
    with open(os.path.join(out, "sensitivity_n.csv"), "w", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    lines = ["# Sensitivity-n on the text CNN and LSTM (benchmarks/ancona_text.py)", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row[:2] + [row[2].split(":")[0]] + row[3:]) + " |" for row in rows]
    with open(os.path.join(out, "sensitivity_n.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="explain at most this many texts (default all)")
    parser.add_argument("--min-tokens", type=int, default=30, help="explain held-out texts of at least this many "
                        "tokens (of --length), so that n runs over most of each text")
    parser.add_argument("--length", type=int, default=40, help="tokens per text (cut or padded)")
    parser.add_argument("--vocab", type=int, default=4000, help="vocabulary size, pad and OOV included")
    parser.add_argument("--epochs", type=int, nargs=2, default=(5, 8), metavar=("CNN", "LSTM"))
    parser.add_argument("--steps", type=int, default=128, help="Riemann steps of IG")
    parser.add_argument("--subsets", type=int, default=100, help="random token subsets per n (Ancona: 100)")
    parser.add_argument("--epsilon", type=float, default=1e-4, help="epsilon of epsilon-LRP (Ancona: 1e-4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--token-rows", type=int, default=2, help="texts drawn per model in tokens_*.png")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "ancona_text"))
    args = parser.parse_args(argv)
    ns = [n for n in NS if n <= args.length]

    data = text.fortunes(length=args.length, vocab_size=args.vocab, seed=args.seed)
    majority = float(np.mean(data.y_test == np.bincount(data.y_train).argmax()))
    models, accuracy = {}, {}
    for (name, build), epochs in zip({"cnn": cnn, "lstm": lstm}.items(), args.epochs):
        start = time.perf_counter()
        models[name], accuracy[name] = train(build, data, epochs, args.seed)
        print(f"{name}: test accuracy {accuracy[name]:.3f} (majority class {majority:.3f}; "
              f"{time.perf_counter() - start:.0f} s to train)")
    chosen = explained_texts(data, models, args.min_tokens, args.limit)
    ids, labels = data.x_test[chosen], data.y_test[chosen]
    print(f"explaining {len(ids)} held-out texts of >= {args.min_tokens} tokens, correctly classified by both")

    os.makedirs(args.out, exist_ok=True)
    curves, skipped, seconds = {}, {}, {}
    for name, model in models.items():
        maps, seconds[name], skipped[name] = token_maps(model, ids, labels, args.steps, args.epsilon)
        curves[name] = {}
        for method, values in maps.items():
            result = metrics.sensitivity_n(model, ids, labels, values, ns=ns, subsets=args.subsets,
                                           baseline=text.PAD_ID, seed=args.seed, batch_size=256)
            curves[name][method] = result.aggregate_curves["correlation"]
            print(f"  {name} {method:>20}: " + " ".join(f"{v:5.2f}" for v in curves[name][method]))
        curves[name] = {method: curves[name][method] for method in METHODS if method in curves[name]}
        viz.save(plot_maps(data, ids, labels, maps, name, min(args.token_rows, len(ids))),
                 os.path.join(args.out, f"tokens_{name}.png"), dpi=100)

    viz.save(plot_panels(ns, curves, len(ids)), os.path.join(args.out, "sensitivity_n.png"))
    write_tables(args.out, ns, curves, skipped)
    record = {
        "data": {"categories": data.classes, "train": len(data.y_train), "test": len(data.y_test),
                 "length": args.length, "vocabulary": len(data.vocabulary), "majority_class_accuracy": majority},
        "accuracy": accuracy, "texts": len(ids), "ns": ns, "subsets": args.subsets, "steps": args.steps,
        "epsilon": args.epsilon, "seed": args.seed, "epochs": dict(zip(models, args.epochs)),
        "curves": {m: {k: v.tolist() for k, v in c.items()} for m, c in curves.items()},
        "skipped": skipped, "seconds": seconds,
    }
    write_json(os.path.join(args.out, "results.json"), record)
    print(f"wrote {args.out}")
    return record


def write_json(path: str, record: dict) -> None:
    """``record`` as indented JSON at ``path``, atomically (a temporary name, then a rename)."""
    write_atomically(path, lambda handle: json.dump(record, handle, indent=1))


if __name__ == "__main__":
    main()
