"""Files on disk: atomic publishing and safe loading. No pickle on any path.

Weights go to safetensors, everything else to JSON. A file is written under a unique temporary
name in the same folder, flushed, fsynced and renamed over the final name, then the folder is
fsynced: a crash leaves the old file or the new one, never a torn file under the final name.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import struct
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from rnnkit.errors import CheckpointError, StorageError

if TYPE_CHECKING:
    from rnnkit.config import ModelConfig

MAX_JSON_BYTES = 64 * 1024 * 1024
MAX_HEADER_BYTES = 16 * 1024 * 1024
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin")



def storage_error(path: Path, exc: OSError, what: str = "write") -> StorageError:
    """One-line StorageError naming ``path``, the system's reason and a way out."""
    reason = exc.strerror or str(exc)
    fix = {errno.ENOSPC: "free some disk space", errno.EDQUOT: "free some disk space",
           errno.EFBIG: "raise the file size limit (ulimit -f) or free space",
           errno.EROFS: "write to another folder (--out)",
           errno.EACCES: "check the folder's permissions or write to another folder (--out)",
           errno.EPERM: "check the folder's permissions or write to another folder (--out)",
           }.get(exc.errno or 0, "check the disk and the folder's permissions")
    return StorageError(f"cannot {what} {path}: {reason}; {fix}. Files published before are "
                        "intact.")


def fsync_dir(folder: Path) -> None:
    """fsync a folder so a rename inside it survives a power cut (best effort)."""
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


def _new_file_mode() -> int:
    """The mode ``open()`` gives a new file: 0o666 less the process umask."""
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Publish ``data`` at ``path`` atomically (temp file, fsync, rename, fsync folder).

    Raises StorageError (naming ``path``) when the system refuses the write; the old file, if
    any, is left as it was and the temporary file is removed.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise storage_error(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as f:
            # mkstemp creates the file 0600; the published file should be as readable as any
            # file the user creates (plots and metrics get shared), so give it the umask's mode.
            os.chmod(tmp, _new_file_mode())
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise storage_error(path, exc) from None
        raise
    fsync_dir(path.parent)


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def json_ready(o: Any) -> Any:
    """Plain JSON values: NaN and infinity become null (so any JSON reader can load what we
    write), numpy scalars and arrays become Python numbers and lists, keys strings."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {str(k): json_ready(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [json_ready(v) for v in o]
    if hasattr(o, "tolist"):
        return json_ready(o.tolist())
    return o


def write_json(path: Path, obj: Any) -> None:
    text = json.dumps(json_ready(json.loads(json.dumps(obj, default=_json_default))),
                      indent=2)
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
    atomic_write_bytes(path, _sorted_metadata(data))


def _sorted_metadata(data: bytes) -> bytes:
    """safetensors writes ``__metadata__`` from a Rust HashMap, in an order that changes from
    process to process, so two identical seeded runs wrote different model.safetensors bytes.
    Re-emit the header with the metadata keys sorted: same content and length, same offsets."""
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    meta = header.get("__metadata__")
    if not meta:
        return data
    header["__metadata__"] = dict(sorted(meta.items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(text) > n:  # never the case for a reordering; keep the library's bytes if it were
        return data
    return data[:8] + text.ljust(n, b" ") + data[8 + n :]


def check_header(path: Path) -> dict:
    """Validate the safetensors header ourselves before the library maps the file, so a
    hostile size or offset cannot make us allocate or read past the end."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path}: too short to be a safetensors file.")
        (n,) = struct.unpack("<Q", head)
        # A safetensors header length of 640 (bytes 80 02 ...) also reads as "pickle protocol
        # 2": only a file that is not a plausible safetensors file (length fits, then '{') is
        # named a pickle, or valid runs would be refused.
        plausible = n <= MAX_HEADER_BYTES and 8 + n <= size and f.read(1) == b"{"
        f.seek(8)
        if not plausible and looks_like_pickle(head):
            raise CheckpointError(f"{path}: is a pickle or torch.save file, not safetensors; "
                                  "rnnkit never unpickles (unpickling can run code). Export the "
                                  "weights with safetensors.torch.save_file.")
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


def looks_like_pickle(head: bytes) -> bool:
    """True for the first bytes of a pickle (protocol 2+) or of a torch.save zip archive."""
    return (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5) or head[:4] == b"PK\x03\x04"


def min_weight_bytes(cfg: ModelConfig) -> int:
    """A lower bound on the bytes of float32 weights any model of ``cfg`` stores: every layer
    has at least a hidden x hidden recurrent matrix, the first a hidden x input one, the head a
    hidden x outputs one and a windowed linear path a window x outputs one. Loaders compare it
    with the file size before building anything, so a config edited to an absurd size is refused
    without allocating it."""
    h, outputs = cfg.units, cfg.horizon * cfg.output_size
    count = cfg.num_layers * h * h + h * cfg.input_size + h * outputs
    if cfg.linear_path and cfg.head == "last":
        count += (cfg.window or 0) * cfg.input_size * outputs
    return 4 * count


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
    check_header(path)
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot read weights ({exc}).") from None
    check_tensors(tensors, expected, f"{path}: ")  # names as in the model's state_dict
    return tensors


def check_tensors(found: dict[str, torch.Tensor], expected: dict[str, torch.Tensor],
                  where: str = "", prefix: str = "", noun: str = "weights") -> None:
    """Refuse tensors that do not match ``expected`` name for name, in shape and dtype, or hold
    NaN/inf: a model is only ever built from a complete, finite set of weights.

    where: leads every message (a file name); prefix: the group the names belong to in a
    checkpoint (``model.``); noun: what the tensors are, for the message.
    """
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    if missing or extra:
        group = f"{prefix}* tensors" if prefix else noun
        raise CheckpointError(f"{where}{group} do not match the model (missing {missing[:3]}, "
                              f"unexpected {extra[:3]}).")
    for name, ref in expected.items():
        t = found[name]
        shown = f"{prefix}{name}" if prefix else repr(name)
        if t.shape != ref.shape or t.dtype != ref.dtype:
            raise CheckpointError(
                f"{where}tensor {shown} has shape {tuple(t.shape)} {t.dtype}, the model "
                f"needs {tuple(ref.shape)} {ref.dtype}.")
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise CheckpointError(f"{where}tensor {shown} holds NaN or infinite {noun}.")


# --- JSON that keeps NaN and infinity (history and early stopping hold them) ---------------
def dumps(obj: Any) -> bytes:
    """Strict JSON; non-finite floats become {"$float": "nan" | "inf" | "-inf"}."""
    def enc(o: Any) -> Any:
        if isinstance(o, float) and not math.isfinite(o):
            return {"$float": repr(o)}
        if isinstance(o, dict):
            return {str(k): enc(v) for k, v in o.items()}
        if isinstance(o, list | tuple):
            return [enc(v) for v in o]
        if hasattr(o, "item"):  # numpy scalars
            return enc(o.item())
        return o
    return json.dumps(enc(obj), allow_nan=False).encode()


def loads(path: Path) -> Any:
    """Parse a JSON file written by ``dumps``; CheckpointError naming it if it is not one."""
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise CheckpointError(f"{path}: {size} bytes is too large for a checkpoint's JSON.")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing.") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read ({exc.strerror}).") from None

    def dec(d: dict) -> Any:
        return float(d["$float"]) if set(d) == {"$float"} else d

    def refuse(name: str) -> None:
        raise ValueError(f"bare {name} is not JSON")
    try:
        return json.loads(raw.decode("utf-8"), object_hook=dec, parse_constant=refuse)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CheckpointError(f"{path}: not valid JSON; the file is corrupt (or not rnnkit's)."
                              ) from None
