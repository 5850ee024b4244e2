"""The side an image is decoded at for the pixel features of its boxes: from the image's own size.

Why it grows with the image: the box model's pixel features and the crop features read an object from the pixels
it keeps at the decode. At a fixed 320 px a 640-px photo keeps half its pixels a side, a 1280-px drone view or
2 × 2 mosaic a quarter: a football player 8 px across in the file is 4 px at the 640-px photo's decode and 2 px at
the mosaic's, no longer an object (benchmarks/README.md, "Session 25 (branch `domains`)": football's mosaic merged
shifted 0.902 → 0.663, recovered to 0.877 decoded at 640). Half the long side keeps the ratio the pool was tuned
at (its images are 416–640 px, decoded at 320) for larger images; the ceiling bounds the cost (4× the pixels of
320). Images up to 640 px keep exactly 320, so the pool's decodes, features and cache keys do not move.

The crop embeddings (:mod:`curate.vision.embed`, :func:`~curate.vision.embed.decode_side`) follow it above 640 px
and keep their own 320 below, with the side in their cache keys.
"""

from __future__ import annotations

from curate.core import defaults

SMALL_IMAGE = 640  # long side up to which an image decodes at defaults.PIXEL_MAX_SIDE (the pool's 416–640-px photos)
LARGE_DECODE = 640  # the most any image decodes at (half a 1280-px image: 4× the pixels of the 320 decode)


def pixel_side(size: tuple[int, int]) -> int:
    """Longest side to decode an image of ``(width, height)`` at: the pixel checks' side up to SMALL_IMAGE, half
    the long side above it, at most LARGE_DECODE (portrait or landscape alike)."""
    long = max(size)
    if long <= SMALL_IMAGE:
        return defaults.PIXEL_MAX_SIDE
    return int(min(LARGE_DECODE, max(defaults.PIXEL_MAX_SIDE, long // 2)))


def record_side(record) -> int:
    """:func:`pixel_side` of an image record, from its header size (read once and kept on the record); an
    unreadable header gets the pixel checks' side (the decode then fails or finds its own size)."""
    size = record.readable_size()
    return defaults.PIXEL_MAX_SIDE if size is None else pixel_side(size)
