"""A box's pixel features must not depend on where in memory its image was decoded.

cv2.magnitude rounded the gradient differently (in the last bit) with its inputs' alignment, so the same image
gave slightly different features from one process to the next; the feature cache then mixed rows of different
runs, and football-players' box-model scores changed with the cache's history (benchmarks/README.md, session 16).
"""

import numpy as np

from curate.audit.boxmodel.pixels import image_channels


def _at_offset(a: np.ndarray, offset: int) -> np.ndarray:
    """A copy of ``a`` whose data starts ``offset`` bytes past a 64-byte boundary."""
    buf = np.empty(a.nbytes + 128, np.uint8)
    start = (-buf.ctypes.data) % 64 + offset
    out = buf[start : start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


def _textured(seed: int, fx: float, fy: float) -> np.ndarray:
    """A 241 x 319 BGR image of smooth waves and noise: gradients of every size and direction, odd row lengths."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:241, 0:319]
    smooth = (127 + 100 * np.sin(xx / fx) * np.cos(yy / fy))[..., None] + rng.normal(0, 20, (241, 319, 3))
    return np.clip(smooth, 0, 255).astype(np.uint8)


def test_image_channels_do_not_depend_on_memory_alignment():
    bgr = _textured(0, 7.0, 11.0)
    ref = image_channels(_at_offset(bgr, 0))
    for offset in (1, 3, 4, 8, 12, 16, 32, 48):
        got = image_channels(_at_offset(bgr, offset))
        assert all(np.array_equal(a, b) for a, b in zip(ref, got)), offset


def test_missing_maps_do_not_depend_on_memory_alignment():
    """The same for the missing check's window maps (gradient and colour distance): its regions must not change
    with what the process allocated before."""
    from curate.audit.checks.missing.maps import image_maps

    bgr = _textured(1, 5.0, 9.0)
    ref = image_maps(_at_offset(bgr, 0))
    for offset in (1, 3, 4, 8, 12, 16, 32, 48):
        got = image_maps(_at_offset(bgr, offset))
        assert np.array_equal(ref.ii, got.ii) and np.array_equal(ref.ii2, got.ii2), offset
