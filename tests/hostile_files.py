"""Safetensors files written byte by byte, for tests of what a loader does with files it did not
write: dtypes NumPy lacks (bfloat16, fp8), tampered metadata. Generated at test time, never
committed as binaries."""
from __future__ import annotations

import json
import struct

import numpy as np


def safetensors_bytes(tensors: dict, metadata: dict | None = None) -> bytes:
    """A safetensors file from {name: (dtype tag such as "BF16", shape, raw bytes)}."""
    header, blobs, offset = {}, [], 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def bfloat16_bytes(values) -> bytes:
    """The bfloat16 encoding (top 16 bits of the float32) of values exactly representable in it."""
    f32 = np.asarray(values, np.float32)
    return (f32.view(np.uint32) >> 16).astype("<u2").tobytes()
