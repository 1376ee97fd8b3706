"""rnnkit's own exception types.

Every message has three parts: what was received, what was expected, and how to fix it, naming
the file, column, row or argument involved. The CLI maps ``exit_code`` to its exit status:
2 for bad input or usage, 1 for failures at run time.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class RnnkitError(Exception):
    """Base class of every error rnnkit raises on purpose."""

    exit_code = 1


class DataError(RnnkitError, ValueError):
    """The input data cannot be used as given (missing file or column, bad cell, too short)."""

    exit_code = 2


class ConfigError(RnnkitError, ValueError):
    """An option has a value rnnkit does not support."""

    exit_code = 2


class CheckpointError(RnnkitError):
    """A saved run or checkpoint is missing, malformed or unsafe to load."""

    exit_code = 2


class TrainingError(RnnkitError):
    """Training failed at run time (for example the loss became NaN)."""

    exit_code = 1


class StorageError(RnnkitError):
    """A file could not be written (disk full, file size limit, read-only folder). Exit 1: the
    input was fine, the machine refused; whatever was published before is still intact."""

    exit_code = 1


class RunLocked(RnnkitError):
    """Another process is writing the run folder. Exit 1: retry when it has finished."""

    exit_code = 1


class FewPointsWarning(UserWarning):
    """The data is enough to train and score, but the scores (and the verdict against the
    baselines) rest on fewer forecasts than make them reliable. The CLI prints it as one
    ``rnnkit: warning:`` line; the run goes on."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ' Did you mean 'x'?' for the nearest choice, or '' when none is close."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.5)
    if not close:
        lowered = {str(c).lower(): str(c) for c in choices}
        if str(name).lower() in lowered:
            close = [lowered[str(name).lower()]]
    return f" Did you mean '{close[0]}'?" if close else ""
