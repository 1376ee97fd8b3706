"""What an unfinished run folder allows: continuing it, never wiping it, and checking that its
data and checkpoints are the ones it was trained with.

``rnnkit.api`` asks these questions before it trains; ``train/checkpoint.py`` owns the files.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any

from rnnkit.errors import CheckpointError
from rnnkit.persist import atomic_write_bytes
from rnnkit.train.checkpoint import (
    FOLDER,
    LATEST,
    RECORD,
    CheckpointWarning,
    _set_aside,
    latest_complete,
)
from rnnkit.train.snapshot import Snapshot


def resumable(run: str | Path) -> bool:
    """Whether ``run`` holds an unfinished run with a complete checkpoint to continue."""
    return (Path(run) / FOLDER / RECORD).is_file() and latest_complete(Path(run))[0] is not None


def refuse_unfinished(run: str | Path) -> None:
    """A fresh fit must not wipe a run that can still be resumed."""
    snap, _ = latest_complete(Path(run))
    if snap is not None:
        epoch, step, done = snap.key
        where = f"epoch {epoch} complete" if done else f"epoch {epoch} step {step}"
        raise CheckpointError(
            f"{run} holds an unfinished run (checkpoint {snap.source}, {where}); continue it "
            f"with: rnnkit fit --resume {run}; or write to another folder (--out); or delete "
            f"{Path(run) / FOLDER} to start over.")


def set_aside_skipped(run: Path, good: Snapshot, skipped: list[tuple[Path, str]]) -> None:
    """Warn about each newer checkpoint that is not complete and move it out of the way."""
    for bad, why in skipped:
        aside = _set_aside(bad, "corrupt")
        warnings.warn(CheckpointWarning(
            f"checkpoint {bad} is not usable ({why}); resuming from {good.source} instead "
            f"(the unusable one was moved to {aside.name})."), stacklevel=3)
    if skipped and good.source is not None:
        atomic_write_bytes(Path(run) / FOLDER / LATEST, f"{good.source.name}\n".encode())


def fingerprint(path: Path) -> dict[str, Any]:
    """Size and sha256 of a data file: resume refuses data that changed."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"size": path.stat().st_size, "sha256": digest.hexdigest()}
