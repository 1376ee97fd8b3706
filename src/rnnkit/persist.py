"""Files on disk: atomic publishing and safe loading. No pickle on any path.

Weights go to safetensors, everything else to JSON. A file is written under a unique temporary
name in the same folder, flushed, fsynced and renamed over the final name, then the folder is
fsynced: a crash leaves the old file or the new one, never a torn file under the final name.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import torch

from rnnkit.errors import CheckpointError

MAX_JSON_BYTES = 64 * 1024 * 1024
MAX_HEADER_BYTES = 16 * 1024 * 1024
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on folders; the rename is still atomic
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Publish ``data`` at ``path`` atomically (temp file, fsync, rename, fsync folder)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _clean(o: Any) -> Any:
    """NaN/inf are not JSON: write them as null so any JSON reader can load our files."""
    if isinstance(o, float):
        return None if math.isnan(o) or math.isinf(o) else o
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_clean(v) for v in o]
    return o


def write_json(path: Path, obj: Any) -> None:
    text = json.dumps(_clean(json.loads(json.dumps(obj, default=_json_default))), indent=2)
    atomic_write_bytes(path, (text + "\n").encode())


def read_json(path: Path) -> Any:
    """Parse a JSON file we wrote, refusing anything oversized or malformed."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found; is this a run folder written by rnnkit?")
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise CheckpointError(f"{path}: {size} bytes is too large for a run's JSON file.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc}); the file is corrupt.") from None


def save_weights(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, str] | None = None
                 ) -> None:
    from safetensors.torch import save

    data = save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=meta)
    atomic_write_bytes(path, data)


def _check_header(path: Path) -> dict:
    """Validate the safetensors header ourselves before the library maps the file, so a
    hostile size or offset cannot make us allocate or read past the end."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path}: too short to be a safetensors file.")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER_BYTES or 8 + n > size:
            raise CheckpointError(
                f"{path}: header claims {n} bytes but the file has {size}; the file is corrupt.")
        raw = f.read(n)
    if raw[:1] != b"{":
        raise CheckpointError(f"{path}: not a safetensors file (is it a pickle? rnnkit never "
                              "loads pickle).")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"{path}: the safetensors header is not valid JSON.") from None
    body = size - 8 - n
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            lo, hi = (int(x) for x in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"{path}: tensor {name!r} has no valid offsets.") from None
        if not 0 <= lo <= hi <= body:
            raise CheckpointError(f"{path}: tensor {name!r} offsets {lo}..{hi} lie outside the "
                                  f"{body}-byte data section; the file is corrupt.")
    return header


def load_weights(path: Path, expected: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Load tensors from a safetensors file and check names, shapes, dtype and finiteness
    against ``expected`` (a model's state_dict). Never builds a partial model."""
    path = Path(path)
    if not path.is_file():
        for suffix in PICKLE_SUFFIXES:
            if path.with_suffix(suffix).exists():
                raise CheckpointError(
                    f"{path}: missing; found {path.with_suffix(suffix).name}, a pickle-based "
                    "file, which rnnkit refuses to load because unpickling can run code.")
        raise CheckpointError(f"{path}: file not found.")
    _check_header(path)
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot read weights ({exc}).") from None
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise CheckpointError(f"{path}: weights do not match the model (missing {missing[:3]}, "
                              f"unexpected {extra[:3]}).")
    for name, ref in expected.items():
        t = tensors[name]
        if t.shape != ref.shape or t.dtype != ref.dtype:
            raise CheckpointError(
                f"{path}: tensor {name!r} has shape {tuple(t.shape)} {t.dtype}, the model "
                f"needs {tuple(ref.shape)} {ref.dtype}.")
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise CheckpointError(f"{path}: tensor {name!r} holds NaN or infinite weights.")
    return tensors
