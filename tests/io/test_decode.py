"""curate.io.decode: one reduction rule, and a reduced decode that fails returns None instead of raising."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from curate.io.decode import imdecode, imread, reduction


def test_reduction_is_the_largest_factor_that_keeps_the_target() -> None:
    assert [reduction(s, 256) for s in (4000, 2048, 2047, 1024, 600, 511, 100)] == [8, 8, 4, 4, 2, 1, 1]


def test_reduced_decode(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    jpg = tmp_path / "a.jpg"
    cv2.imwrite(str(jpg), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    assert imread(jpg).shape == (48, 64, 3) and imread(jpg, 4).shape == (12, 16, 3)
    assert imdecode(np.frombuffer(jpg.read_bytes(), np.uint8), 2).shape == (24, 32, 3)
    dot = tmp_path / "dot.png"  # a reduced decode of an image under the reduction raises cv2.error in OpenCV
    cv2.imwrite(str(dot), np.zeros((1, 1, 3), np.uint8))
    assert imread(dot, 4) is None and imread(dot).shape == (1, 1, 3)
    assert imread(tmp_path / "none.jpg") is None
