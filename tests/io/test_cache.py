"""The file-hash memo (issue #25): an audit asks for every image's content hash several times; each file is read
and hashed once per process, and a file changed since is hashed again."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import cv2
import numpy as np

from curate.core.dataset import ImageRecord
from curate.io import cache
from curate.vision.hashing import compute_signature


def _blake(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _rewrite_in_place(path: Path, data: bytes) -> None:
    """New bytes of the same length in the same inode, the modification time put back (``cp -p``, a sync tool): of
    what the memo keys on, only the inode's change time moves (after a pause: the kernel stamps it from a clock that
    ticks every few milliseconds, and the file was written just before)."""
    time.sleep(0.05)
    st = os.stat(path)
    with open(path, "r+b") as fh:
        fh.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _counting_hashes(monkeypatch) -> list[int]:
    """Count the digests :func:`cache.file_hash` computes and remembers (each one a full read of the file)."""
    made: list[int] = []
    real = cache._remember

    def remember(key, digest):
        made.append(1)
        real(key, digest)

    monkeypatch.setattr(cache, "_remember", remember)
    return made


def test_file_hash_reads_an_unchanged_file_once(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"first bytes")
    made = _counting_hashes(monkeypatch)
    first = cache.file_hash(path)
    assert first == _blake(b"first bytes")
    assert cache.file_hash(path) == first and len(made) == 1  # remembered, not read again
    _rewrite_in_place(path, b"other bytes")  # the same size and modification time: read again all the same
    assert cache.file_hash(path) == _blake(b"other bytes")
    os.utime(path, ns=(0, os.stat(path).st_mtime_ns + 10**9))  # modified: hashed again
    assert cache.file_hash(path) == _blake(b"other bytes")
    path.write_bytes(b"longer new bytes")
    assert cache.file_hash(path) == _blake(b"longer new bytes")
    assert len(made) == 4


def test_a_signature_gives_file_hash_its_digest(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "img.jpg"
    ok, enc = cv2.imencode(".jpg", np.full((32, 48, 3), 90, np.uint8))
    assert ok
    path.write_bytes(enc.tobytes())
    sig = compute_signature(ImageRecord("train", path, "img.jpg"))
    assert sig.content == _blake(enc.tobytes())
    made = _counting_hashes(monkeypatch)
    assert cache.file_hash(path) == sig.content and not made  # the signature's digest, no second read
    _rewrite_in_place(path, bytes(len(enc)))  # the same size and time, other bytes: not the signature's any more
    assert cache.file_hash(path) == _blake(bytes(len(enc))) and len(made) == 1
