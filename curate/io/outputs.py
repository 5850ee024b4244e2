"""Output folders that are either whole or absent: write beside the target, mark complete, rename into place.

Why: a run killed half-way (Ctrl-C twice, an out-of-memory kill, a closed laptop) must not leave a folder
that looks like a result. Every command that writes a folder (``export``, ``rebalance``, ``backgrounds``,
the pipeline's dataset stages, compare's training folders) writes it through :func:`atomic_output`:

- the files go into ``.<name>.curate-tmp-<pid>`` beside the target (same filesystem, so the rename is atomic);
- :data:`MARKER` is written last, into the temporary folder;
- the temporary folder is renamed onto the target (an existing target being replaced is first renamed
  aside to ``.<name>.curate-old-<pid>`` and removed after the swap).

A folder curate wrote is finished exactly when it holds :data:`MARKER` (:func:`is_complete`). Leftover
temporary folders of processes that no longer run are removed by the next write into the same parent
(:func:`remove_leftovers`); those of a live process are left alone, it may still be writing.

Files that are updated in place inside a resumable folder (train-and-compare's compare.json) go through
:func:`write_text_atomic`: a temporary file beside them, then ``os.replace``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from curate import __version__

#: Written last into a finished output folder; its absence means "not a result".
MARKER = ".curate-complete"

_LEFTOVER = re.compile(r"^\..+\.curate-(?:tmp|old)-(\d+)$")


def is_complete(folder: Path | str) -> bool:
    """True when ``folder`` is an output curate finished writing (it holds :data:`MARKER`)."""
    return (Path(folder) / MARKER).is_file()


def mark_complete(folder: Path | str, command: str) -> Path:
    """Write :data:`MARKER` into ``folder`` (atomically). Its content is fixed for a command and version, so
    two runs of a deterministic command give byte-identical folders."""
    path = Path(folder) / MARKER
    write_text_atomic(path, json.dumps({"command": command, "curate_version": __version__}) + "\n")
    return path


def unmark(folder: Path | str) -> None:
    """Remove :data:`MARKER`: the folder is being rewritten in place (a resumed train-and-compare)."""
    (Path(folder) / MARKER).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_leftovers(parent: Path) -> list[Path]:
    """Remove the temporary folders and files that killed writers left in ``parent`` (their PID no longer runs)."""
    removed = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for e in entries:
        m = _LEFTOVER.match(e.name)
        if m and not _alive(int(m.group(1))):
            if e.is_dir(follow_symlinks=False):
                shutil.rmtree(e.path, ignore_errors=True)
            else:
                Path(e.path).unlink(missing_ok=True)
            removed.append(Path(e.path))
    return removed


@contextmanager
def atomic_output(target: Path | str, command: str) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``target``; on success mark it complete and rename it onto
    ``target`` (replacing what is there); on any error remove it and leave ``target`` as it was.

    The caller has already decided that ``target`` may be written (:func:`curate.io.yolo.check_output_dir`).
    """
    target = Path(target).expanduser().absolute()
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(parent)
    tmp = parent / f".{target.name}.curate-tmp-{os.getpid()}"
    if tmp.exists():  # this process's own earlier attempt that failed
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
        mark_complete(tmp, command)
        _swap_in(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_in(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` onto ``target``: directly when there is nothing or an empty folder, else via an aside name."""
    try:
        os.replace(tmp, target)  # atomic; replaces an empty folder
        return
    except OSError:
        if not target.exists():
            raise
    old = target.parent / f".{target.name}.curate-old-{os.getpid()}"
    if old.exists():
        shutil.rmtree(old)
    os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def write_text_atomic(path: Path | str, text: str) -> Path:
    """Write ``text`` to ``path`` whole or not at all: a temporary file beside it, then ``os.replace``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.curate-tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
