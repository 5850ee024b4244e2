"""Object-free windows of a photo and the candidates cut or inpainted from them (steps 2 and 3), and the blank
crops that are no background worth training on."""

from __future__ import annotations

import cv2
import numpy as np

from curate.core import defaults
from curate.core.overlap import iou_one


def find_windows(
    mask: np.ndarray, aspect: float, *, min_side: float, max_leftover: float, steps: int = 8
) -> list[tuple[float, int, int, int, int]]:
    """Windows of the given aspect (w/h) ranked by (large, few object pixels): ``(score, x, y, w, h)``.

    A summed-area table makes each window's object share O(1); sizes go from the whole image down to
    ``min_side`` of its shorter side, positions on a grid of 1/8 of the window.
    """
    H, W = mask.shape
    sat = cv2.integral(mask.astype(np.uint8))
    h_max = min(H, W / aspect)
    out = []
    for f in np.linspace(1.0, min_side, 10):
        wh = int(h_max * f)
        ww = int(wh * aspect)
        if wh < 8 or ww < 8:
            continue
        stride_y, stride_x = max(1, wh // steps), max(1, ww // steps)
        ys = np.arange(0, H - wh + 1, stride_y)
        xs = np.arange(0, W - ww + 1, stride_x)
        Y, X = np.meshgrid(ys, xs, indexing="ij")
        s = sat[Y + wh, X + ww] - sat[Y, X + ww] - sat[Y + wh, X] + sat[Y, X]
        cov = s / float(wh * ww)
        for y, x, c in zip(Y.ravel(), X.ravel(), cov.ravel()):
            if c <= max_leftover:
                out.append((float(f) - 3.0 * float(c), int(x), int(y), ww, wh))
    out.sort(key=lambda t: -t[0])
    return out


def window_iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """IoU of two ``(x, y, w, h)`` pixel rectangles."""
    (ax, ay, aw, ah), (bx, by, bw, bh) = a, b
    return iou_one((ax, ay, ax + aw, ay + ah), (bx, by, bx + bw, by + bh))


def _inpaint(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    if not mask.any():
        return img
    radius = max(3, round(0.012 * max(img.shape[:2])))
    return cv2.inpaint(img, mask * 255, radius, cv2.INPAINT_TELEA)


def make_candidates(
    img: np.ndarray, mask: np.ndarray, size: tuple[int, int], *, tries: int, rng: np.random.Generator
) -> list[tuple[str, list[int], float, np.ndarray]]:
    """Up to ``tries`` object-free versions of one photo: ``(method, [x, y, w, h], inpainted share, image)``."""
    tw, th = size
    windows = find_windows(
        mask, tw / th, min_side=defaults.BACKGROUND_MIN_CROP, max_leftover=defaults.BACKGROUND_MAX_LEFTOVER
    )
    picked: list[tuple[int, int, int, int]] = []
    # shuffle ties a little so two seeds can give two different windows of the same quality
    windows = sorted(windows, key=lambda t: -(t[0] + 1e-3 * rng.random()))
    for _, x, y, w, h in windows:
        r = (x, y, w, h)
        if any(window_iou(r, p) > 0.25 for p in picked):
            continue
        picked.append(r)
        if len(picked) >= tries:
            break
    out = []
    for x, y, w, h in picked:
        crop, leftover = img[y : y + h, x : x + w], mask[y : y + h, x : x + w]
        share = float(leftover.mean())
        crop = _inpaint(crop, leftover)
        resized = cv2.resize(crop, (tw, th), interpolation=cv2.INTER_AREA if w >= tw else cv2.INTER_CUBIC)
        out.append(("crop+inpaint" if share > 0 else "crop", [x, y, w, h], share, resized))
    if not out and mask.mean() <= defaults.BACKGROUND_MAX_INPAINT:
        H, W = mask.shape
        full = cv2.resize(_inpaint(img, mask), (tw, th), interpolation=cv2.INTER_AREA)
        out.append(("inpaint", [0, 0, W, H], float(mask.mean()), full))
    return out


# --------------------------------------------------------------------------------------------------


def blank(bgr: np.ndarray) -> bool:
    """A crop a model learns nothing from: what the audit's ``low_information``, ``dark`` or ``overexposed``
    checks would flag (the same cleanvision measures and cut points), e.g. a patch of white wall."""
    from curate.vision.quality import quality_stats

    q = quality_stats(bgr, cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    return (
        q["entropy"] < defaults.QUALITY_LOW_ENTROPY
        or q["brightness_p99"] < defaults.QUALITY_DARK_P99
        or q["brightness_p5"] > defaults.QUALITY_LIGHT_P5
    )
