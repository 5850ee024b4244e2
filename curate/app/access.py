"""A command's access to its dataset and to FiftyOne's database, each failure one line
(:func:`curate.app.console.fail`)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from curate.app.console import err, fail, plain, warn


def load(path: Path):
    """Load a dataset, turning a DatasetError into one line; print the reader's warnings."""
    from curate.io.yolo import DatasetError, load_yolo

    try:
        ds = load_yolo(path)
    except DatasetError as exc:
        fail(str(exc))
    for w in ds.warnings:
        warn(w)
    return ds


@contextlib.contextmanager
def locked(ds, command: str):
    """Hold ``ds``'s lock (:mod:`curate.io.locks`) for a command body; when another command holds it, say which
    and wait for it: two commands on one dataset would share its FiftyOne dataset and output folders."""
    from curate.io.locks import dataset_lock_path, hold

    def waiting(holder: str) -> None:
        err.print(plain(f"waiting for {holder} on {ds.root}…"), highlight=False, soft_wrap=True)

    with hold(dataset_lock_path(ds.slug), command=f"curate {command}", on_wait=waiting):
        yield


@contextlib.contextmanager
def database_errors():
    """FiftyOne's database unreachable or not starting (:class:`curate.fiftyone.database.DatabaseError`): one
    line, exit 1."""
    from curate.fiftyone.database import DatabaseError

    try:
        yield
    except DatabaseError as exc:
        fail(str(exc))


def connect() -> None:
    """Connect to FiftyOne's database before a command's FiftyOne work
    (:func:`curate.fiftyone.database.connect_database`)."""
    from curate.fiftyone.database import connect_database

    with database_errors():
        connect_database()
