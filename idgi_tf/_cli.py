"""What the command lines share: the parser, one-line errors, comma lists and loading a zoo model from ``--weights``."""

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


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are :class:`CommandError`: one line (``argument --x: ...``) instead of the usage."""

    def error(self, message):
        raise CommandError(message)


def comma_list(choices):
    """``type=`` for a comma-separated subset of ``choices``: a tuple of names, repeats dropped, order kept."""
    choices = tuple(choices)

    def parse(text: str) -> tuple:
        names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
        unknown = [name for name in names if name not in choices]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"takes a comma-separated subset of {','.join(choices)}, got {text!r}")
        return names

    return parse


def positive_int(text: str) -> int:
    """``type=`` for a count: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def positive_ints(text: str) -> tuple:
    """``type=`` for a comma-separated list of counts, each an integer of at least 1."""
    try:
        return tuple(positive_int(part) for part in text.split(","))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"takes comma-separated positive integers, got {text!r}") from None


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
