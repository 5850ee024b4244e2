"""Vectorised box overlap helpers shared by the geometry checks (duplicate, ambiguous) and the benchmark.

Boxes are numpy arrays of normalized corners ``(x1, y1, x2, y2)``, shape (N, 4). Overlaps between the boxes
of one image are computed in pixels when the image size is given, so that a non-square image does not
distort the ratios (IoU is scale-invariant per axis, so normalized coordinates give the same IoU anyway).

Pair checks over the boxes of an image find their pairs with :func:`overlapping_pairs`, never a full pair
matrix: one label file with 10,000 boxes made 10⁸ pairs (the audit passed 24 GB), where only some 10⁵ overlap.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from curate.core.dataset import Label


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


def iou_one(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two single ``(x1, y1, x2, y2)`` boxes: :func:`pairwise_iou`'s value for the pair, to the bit.

    In plain Python floats (the same float64 operations in the same order) because the proposals' searches call it
    hundreds of thousands of times a run, where numpy's per-call overhead made it ~50× slower than the arithmetic.
    A NaN coordinate takes numpy's path (Python's ``max`` and numpy's ``maximum`` differ on NaN)."""
    ax1, ay1, ax2, ay2 = (float(v) for v in a)
    bx1, by1, bx2, by2 = (float(v) for v in b)
    if ax1 != ax1 or ay1 != ay1 or ax2 != ax2 or ay2 != ay2 or bx1 != bx1 or by1 != by1 or bx2 != bx2 or by2 != by2:
        return float(pairwise_iou(np.asarray([a], dtype=float), np.asarray([b], dtype=float))[0, 0])
    inter = max(min(ax2, bx2) - max(ax1, bx1), 0.0) * max(min(ay2, by2) - max(ay1, by1), 0.0)
    union = max(ax2 - ax1, 0.0) * max(ay2 - ay1, 0.0) + max(bx2 - bx1, 0.0) * max(by2 - by1, 0.0) - inter
    return inter / union if union > 0 else 0.0


def overlap_score(iou: np.ndarray | float, at_half: float) -> np.ndarray:
    """Map IoU to a score in [0, 1]: 0 below ``at_half - 0.3``, 0.5 at ``at_half``, 1.0 at IoU 1.

    Piecewise linear so a user can read the score back as an IoU: with ``at_half`` 0.7, IoU 0.85 → 0.75.
    """
    iou = np.asarray(iou, dtype=float)
    low = at_half - 0.3
    below = 0.5 * np.clip((iou - low) / (at_half - low), 0.0, 1.0)
    above = 0.5 + 0.5 * np.clip((iou - at_half) / (1.0 - at_half), 0.0, 1.0)
    return np.where(iou >= at_half, above, below)


PAIR_CELLS = 1 << 21  # a pair matrix computed in row slices of at most this many cells (16 MB a float array)


def row_chunks(rows: int, cols: int, cells: int = PAIR_CELLS) -> Iterator[slice]:
    """Slices of ``range(rows)`` such that a ``rows × cols`` matrix is built at most ``cells`` cells at a time.

    For matrices of every window against every box of an image, whose values need every box (nearest box by
    appearance, mean size ratio): they keep their meaning, and a dense image just takes more slices."""
    step = max(1, cells // max(cols, 1))
    for start in range(0, rows, step):
        yield slice(start, min(start + step, rows))


PAIR_CHUNK = 1 << 18  # candidate pairs held at once by overlapping_pairs (some 20 MB of arrays of them)
_EXTENT_BUCKETS = 16  # boxes are swept in groups of like extent (powers of two), so one wide box stays cheap


def overlapping_pairs(
    a: np.ndarray,
    b: np.ndarray,
    a_group: np.ndarray | None = None,
    b_group: np.ndarray | None = None,
    *,
    chunk: int = PAIR_CHUNK,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Every pair ``(i, j)`` of boxes ``a[i]``, ``b[j]`` of the same group (image) whose intersection has an area
    (strictly positive overlap on both axes), as index arrays in chunks of at most about ``chunk`` candidates;
    within a chunk ``i`` ascends and, for one ``i``, ``j`` ascends.

    Why not a pair matrix: its cost is the square of the boxes in an image, and a pair check only needs the
    pairs that overlap. A sorted sweep: ``b`` sorted by its low edge along one axis (the one with fewer
    candidates), so the boxes that can meet ``a[i]`` form a window of that order found by binary search; boxes
    are swept in groups of like extent so that one box across the whole image does not widen every window.
    Groups (images) are laid side by side along the axis, so one call serves a whole dataset. The windows are a
    superset (a margin covers the rounding of the shifted coordinates); the exact test runs on the input values.
    """
    a = np.asarray(a, dtype=float).reshape(-1, 4)
    b = np.asarray(b, dtype=float).reshape(-1, 4)
    a_group = np.zeros(len(a), np.int64) if a_group is None else np.asarray(a_group, np.int64)
    b_group = np.zeros(len(b), np.int64) if b_group is None else np.asarray(b_group, np.int64)
    if not len(a) or not len(b):
        return
    lo = float(min(a[:, :2].min(), b[:, :2].min()))
    span = float(max(a[:, 2:].max(), b[:, 2:].max())) - lo + 1.0  # groups sit ``span`` apart: never within reach
    best = None
    for axis in (0, 1):
        a_lo, a_hi = a[:, axis] - lo + a_group * span, a[:, axis + 2] - lo + a_group * span
        b_lo = b[:, axis] - lo + b_group * span
        extent = np.clip(b[:, axis + 2] - b[:, axis], 0.0, None)
        margin = 8 * np.spacing(max(float(a_hi.max()), float(b_lo.max()), 1.0))
        bucket = np.clip(np.floor(np.log2(np.maximum(extent, 1e-300))), -_EXTENT_BUCKETS, 0).astype(int)
        sweeps = []
        for k in np.unique(bucket):
            members = np.flatnonzero(bucket == k)
            members = members[np.argsort(b_lo[members], kind="stable")]
            keys = b_lo[members]
            reach = float(extent[members].max()) + margin
            start = np.searchsorted(keys, a_lo - reach - margin, side="left")
            stop = np.searchsorted(keys, a_hi + margin, side="right")
            sweeps.append((members, start, np.maximum(stop - start, 0)))
        total = sum(int(n.sum()) for _, _, n in sweeps)
        if best is None or total < best[0]:
            best = (total, sweeps)
    sweeps = best[1]
    per_query = sum(n for _, _, n in sweeps)
    ends = np.cumsum(per_query)
    first = 0
    while first < len(a):  # queries in runs of about ``chunk`` candidates (a run holds one query at least)
        last = max(int(np.searchsorted(ends, (ends[first - 1] if first else 0) + chunk, side="right")), first + 1)
        qi_parts, bj_parts = [], []
        for members, start, n in sweeps:
            cnt = n[first:last]
            qi = np.repeat(np.arange(first, last), cnt)
            offset = np.arange(len(qi)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            qi_parts.append(qi)
            bj_parts.append(members[np.repeat(start[first:last], cnt) + offset])
        i, j = np.concatenate(qi_parts), np.concatenate(bj_parts)
        hit = (a_group[i] == b_group[j]) & (np.minimum(a[i, 2], b[j, 2]) > np.maximum(a[i, 0], b[j, 0]))
        hit &= np.minimum(a[i, 3], b[j, 3]) > np.maximum(a[i, 1], b[j, 1])
        i, j = i[hit], j[hit]
        order = np.lexsort((j, i))
        yield i[order], j[order]
        first = last


def later_line_pairs(images: Sequence[Sequence[Label]], *, same_class: bool) -> tuple[np.ndarray, np.ndarray]:
    """For each label of each image, its best IoU with an EARLIER line of its image (same class or different
    class) and that line's index within the image, as flat arrays over the labels (image after image).

    Only the later line of a pair carries the pair: the earlier box is usually the original and the later
    one the accidental second click or copy, and flagging one line per pair keeps the report short.
    Returns ``(best_iou, partner_index)``; best 0 and partner -1 where no such earlier box overlaps it (an
    IoU of 0 names no partner); ties go to the first partner of the image.

    Every image at once, over the overlapping pairs only (:func:`overlapping_pairs`): per image, numpy's
    fixed cost per call was nearly all of the time with 2.5 boxes an image (food-ingredients), and a full
    pair matrix of a dense image nearly all of the memory. The IoU of a pair is the same elementwise float
    operations as :func:`pairwise_iou`, so the results are bit-identical to the per-image form
    (tests/audit/test_duplicate.py keeps it as the reference).
    """
    counts = np.array([len(labels) for labels in images], dtype=np.int64)
    total = int(counts.sum())
    best = np.zeros(total)
    partner = np.full(total, -1)
    if total == 0:
        return best, partner
    flat = [lab for labels in images for lab in labels]
    boxes = xyxy_array(flat)
    area = areas(boxes)
    cls = np.array([lab.class_id for lab in flat])
    lines = np.array([lab.line for lab in flat])
    image = np.repeat(np.arange(len(counts)), counts)
    first_of = np.repeat(np.cumsum(counts) - counts, counts)  # each label's image's first flat index
    for i, j in overlapping_pairs(boxes, boxes, image, image):
        keep = (cls[i] == cls[j]) if same_class else (cls[i] != cls[j])
        keep &= lines[j] < lines[i]  # partner j comes before i in the file
        i, j = i[keep], j[keep]
        a, b = boxes[i], boxes[j]
        inter = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None) * np.clip(
            np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None
        )
        union = area[i] + area[j] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        # per label i (pairs sorted by i, then j): the largest IoU, its first j; a pair's IoU is > 0 here
        order = np.lexsort((j, -iou, i))
        i, j, iou = i[order], j[order], iou[order]
        top = np.flatnonzero(np.r_[True, i[1:] != i[:-1]]) if len(i) else np.zeros(0, int)
        best[i[top]] = iou[top]
        partner[i[top]] = j[top] - first_of[j[top]]
    return best, partner


def partner_edge_offsets(images: Sequence[Sequence[Label]], partner: np.ndarray) -> np.ndarray:
    """Per label (flat, image after image, as :func:`later_line_pairs` returns them), how far its farthest edge
    lies from the same edge of its partner (``partner``: the partner's index within the image, -1 for none), in
    units of the pair's mean width for the left and right edges and mean height for the top and bottom; inf
    where there is no partner.

    Why next to the IoU: one number says how much two boxes share, not how. A copy moves every edge a little;
    two objects that share a box by design differ at one side by much (a vest stops at the shoulders, a banana
    of a bunch sticks out at one end) though their IoU may be as high as a copy's.
    """
    counts = np.array([len(labels) for labels in images], dtype=np.int64)
    out = np.full(int(counts.sum()), np.inf)
    has = np.flatnonzero(partner >= 0)
    if len(has) == 0:
        return out
    boxes = xyxy_array([lab for labels in images for lab in labels])
    first_of = np.repeat(np.cumsum(counts) - counts, counts)
    a, b = boxes[has], boxes[first_of[has] + partner[has]]
    w = (a[:, 2] - a[:, 0] + b[:, 2] - b[:, 0]) / 2
    h = (a[:, 3] - a[:, 1] + b[:, 3] - b[:, 1]) / 2
    dx = np.maximum(np.abs(a[:, 0] - b[:, 0]), np.abs(a[:, 2] - b[:, 2]))
    dy = np.maximum(np.abs(a[:, 1] - b[:, 1]), np.abs(a[:, 3] - b[:, 3]))
    with np.errstate(divide="ignore", invalid="ignore"):
        off = np.maximum(np.where(w > 0, dx / w, np.inf), np.where(h > 0, dy / h, np.inf))
    out[has] = off
    return out
