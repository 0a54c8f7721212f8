"""Images, labels and boxes: the pinned loading policy, ImageNet validation, sample photos.

* :mod:`.images`: the loading policy (:func:`load_image`, :func:`box_mask`);
* :mod:`.classes`: ImageNet class names (:func:`class_name`, :func:`top_k`);
* :mod:`.samples`: photos that ship with the package and scikit-image (:func:`sample_images`);
* :mod:`.imagenet`: the validation labels and boxes (shipped) and the tfds dataset
  (:func:`imagenet_validation`);
* :mod:`.selection`: the paper's protocol, correctly classified images only;
* :mod:`.fashion`: Fashion-MNIST from its IDX files;
* :mod:`.text`: labelled English text from Debian's fortune files (:func:`fortunes`), split and tokenised;
* :mod:`.shipped`: the files in ``idgi_tf/_data``.
"""

from .classes import class_index, class_name, top_k
from .fashion import FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, fashion_mnist
from .imagenet import NUM_VAL_IMAGES, VAL_TAR, imagenet_validation, read_boxes, val_index, val_labels
from .images import box_mask, load_image
from .samples import SAMPLE_PHOTOS, SAMPLE_SETS, VAL_SAMPLES_DIR, Samples, sample_images, val_sample_files
from .selection import correct_predictions, correctly_classified
from .shipped import package_file
from .text import FORTUNE_CATEGORIES, FORTUNES_DIR, TextData, fortunes

__all__ = [
    "FASHION_MNIST_CLASSES", "FASHION_MNIST_DIR", "FORTUNES_DIR", "FORTUNE_CATEGORIES", "NUM_VAL_IMAGES",
    "SAMPLE_PHOTOS", "SAMPLE_SETS", "VAL_SAMPLES_DIR", "VAL_TAR", "Samples", "TextData", "box_mask", "class_index",
    "class_name", "correct_predictions", "correctly_classified", "fashion_mnist", "fortunes", "imagenet_validation",
    "load_image", "package_file", "read_boxes", "sample_images", "top_k", "val_index", "val_labels",
    "val_sample_files",
]
