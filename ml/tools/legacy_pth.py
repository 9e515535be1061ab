"""Safe reader for torch's legacy (pre-zip) .pth format, without torch.

The file is a sequence of pickles: magic number, protocol version, system info,
the object (a state_dict whose tensors reference storages through
``persistent_load``), the list of storage keys, then each storage's raw
little-endian bytes behind an 8-byte element count. The Unpickler below maps
only the handful of globals a state_dict needs and refuses every other one.
"""

import collections
import pickle
import struct

import numpy as np

MAGIC = 0x1950A86A20F9469CFC6C

DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ByteStorage": np.uint8,
}


class StorageType:
    def __init__(self, name):
        self.name = name


class StorageRef:
    def __init__(self, key, dtype):
        self.key = key
        self.dtype = dtype


class TensorRef:
    def __init__(self, storage, offset, size, stride):
        self.storage = storage
        self.offset = offset
        self.size = tuple(size)
        self.stride = tuple(stride)


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, *rest):
    return TensorRef(storage, offset, size, stride)


def _rebuild_tensor(storage, offset, size, stride):
    return TensorRef(storage, offset, size, stride)


class SafeUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch._utils" and name == "_rebuild_tensor":
            return _rebuild_tensor
        if module == "torch" and name in DTYPES:
            return StorageType(name)
        raise pickle.UnpicklingError(f"refusing global {module}.{name}")

    def persistent_load(self, pid):
        # ('storage', storage_type, key, location, size[, view_metadata])
        if not isinstance(pid, tuple) or pid[0] != "storage":
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        stype = pid[1]
        if not isinstance(stype, StorageType):
            raise pickle.UnpicklingError("storage type is not an allowed torch storage")
        return StorageRef(pid[2], DTYPES[stype.name])


def load(path):
    """Return an OrderedDict name -> numpy array."""
    with open(path, "rb") as f:
        def up():
            return SafeUnpickler(f).load()

        if up() != MAGIC:
            raise ValueError("not a legacy torch file (bad magic number)")
        up()  # protocol version
        up()  # system info
        obj = up()
        keys = up()
        storages = {}
        refs = {}
        for t in obj.values():
            if isinstance(t, TensorRef):
                refs[t.storage.key] = t.storage.dtype
        for key in keys:
            dtype = refs[key] if key in refs else np.float32
            (count,) = struct.unpack("<q", f.read(8))
            itemsize = np.dtype(dtype).itemsize
            storages[key] = np.frombuffer(f.read(count * itemsize), dtype=dtype)
    out = collections.OrderedDict()
    for name, t in obj.items():
        if not isinstance(t, TensorRef):
            continue
        st = storages[t.storage.key]
        itemsize = st.itemsize
        arr = np.lib.stride_tricks.as_strided(
            st[t.offset:],
            shape=t.size,
            strides=tuple(s * itemsize for s in t.stride),
        )
        out[name] = np.array(arr, copy=True)
    return out
