"""Vectorised box overlap helpers shared by the geometry checks (duplicate, ambiguous) and the benchmark.

Boxes are numpy arrays of normalized corners ``(x1, y1, x2, y2)``, shape (N, 4). Overlaps between the boxes
of one image are computed in pixels when the image size is given, so that a non-square image does not
distort the ratios (IoU is scale-invariant per axis, so normalized coordinates give the same IoU anyway).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from curate.dataset import Label


def xyxy_array(labels: Sequence[Label]) -> np.ndarray:
    """(N, 4) float array of normalized corners for ``labels`` (empty (0, 4) for no labels)."""
    if not labels:
        return np.zeros((0, 4), dtype=float)
    return np.array([lab.xyxy for lab in labels], dtype=float)


def _intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) intersection areas of boxes ``a`` (N, 4) and ``b`` (M, 4)."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    return np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)


def areas(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) intersection over union; 0 where both boxes have no area."""
    inter = _intersection(a, b)
    union = areas(a)[:, None] + areas(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def pairwise_iou_inside(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, M) IoU and the share of each ``a`` lying inside each ``b``, from one intersection."""
    inter = _intersection(a, b)
    area_a = areas(a)[:, None]
    union = area_a + areas(b)[None, :] - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return iou, np.divide(inter, area_a, out=np.zeros_like(inter), where=area_a > 0)


def pairwise_ios(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) intersection over the smaller of the two areas: 1.0 when one box lies inside the other."""
    inter = _intersection(a, b)
    smaller = np.minimum(areas(a)[:, None], areas(b)[None, :])
    return np.divide(inter, smaller, out=np.zeros_like(inter), where=smaller > 0)


def iou_one(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two single ``(x1, y1, x2, y2)`` boxes."""
    return float(pairwise_iou(np.asarray([a], dtype=float), np.asarray([b], dtype=float))[0, 0])


def overlap_score(iou: np.ndarray | float, at_half: float) -> np.ndarray:
    """Map IoU to a score in [0, 1]: 0 below ``at_half - 0.3``, 0.5 at ``at_half``, 1.0 at IoU 1.

    Piecewise linear so a user can read the score back as an IoU: with ``at_half`` 0.7, IoU 0.85 → 0.75.
    """
    iou = np.asarray(iou, dtype=float)
    low = at_half - 0.3
    below = 0.5 * np.clip((iou - low) / (at_half - low), 0.0, 1.0)
    above = 0.5 + 0.5 * np.clip((iou - at_half) / (1.0 - at_half), 0.0, 1.0)
    return np.where(iou >= at_half, above, below)


def later_line_pairs(images: Sequence[Sequence[Label]], *, same_class: bool) -> tuple[np.ndarray, np.ndarray]:
    """For each label of each image, its best IoU with an EARLIER line of its image (same class or different
    class) and that line's index within the image, as flat arrays over the labels (image after image).

    Only the later line of a pair carries the pair: the earlier box is usually the original and the later
    one the accidental second click or copy, and flagging one line per pair keeps the report short.
    Returns ``(best_iou, partner_index)``; partner -1 where there is no candidate; ties go to the first
    partner of the image.

    Why every image at once: the duplicate and ambiguous checks called a per-image form once per image, and
    with 2.5 boxes an image (food-ingredients) the dozen numpy calls' fixed cost per image was nearly all of
    their time. Here every ordered pair ``(i, j)`` of labels of one image is one row of a few flat arrays,
    and the same elementwise float operations as :func:`pairwise_iou` run once for the whole dataset, so
    the results are bit-identical to the per-image form (tests/test_duplicate.py keeps it as the reference).
    """
    counts = np.array([len(labels) for labels in images], dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0), np.full(0, -1)
    flat = [lab for labels in images for lab in labels]
    boxes = xyxy_array(flat)
    area = areas(boxes)
    cls = np.array([lab.class_id for lab in flat])
    lines = np.array([lab.line for lab in flat])
    # per label: its image's label count n and first flat index; each label i owns n consecutive pair rows
    n_of = np.repeat(counts, counts)
    first_of = np.repeat(np.cumsum(counts) - counts, counts)
    row_start = np.cumsum(n_of) - n_of
    i = np.repeat(np.arange(total), n_of)
    j_local = np.arange(len(i)) - row_start[i]  # the partner's index within the image
    j = first_of[i] + j_local
    a, b = boxes[i], boxes[j]
    inter = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None) * np.clip(
        np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None
    )
    union = area[i] + area[j] - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    mask = (cls[i] == cls[j]) if same_class else (cls[i] != cls[j])
    mask &= lines[j] < lines[i]  # partner j comes before i in the file
    iou = np.where(mask, iou, -1.0)
    best = np.maximum.reduceat(iou, row_start)
    first = np.minimum.reduceat(np.where(iou == best[i], j_local, len(i)), row_start)
    partner = np.where(best >= 0, first, -1)
    return np.clip(best, 0.0, None), partner
