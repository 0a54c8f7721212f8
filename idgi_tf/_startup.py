"""Quiet start-up for the command lines: TensorFlow's C++ notices are hidden unless asked for.

Importing TensorFlow prints oneDNN and CUDA-probing notices ("Could not find
cuda drivers", ``E0000 … cuInit``) straight to file descriptor 2, partly
before its log level is read. Under ``python -m idgi_tf.<command>`` the
package imports TensorFlow with that descriptor pointed at ``/dev/null`` and
sets ``TF_CPP_MIN_LOG_LEVEL=3``; a user who sets ``TF_CPP_MIN_LOG_LEVEL`` to 0
or 1 sees everything. A plain ``import idgi_tf`` changes nothing.
"""

from __future__ import annotations

import contextlib
import os
import sys

COMMANDS = ("idgi_tf.bench", "idgi_tf.viz", "idgi_tf.spectral")


def _running_a_command() -> bool:
    argv = getattr(sys, "orig_argv", [])
    return any(a == "-m" and b in COMMANDS for a, b in zip(argv, argv[1:]))


@contextlib.contextmanager
def quiet_tensorflow_import():
    """Around the first TensorFlow import: silence its start-up notices when a command runs."""
    if not _running_a_command() or os.environ.get("TF_CPP_MIN_LOG_LEVEL") in ("0", "1"):
        yield
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
