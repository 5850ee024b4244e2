"""`hashing._may_have_exif` answers as the three plain searches of the first 64 KB did, on every placement."""

from __future__ import annotations

import numpy as np
import pytest

from curate.vision.hashing import _EXIF_MARKERS, _may_have_exif


def _plain(data: bytes, kind: str | None) -> bool:
    """The rule as first written: any marker inside the first 64 KB, or a TIFF."""
    head = data[:65536]
    return kind == "tiff" or any(m in head for m in _EXIF_MARKERS)


def _noise(seed: int, size: int = 70_000) -> bytes:
    """Compressed-looking bytes with many zeros (a JPEG's stuffed 0xFF00), upper-case ASCII scrubbed out so that
    no marker or near-marker lands in them by chance."""
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, size, dtype=np.uint8)
    raw[rng.random(size) < 0.05] = 0
    raw[(raw >= 65) & (raw <= 90)] = 0x20  # no A-Z: only the planted bytes can read as "exif" lower-cased
    raw[(raw >= 97) & (raw <= 122)] = 0x21
    return raw.tobytes()


PLANTED = [
    # (bytes planted, where, expected): each marker near the start, mid-file and ending exactly at 64 KB
    *[(m, at, True) for m in _EXIF_MARKERS for at in (2, 30_000, 65536 - len(m))],
    *[(m, 65536 - len(m) + 1, False) for m in _EXIF_MARKERS],  # straddles the 64-KB line: not in the head
    *[(m, 66_000, False) for m in _EXIF_MARKERS],  # past it
    (b"exif", 100, False),  # lower-case "exif" passes the quick look, then the exact search rejects it
    (b"Exif", 100, False),  # JPEG's marker without its two zeros
    (b"EXif\x00\x00", 100, False),  # mixed case that is none of the three
    (b"ExIf", 100, False),
]


@pytest.mark.parametrize("marker,at,expected", PLANTED)
@pytest.mark.parametrize("kind", ["jpeg", "png", None])
def test_planted_markers(marker: bytes, at: int, expected: bool, kind: str | None) -> None:
    noise = _noise(at)
    data = noise[:at] + marker + noise[at + len(marker) :]
    assert _may_have_exif(data, kind) is expected
    assert _plain(data, kind) is expected


def test_tiff_always_and_short_files() -> None:
    assert _may_have_exif(b"II*\x00" + bytes(10), "tiff") is True
    assert _may_have_exif(b"", None) is False
    assert _may_have_exif(b"eXIf", "png") is True


@pytest.mark.parametrize("seed", range(20))
def test_same_answer_as_the_plain_searches_on_random_plantings(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    data = bytearray(rng.integers(0, 256, int(rng.integers(10, 80_000)), dtype=np.uint8).tobytes())
    for _ in range(int(rng.integers(0, 3))):  # markers, their case variants and fragments at random places
        pieces = [b"Exif\x00\x00", b"eXIf", b"EXIF", b"exif", b"EXIf", b"Exif\x00"]
        piece = pieces[int(rng.integers(len(pieces)))]
        at = int(rng.integers(0, max(1, len(data) - len(piece))))
        data[at : at + len(piece)] = piece
    assert _may_have_exif(bytes(data), "jpeg") == _plain(bytes(data), "jpeg")
