"""Decoding an image at a reduced size, one way for every part that needs few pixels.

Why: OpenCV decodes a JPEG at 1/2, 1/4 or 1/8 of its size by DCT scaling, 2–4× faster than a full decode
and then a resize; the hashes, the thumbnails, the foreground masks, the missing check and the background
sampler all want small images. One rule for the factor (:func:`reduction`) and one for the failure
(:func:`imread`, :func:`imdecode`): a reduced decode of an image smaller than the reduction (a 1×1 PNG at
1/4) fails an assertion in OpenCV's resize (``cv2.error``) instead of returning None.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

#: The reductions OpenCV's decoder offers, largest first.
FACTORS = (8, 4, 2)


def reduction(side: float, target: float) -> int:
    """The largest decode reduction (8, 4, 2, else 1) that still leaves ``side`` pixels at least ``target``."""
    return next((f for f in FACTORS if side / f >= target), 1)


def _flag(factor: int) -> int:
    import cv2

    return {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
            8: cv2.IMREAD_REDUCED_COLOR_8}[factor]  # fmt: skip


def imread(path: Path | str, factor: int = 1) -> "np.ndarray | None":
    """The image file in BGR at 1/``factor`` of its size; None when OpenCV cannot decode it that way."""
    import cv2

    try:
        return cv2.imread(str(path), _flag(factor))
    except cv2.error:
        return None


def imdecode(buf: "np.ndarray", factor: int = 1) -> "np.ndarray | None":
    """:func:`imread` for bytes already read (a uint8 array)."""
    import cv2

    try:
        return cv2.imdecode(buf, _flag(factor))
    except cv2.error:
        return None
