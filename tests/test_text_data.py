"""The fortune text loader (idgi_tf.data.text): the pinned split, the tokens, the ids, the install error."""

import os

import numpy as np
import pytest

from idgi_tf.data import text

HAVE_FORTUNES = all(os.path.isfile(os.path.join(text.FORTUNES_DIR, c)) for c in ("computers", "politics", "science"))
needs_fortunes = pytest.mark.skipif(not HAVE_FORTUNES, reason="Debian's fortunes is not installed "
                                    "(apt-get install fortunes)")


def write_category(folder, name, entries):
    (folder / name).write_text("\n%\n".join(entries) + "\n%\n", encoding="latin-1")


def test_tokenize_lowercases_words_and_drops_punctuation_and_overstriking():
    assert text.tokenize("Hello, World -- it's 2 O'Clock!") == ["hello", "world", "it's", "2", "o'clock"]
    assert text.tokenize("a _\bb_\bo_\bl_\bd move") == ["a", "bold", "move"]


def test_vocabulary_is_ranked_by_frequency_then_alphabetically():
    vocabulary = text.build_vocabulary([["b", "a", "c"], ["c", "b"], ["d"]], 4)
    assert vocabulary == ("<pad>", "<oov>", "b", "c")  # b and c twice (alphabetical tie), a and d cut


def test_encode_gives_oov_and_pads_before_the_text():
    vocabulary = ("<pad>", "<oov>", "a", "b")
    ids = text.encode([["a", "zzz", "b"], ["b", "a", "a", "b", "a"]], vocabulary, 4)
    np.testing.assert_array_equal(ids, [[text.PAD_ID, 2, text.OOV_ID, 3], [3, 2, 2, 3]])
    assert ids.dtype == np.int32 and (text.PAD_ID, text.OOV_ID) == (0, 1)


def test_hand_made_categories_split_by_hash_and_ambiguous_texts_dropped(tmp_path):
    love = [f"love letter number {i}" for i in range(40)] + ["shared words"]
    work = [f"work memo number {i}" for i in range(40)] + ["shared words", "work memo number 3"]
    write_category(tmp_path, "love", love)
    write_category(tmp_path, "work", work)
    data = text.fortunes(("love", "work"), directory=str(tmp_path), length=5, vocab_size=50)
    texts = data.texts_train + data.texts_test
    assert "shared words" not in texts and len(texts) == 80  # in both files: dropped; the repeat kept once
    assert set(data.texts_test) == {t for t in texts if text.is_held_out(t)}
    labels = dict(zip(texts, np.concatenate([data.y_train, data.y_test])))
    assert all(labels[t] == (0 if t.startswith("love") else 1) for t in texts)
    assert data.words(data.x_train[0]) == text.tokenize(data.texts_train[0])  # every word is in the vocabulary


def test_a_missing_package_names_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setattr(text, "FORTUNES_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"apt-get install fortunes"):
        text.fortunes()


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="categories"):
        text.fortunes(("computers",), directory=str(tmp_path))
    with pytest.raises(ValueError, match="vocab_size"):
        text.fortunes(directory=str(tmp_path), vocab_size=2)


@needs_fortunes
def test_the_pinned_split_is_reproducible_disjoint_and_about_80_20():
    first, second = text.fortunes(), text.fortunes()
    assert first.texts_train == second.texts_train and first.texts_test == second.texts_test
    np.testing.assert_array_equal(first.x_train, second.x_train)
    np.testing.assert_array_equal(first.x_test, second.x_test)
    assert not set(first.texts_train) & set(first.texts_test)
    assert 0.15 < len(first.texts_test) / (len(first.texts_train) + len(first.texts_test)) < 0.25
    assert text.fortunes(seed=1).texts_test != first.texts_test
    # a text's split depends on the text alone, not on which other categories are loaded
    other = text.fortunes(("science", "computers"))
    held = {t: True for t in first.texts_test} | {t: False for t in first.texts_train}
    again = {t: True for t in other.texts_test} | {t: False for t in other.texts_train}
    both = [t for t, y in zip(other.texts_train + other.texts_test, np.r_[other.y_train, other.y_test])
            if y == 1 and t in held]
    assert len(both) > 900 and all(held[t] == again[t] for t in both)


@needs_fortunes
def test_real_fortunes_round_trip_through_the_vocabulary():
    data = text.fortunes(length=40, vocab_size=4000)
    assert data.x_train.shape[1] == 40 and len(data.vocabulary) == 4000
    assert data.classes == ("computers", "politics") and set(np.unique(data.y_test)) == {0, 1}
    index = {word: i for i, word in enumerate(data.vocabulary)}
    for ids, raw in zip(data.x_test[:50], data.texts_test[:50]):
        expected = [word if word in index else "<oov>" for word in text.tokenize(raw)[:40]]
        assert data.words(ids) == expected
        real = ids != text.PAD_ID
        assert not np.any(real[:-1] & ~real[1:])  # padding only before the text
    train_words = {w for raw in data.texts_train for w in text.tokenize(raw)}
    assert set(data.vocabulary[2:]) <= train_words  # the vocabulary comes from the training split only


def test_the_text_experiment_records_an_unsupported_method_as_skipped(tmp_path, monkeypatch):
    """benchmarks/ancona_text.py: an UnsupportedLayerError becomes a 'skipped' row with its reason, not a gap."""
    import csv
    import importlib.util

    import idgi_tf
    from idgi_tf.attribution.modified_gradients import UnsupportedLayerError

    script = os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks", "ancona_text.py")
    spec = importlib.util.spec_from_file_location("ancona_text", script)
    ancona = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ancona)
    real = idgi_tf.attribute

    def no_lrp(model, inputs, targets, method, **options):
        if method == "elrp":
            raise UnsupportedLayerError("no rule for this layer")
        return real(model, inputs, targets, method, **options)

    monkeypatch.setattr(ancona.idgi_tf, "attribute", no_lrp)
    model = ancona.cnn(8, 5)
    ids = np.array([[0, 2, 3, 4, 5], [0, 0, 7, 6, 1]], np.int32)
    maps, _, skipped = ancona.token_maps(model, ids, np.array([0, 1]), steps=4, epsilon=1e-4)
    assert set(skipped) == {"epsilon-LRP"} and "no rule for this layer" in skipped["epsilon-LRP"]
    assert set(maps) == set(ancona.METHODS) - {"epsilon-LRP"} and all(m.shape == (2, 5) for m in maps.values())
    ancona.write_tables(str(tmp_path), [1, 2], {"cnn": {k: np.array([0.5, 0.25]) for k in maps}},
                        {"cnn": skipped})
    with open(tmp_path / "sensitivity_n.csv") as handle:
        rows = {row[1]: row for row in csv.reader(handle)}
    assert rows["epsilon-LRP"][2].startswith("skipped: UnsupportedLayerError")
    assert rows["IG"][2:] == ["ok", "0.500", "0.250"]
