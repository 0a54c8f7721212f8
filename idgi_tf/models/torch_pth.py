"""Read a PyTorch state dict saved in the legacy (non-zip) ``torch.save`` format, without PyTorch.

The legacy format (PyTorch < 1.6, ``_use_new_zipfile_serialization=False``)
is a run of pickles followed by raw storage bytes:

1. the magic number ``0x1950a86a20f9469cfc6c``, 2. the protocol version
   1001, 3. system info (endianness, type sizes),
4. the object: here an ``OrderedDict`` of name -> tensor, where each tensor is
   ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` and
   each storage a persistent id ``("storage", torch.FloatStorage, key,
   device, numel, view)``,
5. the list of storage keys, then per key: its element count (int64, little
   endian) and its bytes.

Unpickling may run arbitrary code, so this reader runs each pickle on the
pure-Python unpickler with a table of allowed opcodes: protocol 2's plain data
(ints of at most 255 bytes, strings, tuples, lists, dicts with string keys),
``GLOBAL`` of only ``collections.OrderedDict`` (built empty),
``_rebuild_tensor_v2`` and the ``torch.*Storage`` types (all mapped onto factory
functions and NumPy stand-ins that check their arguments), ``REDUCE`` of those
factories and ``BUILD`` of a state dict's metadata (ignored). Any other opcode
(``NEWOBJ``, ``INST``, ``OBJ``, ``BUILD`` of anything else...) or global is a
:class:`PthFormatError`. Every storage must fit in the file, every tensor inside
its storage (non-negative offset, sizes and strides, no zero stride on a
dimension longer than 1), and all tensors together must decode to no more bytes
than the file has, all checked before any array is made; error messages show an
untrusted value only as its type and a bounded prefix. So a crafted file costs
time and memory linear in its size.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import math
import os
import pickle
import pickletools
import reprlib
import struct

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
MAX_DIMS = 32  # NumPy's limit is 64; state dict tensors have at most 4
MAX_KEY_LENGTH = 100  # torch's storage keys are decimal ids

# torch storage type -> NumPy dtype (little endian, as the file's sys info must say).
STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}

# Opcodes run as the pure-Python unpickler runs them; REDUCE, BUILD, SETITEM(S) are checked below.
PLAIN_OPCODES = ("PROTO", "STOP", "MARK", "NONE", "NEWTRUE", "NEWFALSE", "BININT", "BININT1", "BININT2", "LONG1",
                 "BINUNICODE", "EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "EMPTY_LIST", "APPEND",
                 "APPENDS", "EMPTY_DICT", "BINPUT", "LONG_BINPUT", "BINGET", "LONG_BINGET", "GLOBAL", "BINPERSID")


class PthFormatError(ValueError):
    """The file is not a legacy PyTorch state dict of plain tensors."""


class _BoundedRepr(reprlib.Repr):
    """At most 4 items on each of 3 levels: the memo can share objects so that a full repr takes 2**depth."""

    def __init__(self):
        super().__init__()
        self.maxlevel, self.maxdict, self.maxlist, self.maxtuple, self.maxstring, self.maxlong = 3, 4, 4, 4, 40, 40

    repr_OrderedDict = reprlib.Repr.repr_dict

    def repr_instance(self, x, level):
        return repr(x) if x is None or type(x) is bool else f"<{type(x).__name__}>"


def _describe(value) -> str:
    """An untrusted value for an error message: its type and a bounded prefix, never its full repr."""
    return f"{type(value).__name__} {_BoundedRepr().repr(value)[:100]}"


@dataclasses.dataclass(frozen=True, slots=True)
class _StorageType:
    dtype: np.dtype


@dataclasses.dataclass(slots=True)
class _Storage:
    """A storage named in the pickle; its bytes are read after the pickle."""

    key: str
    dtype: np.dtype
    numel: int
    array: np.ndarray | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class _Tensor:
    """A strided view of a storage, checked to lie inside it; materialised once every storage is read."""

    storage: _Storage
    offset: int
    size: tuple
    stride: tuple

    @property
    def nbytes(self) -> int:
        return math.prod(self.size) * self.storage.dtype.itemsize

    def to_numpy(self) -> np.ndarray:
        data = self.storage.array
        strides = tuple(s * data.itemsize for s in self.stride)
        view = np.lib.stride_tricks.as_strided(data[self.offset:], self.size, strides, writeable=False)
        return np.array(view, order="C")


def _ordered_dict(*args):
    """``collections.OrderedDict`` as torch pickles it: empty (filled by SETITEMS, so keys are checked)."""
    if args:
        raise PthFormatError(f"OrderedDict is called with {_describe(args)}; a state dict's is built empty")
    return collections.OrderedDict()


def _rebuild_tensor(storage, offset, size, stride, *unused) -> _Tensor:
    """``torch._utils._rebuild_tensor_v2``, checked: the view lies inside its storage and broadcasts nothing."""
    if not isinstance(storage, _Storage):
        raise PthFormatError(f"a tensor refers to {_describe(storage)}, not a storage")
    if not (type(size) is tuple and type(stride) is tuple and len(size) == len(stride) <= MAX_DIMS):
        raise PthFormatError(f"a tensor's size {_describe(size)} and stride {_describe(stride)} must be tuples "
                             f"of one length, at most {MAX_DIMS}")
    for what, values in (("offset", (offset,)), ("size", size), ("stride", stride)):
        if not all(type(v) is int and 0 <= v < 2**63 for v in values):
            shown = offset if what == "offset" else values
            raise PthFormatError(f"a tensor's {what} needs integers in [0, 2**63), got {_describe(shown)}")
    if any(n > 1 and s == 0 for n, s in zip(size, stride)):
        raise PthFormatError(f"a tensor of size {size} has a zero stride {stride} (a broadcast view)")
    extent = offset + (sum((n - 1) * s for n, s in zip(size, stride)) + 1 if math.prod(size) else 0)
    if extent > storage.numel:
        raise PthFormatError(f"a tensor of size {size}, stride {stride} at offset {offset} needs {extent} elements "
                             f"of storage {storage.key!r}, which holds {storage.numel}")
    return _Tensor(storage, offset, size, stride)


class _Opcodes(dict):
    def __missing__(self, code):
        name = pickletools.code2op[chr(code)].name if chr(code) in pickletools.code2op else f"byte {code}"
        raise PthFormatError(f"pickle opcode {name} is refused: only plain data and tensors are read")


class _RestrictedUnpickler(pickle._Unpickler):
    """The pure-Python unpickler with only the opcodes a tensor state dict needs (see the module docstring)."""

    def __init__(self, handle, file_size: int):
        super().__init__(handle)
        self.file_size = file_size
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return _ordered_dict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(STORAGE_DTYPES[name])
        raise PthFormatError(f"refusing to load {f'{module}.{name}'[:200]}: only plain tensor state dicts are read")

    def persistent_load(self, pid):
        if not (type(pid) is tuple and len(pid) == 6 and pid[0] == "storage" and isinstance(pid[1], _StorageType)
                and pid[5] is None):
            raise PthFormatError(f"unsupported persistent id {_describe(pid)} (not a plain storage)")
        _, kind, key, _device, numel, _ = pid
        if not (type(key) is str and len(key) <= MAX_KEY_LENGTH):
            raise PthFormatError(f"a storage key must be a string of at most {MAX_KEY_LENGTH} characters, "
                                 f"got {_describe(key)}")
        if type(numel) is not int or numel < 0:
            raise PthFormatError(f"storage {key!r} declares {_describe(numel)} elements, not a count")
        if numel * kind.dtype.itemsize > self.file_size:
            raise PthFormatError(f"storage {key!r} declares {numel} elements of {kind.dtype}, more than the file's "
                                 f"{self.file_size} bytes hold")
        storage = self.storages.setdefault(key, _Storage(key, kind.dtype, numel))
        if storage.dtype != kind.dtype or storage.numel != numel:
            raise PthFormatError(f"storage {key!r} is declared twice with different types or sizes")
        return storage

    def _reduce(self):
        args = self.stack.pop()
        if not (self.stack[-1] in (_ordered_dict, _rebuild_tensor) and type(args) is tuple):
            raise PthFormatError(f"REDUCE may only call OrderedDict or _rebuild_tensor_v2 with a tuple, not "
                                 f"{_describe(self.stack[-1])} with {_describe(args)}")
        self.stack[-1] = self.stack[-1](*args)

    def _build(self):
        """BUILD sets torch's ``_metadata`` on the state dict; it is not needed, and nothing else may be built."""
        self.stack.pop()
        if type(self.stack[-1]) is not collections.OrderedDict:
            raise PthFormatError(f"BUILD may only set a state dict's metadata, not the state of "
                                 f"{_describe(self.stack[-1])}")

    def _setitem(self):
        value, key = self.stack.pop(), self.stack.pop()
        self._set(self.stack[-1], [key, value])

    def _setitems(self):
        items = self.pop_mark()
        self._set(self.stack[-1], items)

    @staticmethod
    def _set(target, items: list):
        """Dict keys must be strings: hashing a tuple that shares its items through the memo takes 2**depth."""
        if not isinstance(target, dict):
            raise PthFormatError(f"SETITEM(S) may only fill a dict, not {_describe(target)}")
        for key in items[::2]:
            if type(key) is not str:
                raise PthFormatError(f"dict keys must be strings, got {_describe(key)}")
        target.update(zip(items[::2], items[1::2]))

    dispatch = _Opcodes({getattr(pickle, name)[0]: pickle._Unpickler.dispatch[getattr(pickle, name)[0]]
                         for name in PLAIN_OPCODES})
    dispatch.update({pickle.REDUCE[0]: _reduce, pickle.BUILD[0]: _build, pickle.SETITEM[0]: _setitem,
                     pickle.SETITEMS[0]: _setitems})


def _load(unpickler: _RestrictedUnpickler, path: str, what: str):
    """One pickle of the file, through the restricted unpickler (so no pickle of it can run code)."""
    try:
        return unpickler.load()
    except PthFormatError as error:
        raise PthFormatError(f"{path}: {error}") from None
    except Exception as error:  # truncated or corrupt pickle
        raise PthFormatError(f"{path}: cannot read the {what} pickle ({type(error).__name__}: "
                             f"{str(error)[:200]})") from error


def _read_storage(content: bytes, position: int, storage: _Storage, path: str) -> int:
    """Point ``storage`` at its bytes in ``content`` (a view, no copy); returns where the next storage starts."""
    if len(content) - position < 8:
        raise PthFormatError(f"{path} is truncated (storage {storage.key!r} missing)")
    (numel,) = struct.unpack_from("<q", content, position)
    if numel != storage.numel:
        raise PthFormatError(f"{path} is corrupt: storage {storage.key!r} holds {numel} elements, "
                             f"its tensors' pickle says {storage.numel}")
    start = position + 8
    end = start + numel * storage.dtype.itemsize
    if end > len(content):
        raise PthFormatError(f"{path} is truncated (storage {storage.key!r}: {len(content) - start} of "
                             f"{end - start} bytes)")
    storage.array = np.frombuffer(content, storage.dtype, numel, start)
    return end


def load_state_dict(path: str | os.PathLike) -> collections.OrderedDict:
    """Read a legacy ``torch.save`` state dict as ``OrderedDict[str, np.ndarray]``.

    Raises:
      FileNotFoundError: no such file.
      PthFormatError: not a legacy ``.pth`` file (a zip-format one included),
        truncated, or holding anything but tensors in a (ordered) dict, or
        tensors that do not lie inside their storages.

    Example:
      >>> weights = load_state_dict("efficientnet-lite0-57934424.pth")
      >>> weights["_conv_stem.weight"].shape
      (32, 3, 3, 3)
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"state dict file not found: {path}")
    with open(path, "rb") as raw:
        content = raw.read()
    if content[:2] == b"PK":
        raise PthFormatError(f"{path} is a zip-format torch.save file; only the legacy format is read")
    handle = io.BytesIO(content)
    unpickler = _RestrictedUnpickler(handle, len(content))
    try:
        magic = unpickler.load()
    except Exception:
        magic = None
    if type(magic) is not int or magic != MAGIC_NUMBER:
        raise PthFormatError(f"{path} is not a legacy PyTorch .pth file (no torch.save magic number)")
    if _load(unpickler, path, "protocol") != PROTOCOL_VERSION:
        raise PthFormatError(f"{path}: unsupported torch.save protocol version")
    info = _load(unpickler, path, "system info")
    if not isinstance(info, dict) or info.get("little_endian") is not True:
        raise PthFormatError(f"{path}: only little-endian files are read")
    state = _load(unpickler, path, "state dict")
    if not isinstance(state, dict) or not all(isinstance(v, _Tensor) for v in state.values()):
        raise PthFormatError(f"{path} does not hold a state dict of named tensors, but {_describe(state)}")
    keys = _load(unpickler, path, "storage keys")
    if not (type(keys) is list and all(type(k) is str for k in keys)):
        raise PthFormatError(f"{path}: the storage keys must be a list of strings, got {_describe(keys)}")
    if len(set(keys)) != len(keys) or set(keys) != set(unpickler.storages):
        raise PthFormatError(f"{path}: the storage list does not match the tensors' storages")
    decoded = sum(tensor.nbytes for tensor in state.values())
    if decoded > len(content):
        raise PthFormatError(f"{path}: its tensors would decode to {decoded} bytes, more than the file's "
                             f"{len(content)} (views that overlap or share storage)")
    position = handle.tell()
    for key in keys:
        position = _read_storage(content, position, unpickler.storages[key], path)
    return collections.OrderedDict((name, tensor.to_numpy()) for name, tensor in state.items())
