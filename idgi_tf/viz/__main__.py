"""``python -m idgi_tf.viz``: the IDGI paper's Figure 3 (methods x plain/IDGI) for one picture.

Progress (one line per method done, at most every 10 s off a terminal) goes to stderr; stdout gets the file written.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from .. import data, models
from .._cli import ArgumentParser, CommandError, HelpFormatter, comma_list, load_model, positive_int, report_error
from .._progress import StderrProgress
from ..attribution.methods import METHODS
from . import colormap, save
from .figure import figure3
from .plots import SAVE_FORMATS

EXAMPLES = """examples:
  python -m idgi_tf.viz --image chelsea --out fig3.png                # EfficientNetLite0, a sample photo
  python -m idgi_tf.viz --model VGG16 --image cat.jpg --methods ig,blurig --cmap inferno --out fig.pdf
  python -m idgi_tf.viz --model MobileNetV2 --image coffee --weights none --steps 16 --out smoke.png
"""


def parser() -> argparse.ArgumentParser:
    parse = ArgumentParser(prog="python -m idgi_tf.viz", description=__doc__.split(":", 1)[1].strip(),
                                    epilog=EXAMPLES, formatter_class=HelpFormatter)
    parse.add_argument("--model", default=models.DEFAULT_MODEL, help=f"one of {', '.join(models.MODELS)}")
    parse.add_argument("--image", required=True,
                       help=f"an image file, or a sample photo: {', '.join(data.SAMPLE_PHOTOS)}")
    parse.add_argument("--methods", type=comma_list(METHODS), default="ig,gig,blurig,vg",
                       help=f"rows, from {','.join(METHODS)}")
    parse.add_argument("--target", type=int, help="class to explain (default: the sample's label, else the top class)")
    parse.add_argument("--steps", type=positive_int, default=200, help="Riemann steps of the path methods")
    parse.add_argument("--weights", default="imagenet", help="imagenet (Keras cache), PATH, or none (random)")
    parse.add_argument("--input-size", type=positive_int, help="build the model at this side (random or file weights)")
    parse.add_argument("--cmap", default="gray",
                       help="heatmap colours: any matplotlib colormap (gray, magma, inferno, ...) or diverging "
                            "(signed maps, RdBu_r)")
    parse.add_argument("--out", default="figure3.png", help="file to write: .png, .svg or .pdf")
    return parse


IMAGENET_CLASSES = 1000  # every model of the zoo explains an ImageNet class


def main(argv=None) -> int:
    try:
        args = parser().parse_args(sys.argv[1:] if argv is None else argv)
        methods = args.methods
        if os.path.splitext(args.out)[1].lower() not in SAVE_FORMATS:
            raise CommandError(f"--out must end in {', '.join(SAVE_FORMATS)}, got {args.out!r}")
        if args.cmap != "diverging":
            colormap(args.cmap)  # a clear error before any model is loaded
        if args.target is not None and not 0 <= args.target < IMAGENET_CLASSES:
            raise CommandError(f"--target must be an ImageNet class in [0, {IMAGENET_CLASSES}), got {args.target}")
        if args.image not in data.SAMPLE_PHOTOS and not os.path.isfile(args.image):
            raise CommandError(f"--image must be an image file or one of {', '.join(data.SAMPLE_PHOTOS)}, "
                               f"got {args.image!r}")
        model = load_model(models.canonical_name(args.model), args.weights, args.input_size)
        size = int(model.input_shape[1])
        if args.image in data.SAMPLE_PHOTOS:
            samples = data.sample_images(size)
            index = samples.names.index(args.image)
            image, label = samples.images[index], int(samples.labels[index])
        else:
            image, label = data.load_image(args.image, size), None
        probabilities = model(image[None]).numpy()[0]
        target = args.target if args.target is not None else (label if label is not None else
                                                              int(np.argmax(probabilities)))
        note = "RANDOM WEIGHTS, the maps mean nothing; " if args.weights == "none" else ""
        title = (f"{models.canonical_name(args.model)}: {note}target {target} {data.class_name(target)} "
                 f"(p = {probabilities[target]:.3f})")
        progress = StderrProgress(len(methods), unit_name="method")
        figure = figure3(model, image, target, methods=methods, steps=args.steps, cmap=args.cmap, title=title,
                         on_method=lambda method: progress.add(1))
        print(save(figure, args.out))
        return 0
    except (CommandError, ValueError, TypeError, FileNotFoundError, OSError) as error:
        return report_error("idgi_tf.viz", error)


if __name__ == "__main__":
    sys.exit(main())
