"""What the command lines share: one-line errors and loading a zoo model from ``--weights``."""

from __future__ import annotations

import argparse
import os
import sys

import keras

from . import models


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the examples' layout and adds every option's default to its help (unless it has none)."""

    def _get_help_string(self, action):
        if action.default is None or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


class CommandError(Exception):
    """A bad argument or missing input, reported as one line without a traceback."""


def check_weights(weights: str) -> str:
    """``--weights``: imagenet, none, or an existing file."""
    if weights not in ("imagenet", "none") and not os.path.isfile(weights):
        raise CommandError(f"--weights must be imagenet, none or an existing file, got {weights!r}")
    return weights


def load_model(name: str, weights: str, input_size: int | None = None, seed: int = 0):
    """A zoo model for ``--weights imagenet|PATH|none``; missing weights become a one-line error."""
    check_weights(weights)
    keras.utils.set_random_seed(seed)
    try:
        return models.load(name, None if weights == "none" else weights, input_size=input_size)
    except models.WeightsUnavailableError as error:
        raise CommandError(
            f"{error}; or pass --weights PATH to a local weights file, or --weights none for a smoke run on "
            f"random weights (EfficientNetLite0/1/2 have trained weights that install offline)"
        ) from error


def report_error(program: str, error: Exception) -> int:
    """Print ``program: error: <first line>`` on stderr; the exit status for bad input (2)."""
    print(f"{program}: error: {str(error).splitlines()[0]}", file=sys.stderr)
    return 2
