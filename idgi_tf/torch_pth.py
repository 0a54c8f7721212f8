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

Unpickling may run arbitrary code, so this reader resolves only the globals a
plain tensor state dict needs (``collections.OrderedDict``, ``_rebuild_tensor_v2``
and the ``torch.*Storage`` types, all mapped onto NumPy stand-ins) and refuses
anything else, before any object is built from it.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

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


class PthFormatError(ValueError):
    """The file is not a legacy PyTorch state dict of plain tensors."""


class _StorageType:
    def __init__(self, name: str):
        self.dtype = STORAGE_DTYPES[name]


class _Storage:
    """A storage named in the pickle; its bytes are read after the pickle."""

    def __init__(self, key: str, dtype: np.dtype, numel: int):
        self.key, self.dtype, self.numel = key, dtype, numel
        self.array: np.ndarray | None = None


class _Tensor:
    """A strided view of a storage, materialised once every storage is read."""

    def __init__(self, storage, offset, size, stride, *unused):
        if not isinstance(storage, _Storage):
            raise PthFormatError("a tensor does not refer to a storage")
        if not all(isinstance(v, int) for v in (offset, *size, *stride)) or len(size) != len(stride):
            raise PthFormatError(f"bad tensor geometry: offset {offset!r}, size {size!r}, stride {stride!r}")
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def to_numpy(self) -> np.ndarray:
        data = self.storage.array
        if not self.size:
            return data[self.offset].copy()
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if min(self.size) > 0 and (self.offset < 0 or min(self.stride) < 0 or last >= data.size):
            raise PthFormatError(f"tensor of size {self.size} runs past its storage of {data.size} elements")
        strides = tuple(s * data.itemsize for s in self.stride)
        view = np.lib.stride_tricks.as_strided(data[self.offset:], self.size, strides, writeable=False)
        return np.ascontiguousarray(view)


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, handle):
        super().__init__(handle)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _Tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise PthFormatError(f"refusing to load {module}.{name}: only plain tensor state dicts are read")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str) and isinstance(pid[4], int)):
            raise PthFormatError(f"unsupported persistent id {pid!r} (not a plain storage)")
        if pid[5] is not None:
            raise PthFormatError("storage views are not supported")
        _, kind, key, _device, numel, _ = pid
        storage = self.storages.setdefault(key, _Storage(key, kind.dtype, numel))
        if storage.dtype != kind.dtype or storage.numel != numel:
            raise PthFormatError(f"storage {key} is declared twice with different types or sizes")
        return storage


def _load(unpickler: _RestrictedUnpickler, path: str, what: str):
    """One pickle of the file, through the restricted unpickler (so no pickle of it can run code)."""
    try:
        return unpickler.load()
    except PthFormatError:
        raise
    except Exception as error:  # truncated or corrupt pickle
        raise PthFormatError(f"{path}: cannot read the {what} pickle ({type(error).__name__}: {error})") from error


def load_state_dict(path: str | os.PathLike) -> collections.OrderedDict:
    """Read a legacy ``torch.save`` state dict as ``OrderedDict[str, np.ndarray]``.

    Raises:
      FileNotFoundError: no such file.
      PthFormatError: not a legacy ``.pth`` file (a zip-format one included),
        truncated, or holding anything but tensors in a (ordered) dict.

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
    unpickler = _RestrictedUnpickler(handle)
    try:
        magic = unpickler.load()
    except Exception:
        magic = None
    if magic != MAGIC_NUMBER:
        raise PthFormatError(f"{path} is not a legacy PyTorch .pth file (no torch.save magic number)")
    if _load(unpickler, path, "protocol") != PROTOCOL_VERSION:
        raise PthFormatError(f"{path}: unsupported torch.save protocol version")
    info = _load(unpickler, path, "system info")
    if not isinstance(info, dict) or not info.get("little_endian", False):
        raise PthFormatError(f"{path}: only little-endian files are read")
    state = _load(unpickler, path, "state dict")
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, _Tensor)
                                              for k, v in state.items()):
        raise PthFormatError(f"{path} does not hold a state dict of named tensors")
    keys = _load(unpickler, path, "storage keys")
    if not isinstance(keys, list) or sorted(keys) != sorted(unpickler.storages):
        raise PthFormatError(f"{path}: the storage list does not match the tensors' storages")
    for key in keys:
        storage = unpickler.storages[key]
        header = handle.read(8)
        if len(header) < 8:
            raise PthFormatError(f"{path} is truncated (storage {key} missing)")
        (numel,) = struct.unpack("<q", header)
        nbytes = numel * storage.dtype.itemsize
        payload = handle.read(nbytes)
        if numel != storage.numel or len(payload) < nbytes:
            raise PthFormatError(f"{path} is truncated or corrupt (storage {key}: {len(payload)} of "
                                 f"{storage.numel * storage.dtype.itemsize} bytes)")
        storage.array = np.frombuffer(payload, storage.dtype)
    return collections.OrderedDict((name, tensor.to_numpy()) for name, tensor in state.items())
