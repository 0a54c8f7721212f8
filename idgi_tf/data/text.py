"""Labelled English text that installs offline: Debian's fortune files, one category per file.

The split, the tokens and the vocabulary are pinned here so that every run sees the same
examples: a text is held out when ``sha256(f"{seed}:{text}")`` falls in the first
``TEST_FRACTION`` of the hash range (stable under reordering and under other categories being added),
tokens are lowercase runs of letters, digits and apostrophes, and the vocabulary is the training
texts' most frequent words.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import os
import re

import numpy as np

from .. import _checks

FORTUNES_DIR = "/usr/share/games/fortunes"
FORTUNE_CATEGORIES = ("computers", "politics")
PAD_ID = 0
OOV_ID = 1
TEST_FRACTION = 0.2
_TOKEN = re.compile(r"[a-z0-9']+")
_OVERSTRIKE = re.compile(r".\x08")  # "_\bw": the fortune files' underlining


@dataclasses.dataclass(frozen=True)
class TextData:
    """Token ids ``(N, T)`` int32 (``PAD_ID`` before the text, ``OOV_ID`` for words out of the vocabulary),
    labels ``(N,)`` int32 (indices into ``classes``), the raw texts, and ``vocabulary[id]`` = word."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    texts_train: tuple[str, ...]
    texts_test: tuple[str, ...]
    vocabulary: tuple[str, ...]
    classes: tuple[str, ...]

    def words(self, ids) -> list[str]:
        """The words of one row of ids, padding left out (``<oov>`` for ``OOV_ID``)."""
        return [self.vocabulary[i] for i in np.asarray(ids) if i != PAD_ID]


def tokenize(text: str) -> list[str]:
    """Lowercase words: runs of ``[a-z0-9']`` (punctuation and the ``--`` of attributions dropped)."""
    return _TOKEN.findall(_OVERSTRIKE.sub("", text).lower())


def read_fortunes(category: str, directory: str | None = None) -> list[str]:
    """The fortunes of one category file (entries separated by lines holding only ``%``), stripped."""
    path = os.path.join(directory or FORTUNES_DIR, category)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"fortune file {path} not found; install Debian's fortunes (apt-get install fortunes) "
            "or pass directory= holding the category files")
    with open(path, encoding="latin-1") as handle:  # ASCII with a few Latin-1 bytes
        entries = re.split(r"^%\n", handle.read(), flags=re.MULTILINE)
    return [entry.strip() for entry in entries if entry.strip()]


def is_held_out(text: str, seed: int = 0) -> bool:
    """Whether ``text`` is in the test split: the first ``TEST_FRACTION`` of the sha256 range of ``seed:text``."""
    digest = hashlib.sha256(f"{seed}:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < TEST_FRACTION * 2 ** 64


def build_vocabulary(token_lists, size: int) -> tuple[str, ...]:
    """``("<pad>", "<oov>")`` then the ``size - 2`` most frequent words (ties alphabetical, so it is pinned)."""
    counts = collections.Counter(word for tokens in token_lists for word in tokens)
    ranked = sorted(counts, key=lambda word: (-counts[word], word))
    return ("<pad>", "<oov>", *ranked[:size - 2])


def encode(token_lists, vocabulary, length: int) -> np.ndarray:
    """Ids ``(N, length)`` int32: the first ``length`` tokens, ``OOV_ID`` for unknown words, ``PAD_ID`` before
    them (Keras' ``pad_sequences`` default: a recurrent network's last steps are the text's)."""
    index = {word: i for i, word in enumerate(vocabulary)}
    ids = np.full((len(token_lists), length), PAD_ID, np.int32)
    for row, tokens in enumerate(token_lists):
        kept = [index.get(word, OOV_ID) for word in tokens[:length]]
        ids[row, length - len(kept):] = kept
    return ids


def _labelled_texts(categories, directory):
    """(text, label) pairs, each text once; texts found in two categories are dropped (ambiguous)."""
    owners = collections.defaultdict(set)
    for label, category in enumerate(categories):
        for text in read_fortunes(category, directory):
            owners[text].add(label)
    return [(text, labels.pop()) for text, labels in owners.items() if len(labels) == 1]


def fortunes(categories=FORTUNE_CATEGORIES, *, directory: str | None = None, length: int = 40,
             vocab_size: int = 4000, seed: int = 0) -> TextData:
    """A text classification set from Debian's ``fortunes`` (one class per category file).

    Default: ``computers`` vs ``politics`` (1,051 and 703 fortunes). The split is pinned by a hash of
    each text (:func:`is_held_out`, 80/20), the vocabulary is the training split's ``vocab_size - 2``
    most frequent words, ids are ``PAD_ID`` = 0 and ``OOV_ID`` = 1, texts cut to ``length`` or padded before.

    Example:
      >>> data = fortunes()
      >>> data.x_train.shape, data.classes
      ((1382, 40), ('computers', 'politics'))
    """
    categories = tuple(categories)
    if len(categories) < 2 or len(set(categories)) != len(categories):
        raise ValueError(f"categories must be at least two distinct fortune files, got {categories!r}")
    length = _checks.positive_int(length, "length")
    vocab_size = _checks.positive_int(vocab_size, "vocab_size")
    if vocab_size < 3:
        raise ValueError(f"vocab_size must be at least 3 (pad, OOV and one word), got {vocab_size}")
    seed = _checks.seed(seed)
    pairs = sorted(_labelled_texts(categories, directory))
    test = [is_held_out(text, seed) for text, _ in pairs]
    train_pairs = [pair for pair, held in zip(pairs, test) if not held]
    test_pairs = [pair for pair, held in zip(pairs, test) if held]
    vocabulary = build_vocabulary([tokenize(text) for text, _ in train_pairs], vocab_size)

    def arrays(split):
        ids = encode([tokenize(text) for text, _ in split], vocabulary, length)
        return ids, np.array([label for _, label in split], np.int32), tuple(text for text, _ in split)

    (x_train, y_train, texts_train), (x_test, y_test, texts_test) = arrays(train_pairs), arrays(test_pairs)
    return TextData(x_train, y_train, x_test, y_test, texts_train, texts_test, vocabulary, categories)
