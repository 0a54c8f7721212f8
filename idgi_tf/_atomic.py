"""Files written atomically: a temporary name in the target's folder, then ``os.replace``.

A kill leaves the old file or the new one, never a torn one; the temporary names start with a dot and end
in ``.tmp`` (figures: keep their extension, which picks the format), so no reader takes them for a result.
"""

from __future__ import annotations

import os
import time


def _temporary(path: str, suffix: str = ".tmp") -> str:
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}.{os.getpid()}.{time.monotonic_ns()}{suffix}")


def write_atomically(path: str, write, binary: bool = False) -> str:
    """Write ``path`` through ``write(handle)`` under a temporary name in its folder, then rename it.

    Example:
      >>> write_atomically("out/ranking.md", lambda handle: handle.write(text))
    """
    temporary = _temporary(path)
    try:
        with open(temporary, "xb" if binary else "x", **({} if binary else {"encoding": "utf-8"})) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


def save_figure_atomically(figure, path: str) -> str:
    """:func:`idgi_tf.viz.save` under a temporary name with ``path``'s extension, then renamed.

    Example:
      >>> save_figure_atomically(plot_curves(...), "out/insertion.png")
    """
    from .viz import save  # matplotlib loads only when a figure is written

    temporary = _temporary(path, "." + os.path.basename(path).rsplit(".", 1)[-1] if "." in path else ".tmp")
    try:
        os.replace(save(figure, temporary), path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path
