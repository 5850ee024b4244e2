"""Reach FiftyOne's database before a command's FiftyOne work: ping a configured server, start or join the local one.

We never touch FiftyOne's configuration: whatever database the user configured (``FIFTYONE_DATABASE_DIR``,
``FIFTYONE_DATABASE_URI`` for a team's shared MongoDB…) is the one used.

A server that is down, or two processes starting the local mongod at once, fail here with one line
(:class:`DatabaseError`) instead of pymongo's 30 s waits and dumps.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from curate.io import locks

if TYPE_CHECKING:
    from concurrent.futures import Future

#: Seconds a ``FIFTYONE_DATABASE_URI`` server has to answer a ping before a command stops.
URI_TIMEOUT_S = 5.0
#: Seconds to wait for another process starting the local database (a cold start is ~8 s; FiftyOne's
#: own wait for mongod's port is 60 s).
START_WAIT_S = 120.0
#: The lock file, inside FiftyOne's database folder, held while the local database is started.
START_LOCK = "curate-start.lock"


class DatabaseError(Exception):
    """FiftyOne's database cannot be reached or started (one line for the CLI, naming the server or folder)."""


def check_server(timeout_s: float = URI_TIMEOUT_S) -> None:
    """With ``FIFTYONE_DATABASE_URI`` (or FiftyOne's ``database_uri``) set, ping that server first.

    Why: a server that is down otherwise costs pymongo's 30 s server selection twice (64 s measured) and
    ends in an 8-line topology dump. One ping with a short server-selection timeout answers within
    seconds; the error names the URI (without its password). Without a configured server it does nothing.
    """
    import fiftyone as fo
    import pymongo

    uri = fo.config.database_uri
    if not uri:
        return
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=int(timeout_s * 1000), connect=False)
    try:
        client.admin.command("ping")
    except pymongo.errors.PyMongoError as exc:
        reason = str(exc).split(" (configured timeouts")[0].split(", Timeout:")[0]
        where = f"{_safe_uri(uri)} (FIFTYONE_DATABASE_URI)"
        raise DatabaseError(f"cannot reach FiftyOne's database {where} within {timeout_s:g} s: {reason}") from None
    finally:
        client.close()


def _safe_uri(uri: str) -> str:
    """``uri`` without the password of its ``user:password@`` part, for messages."""
    return re.sub(r"(//[^:/@]*):[^@/]*@", r"\1:***@", uri)


def connect_database() -> None:
    """Connect to FiftyOne's database now: :func:`check_server`, then start or join the local one.

    Why a lock around the local start: FiftyOne starts its own mongod when none of its database services
    runs, and two processes that start at once both launch one on the same folder; the second mongod
    exits (``DBPathInUse``) and its process failed after 70 s (``ServiceListenTimeout``). Holding
    ``<database dir>/curate-start.lock`` while connecting makes the second process wait until the first's
    mongod listens, then join it as FiftyOne's own service registry allows. A ``database_uri`` server needs
    no lock: nothing is started.
    """
    check_server()
    _connect()


def _connect() -> None:
    """:func:`connect_database` after :func:`check_server`: the local start under its lock."""
    import fiftyone as fo
    from fiftyone.core.odm import database

    try:
        if fo.config.database_uri:
            database.get_db_conn()
            return
        folder = Path(fo.config.database_dir)
        with locks.hold(folder / START_LOCK, command="curate (starting FiftyOne's database)", timeout=START_WAIT_S):
            database.get_db_conn()
    except locks.LockTimeout as exc:
        raise DatabaseError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 — pymongo, FiftyOne service and OS errors: one line, not a dump
        if fo.config.database_uri:
            where = _safe_uri(fo.config.database_uri)
        else:
            where = f"in {fo.config.database_dir} (its log: {Path(fo.config.database_dir) / 'log' / 'mongo.log'})"
        raise DatabaseError(f"FiftyOne's database {where} failed to connect: {type(exc).__name__}: {exc}") from exc


def start_database() -> "Future[None]":
    """Start FiftyOne's database in a background thread, so that its cold start overlaps the audit's checks.

    A cold start is about 8 s: mongod launches and FiftyOne polls its port. Only the connection is made
    in the background. The samples are loaded afterwards, in the caller's thread, because building them
    holds the GIL. Measured on food-ingredients `--fast` with a fresh database, 2 runs each: serial
    37–41 s, connect in the background 26–31 s, connect and load in the background 36–40 s (the load
    slowed the hashing threads 3×).

    A configured server (``FIFTYONE_DATABASE_URI``) is pinged here, in the caller's thread, so that a
    server that is down stops the command within seconds (:class:`DatabaseError`), before the checks run.

    FiftyOne, and with it scikit-learn, is imported here in the caller's thread before the thread starts:
    two threads importing the same packages at once can deadlock on the import locks. Wait for the
    thread with :func:`wait_database` before any other FiftyOne call.
    """
    from concurrent.futures import ThreadPoolExecutor

    import fiftyone  # noqa: F401
    from fiftyone.core.odm import database  # noqa: F401

    check_server()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="curate-fiftyone-db")
    future = pool.submit(_connect)  # check_server() ran above
    pool.shutdown(wait=False)
    return future


def wait_database(future: "Future[None]") -> None:
    """Wait for :func:`start_database`; its failure is raised here, as a one-line :class:`DatabaseError`."""
    future.result()
