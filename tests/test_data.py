"""Image loading, boxes, labels, and the tfds ImageNet validation pipeline."""

import math
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from idgi_tf import data

SAMPLE_FILES = [Path(p) for p in data.val_sample_files()]


def test_a_box_drawn_into_an_image_lands_on_the_same_pixels():
    picture = np.zeros((300, 500, 3), np.uint8)
    box = (120, 40, 260, 200)
    picture[box[1] : box[3], box[0] : box[2]] = 255
    image, moved = data.load_image(picture, 224, boxes=[box])
    bright = image.mean(axis=-1) > 127.5
    mask = data.box_mask(moved, 224).numpy() > 0
    assert bright.sum() > 1000
    assert (bright & mask).sum() / (bright | mask).sum() > 0.97


def test_pinned_policy_shorter_side_then_centre_crop():
    # A horizontal ramp, 300 x 600: resized to 256 x 512, crop columns 144..367
    # of the resized image, i.e. the original's middle, x in [168.75, 431.25).
    ramp = np.tile(np.linspace(0, 255, 600, dtype=np.float32)[None, :, None], (300, 1, 3))
    image = data.load_image(ramp, 224)
    assert image.shape == (224, 224, 3) and image.dtype == np.float32
    # Antialiased bilinear downscaling, re-derived: output column j samples the source around its centre
    # c = (j + 0.5) * 600/512 with a triangle kernel widened by the scale, over the pixels i with centres
    # i + 0.5 in (c - 1.17, c + 1.17), weights normalised. On a ramp that gives 71.8416 at the crop's first
    # column (the naive ramp(c - 0.5) would be 71.875), exactly what TensorFlow's kernel computes.
    def resized_column(j, width=600, new_width=512):
        centre, widen = (j + 0.5) * width / new_width, max(width / new_width, 1.0)
        taps = np.arange(math.ceil(centre - widen - 0.5), math.floor(centre + widen - 0.5) + 1)
        taps = taps[(taps >= 0) & (taps < width)]
        weights = np.maximum(0.0, 1.0 - np.abs((taps + 0.5 - centre) / widen))
        return float((weights * np.linspace(0, 255, width)[taps]).sum() / weights.sum())

    for column, resized in ((0, 144), (-1, 367), (112, 256)):
        np.testing.assert_allclose(image[:, column, 0], resized_column(resized), atol=2e-4)


def test_load_image_reads_files_like_arrays(tmp_path):
    picture = (np.random.default_rng(0).uniform(0, 255, (120, 90, 3))).astype(np.uint8)
    path = tmp_path / "picture.png"
    Image.fromarray(picture).save(path)
    np.testing.assert_array_equal(data.load_image(str(path), 64), data.load_image(picture, 64))
    with pytest.raises(FileNotFoundError, match="image file not found"):
        data.load_image(str(tmp_path / "missing.jpg"), 64)
    with pytest.raises(ValueError, match=r"\(H, W, 3\) array"):
        data.load_image(np.zeros((4, 4, 4)), 64)


def test_sample_images_are_real_labelled_and_boxed():
    samples = data.sample_images(96)
    assert samples.images.shape == (11, 96, 96, 3) and len(SAMPLE_FILES) == 7
    assert samples.names[:7] == [p.name[: -len(".JPEG")] for p in SAMPLE_FILES]
    # The validation photos carry their true labels and official boxes.
    for path, label, mask in zip(SAMPLE_FILES, samples.labels, samples.masks):
        index = data.val_index(path.name)
        assert label == data.val_labels()[index]
        _, moved = data.load_image(str(path), 96, boxes=data.read_boxes()[index])
        np.testing.assert_array_equal(mask, data.box_mask(moved, 96).numpy())
    assert [data.class_name(i) for i in samples.labels[7:]] == ["tabby", "espresso", "missile", "space_shuttle"]
    coverage = samples.masks.mean(axis=(1, 2))
    assert np.all((coverage > 0.01) & (coverage < 1.0)), coverage  # a box, not the whole picture
    assert samples.images.std() > 20  # photographs, not blank canvases
    photos = data.sample_images(64, which="photos")
    assert photos.names == list(data.SAMPLE_PHOTOS) and photos.images.shape == (4, 64, 64, 3)
    with pytest.raises(ValueError, match="which must be one of"):
        data.sample_images(64, which="cats")


def test_class_index_matches_tfds_label_order():
    import tensorflow_datasets as tfds

    labels_file = Path(tfds.__file__).parent / "datasets" / "imagenet2012" / "labels.txt"
    synsets = labels_file.read_text().split()
    assert [data.class_index()[i][0] for i in range(1000)] == synsets
    assert data.class_name(281) == "tabby"
    with pytest.raises(ValueError, match="index must lie in"):
        data.class_name(1000)


def test_validation_labels_agree_with_tfds_synsets():
    # tfds lists the synset of every validation image (in file-name order);
    # the packaged labels are Keras class indices: two independent sources.
    import tensorflow_datasets as tfds

    folder = Path(tfds.__file__).parent / "datasets" / "imagenet2012"
    synsets = (folder / "validation_labels.txt").read_text().split()
    index = {synset: i for i, (synset, _) in data.class_index().items()}
    assert len(synsets) == data.NUM_VAL_IMAGES
    np.testing.assert_array_equal(data.val_labels()[1:], [index[s] for s in synsets])


def test_top_k_orders_scores():
    scores = np.zeros((2, 1000))
    scores[0, [5, 7]] = [0.2, 0.7]
    scores[1, 281] = 1.0
    best = data.top_k(scores, 2)
    assert [c for c, _, _ in best[0]] == [7, 5] and best[1][0][:2] == (281, "tabby")


def _write_xml(folder: Path, index: int, boxes) -> None:
    objects = "".join(
        f"<object><name>n00000000</name><bndbox><xmin>{x0:g}</xmin><ymin>{y0:g}</ymin>"
        f"<xmax>{x1:g}</xmax><ymax>{y1:g}</ymax></bndbox></object>"
        for x0, y0, x1, y1 in boxes
    )
    (folder / f"ILSVRC2012_val_{index:08d}.xml").write_text(f"<annotation>{objects}</annotation>")


@pytest.fixture(scope="module")
def fake_imagenet(tmp_path_factory):
    """A manual_dir with ILSVRC2012_img_val.tar of 7 real validation JPEGs, and XML boxes."""
    root = tmp_path_factory.mktemp("imagenet")
    manual, xml = root / "manual", root / "xml"
    manual.mkdir()
    xml.mkdir()
    with tarfile.open(manual / data.VAL_TAR, "w") as tar:
        for path in SAMPLE_FILES:
            tar.add(path, arcname=path.name)
    shipped = data.read_boxes()
    for path in SAMPLE_FILES:
        _write_xml(xml, data.val_index(path.name), shipped[data.val_index(path.name)])
    return manual, xml, root / "tfds"


def test_xml_and_text_boxes_read_the_same(fake_imagenet, tmp_path):
    _, xml, _ = fake_imagenet
    from_xml = data.read_boxes(str(xml))
    shipped = data.read_boxes()
    assert set(from_xml) == {data.val_index(p.name) for p in SAMPLE_FILES}
    for index, boxes in from_xml.items():
        assert boxes == shipped[index]
    (tmp_path / "localization.txt").write_text("val/ILSVRC2012_val_00000007.JPEG,1,2,3,4\n")
    assert data.read_boxes(str(tmp_path)) == {7: [[1.0, 2.0, 3.0, 4.0]]}
    with pytest.raises(FileNotFoundError, match="neither localization.txt"):
        data.read_boxes(str(tmp_path / ".."))


# Typed from the published ILSVRC2012 validation boxes (x0, y0, x1, y1 in the original JPEG's pixels), as an
# official annotation XML holds them, with the photo's size.
TYPED_BOXES = {9973: [(52, 147, 293, 388)], 11670: [(104, 125, 143, 161)], 42581: [(84, 32, 385, 609)]}


def test_shipped_boxes_equal_typed_official_annotations(tmp_path):
    for index, boxes in TYPED_BOXES.items():
        path = next(p for p in SAMPLE_FILES if data.val_index(p.name) == index)
        width, height = Image.open(path).size
        objects = "".join(f"<object><name>n00000000</name><pose>Unspecified</pose><truncated>0</truncated>"
                          f"<difficult>0</difficult><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax>"
                          f"<ymax>{y1}</ymax></bndbox></object>" for x0, y0, x1, y1 in boxes)
        (tmp_path / f"ILSVRC2012_val_{index:08d}.xml").write_text(
            f"<annotation><folder>val</folder><filename>ILSVRC2012_val_{index:08d}</filename><source><database>"
            f"ILSVRC_2012</database></source><size><width>{width}</width><height>{height}</height><depth>3</depth>"
            f"</size><segmented>0</segmented>{objects}</annotation>")
    typed, shipped = data.read_boxes(str(tmp_path)), data.read_boxes()
    assert typed == {index: [list(map(float, box)) for box in boxes] for index, boxes in TYPED_BOXES.items()}
    assert all(shipped[index] == typed[index] for index in TYPED_BOXES)
    for path in SAMPLE_FILES:  # x runs along the width: every box of every sample lies inside its photo
        width, height = Image.open(path).size
        for x0, y0, x1, y1 in shipped[data.val_index(path.name)]:
            assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height, (path.name, width, height)


def test_imagenet_validation_pipeline_on_a_fake_manual_dir(fake_imagenet):
    manual, xml, tfds_dir = fake_imagenet
    dataset = data.imagenet_validation(str(manual), 96, boxes_dir=str(xml), data_dir=str(tfds_dir))
    examples = list(dataset.as_numpy_iterator())
    assert len(examples) == len(SAMPLE_FILES)
    by_name = {os.path.basename(name.decode()): (image, label, mask) for image, label, mask, name in examples}
    for path in SAMPLE_FILES:
        image, label, mask = by_name[path.name]
        index = data.val_index(path.name)
        want_image, moved = data.load_image(str(path), 96, boxes=data.read_boxes()[index])
        assert label == data.val_labels()[index]
        # Both decode the file with TensorFlow and run the same resize: identical pixels.
        np.testing.assert_array_equal(image, want_image)
        np.testing.assert_array_equal(mask, data.box_mask(moved, 96).numpy())
        assert 0 < mask.mean() <= 1
    limited = data.imagenet_validation(str(manual), 96, limit=3, data_dir=str(tfds_dir))
    assert len(list(limited)) == 3


def test_imagenet_validation_names_the_missing_tar(tmp_path):
    with pytest.raises(FileNotFoundError, match="ILSVRC2012_img_val.tar not found"):
        data.imagenet_validation(str(tmp_path), 224)


def test_correctly_classified_keeps_only_right_predictions():
    images = tf.zeros((3, 8, 8, 3))
    dataset = tf.data.Dataset.from_tensor_slices((images, tf.constant([3, 5, 3]), tf.constant(["a", "b", "c"])))

    def always_class_3(x):
        return tf.one_hot(tf.fill([tf.shape(x)[0]], 3), 10)

    kept = list(data.correctly_classified(always_class_3, dataset, batch_size=2).as_numpy_iterator())
    assert [name for _, _, name in kept] == [b"a", b"c"]


@pytest.mark.skipif(not os.path.isdir(data.FASHION_MNIST_DIR), reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_reads_the_real_files():
    images, labels = data.fashion_mnist("test")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8 and labels.shape == (10000,)
    np.testing.assert_array_equal(labels[:5], [9, 2, 1, 1, 6])  # ankle boot, pullover, trouser, trouser, shirt
    assert np.bincount(labels).tolist() == [1000] * 10
    train, train_labels = data.fashion_mnist("train", limit=10)
    assert train.shape == (10, 28, 28) and train_labels.tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]


def test_fashion_mnist_missing_files_say_what_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        data.fashion_mnist("train", directory=str(tmp_path))


@pytest.mark.parametrize(
    "image, boxes, error, pattern",
    [
        (np.full((8, 8, 3), np.nan), None, ValueError, "image contains NaN or Inf"),
        (np.zeros((0, 5)), None, ValueError, "image must have at least one pixel"),
        (np.zeros((8, 8, 3)), [1, 2, 3], ValueError, r"boxes must have shape \(k, 4\)"),
        (np.zeros((8, 8, 3)), [[1, 2, np.inf, 4]], ValueError, "boxes contain NaN or Inf"),
        (np.array([["a"]]), None, TypeError, "array of pixels"),
    ],
)
def test_load_image_rejects_bad_pixels_and_boxes(image, boxes, error, pattern):
    with pytest.raises(error, match=pattern):
        data.load_image(image, 8, boxes=boxes)


def test_load_image_takes_one_flat_box():
    image = np.zeros((20, 20, 3), np.float32)
    _, flat = data.load_image(image, 10, boxes=[2, 4, 12, 16])
    _, nested = data.load_image(image, 10, boxes=[[2, 4, 12, 16]])
    np.testing.assert_array_equal(flat, nested)
