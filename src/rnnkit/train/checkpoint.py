"""Checkpoints during training: the loop's whole state, published atomically, never pickle.

A run folder while it trains::

    RUN/.lock                             the writer's lock (rnnkit.lock)
    RUN/checkpoints/run.json              how to resume: data file (size, sha256), options,
                                          model config and pipeline
    RUN/checkpoints/ckpt-000012-000003/   epoch 12 after 3 optimizer steps (an interrupt)
    RUN/checkpoints/ckpt-000012-end/      epoch 12 complete
        state.safetensors                 every tensor (see train/snapshot.py)
        state.json                        the rest, with the size and sha256 of the tensors
    RUN/checkpoints/LATEST                name of the newest published checkpoint

Publishing: both files go into ``.tmp-<name>-<pid>-<random>/`` and are fsynced with it; the
folder is renamed to its final name and ``checkpoints/`` fsynced; LATEST is replaced atomically;
then all but the newest ``keep`` are removed (renamed away first, so a half-deleted folder never
looks like a checkpoint). A kill at any moment leaves every ``ckpt-*`` folder complete: its
state.json parses and the sha256 it records matches state.safetensors. Resume takes the newest
complete one (LATEST names it, or one before it after a kill between rename and LATEST) and
warns, naming both, when it must skip a newer one that is not complete. When the run finishes
and its final files are saved, ``checkpoints/`` is removed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import secrets
import shutil
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from rnnkit import __version__
from rnnkit.config import TrainConfig
from rnnkit.errors import CheckpointError, TrainingError
from rnnkit.persist import (
    atomic_write_bytes,
    check_header,
    dumps,
    fsync_dir,
    loads,
    storage_error,
)
from rnnkit.train import fault_hooks
from rnnkit.train.signals import Interrupted, SignalGuard
from rnnkit.train.snapshot import Position, Snapshot

FORMAT = 1
FOLDER, RECORD, LATEST = "checkpoints", "run.json", "LATEST"
TENSORS, META = "state.safetensors", "state.json"
AUTO_AFTER_SECONDS = 60.0  # checkpoint_every=None: every epoch once training runs this long
_NAME = re.compile(r"ckpt-(\d{6,})-(\d{6,}|end)")
STAGES = ("partial_write", "tmp_written", "renamed", "published", "latest", "pruning")


class CheckpointWarning(UserWarning):
    """Resume skipped a checkpoint that is not complete (the message names it)."""


# --- names ---------------------------------------------------------------------------------
def name_of(key: tuple[int, int, bool]) -> str:
    epoch, step, done = key
    return f"ckpt-{epoch:06d}-{'end' if done else f'{step:06d}'}"


def _order(name: str) -> tuple[int, int, int] | None:
    """Sort key (chronological) of a checkpoint folder name, None for anything else."""
    m = _NAME.fullmatch(name)
    if not m:
        return None
    done = m.group(2) == "end"
    return int(m.group(1)), int(done), 0 if done else int(m.group(2))


def _names(folder: Path) -> list[str]:
    """Checkpoint folder names in ``folder``, oldest first."""
    try:
        found = [p.name for p in folder.iterdir() if _order(p.name) and p.is_dir()]
    except OSError:
        return []
    return sorted(found, key=lambda n: _order(n) or (0, 0, 0))


# --- test hooks: fault injection, read from the environment at each save -------------------


# --- writing -------------------------------------------------------------------------------
def publish(folder: Path, snap: Snapshot, keep: int, count: int = 1,
            interrupt: bool = False) -> Path:
    """Write ``snap`` as ``folder/ckpt-...`` atomically, point LATEST at it, keep the newest
    ``keep``. Refuses (TrainingError) to write non-finite weights or optimizer state.
    ``count`` (saves so far) and ``interrupt`` (saving after a signal) serve the test hooks."""
    _refuse_non_finite(snap)
    name = name_of(snap.key)
    final = folder / name
    data, meta = _encode(snap)
    stage = functools.partial(fault_hooks.save_stage, count=count, interrupt=interrupt)
    tmp = folder / f".tmp-{name}-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        _write_folder(tmp, data, meta, stage)
        stage("tmp_written")
        _rename_into_place(tmp, final)
        stage("renamed")
        fsync_dir(folder)
        stage("published")
        with _naming(final):
            atomic_write_bytes(folder / LATEST, f"{name}\n".encode())
        stage("latest")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _prune(folder, keep, stage)
    return final


def _refuse_non_finite(snap: Snapshot) -> None:
    for name, tensor in snap.tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise TrainingError(f"not saving a checkpoint: tensor {name} holds NaN or infinite "
                                "values; the last good checkpoint is kept as it was.")


def _encode(snap: Snapshot) -> tuple[bytes, dict]:
    """The safetensors bytes of ``snap`` and its state.json, which records their size and
    sha256 (what makes a checkpoint complete)."""
    from safetensors.torch import save

    data = save({k: v.detach().contiguous().cpu() for k, v in snap.tensors.items()},
                metadata={"format": str(FORMAT)})
    meta = {**snap.meta, "format": FORMAT, "kind": "rnnkit-checkpoint", "rnnkit": __version__,
            "torch": torch.__version__,
            TENSORS: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}}
    return data, meta


@contextlib.contextmanager
def _naming(path: Path) -> Iterator[None]:
    """A failed write in the block becomes one line naming ``path`` (StorageError)."""
    try:
        yield
    except OSError as exc:
        raise storage_error(path, exc) from None


def _write_folder(tmp: Path, data: bytes, meta: dict, stage: Callable[[str], None]) -> None:
    """Both files into the new folder ``tmp``, each fsynced, then the folder itself."""
    with _naming(tmp):
        tmp.mkdir()
    with _naming(tmp / TENSORS):
        _write_synced(tmp / TENSORS, data, lambda: stage("partial_write"))
    with _naming(tmp / META):
        _write_synced(tmp / META, dumps(meta))
        fsync_dir(tmp)


def _write_synced(path: Path, data: bytes, halfway: Callable[[], None] | None = None) -> None:
    """Write a new file and fsync it; ``halfway`` runs with half of it written (where a test
    hook kills the process to leave a torn file)."""
    with open(path, "xb") as f:
        if halfway is not None:
            f.write(data[: len(data) // 2])
            f.flush()
            halfway()
            data = data[len(data) // 2 :]
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _rename_into_place(tmp: Path, final: Path) -> None:
    """Rename the written folder to its final name (a complete copy already there stays)."""
    with _naming(final):
        if final.exists() and _complete(final):
            # This position was saved before (the same state: training is deterministic);
            # keep that copy rather than leave a moment with no checkpoint under its name.
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            if final.exists():
                _remove(final)
            os.rename(tmp, final)


def _prune(folder: Path, keep: int, stage: Callable[[str], None]) -> None:
    """Remove all but the newest ``keep`` checkpoints, each renamed away first so that a
    half-deleted folder never looks like a checkpoint."""
    # Pruning is housekeeping: the new checkpoint is published, so a failure here (a full
    # disk cannot fail a rename) must not fail the save; leftovers go at the next start.
    for old in _names(folder)[:-keep]:
        with contextlib.suppress(OSError):
            trash = _set_aside(folder / old, "trash")
            stage("pruning")
            shutil.rmtree(trash, ignore_errors=True)


def _complete(path: Path) -> bool:
    try:
        read_checkpoint(path)
    except CheckpointError:
        return False
    return True


def _set_aside(path: Path, why: str) -> Path:
    """Rename a checkpoint folder out of the candidates (atomic), returning its new path."""
    aside = path.with_name(f".{why}-{path.name}-{os.getpid()}-{secrets.token_hex(4)}")
    os.rename(path, aside)
    return aside


# --- reading -------------------------------------------------------------------------------
def read_checkpoint(path: Path) -> Snapshot:
    """Load one checkpoint folder after checking it is complete (CheckpointError otherwise)."""
    meta = loads(path / META)
    tensor_file = path / TENSORS
    try:
        if meta.get("kind") != "rnnkit-checkpoint" or meta.get("format") != FORMAT:
            raise CheckpointError(f"{path / META}: not an rnnkit checkpoint (format "
                                  f"{meta.get('format')!r}).")
        want_size, want_sha = int(meta[TENSORS]["size"]), str(meta[TENSORS]["sha256"])
    except (AttributeError, KeyError, TypeError, ValueError):
        raise CheckpointError(f"{path / META}: has no valid record of {TENSORS}.") from None
    try:
        size = tensor_file.stat().st_size
        if size != want_size:
            raise CheckpointError(f"{tensor_file}: {size} bytes, but {META} records {want_size}"
                                  "; the file is truncated or was replaced.")
        digest = hashlib.sha256()
        with open(tensor_file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except FileNotFoundError:
        raise CheckpointError(f"{tensor_file}: missing.") from None
    if digest.hexdigest() != want_sha:
        raise CheckpointError(f"{tensor_file}: its sha256 does not match {META} (a changed or "
                              "flipped byte); the file is corrupt.")
    check_header(tensor_file)
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(tensor_file))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{tensor_file}: cannot read tensors ({exc}).") from None
    return Snapshot(tensors, meta, path)


def latest_complete(run: Path) -> tuple[Snapshot | None, list[tuple[Path, str]]]:
    """The newest complete checkpoint of ``run`` and the newer ones skipped, with why."""
    skipped: list[tuple[Path, str]] = []
    folder = Path(run) / FOLDER
    for name in reversed(_names(folder)):
        try:
            return read_checkpoint(folder / name), skipped
        except CheckpointError as exc:
            skipped.append((folder / name, str(exc)))
    return None, skipped


# --- during training -----------------------------------------------------------------------
class Checkpointer:
    """When and where the loop saves, and whether a signal asks it to stop.

    every: save every N epochs; None saves every epoch once training has run for a minute,
    0 only on an interrupt. keep: how many checkpoints stay on disk.
    """

    def __init__(self, run: Path, every: int | None, keep: int, guard: SignalGuard,
                 resumed: Snapshot | None = None, writer: bool = True) -> None:
        self.run, self.folder = Path(run), Path(run) / FOLDER
        self.every, self.keep, self.guard = every, keep, guard
        self.writer = writer  # False in DDP processes other than rank 0: they never write
        self.saves = 0
        self.last: tuple[tuple[int, int, bool], Path] | None = None
        if resumed is not None and resumed.source is not None:
            self.last = (resumed.key, resumed.source)
        self._hook = fault_hooks.interrupt_at()

    def due(self, epoch: int, seconds: float) -> bool:
        if self.every is None:
            return seconds > AUTO_AFTER_SECONDS
        return self.every > 0 and epoch % self.every == 0

    def signal(self, pos: Position) -> int | None:
        """The signal that asks the loop to stop at ``pos``, if any."""
        if self.guard.signum is not None:
            return self.guard.signum
        if self._hook is not None and self._hook[0] == pos.epoch and (
                (self._hook[1] is None and pos.done)
                or (self._hook[1] == pos.step and not pos.done)):
            self._hook = None
            return int(signal.SIGINT)
        return None

    def save(self, snap: Snapshot, interrupt: bool = False) -> Path:
        """Publish ``snap`` (once per position) and return its folder."""
        if self.last is not None and self.last[0] == snap.key:
            return self.last[1]
        if not self.writer:
            return self.folder / name_of(snap.key)
        self.saves += 1
        path = publish(self.folder, snap, self.keep, self.saves, interrupt)
        self.last = (snap.key, path)
        return path

    def interrupted(self, snap: Snapshot, signum: int) -> Interrupted:
        """Save ``snap`` and return the exception that ends the run."""
        path = self.save(snap, interrupt=True)
        epoch, step, _ = snap.key
        return Interrupted(signum, epoch, step, path, self.run)


@contextlib.contextmanager
def session(run: str | Path | None, cfg: TrainConfig, record: dict | None,
            resumed: Snapshot | None, writer: bool = True) -> Iterator[Checkpointer | None]:
    """Set up checkpointing for one training session of ``run`` (None: no checkpoints).

    A fresh run (``record`` given) starts an empty ``checkpoints/`` holding ``run.json``; a
    resumed one only sweeps leftovers of interrupted saves. Signals are caught for the block.
    writer=False (DDP ranks other than 0): nothing is written, signals are still caught.
    """
    if run is None:
        yield None
        return
    if not writer:  # another DDP process writes; this one only follows its signals
        with SignalGuard() as guard:
            yield Checkpointer(Path(run), cfg.checkpoint_every, cfg.keep_checkpoints, guard,
                               resumed, writer=False)
        return
    folder = Path(run) / FOLDER
    try:
        if record is not None:
            _remove(folder)
            folder.mkdir(parents=True)
            atomic_write_bytes(folder / RECORD, dumps(record))
        for leftover in folder.glob(".tmp-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        for leftover in folder.glob(".trash-*"):
            shutil.rmtree(leftover, ignore_errors=True)
    except OSError as exc:
        raise storage_error(folder, exc, "prepare") from None
    with SignalGuard() as guard:
        yield Checkpointer(Path(run), cfg.checkpoint_every, cfg.keep_checkpoints, guard, resumed)


def _remove(path: Path) -> None:
    """Delete a folder by renaming it away first (atomic), then removing the renamed copy."""
    if path.exists():
        shutil.rmtree(_set_aside(path, "trash"), ignore_errors=True)


def finish(run: str | Path) -> None:
    """The run is saved: its checkpoints are no longer needed."""
    _remove(Path(run) / FOLDER)
    for leftover in Path(run).glob(".trash-*"):
        shutil.rmtree(leftover, ignore_errors=True)
