"""Which windows are tried in an image: the dataset's common box sizes and the image's own, slid on a grid;
which are covered by a labelled box; jittered boxes as extra positives."""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from curate.audit.checks.missing.settings import (
    COVER_INSIDE,
    COVER_IOU,
    OWN_SIZES,
    SIZE_MERGE,
    SMALL_COMMON,
    STRIDE,
    TINY_AREA,
)
from curate.core.overlap import pairwise_iou_inside, row_chunks


def dataset_sizes(boxes: list[np.ndarray], k: int) -> np.ndarray:
    """Typical (w, h) of the dataset's boxes: k-means centres on log w, log h."""
    allb = np.concatenate([b for b in boxes if len(b)]) if any(len(b) for b in boxes) else np.zeros((0, 4))
    if not len(allb):
        return np.zeros((0, 2))
    lwh = np.log(np.maximum(allb[:, 2:] - allb[:, :2], 1e-4)).astype(np.float32)
    k = min(k, len(np.unique(lwh, axis=0)))
    if k <= 1:
        return np.exp(np.median(lwh, axis=0))[None, :]
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-3)
    cv2.setRNGSeed(0)
    _, _, centres = cv2.kmeans(lwh, k, None, crit, 3, cv2.KMEANS_PP_CENTERS)
    return np.exp(centres.astype(float))


def sliding_windows(sizes: np.ndarray, min_w: float, min_h: float) -> np.ndarray:
    """Windows of each (w, h) in ``sizes`` (:func:`distinct_sizes`) tiling the image with a stride of STRIDE × the
    window."""
    out = [_grid(round(min(w, 1.0), 4), round(min(h, 1.0), 4)) for w, h in distinct_sizes(sizes, min_w, min_h)]
    return np.concatenate(out) if out else np.zeros((0, 4))


def distinct_sizes(sizes: np.ndarray, min_w: float, min_h: float) -> np.ndarray:
    """``sizes`` widened to at least ``min_w`` × ``min_h``, without those of under TINY_AREA of that area, and without
    those within SIZE_MERGE (log w and log h) of an earlier one.

    Why: the window count grows as 1 / area, so on a dataset of small objects decoded large (football at 640 px)
    a 4-px ball size widened to 6 px made 25,000 windows, a quarter to half of the image's, for an object with no
    pixels to describe; and the image's own sizes and the dataset's common ones often differ by a few pixels."""
    kept: list[tuple[float, float]] = []
    for w, h in sizes:
        if w * h < TINY_AREA * min_w * min_h:
            continue
        w, h = max(w, min_w), max(h, min_h)
        if not any(abs(np.log(w / kw)) < SIZE_MERGE and abs(np.log(h / kh)) < SIZE_MERGE for kw, kh in kept):
            kept.append((w, h))
    return np.array(kept).reshape(-1, 2)


@lru_cache(maxsize=4096)
def _grid(w: float, h: float) -> np.ndarray:
    nx = int(np.ceil((1 - w) / (w * STRIDE) - 1e-9)) + 1
    ny = int(np.ceil((1 - h) / (h * STRIDE) - 1e-9)) + 1
    gx, gy = np.meshgrid(np.linspace(0, 1 - w, nx), np.linspace(0, 1 - h, ny))
    grid = np.stack([gx.ravel(), gy.ravel(), gx.ravel() + w, gy.ravel() + h], axis=1)
    grid.flags.writeable = False  # shared between calls
    return grid


def image_sizes(boxes: np.ndarray, common: np.ndarray) -> np.ndarray:
    """Window sizes for one image: its own box sizes (deduplicated) and the dataset's common sizes, except
    common sizes much smaller than anything labelled in the image (the smallest common size alone made 60 %
    of food-ingredients' windows; an image with small objects has them among its own sizes)."""
    own = np.zeros((0, 2))
    if len(boxes):
        wh = boxes[:, 2:] - boxes[:, :2]
        key = np.round(np.log(np.maximum(wh, 1e-4)) / 0.2)
        _, first = np.unique(key, axis=0, return_index=True)
        own = wh[np.sort(first)][:OWN_SIZES]
        common = common[common.prod(axis=1) >= SMALL_COMMON * wh.prod(axis=1).min()] if len(common) else common
    return np.concatenate([own, common]) if len(common) else own


def uncovered(win: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Windows no existing box covers (IoU < COVER_IOU and under COVER_INSIDE of the window inside one)."""
    if not len(boxes) or not len(win):
        return np.ones(len(win), bool)
    out = np.empty(len(win), bool)
    for r in row_chunks(len(win), len(boxes)):
        iou, inside = pairwise_iou_inside(win[r], boxes)
        out[r] = (iou.max(axis=1) < COVER_IOU) & (inside.max(axis=1) < COVER_INSIDE)
    return out


def touching(win: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Windows that overlap some box (a little: covered ones are gone already)."""
    if not len(boxes) or not len(win):
        return np.zeros(len(win), bool)
    out = np.empty(len(win), bool)
    for r in row_chunks(len(win), len(boxes)):
        out[r] = pairwise_iou_inside(win[r], boxes)[1].max(axis=1) > 0.05
    return out


def jitter(boxes: np.ndarray, rng: np.random.Generator, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``k`` copies of each box moved/resized the way a grid window misses an object (IoU ≥ 0.5);
    the copies and the index of their box."""
    if not len(boxes) or k < 1:
        return np.zeros((0, 4)), np.zeros(0, int)
    tries = 4 * k
    src = np.repeat(np.arange(len(boxes)), tries)
    b = boxes[src]
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    s = np.exp(rng.uniform(-0.25, 0.25, (len(b), 2)))
    d = rng.uniform(-0.2, 0.2, (len(b), 2)) * np.stack([w, h], axis=1)
    cx, cy = (b[:, 0] + b[:, 2]) / 2 + d[:, 0], (b[:, 1] + b[:, 3]) / 2 + d[:, 1]
    nw, nh = w * s[:, 0], h * s[:, 1]
    j = np.clip(np.stack([cx - nw / 2, cy - nh / 2, cx + nw / 2, cy + nh / 2], axis=1), 0, 1)
    ix = np.clip(np.minimum(j[:, 2], b[:, 2]) - np.maximum(j[:, 0], b[:, 0]), 0, None)
    iy = np.clip(np.minimum(j[:, 3], b[:, 3]) - np.maximum(j[:, 1], b[:, 1]), 0, None)
    inter = ix * iy
    iou = inter / np.maximum((j[:, 2] - j[:, 0]) * (j[:, 3] - j[:, 1]) + w * h - inter, 1e-12)
    ok = (iou >= 0.5).reshape(len(boxes), tries)
    keep = (ok & (np.cumsum(ok, axis=1) <= k)).ravel()
    return j[keep], src[keep]
