"""Run folder format versions, and the migrations that read every earlier one (issue 14).

A run folder records the layout it was written in as ``format_version`` (an int) in
``config.json``. This release writes ``FORMAT_VERSION``. A folder from an earlier release is
brought up to it in memory by ``MIGRATIONS``, one small pure step per version (N -> N+1), so
one load path serves every release; loading never writes into the folder. A folder from a
newer release is refused naming both versions, since guessing at a layout we do not know could
load a model that predicts something else without saying so.

Versions:

1. rnnkit 0.1.0 before issue 14: ``"format": 1`` in config.json, no ``format_version``.
2. ``format_version`` replaces ``format``; the files are otherwise those of version 1.

A new version adds its number here, bumps ``FORMAT_VERSION`` and adds the step from the one
before to ``MIGRATIONS``; the reference folders in ``tests/data/runs/`` keep every
earlier release loading and predicting identically.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from rnnkit import __version__
from rnnkit.errors import CheckpointError

FORMAT_VERSION = 2
VERSION_KEY = "format_version"
LEGACY_KEY = "format"  # version 1 kept its version here, as the constant 1

Migration = Callable[[dict], dict]


def _v1_to_v2(cfg: dict) -> dict:
    """The version moves from ``format`` to ``format_version``; nothing else changed."""
    out = {k: v for k, v in cfg.items() if k != LEGACY_KEY}
    out[VERSION_KEY] = 2
    return out


# MIGRATIONS[n] turns a version-n config into a version-(n + 1) one, without changing its input
MIGRATIONS: dict[int, Migration] = {1: _v1_to_v2}


def version_of(cfg: dict, where: str | Path) -> int:
    """The format version of the run config ``cfg`` read from ``where`` (named in errors)."""
    if VERSION_KEY not in cfg:
        if type(cfg.get(LEGACY_KEY)) is int and cfg[LEGACY_KEY] == 1:
            return 1
        raise CheckpointError(f"{where}: not an rnnkit run config (no {VERSION_KEY}, format "
                              f"{cfg.get(LEGACY_KEY)!r}); pass a folder written by rnnkit fit "
                              "or Run.save.")
    version = cfg[VERSION_KEY]
    # bool is an int to Python, but `true` in the file is an edit, not a version
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{where}: {VERSION_KEY} must be a positive integer, got "
                              f"{_short(version)}; the file was edited or is corrupt, restore "
                              "it from a copy of the run folder.")
    return version


def upgrade(cfg: dict, version: int, migrations: Mapping[int, Migration] = MIGRATIONS,
            latest: int = FORMAT_VERSION) -> dict:
    """Apply ``migrations[version]``, ``migrations[version + 1]``, ... in that order, up to
    ``latest``. Pure: returns a new dict and leaves ``cfg`` as it was."""
    for step in range(version, latest):
        cfg = migrations[step](cfg)
    return cfg


def migrate(cfg: dict, where: str | Path) -> dict:
    """``cfg`` (config.json of a run folder at ``where``) in the layout this release reads,
    whatever release wrote it; a CheckpointError for a newer or malformed version."""
    version = version_of(cfg, where)
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{where}: {VERSION_KEY} {version}{_writer(cfg)} is newer than "
                              f"rnnkit {__version__} can read ({VERSION_KEY} "
                              f"{FORMAT_VERSION} at most); upgrade rnnkit (pip install "
                              "--upgrade rnnkit) to load it.")
    return upgrade(cfg, version)


def _writer(cfg: dict) -> str:
    """' (written by rnnkit X)' when the folder says so in a printable form, else ''."""
    found = cfg.get("versions")
    name = found.get("rnnkit") if isinstance(found, dict) else None
    if isinstance(name, str) and name.isprintable() and 0 < len(name) <= 40:
        return f" (written by rnnkit {name})"
    return ""


def _short(value: object) -> str:
    """``value`` for a one-line message: its repr, cut to 40 characters, with its type."""
    text = repr(value)
    text = text if len(text) <= 40 else text[:37] + "..."
    return f"{text} ({type(value).__name__})"


__all__ = ["FORMAT_VERSION", "MIGRATIONS", "migrate", "upgrade", "version_of"]
