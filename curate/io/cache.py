"""Disk cache keyed by file content, so a re-run with no change is fast and a changed file is redone.

Location: ``$CURATE_CACHE_DIR`` if set, else ``~/.cache/curate``. Values are numpy arrays (``.npy``) or
JSON-able objects (``.json``), stored under ``<namespace>/<key[:2]>/<key>.<ext>``.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:
    import sqlite3


def cache_root() -> Path:
    """``$CURATE_CACHE_DIR`` or ``~/.cache/curate``; its folders are made when first written to."""
    return Path(os.environ.get("CURATE_CACHE_DIR") or Path.home() / ".cache" / "curate")


#: Digests this process has computed, by (path, size, mtime in ns, inode, ctime in ns): see :func:`file_hash`.
_digests: dict[tuple[str, int, int, int, int], str] = {}
_DIGESTS_MAX = 500_000  # entries (~0.2 KB each): forgotten all at once past this, then filled again


def _stat_key(path: Path | str, st: os.stat_result) -> tuple[str, int, int, int, int]:
    return (os.fspath(path), st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


def remember_hash(path: Path | str, st: os.stat_result, digest: str) -> None:
    """Record ``digest`` (:func:`file_hash`'s) of the file at ``path`` whose bytes were read under ``st``: for
    code that hashes the bytes it read anyway (the image signatures), so that later :func:`file_hash` calls don't
    read them again."""
    _remember(_stat_key(path, st), digest)


def _remember(key: tuple[str, int, int, int, int], digest: str) -> None:
    if len(_digests) >= _DIGESTS_MAX:
        _digests.clear()
    _digests[key] = digest


def file_hash(path: Path, *, chunk: int = 1 << 20) -> str:
    """blake2b-128 of the file's bytes: the cache key for anything computed from an image.

    Remembered for this process by path, size, modification time, inode and inode change time
    (:func:`remember_hash`): one audit asked for every image's hash five times (the signatures, the box model's and
    the search's feature caches, ``missing``, the foreground masks), each a full read and hash of the file. A file
    rewritten since has a new change time (a write always sets it, and no tool can put it back, unlike the
    modification time that ``cp -p`` or a sync tool restores), so it is hashed again: an ``ok`` is tied to this hash
    (:data:`curate.fiftyone.samples.IMAGE_HASH_FIELD`)."""
    with open(path, "rb") as fh:
        key = _stat_key(path, os.fstat(fh.fileno()))
        digest = _digests.get(key)
        if digest is not None:
            return digest
        h = hashlib.blake2b(digest_size=16)
        while block := fh.read(chunk):
            h.update(block)
    digest = h.hexdigest()
    _remember(key, digest)
    return digest


def _unique() -> str:
    """A temp-file suffix no other process or thread writing the same key can share."""
    return f"{os.getpid()}-{threading.get_ident()}"


_made: set[str] = set()  # folders known to exist: two mkdir calls per cache access added up to seconds


def _path(namespace: str, key: str, ext: str) -> str:
    """The file of ``key`` as a plain string: pathlib's object building was a quarter of a cold hashing pass."""
    folder = os.path.join(cache_root(), namespace, key[:2])
    if folder not in _made:
        os.makedirs(folder, exist_ok=True)
        _made.add(folder)
    return os.path.join(folder, f"{key}.{ext}")


def _write_atomic(p: str, write: Callable[[str], object]) -> None:
    """``write`` a temp file beside ``p``, then rename it over ``p``: readers never see a torn file."""
    stem, ext = os.path.splitext(p)
    tmp = f"{stem}.tmp{_unique()}{ext}"
    try:
        write(tmp)
    except FileNotFoundError:  # the cache folder was removed while we ran: make it again
        os.makedirs(os.path.dirname(tmp), exist_ok=True)
        write(tmp)
    os.replace(tmp, p)


def has(namespace: str, key: str, ext: str) -> bool:
    """Whether ``key`` has a cached file (``npy`` or ``json``), without reading it."""
    return os.path.exists(_path(namespace, key, ext))


def load_array(namespace: str, key: str) -> np.ndarray | None:
    try:
        return np.load(_path(namespace, key, "npy"), allow_pickle=False)
    except (OSError, ValueError):  # not cached yet, or a torn write from a killed run: recompute
        return None


def save_array(namespace: str, key: str, value: np.ndarray) -> None:
    _write_atomic(_path(namespace, key, "npy"), lambda tmp: np.save(tmp, value, allow_pickle=False))


def load_json(namespace: str, key: str) -> Any | None:
    try:
        with open(_path(namespace, key, "json"), encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def save_json(namespace: str, key: str, value: Any) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(value))

    _write_atomic(_path(namespace, key, "json"), write)


class Store:
    """Many small values (bytes) in one SQLite file, ``<cache root>/<namespace>.sqlite``: for one entry per image.

    Why not one file per entry: creating, writing and renaming a file costs ~0.2 ms of system calls here,
    and the image signatures made one per image (plus a failed open or two on a cold cache): about a
    quarter of a cold hashing pass, 0.47 core-ms an image on 9,505 images. Reads go through one
    connection per thread; :meth:`put_many` writes a batch in one transaction. WAL mode lets other
    processes read while one writes. Any SQLite error (a read-only or full disk, a damaged file) reads as
    a miss and skips the write: the value is computed again next time.
    """

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self._local = threading.local()

    def _conn(self) -> "sqlite3.Connection":
        import sqlite3

        root = cache_root()
        path = os.path.join(root, f"{self.namespace}.sqlite")
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "path", None) != path:  # CURATE_CACHE_DIR may change (tests)
            os.makedirs(root, exist_ok=True)
            conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
            self._local.conn, self._local.path = conn, path
        return conn

    def get(self, key: str) -> bytes | None:
        import sqlite3

        try:
            row = self._conn().execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        except (sqlite3.Error, OSError):
            return None
        return bytes(row[0]) if row else None

    def put_many(self, items: list[tuple[str, bytes]]) -> None:
        import sqlite3

        if not items:
            return
        try:
            conn = self._conn()
            with conn:
                conn.executemany("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", items)
        except (sqlite3.Error, OSError):  # read-only, full or damaged: computed again next time
            pass
