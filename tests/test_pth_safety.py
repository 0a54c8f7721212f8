"""Crafted legacy .pth files through models.load: each is a PthFormatError naming the problem, in seconds and
without a large allocation (all loads run in one child process, under an address-space limit)."""

import json
import pickle
import re
import struct
import subprocess
import sys

import pytest

from idgi_tf.models import torch_pth

# Each crafted case loads in the child with at most this much peak-RSS growth and time.
MAX_RSS_GROWTH_MB = 100
MAX_SECONDS = 5.0

CHILD = r"""
import json, resource, sys, time
from idgi_tf import models

def vm_bytes():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))

models.load("EfficientNetLite0", weights=None)  # the network's own memory is not the file's
resource.setrlimit(resource.RLIMIT_AS, (vm_bytes() + (1 << 30), resource.getrlimit(resource.RLIMIT_AS)[1]))
for case, path in json.loads(sys.argv[1]).items():
    before, start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.monotonic()
    try:
        models.load("EfficientNetLite0", weights=path)
        error, message = None, ""
    except Exception as caught:
        error, message = type(caught).__name__, str(caught)[:1000]
    growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(json.dumps([case, error, message, time.monotonic() - start, growth]), flush=True)
"""


def _op(value) -> bytes:
    """The protocol-2 opcodes pushing plain ``value`` (an int, a str, a tuple of ints); bytes are opcodes already."""
    return value if isinstance(value, bytes) else pickle.dumps(value, protocol=2)[2:-1]


def _tensor(offset=0, size=(1,), stride=(1,), numel=1, key="0") -> bytes:
    """``_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`` as torch pickles it."""
    storage = b"(" + _op("storage") + b"ctorch\nFloatStorage\n" + _op(key) + _op("cpu") + _op(numel) + b"NtQ"
    return (b"ctorch._utils\n_rebuild_tensor_v2\n(" + storage + _op(offset) + _op(size) + _op(stride)
            + b"\x89ccollections\nOrderedDict\n)RtR")


def _state(tensor: bytes, name="_fc.bias") -> bytes:
    """An OrderedDict state dict holding one tensor pickle under ``name``."""
    return b"\x80\x02ccollections\nOrderedDict\n)R" + _op(name) + tensor + b"s."


def _nested(depth: int, opcode: bytes) -> bytes:
    """A list (``e``) or tuple (``t``) of the levels of a binary tree made through the memo: level i holds level
    i - 1 twice, so it takes linear time to build and 2**depth to repr or hash."""
    empty, close = (b"]", b"e") if opcode == b"e" else (b")", b"t")
    body = (b"](" if opcode == b"e" else b"(") + empty + b"q\x00"
    for level in range(1, depth + 1):
        pair = b"h" + bytes([level - 1]) + b"h" + bytes([level - 1])
        body += (b"](" + pair + b"e" if opcode == b"e" else pair + b"\x86") + b"q" + bytes([level])
    return body + close


def _file(tmp_path, case: str, obj: bytes, keys=("0",), storages=((1, 4),)) -> str:
    """``obj`` in torch.save's legacy layout: magic, protocol, sys info, object, keys, (numel, bytes) storages."""
    head = b"".join(pickle.dumps(v, protocol=2) for v in (
        torch_pth.MAGIC_NUMBER, torch_pth.PROTOCOL_VERSION, {"little_endian": True}))
    tail = b"".join(struct.pack("<q", numel) + bytes(nbytes) for numel, nbytes in storages)
    path = tmp_path / f"{case}.pth"
    path.write_bytes(head + obj + pickle.dumps(list(keys), protocol=2) + tail)
    return str(path)


def _cases() -> dict:
    """Case -> (object pickle, pattern its error must match[, _file's options]); the hangs of old come last."""
    big = 2**62
    return {
        "zero_stride": (_state(_tensor(size=(2**29,), stride=(0,))), "zero stride"),
        "overlapping_strides": (_state(_tensor(size=(2,) * 28, stride=(1,) * 28, numel=29)), "more than the file",
                                {"storages": ((29, 116),)}),
        "huge_storage": (_state(_tensor(size=(big,), numel=big)), f"{big} elements.*more than the file",
                         {"storages": ((big, 4),)}),
        "scalar_past_the_end": (_state(_tensor(offset=10, size=(), stride=())), "offset 10.*holds 1"),
        "negative_size": (_state(_tensor(size=(-5,))), r"size.*\(-5,\)"),
        "negative_offset": (_state(_tensor(offset=-1, size=(), stride=())), "offset.*int -1"),
        "negative_stride": (_state(_tensor(offset=1, size=(2,), stride=(-1,), numel=2)), r"stride.*\(-1,\)",
                            {"storages": ((2, 8),)}),
        "negative_storage_size": (_state(_tensor(size=(), stride=(), numel=-2)), "-2 elements",
                                  {"storages": ((-2, 4),)}),
        "method_replaced_by_build": (
            _state(_tensor() + b"}" + _op("to_numpy") + b"ccollections\nOrderedDict\nsb"), "BUILD"),
        "newobj": (_state(b"ctorch._utils\n_rebuild_tensor_v2\n)\x81"), "NEWOBJ"),
        "storage_keys": (_state(_tensor()), "storage keys.*list of strings", {"keys": ("0", 1)}),
        "memo_bomb_in_a_message": (_state(_tensor(offset=_nested(40, b"e"))), "offset.*list"),
        "memo_bomb_as_a_dict_key": (b"\x80\x02}" + _nested(40, b"t") + _op(1) + b"s.", "key.*tuple"),
    }


CASES = _cases()


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Every crafted file loaded in one child (TF imports once); a case that hangs leaves no line."""
    folder = tmp_path_factory.mktemp("crafted")
    paths = {case: _file(folder, case, obj, **(rest[0] if rest else {})) for case, (obj, _, *rest) in CASES.items()}
    try:
        stdout = subprocess.run([sys.executable, "-c", CHILD, json.dumps(paths)], capture_output=True,
                                text=True, timeout=120).stdout
    except subprocess.TimeoutExpired as hung:
        stdout = (hung.stdout or b"").decode()  # POSIX hands back the bytes read so far
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("[")]
    return {line[0]: line[1:] for line in lines}


@pytest.mark.parametrize("case", list(CASES))
def test_crafted_file_is_a_named_error_in_seconds_and_little_memory(outcomes, case):
    assert case in outcomes, f"{case}: no result within the child's 120 s (a hang)"
    error, message, seconds, growth_mb = outcomes[case]
    assert error == "PthFormatError", (error, message)
    assert re.search(CASES[case][1], message), message
    assert seconds < MAX_SECONDS and growth_mb < MAX_RSS_GROWTH_MB, (seconds, growth_mb)
    assert len(message) < 300  # never an attacker-built object in full

