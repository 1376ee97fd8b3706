"""One writer per run folder: ``RUN/.lock`` names the owner, a kernel lock enforces it.

The exclusion itself is an ``flock`` on the lock file, which the kernel drops when its process
ends, however it ends (kill -9 included). So a lock file left behind by a dead process is stale
by construction and is simply taken over, and no pid is ever guessed alive or dead (pids are
reused). The file's text -- pid, host, start time -- only serves the message that refuses a
second writer.

    with run_lock("runs/sun"):
        ...  # write the run folder
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from rnnkit.errors import RunLocked
from rnnkit.persist import storage_error

try:
    import fcntl
except ImportError:  # Windows: msvcrt's byte-range lock, also dropped when the process ends
    fcntl = None  # type: ignore[assignment]
    import msvcrt

LOCK_NAME = ".lock"
_HELD: dict[Path, int] = {}  # run folders this process holds the lock of -> the file's fd


def _forget_after_fork() -> None:
    """In a forked child: close its copies of the lock files. An flock stays held while any
    process has the file open, so a child that kept them (a control trained beside the fit, a
    data loader's worker) would hold the run folder after its parent died, kill -9 included.
    The child owns no lock and writes no run folder."""
    for fd in _HELD.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


if hasattr(os, "register_at_fork"):  # runs in the child before any of its Python code
    os.register_at_fork(after_in_child=_forget_after_fork)



@contextlib.contextmanager
def run_lock(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold the writer's lock of ``folder`` (created if needed) for the ``with`` block.

    Raises RunLocked naming the owner when another process holds it (a second lock taken in the
    same process is refused too), and StorageError when the folder cannot be created or
    written (read-only, full). Folders it created and that are still empty at the end are
    removed again.
    """
    folder = Path(folder)
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(folder, exc, "create the run folder") from None
    path = folder / LOCK_NAME
    try:
        fd = _acquire(path)
    except BaseException:
        _remove_empty(created)
        raise
    key, owner = folder.resolve(), os.getpid()
    _HELD[key] = fd
    try:
        yield path
    finally:
        if os.getpid() == owner:  # a forked child leaving the block: the lock is not its own
            _release(key, path, fd, created)


def _release(key: Path, path: Path, fd: int, created: list[Path]) -> None:
    _HELD.pop(key, None)
    # unlink while still holding the lock, so nobody can lock the old file after us
    with contextlib.suppress(OSError):
        os.unlink(path)
    os.close(fd)
    # A fit refused for bad input wrote nothing and leaves nothing behind: the folders made
    # above go again if still empty (rmdir never removes a folder with files in it).
    _remove_empty(created)


@contextlib.contextmanager
def writing(folder: str | os.PathLike[str]) -> Iterator[None]:
    """Hold ``folder``'s lock for a write, unless this process holds it already (``fit`` saves
    its run inside its own lock; ``Run.save`` called directly takes it here)."""
    if Path(folder).resolve() in _HELD:
        yield
        return
    with run_lock(folder):
        yield


def _remove_empty(folders: list[Path]) -> None:
    for made in folders:  # deepest first
        try:
            made.rmdir()
        except OSError:
            return


def _acquire(path: Path) -> int:
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise storage_error(path, exc, "lock the run folder with") from None
        try:
            _lock(fd)
        except OSError:
            owner = _owner(fd)
            os.close(fd)
            raise RunLocked(
                f"run folder {path.parent} is in use by another rnnkit process ({owner}); wait "
                "for it to finish, or write to another folder (--out)."
            ) from None
        # The previous owner may have unlinked the file between our open and our flock; then
        # we hold a lock on a file nobody else will look at, so start again.
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    text = f"pid {os.getpid()}\nhost {socket.gethostname()}\nsince {stamp}\n"
    try:
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, text.encode())
    except OSError as exc:
        os.close(fd)
        raise storage_error(path, exc) from None
    return fd


def _lock(fd: int) -> None:
    """Take the kernel lock of ``fd`` without waiting; OSError if another process holds it."""
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    else:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)


def _owner(fd: int) -> str:
    """'pid 123 on host, since ...' from a lock file, or a neutral phrase if unreadable."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        fields = dict(line.split(" ", 1) for line in os.read(fd, 4096).decode().splitlines()
                      if " " in line)
    except (OSError, UnicodeDecodeError, ValueError):
        fields = {}
    if "pid" not in fields:
        return "owner unknown"
    return (f"pid {fields['pid']} on {fields.get('host', '?')}, since "
            f"{fields.get('since', '?')}")


def holder(folder: str | os.PathLike[str]) -> int | None:
    """The pid written in ``folder``'s lock file, or None (for messages and tests)."""
    try:
        text = (Path(folder) / LOCK_NAME).read_text()
    except (OSError, UnicodeDecodeError):
        return None
    for line in text.splitlines():
        if line.startswith("pid "):
            with contextlib.suppress(ValueError):
                return int(line[4:])
    return None
