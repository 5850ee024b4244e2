"""Advisory file locks: one curate command per dataset at a time, one start of a local database at a time.

Why: two commands on one dataset share its FiftyOne dataset (one audit deletes and rebuilds it while the
other tags or exports it) and its default output folder. The second command waits for the first and says
so in one line naming it (``waiting for `curate audit` (PID 1234) on <root>…``).

Why ``fcntl.flock``: the kernel drops the lock when its holder exits, however it exits (SIGKILL, a
crash), so a lock left by a dead process is free again without guessing whether a PID is still alive.
The lock file is never deleted (deleting a locked file lets a third process lock a new file of the same
name); it only holds who has the lock, as JSON, for the waiting command's message.

Lock files live outside the user's dataset: dataset locks under ``<cache root>/locks/<slug>.lock``, so two
commands meet only when they share a cache root (``$CURATE_CACHE_DIR``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

from curate.io.cache import cache_root

#: How often a waiting command retries a lock that has a timeout.
POLL_S = 0.2


class LockTimeout(Exception):
    """The lock stayed held longer than the caller would wait (one line naming the holder)."""


def dataset_lock_path(slug: str) -> Path:
    """The lock file of a dataset (:attr:`curate.core.dataset.Dataset.slug`), outside the dataset's folder."""
    return cache_root() / "locks" / f"{re.sub(r'[^A-Za-z0-9._-]', '_', slug)}.lock"


def describe_holder(path: Path) -> str:
    """Who holds the lock ``path``: ```curate audit` (PID 1234)``, or ``another process`` when it has not
    written its name yet (it writes right after locking) or the file is unreadable."""
    for _ in range(10):  # the holder locks, then writes: give it a moment
        try:
            info = json.loads(Path(path).read_text(encoding="utf-8"))
            return f"`{info['command']}` (PID {info['pid']})"
        except (OSError, ValueError, KeyError, TypeError):
            time.sleep(0.05)
    return "another process"


def command_line() -> str:
    """``curate <subcommand>`` of this process: what a waiting command names."""
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    return f"curate {args[0]}" if args else "curate"


@contextlib.contextmanager
def hold(
    path: Path,
    *,
    command: str | None = None,
    on_wait: Callable[[str], None] | None = None,
    timeout: float | None = None,
) -> Iterator[None]:
    """Hold the exclusive lock ``path`` for the ``with`` block, waiting while another process holds it.

    ``on_wait(holder)`` is called once, before waiting, with :func:`describe_holder`'s text. With
    ``timeout`` (seconds), :class:`LockTimeout` is raised when the lock is still held then; without it the
    wait lasts until the holder finishes (Ctrl-C stops it). ``command`` is what a waiting process is told
    this process is (default :func:`command_line`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = describe_holder(path)
            if on_wait is not None:
                on_wait(holder)
            _wait(fd, timeout, lambda: f"{holder} still holds {path} after {timeout:.0f} s")
        info = {"pid": os.getpid(), "command": command or command_line(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode("utf-8"), 0)
        yield
    finally:
        os.close(fd)  # closing the only descriptor releases the lock


def _wait(fd: int, timeout: float | None, message: Callable[[], str]) -> None:
    """Block until ``fd`` is locked; with a ``timeout``, poll and raise :class:`LockTimeout` past it."""
    if timeout is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise LockTimeout(message()) from None
            time.sleep(POLL_S)
