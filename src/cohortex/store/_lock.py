"""One writer at a time: advisory locks on a store and on a writer's temporary folder."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from .._errors import CohortexError
from ._schema import LOCK

__all__ = ["LOCK_TIMEOUT", "held_lock", "store_lock", "try_lock"]


# seconds a writer waits for another writer of the same store (a reader: for a writer)
LOCK_TIMEOUT = 120.0


try:
    import fcntl
except ImportError:  # not POSIX: stores are not locked (one writer at a time is the user's)
    fcntl = None  # type: ignore[assignment]


# the stores this thread holds exclusively: it does not lock them again (another thread, with a
# lock file descriptor of its own, waits like another process)
_held = threading.local()


@contextlib.contextmanager
def store_lock(root: Path, *, exclusive: bool, what: str) -> Iterator[None]:
    """One writer at a time: an advisory lock on ``root/.cohortex.lock``.

    Writers (append, results, replacing the store) hold it exclusively; readers hold it shared
    while they read the store's metadata, so they never meet a half-done append. Either waits
    up to :data:`LOCK_TIMEOUT` for the other, then fails with a clear error. A thread that
    holds a store exclusively does not lock it again. A reader of a store it cannot lock (read
    only) goes without.
    """
    key = str(root.resolve())
    held: set[str] = _held.__dict__.setdefault("stores", set())
    if fcntl is None or key in held:
        yield
        return
    try:
        fd = os.open(root / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    except OSError as error:
        if exclusive:
            raise CohortexError(
                f"Cannot {what} the store at {str(root)!r}: its lock file cannot be opened "
                f"({error})."
            ) from None
        yield
        return
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise CohortexError(
                        f"Cannot {what} the store at {str(root)!r}: another process has been "
                        f"writing to it for over {LOCK_TIMEOUT:.0f} s. Try again once it has "
                        "finished."
                    ) from None
                time.sleep(0.05)
        if exclusive:
            held.add(key)
        try:
            yield
        finally:
            held.discard(key)
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def try_lock(path: Path) -> Iterator[bool]:
    """Take an exclusive lock on ``path`` without waiting: True if no one holds it."""
    if fcntl is None:
        yield False
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
    except FileNotFoundError:  # a folder whose writer never got to lock it: stale if not new
        yield time.time() - path.parent.stat().st_mtime > 60
        return
    except OSError:
        yield False
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        yield False
        return
    try:
        yield True
    finally:
        os.close(fd)


@contextlib.contextmanager
def held_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (a writer's temporary folder) while working in it."""
    if fcntl is None:
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
