"""Progress over images: Keras' Progbar on a terminal, plain lines where output is a file or a pipe.

Keras' Progbar always writes ANSI colour codes and backspaces, which turn a
log file into noise; off a terminal we print one readable line every
``interval`` seconds (and at the end) instead.
"""

from __future__ import annotations

import contextlib
import sys
import time

import keras


class LineProgress:
    """``add(n, values)`` like Keras' Progbar, printed as ``image 3/11 · 12 s · 4.0 s/image · ETA 32 s``."""

    def __init__(self, target: int | None, unit_name: str = "image", interval: float = 10.0):
        self.target, self.unit_name, self.interval = target, unit_name, interval
        self.seen, self.start, self.last = 0, time.perf_counter(), -float("inf")

    def add(self, count: int, values=()) -> None:
        self.seen += count
        now = time.perf_counter()
        done = self.target is not None and self.seen >= self.target
        if now - self.last < self.interval and not done:
            return
        self.last = now
        elapsed = now - self.start
        per = elapsed / max(self.seen, 1)
        parts = [f"{self.unit_name} {self.seen}/{self.target if self.target is not None else '?'}",
                 f"{elapsed:.0f} s", f"{per:.1f} s/{self.unit_name}"]
        if self.target is not None and not done:
            parts.append(f"ETA {per * (self.target - self.seen):.0f} s")
        parts += [f"{name} {value:.4g}" for name, value in values]
        print(" · ".join(parts), flush=True)


def progress_bar(target: int | None, unit_name: str = "image", stateful_metrics=None):
    """Keras' Progbar when stdout is a terminal, else a :class:`LineProgress`."""
    if getattr(sys.stdout, "isatty", lambda: False)():
        return keras.utils.Progbar(target, unit_name=unit_name, stateful_metrics=stateful_metrics)
    return LineProgress(target, unit_name)


class StderrProgress:
    """:func:`progress_bar` on stderr, for command lines whose stdout carries their results."""

    def __init__(self, target: int | None, unit_name: str = "image"):
        with contextlib.redirect_stdout(sys.stderr):  # Progbar decides on a terminal from sys.stdout
            self.bar = progress_bar(target, unit_name)

    def add(self, count: int, values=()) -> None:
        with contextlib.redirect_stdout(sys.stderr):
            self.bar.add(count, list(values))
