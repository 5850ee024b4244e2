"""The dataset teaches its own box checker: one shared computation behind grouped, loose and shifted.

Most boxes of a dataset are right. So we corrupt a sample of its own boxes the way real annotation errors
happen — enlarge them (loose), move them (shifted), merge same-class neighbours into their enclosing box
(grouped) — describe every box, real or corrupted, by geometry relative to its class and by pixel evidence
from a small context patch around it, and train a fast classifier (scikit-learn's
HistGradientBoostingClassifier, classes ok/loose/shifted/grouped) to tell corrupted boxes from originals.
Every real box is scored by a model trained on the *other* images only (K folds by image), so no box is
judged by a model that saw it. This adapts to each dataset's domain without pretrained weights; the
corruption ranges are broader than any benchmark's so the model learns "not like this dataset's boxes"
rather than one planted distribution.

Pixel evidence, per box, from a 2×-context patch (the box plus half its size on each side, resampled to
40×40, channels Lab + gradient (+ the U²-Net-p mask when asked)):

- per side: the band just inside the edge vs the band just outside (a tight edge separates object from
  background; a loose edge has background on both sides; a shifted box has background inside one edge and
  object outside the opposite one);
- an "object-ness" map (colour distance from the context ring) and its row/column profiles: where the
  object's extent lies relative to each edge, and how many separate runs/blobs sit inside (grouped);
- geometry: size and aspect vs the class's median, same-class boxes inside/overlapping, size vs the same
  class's other boxes in the image, border contact;
- siblings: how far the box's content (colour stats, a 4×4 L layout) is from the image's other boxes of its
  class, relative to how far those are from each other (a shifted box straddles two objects of a pile);
- class prototypes: a 5×5 grid of L and of gradient over the box, and over each half and quarter of it
  stretched to the same grid, compared with the class's mean grid over its real boxes. A box around two
  objects has halves (around four, quarters) that each look more like one whole object of the class than
  the box does; a shifted box has a layout unlike the class's. Worth food-ingredients grouped / loose /
  shifted AP 0.75 / 0.86 / 0.62 → 0.78 / 0.89 / 0.71 (benchmarks/README.md, *Session 5*);
- nearest neighbours: the same grids against the 5 nearest boxes of the class in other scenes — real boxes
  (a class that looks several ways has no useful mean), and the synthetic boxes of each kind (a planted pair
  of eggs is near the model's own two-egg merges elsewhere). Worth food-ingredients grouped / loose /
  shifted AP 0.80 / 0.89 / 0.78 → 0.85 / 0.89 / 0.80 in the reference benchmark (benchmarks/README.md,
  *Session 7*).

``--fast`` (no pixels): the same kind of model on geometry features alone, boosted in numpy
(:mod:`curate.learn.boosting`: scikit-learn's import alone would cost more than the model).
"""

from __future__ import annotations

import logging
import os
import pickle
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterable

import cv2
import numpy as np

from curate.core import defaults
from curate.core.dataset import Dataset, ImageRecord
from curate.app.env import fit_side_by_side, no_all_nan_columns, workers
from curate.vision.foreground import read_image

log = logging.getLogger(__name__)

#: The error kinds the model separates from "ok", in class-index order 1..3.
KINDS: tuple[str, ...] = ("loose", "shifted", "grouped")
#: The checks this model scores. It reads options of all three (grouped's iterations and members,
#: background_heavy's use_mask), so each keys its cached findings on all three (``PARAMS_FROM``).
BOX_CHECKS: tuple[str, ...] = ("grouped", "background_heavy", "shifted")
SIDES: tuple[str, ...] = ("left", "top", "right", "bottom")

P = 40  # context patch side (pixels)
M = 10  # margin on each side: the box occupies [M, P-M) in both axes
B = P - 2 * M  # box side in the patch
T = 3  # band thickness (15 % of the box side)
FEATURE_CHUNK = 48  # images per pixel-feature job (≈300 patches: 10 MB of patches in flight per thread) ...
FEATURE_ROWS = 1024  # ... and at most this many boxes per job (a dense image is cut into pieces)


# --------------------------------------------------------------------------------------------------
# boxes and corruptions
# --------------------------------------------------------------------------------------------------


@dataclass
class Query:
    """One box to describe: a real box (``kind`` "ok", ``line`` set) or a corruption of real boxes.

    ``xyxy`` normalized; ``exclude`` = indices of the image's real boxes that this box replaces (the box
    itself, or a grouped box's members), left out of its geometric context.
    """

    image: int  # index into the image list
    xyxy: np.ndarray
    cls: int
    kind: str
    exclude: tuple[int, ...]
    line: int | None = None


def _clip(xyxy: np.ndarray) -> np.ndarray:
    return np.clip(xyxy, 0.0, 1.0)


def _area(b: np.ndarray) -> float:
    return float(max(b[2] - b[0], 0.0) * max(b[3] - b[1], 0.0))


def corrupt_loose(b: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """Enlarge by 1.25–2.6× per axis; half the time symmetric, half the time lopsided."""
    w, h = b[2] - b[0], b[3] - b[1]
    sx, sy = rng.uniform(*defaults.BOXMODEL_LOOSE_SCALE, size=2)
    if rng.random() < 0.2:  # only one axis loose
        if rng.random() < 0.5:
            sx = 1.0 + rng.uniform(0, 0.1)
        else:
            sy = 1.0 + rng.uniform(0, 0.1)
    ux, uy = (0.5, 0.5) if rng.random() < 0.5 else rng.uniform(0.0, 1.0, size=2)
    ex, ey = (sx - 1) * w, (sy - 1) * h
    out = _clip(np.array([b[0] - ex * ux, b[1] - ey * uy, b[2] + ex * (1 - ux), b[3] + ey * (1 - uy)]))
    return out if _area(out) >= 1.2 * _area(b) else None


def corrupt_shifted(b: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """Move by 20–70 % of the size along x, y or both."""
    w, h = b[2] - b[0], b[3] - b[1]
    axes = int(rng.integers(3))
    fx, fy = rng.uniform(*defaults.BOXMODEL_SHIFT_FRACTION, size=2) * rng.choice([-1.0, 1.0], size=2)
    dx = fx * w if axes in (0, 2) else 0.0
    dy = fy * h if axes in (1, 2) else 0.0
    out = _clip(b + np.array([dx, dy, dx, dy]))
    return out if _area(out) >= 0.4 * _area(b) else None


def corrupt_grouped(boxes: np.ndarray, classes: np.ndarray, seed: int, rng: np.random.Generator) -> tuple[np.ndarray, tuple[int, ...]] | None:
    """Enclosing box of ``seed`` and 1–4 of its nearest same-class neighbours (if they are neighbours)."""
    same = np.flatnonzero((classes == classes[seed]) & (np.arange(len(classes)) != seed))
    if not len(same):
        return None
    c = (boxes[:, :2] + boxes[:, 2:]) / 2
    side = (boxes[:, 2] - boxes[:, 0] + boxes[:, 3] - boxes[:, 1]) / 2
    gap = np.hypot(*(c[same] - c[seed]).T) / np.maximum((side[same] + side[seed]) / 2, 1e-6)
    order = same[np.argsort(gap)]
    gap = np.sort(gap)
    k = int(rng.integers(defaults.BOXMODEL_GROUP_SIZE[0], defaults.BOXMODEL_GROUP_SIZE[1] + 1)) - 1
    k = min(k, len(order))
    if gap[k - 1] > defaults.BOXMODEL_GROUP_NEAR:
        k = int(np.sum(gap[:k] <= defaults.BOXMODEL_GROUP_NEAR))
    if k < 1:
        return None
    members = (seed, *order[:k].tolist())
    m = boxes[list(members)]
    return np.array([m[:, 0].min(), m[:, 1].min(), m[:, 2].max(), m[:, 3].max()]), tuple(int(i) for i in members)


# --------------------------------------------------------------------------------------------------
# geometry features
# --------------------------------------------------------------------------------------------------


@dataclass
class ClassStats:
    """Per-class medians of log width/height/area/aspect (pixels), from the real boxes."""

    logw: np.ndarray
    logh: np.ndarray
    loga: np.ndarray
    logr: np.ndarray
    sd_loga: np.ndarray


def class_stats(boxes_px: list[np.ndarray], classes: list[np.ndarray], nc: int) -> ClassStats:
    allb = np.concatenate([b for b in boxes_px if len(b)]) if any(len(b) for b in boxes_px) else np.zeros((0, 4))
    allc = np.concatenate([c for c in classes if len(c)]) if len(allb) else np.zeros(0, int)
    w = np.maximum(allb[:, 2] - allb[:, 0], 1e-3)
    h = np.maximum(allb[:, 3] - allb[:, 1], 1e-3)
    lw, lh = np.log(w), np.log(h)
    out = {k: np.zeros(nc) for k in ("logw", "logh", "loga", "logr", "sd_loga")}
    glob = (np.median(lw) if len(w) else 0, np.median(lh) if len(w) else 0)
    for c in range(nc):
        sel = allc == c
        if sel.sum() == 0:
            out["logw"][c], out["logh"][c] = glob
        else:
            out["logw"][c], out["logh"][c] = np.median(lw[sel]), np.median(lh[sel])
        a = (lw + lh)[sel]
        out["loga"][c] = np.median(a) if len(a) else sum(glob)
        out["logr"][c] = np.median((lw - lh)[sel]) if len(a) else 0.0
        out["sd_loga"][c] = max(float(np.std(a)) if len(a) > 2 else 1.0, 0.2)
    return ClassStats(**out)


GEOM_NAMES = (
    "g_logw", "g_logh", "g_loga", "g_logr", "g_za", "g_img_area",
    "g_n_same_in", "g_n_any_in", "g_cover_same", "g_iou_same", "g_iou_any", "g_n_same_img", "g_rel_sib",
    "g_n_img", "g_border_l", "g_border_t", "g_border_r", "g_border_b", "g_n_same_touch",
)


def geometry_features(
    qs: np.ndarray,
    cls: np.ndarray,
    image: np.ndarray,
    exclude: list[tuple[int, ...]],
    boxes: list[np.ndarray],
    classes: list[np.ndarray],
    sizes: list[tuple[int, int]],
    st: ClassStats,
) -> np.ndarray:
    """Geometry of boxes ``qs`` (m, 4; normalized xyxy, classes ``cls``, on images ``image``) among the boxes of
    their image (``boxes[i]``, ``classes[i]``, image size ``sizes[i]``).

    ``exclude[k]`` are the indices of the image's boxes that are not query ``k``'s neighbours (itself, or the
    boxes a merge removed). Every query of the dataset at once, from the pairs of boxes that overlap
    (:func:`curate.core.overlap.overlapping_pairs`) plus per-class counts and sorted areas per image: a
    matrix of every query against every box of its image was 10 GB for one label file of 10,000 boxes, and a
    call per image was 3 s of ``--fast`` on food. tests/test_boxmodel.py checks it against a readable per-box
    version.
    """
    from curate.core.overlap import overlapping_pairs

    m = len(qs)
    counts = np.array([len(b) for b in boxes], np.int64)
    first = np.cumsum(counts) - counts  # each image's first row in the flat box arrays
    cb = np.concatenate([np.asarray(b, float).reshape(-1, 4) for b in boxes]) if len(boxes) else np.zeros((0, 4))
    cc = np.concatenate([np.asarray(c, np.int64) for c in classes]) if len(classes) else np.zeros(0, np.int64)
    cimg = np.repeat(np.arange(len(boxes)), counts)
    size = np.asarray(sizes, float).reshape(-1, 2)
    qs = np.asarray(qs, float).reshape(-1, 4)
    cls, image = np.asarray(cls, np.int64), np.asarray(image, np.int64)
    qp = qs * size[image][:, [0, 1, 0, 1]]
    cp = cb * size[cimg][:, [0, 1, 0, 1]]
    w, h = np.maximum(qp[:, 2] - qp[:, 0], 1e-3), np.maximum(qp[:, 3] - qp[:, 1], 1e-3)
    lw, lh = np.log(w), np.log(h)
    la = lw + lh
    out = np.zeros((m, len(GEOM_NAMES)), np.float64)
    out[:, 0] = lw - st.logw[cls]
    out[:, 1] = lh - st.logh[cls]
    out[:, 2] = la - st.loga[cls]
    out[:, 3] = (lw - lh) - st.logr[cls]
    out[:, 4] = (la - st.loga[cls]) / st.sd_loga[cls]
    out[:, 5] = np.log(w * h / (size[image, 0] * size[image, 1]))
    out[:, 12] = np.nan
    out[:, 14] = qs[:, 0]
    out[:, 15] = qs[:, 1]
    out[:, 16] = 1 - qs[:, 2]
    out[:, 17] = 1 - qs[:, 3]
    if not m or not len(cb):
        return out.astype(np.float32)
    ca = np.maximum((cp[:, 2] - cp[:, 0]) * (cp[:, 3] - cp[:, 1]), 1e-6)
    qa = w * h
    # the (query, box) pairs that are not neighbours: each query's excluded boxes, once each
    n_ex = np.array([len(e) for e in exclude], np.int64)
    ex_q = np.repeat(np.arange(m), n_ex)
    ex_b = first[image[ex_q]] + np.fromiter((e for ex in exclude for e in ex), np.int64, int(n_ex.sum()))
    ex_key = np.unique(ex_q * len(cb) + ex_b)
    ex_q, ex_b = ex_key // len(cb), ex_key % len(cb)
    # neighbours of each query's class in its image: the image's boxes of the class, less its excluded ones
    nc = int(max(cc.max(), cls.max())) + 1
    group = cimg * nc + cc  # (image, class) of each box
    keys, group_count = np.unique(group, return_counts=True)
    q_group = image * nc + cls
    at = np.minimum(np.searchsorted(keys, q_group), len(keys) - 1)
    n_same = np.where(keys[at] == q_group, group_count[at], 0)
    ex_same = cc[ex_b] == cls[ex_q]
    n_same = n_same - np.bincount(ex_q[ex_same], minlength=m)
    out[:, 11] = n_same
    out[:, 13] = counts[image] - np.bincount(ex_q, minlength=m)
    # median log-area of each query's same-class siblings: order statistics of the class's sorted areas in the
    # image, stepping over the excluded boxes (at most a merge's members) in ascending rank
    log_ca = np.log(ca)
    order = np.lexsort((log_ca, cc, cimg))
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    seg_start = np.searchsorted(group[order], q_group)  # the class's first rank in the image's sorted areas
    has = n_same > 0
    ex_rank = np.full((m, max(int(n_ex.max()), 1)), np.iinfo(np.int64).max)
    q_same, r_same = ex_q[ex_same], rank[ex_b[ex_same]]
    by_q = np.lexsort((r_same, q_same))  # by query, then ascending rank
    q_same, r_same = q_same[by_q], r_same[by_q]
    slot = np.arange(len(q_same)) - np.searchsorted(q_same, q_same)
    ex_rank[q_same, slot] = r_same
    picks = []
    for t in ((n_same - 1) // 2, n_same // 2):
        pos = seg_start + t
        for col in range(ex_rank.shape[1]):
            pos = pos + (ex_rank[:, col] <= pos)
        picks.append(log_ca[order][np.clip(pos, 0, len(order) - 1)])
    out[has, 12] = la[has] - (picks[0][has] + picks[1][has]) / 2
    # what the overlapping pairs say (a pair that does not overlap adds nothing to any of these)
    sums = np.zeros((m, 6))  # same inside, any inside, same intersection, same touching; max IoU same, any
    for k, j in overlapping_pairs(qs, cb, image, cimg):
        kept = ~np.isin(k * len(cb) + j, ex_key)
        k, j = k[kept], j[kept]
        ix = np.clip(np.minimum(cp[j, 2], qp[k, 2]) - np.maximum(cp[j, 0], qp[k, 0]), 0, None)
        iy = np.clip(np.minimum(cp[j, 3], qp[k, 3]) - np.maximum(cp[j, 1], qp[k, 1]), 0, None)
        inter = ix * iy
        iou = inter / (ca[j] + qa[k] - inter)
        inside = inter / ca[j] >= 0.7
        same = cc[j] == cls[k]
        sums[:, 0] += np.bincount(k[inside & same], minlength=m)
        sums[:, 1] += np.bincount(k[inside], minlength=m)
        sums[:, 2] += np.bincount(k[same], weights=inter[same], minlength=m)
        sums[:, 3] += np.bincount(k[same & (inter > 0)], minlength=m)
        np.maximum.at(sums[:, 4], k[same], iou[same])
        np.maximum.at(sums[:, 5], k, iou)
    out[:, 6], out[:, 7] = sums[:, 0], sums[:, 1]
    out[:, 8] = np.minimum(sums[:, 2] / (w * h), 2.0)
    out[:, 9], out[:, 10], out[:, 18] = sums[:, 4], sums[:, 5], sums[:, 3]
    return out.astype(np.float32)


# --------------------------------------------------------------------------------------------------
# pixel features
# --------------------------------------------------------------------------------------------------


def image_channels(bgr: np.ndarray, mask: np.ndarray | None = None) -> list[np.ndarray]:
    """Pyramid (full, ½, ¼, ⅛) of H×W×C float32 channels: L, a, b (≈[0, 1]), gradient (, mask).

    Patches are cut from the coarsest level that still has a patch's resolution, so a big box costs
    no more than a small one.
    """
    lab = cv2.cvtColor(bgr, cv2.COLOR_BGR2Lab).astype(np.float32) / 255.0
    gx = cv2.Sobel(lab[..., 0], cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(lab[..., 0], cv2.CV_32F, 0, 1, ksize=3)
    chans = [lab, cv2.magnitude(gx, gy)[..., None]]
    if mask is not None:
        m = cv2.resize(mask.astype(np.float32), (bgr.shape[1], bgr.shape[0]), interpolation=cv2.INTER_LINEAR)
        chans.append(m[..., None])
    level = np.concatenate(chans, axis=2)
    pyramid = [level]
    while min(level.shape[:2]) >= 2 * P and len(pyramid) < 4:
        level = cv2.resize(level, (level.shape[1] // 2, level.shape[0] // 2), interpolation=cv2.INTER_AREA)
        level = level if level.ndim == 3 else level[..., None]
        pyramid.append(level)
    return pyramid


def context_patch(pyramid: list[np.ndarray], xyxy: np.ndarray) -> np.ndarray:
    """The box plus half its size on each side, resampled to P×P; channels + valid (0 outside the image)."""
    H0, W0 = pyramid[0].shape[:2]
    x1, y1, x2, y2 = xyxy * np.array([W0, H0, W0, H0])
    bw, bh = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    lvl = 0
    while lvl + 1 < len(pyramid) and min(bw, bh) * P / B / 2 ** (lvl + 1) >= P:
        lvl += 1
    chans = pyramid[lvl]
    H, W = chans.shape[:2]
    f = W / W0
    x1, y1, bw, bh = x1 * f, y1 * (H / H0), bw * f, bh * (H / H0)
    X1, Y1 = x1 - bw * M / B, y1 - bh * M / B
    sx, sy = bw / B, bh / B  # level pixels per patch pixel
    X2, Y2 = X1 + P * sx, Y1 + P * sy
    C = chans.shape[2]
    out = np.zeros((P, P, C + 1), np.float32)
    cx1, cy1, cx2, cy2 = max(int(round(X1)), 0), max(int(round(Y1)), 0), min(int(round(X2)), W), min(int(round(Y2)), H)
    if cx2 <= cx1 or cy2 <= cy1:
        return out
    px1, py1 = max(int(round((cx1 - X1) / sx)), 0), max(int(round((cy1 - Y1) / sy)), 0)
    px2, py2 = min(int(round((cx2 - X1) / sx)), P), min(int(round((cy2 - Y1) / sy)), P)
    if px2 <= px1 or py2 <= py1:
        return out
    crop = chans[cy1:cy2, cx1:cx2]
    interp = cv2.INTER_AREA if crop.shape[1] > px2 - px1 else cv2.INTER_LINEAR
    size = (px2 - px1, py2 - py1)
    if min(crop.shape[:2]) < 2 or min(size) < 2:  # a sliver at the border: nearest-neighbour sampling (cv2 mis-shapes these)
        ys = np.minimum((np.arange(size[1]) * crop.shape[0]) // size[1], crop.shape[0] - 1)
        xs = np.minimum((np.arange(size[0]) * crop.shape[1]) // size[0], crop.shape[1] - 1)
        r = crop[ys][:, xs]
        out[py1:py2, px1:px2, :4] = r[..., :4]
        if C > 4:
            out[py1:py2, px1:px2, 5] = r[..., 4]
    else:
        out[py1:py2, px1:px2, :4] = cv2.resize(crop[..., :4], size, interpolation=interp)
        if C > 4:
            out[py1:py2, px1:px2, 5] = cv2.resize(np.ascontiguousarray(crop[..., 4]), size, interpolation=interp)
    out[py1:py2, px1:px2, 4] = 1.0
    return out


def _wmean(x: np.ndarray, w: np.ndarray, axis: tuple[int, ...]) -> np.ndarray:
    """Valid-weighted mean; NaN where nothing is valid."""
    s = w.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(s > 0, (x * w).sum(axis=axis) / np.maximum(s, 1e-9), np.nan)


def _runs(profile: np.ndarray, thr: np.ndarray) -> np.ndarray:
    """Number of separate runs above ``thr`` along the last axis (N×L profile, N thresholds)."""
    above = profile > thr[:, None]
    starts = above[:, 1:] & ~above[:, :-1]
    return above[:, 0].astype(np.float32) + starts.sum(axis=1)


def _extent(profile: np.ndarray, thr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First/last index above ``thr`` minus the box edges, in box units (positive = inside the box)."""
    above = profile > thr[:, None]
    any_ = above.any(axis=1)
    first = np.where(any_, above.argmax(axis=1), np.nan)
    last = np.where(any_, P - 1 - above[:, ::-1].argmax(axis=1), np.nan)
    return (first - M) / B, ((P - M - 1) - last) / B


def _blobs(obj: np.ndarray, thr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Connected blobs of the object-ness map inside the box: count (≥ 3 % of the box) and largest share."""
    n = len(obj)
    count = np.zeros(n, np.float32)
    largest = np.zeros(n, np.float32)
    inner = obj[:, M : P - M, M : P - M]
    for i in range(n):
        binary = (inner[i] > thr[i]).astype(np.uint8)
        k, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=4)
        areas = stats[1:, cv2.CC_STAT_AREA] / float(B * B)
        big = areas[areas >= 0.03]
        count[i] = len(big)
        largest[i] = big.max() / max(big.sum(), 1e-6) if len(big) else 0.0
    return count, largest


def _band_slices() -> dict[str, tuple[slice, slice]]:
    """(rows, cols) of every region of the patch used below."""
    box = slice(M, P - M)
    return {
        "in_left": (box, slice(M, M + T)),
        "in_right": (box, slice(P - M - T, P - M)),
        "in_top": (slice(M, M + T), box),
        "in_bottom": (slice(P - M - T, P - M), box),
        "out_left": (box, slice(M - T, M)),
        "out_right": (box, slice(P - M, P - M + T)),
        "out_top": (slice(M - T, M), box),
        "out_bottom": (slice(P - M, P - M + T), box),
        "far_left": (box, slice(0, M - T)),
        "far_right": (box, slice(P - M + T, P)),
        "far_top": (slice(0, M - T), box),
        "far_bottom": (slice(P - M + T, P), box),
        "centre": (slice(M + B // 4, P - M - B // 4), slice(M + B // 4, P - M - B // 4)),
        "box": (box, box),
    }


def pixel_features(patches: np.ndarray, *, with_mask: bool) -> tuple[np.ndarray, list[str]]:
    """Vectorised features of N context patches (N×P×P×C) → (N×F, names)."""
    n = len(patches)
    col = patches[..., :3]
    grad = patches[..., 3]
    valid = patches[..., 4]  # channel layout from context_patch: L, a, b, grad, valid (, mask)
    regions = _band_slices()
    ring_w = valid.copy()
    ring_w[:, M : P - M, M : P - M] = 0
    mu = _wmean(col, ring_w[..., None], (1, 2))  # N×3 ring colour
    var = _wmean((col - mu[:, None, None, :]) ** 2, ring_w[..., None], (1, 2))
    sd = np.sqrt(np.nan_to_num(var, nan=0.01)) + 0.03
    mu = np.nan_to_num(mu)
    obj = np.sqrt((((col - mu[:, None, None, :]) / sd[:, None, None, :]) ** 2).sum(-1)) * valid  # N×P×P object-ness
    # a colour distance from the image's own box-free ring is a per-dataset scale: normalise by the patch's median
    names: list[str] = []
    feats: list[np.ndarray] = []

    def add(name: str, v: np.ndarray) -> None:
        names.append(name)
        feats.append(np.asarray(v, np.float32))

    means: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for key, (rs, cs) in regions.items():
        w = valid[:, rs, cs]
        means[key] = (
            _wmean(col[:, rs, cs], w[..., None], (1, 2)),
            _wmean(grad[:, rs, cs], w, (1, 2)),
            _wmean(obj[:, rs, cs], w, (1, 2)),
        )
        add(f"p_obj_{key}", means[key][2])
        add(f"p_grad_{key}", means[key][1])
        add(f"p_valid_{key}", w.mean(axis=(1, 2)))
    cen = means["centre"][0]
    for side in SIDES:
        cin, gin, oin = means[f"in_{side}"]
        cout, gout, oout = means[f"out_{side}"]
        cfar = means[f"far_{side}"][0]
        add(f"p_d_inout_{side}", np.linalg.norm(cin - cout, axis=1))
        add(f"p_d_incen_{side}", np.linalg.norm(cin - cen, axis=1))
        add(f"p_d_outcen_{side}", np.linalg.norm(cout - cen, axis=1))
        add(f"p_d_outfar_{side}", np.linalg.norm(cout - cfar, axis=1))
        add(f"p_d_infar_{side}", np.linalg.norm(cin - cfar, axis=1))
    # side-invariant summaries: the model learns "one side is continuous" without needing every orientation
    for stem in ("p_d_inout", "p_d_incen", "p_d_outcen", "p_obj_in", "p_obj_out", "p_grad_in", "p_grad_out"):
        per_side = np.stack([feats[names.index(f"{stem}_{side}")] for side in SIDES], axis=1)
        srt = np.sort(np.nan_to_num(per_side, nan=-1.0), axis=1)
        for i in range(4):
            add(f"{stem}_rank{i}", srt[:, i])
        add(f"{stem}_lr", np.abs(per_side[:, 0] - per_side[:, 2]))
        add(f"{stem}_tb", np.abs(per_side[:, 1] - per_side[:, 3]))
    # edge strength exactly on each edge line vs. the band mean
    edge = {
        "left": grad[:, M : P - M, M - 1 : M + 1].mean(axis=(1, 2)),
        "right": grad[:, M : P - M, P - M - 1 : P - M + 1].mean(axis=(1, 2)),
        "top": grad[:, M - 1 : M + 1, M : P - M].mean(axis=(1, 2)),
        "bottom": grad[:, P - M - 1 : P - M + 1, M : P - M].mean(axis=(1, 2)),
    }
    gbox = means["box"][1]
    for side in SIDES:
        add(f"p_edge_{side}", edge[side] / (np.nan_to_num(gbox) + 1e-3))
    # object-ness profiles: extent vs edges, runs (several objects side by side)
    with warnings.catch_warnings():  # a patch with no valid pixel has an all-NaN row: expected, handled below
        warnings.simplefilter("ignore", RuntimeWarning)
        scale = np.nanmedian(np.where(valid > 0, obj, np.nan).reshape(n, -1), axis=1)
    scale = np.nan_to_num(scale, nan=1.0) + 1e-3
    objn = obj / scale[:, None, None]
    colp = objn[:, M : P - M, :].mean(axis=1)  # N×P column profile over the box's rows
    rowp = objn[:, :, M : P - M].mean(axis=2)
    inner = objn[:, M : P - M, M : P - M]
    peak = inner.reshape(n, -1).max(axis=1)
    for frac in (0.35, 0.6):
        thr_c = frac * colp[:, M : P - M].max(axis=1)
        thr_r = frac * rowp[:, M : P - M].max(axis=1)
        l, r = _extent(colp, thr_c)
        t, b = _extent(rowp, thr_r)
        add(f"p_ext_left_{frac}", l)
        add(f"p_ext_right_{frac}", r)
        add(f"p_ext_top_{frac}", t)
        add(f"p_ext_bottom_{frac}", b)
        ext = np.stack([l, r, t, b], axis=1)
        srt = np.sort(np.nan_to_num(ext, nan=0.0), axis=1)
        for i in range(4):
            add(f"p_ext_rank{i}_{frac}", srt[:, i])
        add(f"p_ext_shift_x_{frac}", np.abs(l - r))
        add(f"p_ext_shift_y_{frac}", np.abs(t - b))
        add(f"p_runs_col_{frac}", _runs(colp[:, M : P - M], thr_c))
        add(f"p_runs_row_{frac}", _runs(rowp[:, M : P - M], thr_r))
    # centroid of object-ness in the patch vs the box centre (box units)
    yy, xx = np.mgrid[0:P, 0:P].astype(np.float32)
    wsum = objn.sum(axis=(1, 2)) + 1e-6
    add("p_cx", ((objn * xx).sum(axis=(1, 2)) / wsum - (P - 1) / 2) / B)
    add("p_cy", ((objn * yy).sum(axis=(1, 2)) / wsum - (P - 1) / 2) / B)
    wbox = inner.sum(axis=(1, 2)) + 1e-6
    add("p_box_share", wbox / wsum)
    add("p_fill_hi", (inner > 0.5 * peak[:, None, None]).mean(axis=(1, 2)))
    count, largest = _blobs(objn, 0.5 * peak)
    add("p_blobs", count)
    add("p_blob_largest", largest)
    # coarse 5×5 object-ness grid of the whole patch: lets the model see layouts the bands miss
    grid = objn.reshape(n, 5, P // 5, 5, P // 5).mean(axis=(2, 4)).reshape(n, 25)
    for i in range(25):
        add(f"p_grid{i}", grid[:, i])
    if with_mask:
        mask = patches[..., 5]
        for key, (rs, cs) in regions.items():
            add(f"m_{key}", _wmean(mask[:, rs, cs], valid[:, rs, cs], (1, 2)))
        mcol = mask[:, M : P - M, :].mean(axis=1)
        mrow = mask[:, :, M : P - M].mean(axis=2)
        thr = np.full(n, 0.25, np.float32)
        l, r = _extent(mcol, thr)
        t, b = _extent(mrow, thr)
        for name, v in zip(("left", "right", "top", "bottom"), (l, r, t, b)):
            add(f"m_ext_{name}", v)
        add("m_runs_col", _runs(mcol[:, M : P - M], thr))
        add("m_runs_row", _runs(mrow[:, M : P - M], thr))
        mc, ml = _blobs(mask, np.full(n, 0.5, np.float32))
        add("m_blobs", mc)
        add("m_blob_largest", ml)
    return np.stack(feats, axis=1), names


SIB_STATS = 7  # descriptor: mean and sd of L, a, b, mean gradient ...
SIB_GRID = 16  # ... and a 4×4 grid of L over the box (zero mean, unit sd)
SIB_NAMES = ("s_n", "s_stat_min", "s_stat_rel", "s_grid_min", "s_grid_rel", "s_both_rel")
SIB_MAX = 256  # a box's siblings are at most this many boxes of its class in its image (a fixed sample of a bigger pile)
SIB_CHUNK = 256  # query rows whose sibling distances are computed at once (256 × SIB_MAX × 16 numbers: 8 MB)
PROTO_CELLS = 5  # shape grids for the class prototype: 5×5 cells over the box, each half and each quarter of it
PROTO_REGIONS = ("whole", "left", "right", "top", "bottom", "tl", "tr", "bl", "br")
PROTO_CHANNELS = {"L": "", "grad": "_g"}  # channel → suffix of its feature names
PROTO_WIDTH = len(PROTO_CHANNELS) * len(PROTO_REGIONS) * PROTO_CELLS * PROTO_CELLS
PROTO_STEMS = ("c_whole", "c_whole_rel", "c_lr", "c_tb", "c_halves", "c_quads", "c_quads_rel")
PROTO_NAMES = tuple(f"{stem}{suffix}" for suffix in PROTO_CHANNELS.values() for stem in PROTO_STEMS)
NEIGHBOUR_K = 5  # nearest boxes of the class (other scenes) a box's grids are compared with
NEIGHBOUR_CELLS = 4_000_000  # distances computed at once (float64: 32 MB)
NEIGHBOUR_MAX_REFS = 3000  # neighbours are sought among at most this many boxes of a class (per kind)
NEIGHBOUR_STEMS = ("n_whole", "n_whole_rel", "n_halves", "n_halves_rel", "n_quads")
NEIGHBOUR_NAMES = tuple(f"{stem}{suffix}" for suffix in PROTO_CHANNELS.values() for stem in NEIGHBOUR_STEMS) + tuple(
    f"n_{kind}{rel}{suffix}" for suffix in PROTO_CHANNELS.values() for kind in KINDS for rel in ("", "_rel"))


def shape_grids(patches: np.ndarray) -> np.ndarray:
    """N×PROTO_WIDTH: 5×5 grids (zero mean, unit sd) of L and of the gradient over the box, and over each of
    its halves and quarters stretched to the same grid. Two objects side by side in one box give two halves
    that each look like one whole object of the class, where the whole box does not; a 2×2 group, four
    quarters (see :func:`prototype_features`).

    Every grid is a sum of 2×2-pixel cells of the 20×20 box (a 10×10 cell map computed once): the whole box
    sums 2×2 cells per grid cell, a half 2×1 or 1×2, a quarter takes its 5×5 cells as they are.
    """
    n = len(patches)
    inner = patches[:, M : P - M, M : P - M]
    h = PROTO_CELLS  # cells of 2 px in half the box: B = 20 px = 10 cells, so a half pools to 5 × 5 as it is
    w = inner[..., 4]
    wc = w.reshape(n, 2 * h, 2, 2 * h, 2).sum(axis=(2, 4))  # N×10×10 valid weight per 2×2 cell

    def cells(v: np.ndarray) -> np.ndarray:
        return (v * w).reshape(n, 2 * h, 2, 2 * h, 2).sum(axis=(2, 4))

    def pool(m: np.ndarray, ry: int, rx: int) -> np.ndarray:  # sum ry×rx blocks of cells → 5×5
        k = PROTO_CELLS
        return m.reshape(n, k, ry, k, rx).sum(axis=(2, 4)).reshape(n, k * k)

    a, b = slice(0, h), slice(h, 2 * h)
    regions = {  # name → (rows, cols) of the 10×10 cell map, and the block it pools to a 5×5 grid
        "whole": ((slice(None), slice(None)), (2, 2)),
        "left": ((slice(None), a), (2, 1)),
        "right": ((slice(None), b), (2, 1)),
        "top": ((a, slice(None)), (1, 2)),
        "bottom": ((b, slice(None)), (1, 2)),
        "tl": ((a, a), (1, 1)),
        "tr": ((a, b), (1, 1)),
        "bl": ((b, a), (1, 1)),
        "br": ((b, b), (1, 1)),
    }
    sums, weights = [], []
    for ch in PROTO_CHANNELS:
        m = cells(inner[..., 0 if ch == "L" else 3])
        for name in PROTO_REGIONS:
            (rs, cs), (ry, rx) = regions[name]
            sums.append(pool(m[:, rs, cs], ry, rx))
            weights.append(pool(wc[:, rs, cs], ry, rx))
    s, wt = np.stack(sums, axis=1), np.stack(weights, axis=1)  # N×grids×25
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a patch outside the image: an all-NaN grid, kept NaN
        g = np.where(wt > 0, s / np.maximum(wt, 1e-9), np.nan)
        g = (g - np.nanmean(g, axis=2, keepdims=True)) / (np.nanstd(g, axis=2, keepdims=True) + 0.02)
    return g.reshape(n, -1).astype(np.float32)


def _grid_parts(grids: np.ndarray, channel: int) -> dict[str, np.ndarray]:
    """One channel's 5×5 grids of :func:`shape_grids` output, per region (whole, halves, quarters), float64."""
    k = PROTO_CELLS * PROTO_CELLS
    base = channel * len(PROTO_REGIONS) * k
    return {name: grids[:, base + i * k : base + (i + 1) * k].astype(np.float64) for i, name in enumerate(PROTO_REGIONS)}


def prototype_features(grids: np.ndarray, qs: list[Query], min_boxes: int = 5) -> np.ndarray:
    """Per channel: how far a box's whole-box grid is from its class's mean grid (the prototype, over the
    real boxes; raw and over the class's median), and how far its halves and quarters are, relative to the
    whole (:data:`PROTO_STEMS`). NaN for classes with fewer than ``min_boxes`` real boxes.

    The prototype is an unsupervised class mean (no label beyond the class), like the siblings' descriptors.
    """
    out = np.full((len(qs), len(PROTO_NAMES)), np.nan, np.float32)
    cls = np.array([q.cls for q in qs], int)
    real = np.array([q.kind == "ok" and q.line is not None for q in qs], bool)
    per = len(PROTO_STEMS)
    for j in range(len(PROTO_CHANNELS)):
        parts = _grid_parts(grids, j)
        for c in np.unique(cls):
            rows = np.flatnonzero(cls == c)
            is_ref = real[rows] & ~np.isnan(parts["whole"][rows]).any(axis=1)  # the class's real, decodable boxes
            if is_ref.sum() < min_boxes:
                continue
            proto = parts["whole"][rows[is_ref]].mean(axis=0)
            d = {name: np.sqrt(np.mean((g[rows] - proto) ** 2, axis=1)) for name, g in parts.items()}
            typical = float(np.median(d["whole"][is_ref])) + 1e-3
            lr, tb = (d["left"] + d["right"]) / 2, (d["top"] + d["bottom"]) / 2
            quads = (d["tl"] + d["tr"] + d["bl"] + d["br"]) / 4
            o = j * per
            out[rows, o + 0] = d["whole"]
            out[rows, o + 1] = d["whole"] / typical
            out[rows, o + 2] = lr - d["whole"]
            out[rows, o + 3] = tb - d["whole"]
            out[rows, o + 4] = np.fmin(lr, tb) / typical
            out[rows, o + 5] = quads - d["whole"]
            out[rows, o + 6] = quads / typical
    return out


def _at_most(idx: np.ndarray, salt: int) -> np.ndarray:
    """``idx``, or a fixed random NEIGHBOUR_MAX_REFS of them: a class's neighbours come from a sample when it is
    big (the cost is rows × references per class; food-ingredients' largest class is far below the cap)."""
    if len(idx) <= NEIGHBOUR_MAX_REFS:
        return idx
    return np.sort(np.random.default_rng(salt).choice(idx, NEIGHBOUR_MAX_REFS, replace=False))


def _nearest(g: np.ndarray, ref: np.ndarray, g_scene: np.ndarray, ref_scene: np.ndarray) -> np.ndarray:
    """RMS distance of each row of ``g`` to its NEIGHBOUR_K nearest rows of ``ref`` (mean of their squared
    distances) from another scene: over fewer when fewer are allowed, NaN when none is.

    In blocks of rows, so the distance matrix stays near NEIGHBOUR_CELLS numbers: a one-class dataset of
    20,000 boxes would otherwise need a 40,000 × 20,000 matrix (6 GB)."""
    out = np.full(len(g), np.nan)
    r2 = (ref * ref).sum(axis=1)
    kk = min(NEIGHBOUR_K, len(ref))
    step = max(1, NEIGHBOUR_CELLS // max(len(ref), 1))
    for a in range(0, len(g), step):
        gg = g[a : a + step]
        d2 = np.maximum((gg * gg).sum(axis=1)[:, None] + r2[None, :] - 2.0 * gg @ ref.T, 0.0) / g.shape[1]
        d2[(g_scene[a : a + step, None] == ref_scene[None, :]) | np.isnan(d2)] = np.inf
        d2 = np.partition(d2, kk - 1, axis=1)[:, :kk]
        ok = np.isfinite(d2)
        n = ok.sum(axis=1)
        out[a : a + step] = np.where(n > 0, np.sqrt(np.where(ok, d2, 0.0).sum(axis=1) / np.maximum(n, 1)), np.nan)
    return out


def neighbour_features(grids: np.ndarray, qs: list[Query], min_boxes: int = 5, scene: np.ndarray | None = None) -> np.ndarray:
    """Per channel: how far a box's grids are from the NEIGHBOUR_K nearest boxes of its class in other scenes.

    - real boxes (:data:`NEIGHBOUR_STEMS`): its whole-box grid, and its halves and quarters, against their
      whole-box grids. The class mean (:func:`prototype_features`) blurs a class that looks several ways
      (white and brown eggs, a whole pepper and a cut one); the nearest real boxes don't;
    - the synthetic boxes of each kind (``n_<kind>``, and minus the real-box distance): a planted group of
      two eggs looks like the two-egg merges the model made in other images.

    ``scene`` maps an image to its scene (near-duplicate images share one, :func:`scenes`): a box's own scene
    never supplies its neighbours, or a synthetic group would match its own members and a re-exported
    photo its twin. Only class labels are used, like the prototype: no box's own error label.
    """
    out = np.full((len(qs), len(NEIGHBOUR_NAMES)), np.nan, np.float32)
    cls = np.array([q.cls for q in qs], int)
    img = np.array([q.image for q in qs], int)
    img = scene[img] if scene is not None else img
    kinds = np.array([q.kind for q in qs])
    real = (kinds == "ok") & np.array([q.line is not None for q in qs], bool)
    per, per_kind = len(NEIGHBOUR_STEMS), 2 * len(KINDS)
    for j in range(len(PROTO_CHANNELS)):
        parts = _grid_parts(grids, j)
        whole = parts["whole"]
        valid = ~np.isnan(whole).any(axis=1)
        for c in np.unique(cls):
            rows = np.flatnonzero(cls == c)
            ref = _at_most(rows[real[rows] & valid[rows]], c)
            if len(ref) < min_boxes:
                continue
            d = {name: _nearest(parts[name][rows], whole[ref], img[rows], img[ref]) for name in PROTO_REGIONS}
            is_ref = real[rows] & np.isfinite(d["whole"])
            typical = float(np.median(d["whole"][is_ref])) + 1e-3 if is_ref.any() else 1.0
            halves = np.fmin((d["left"] + d["right"]) / 2, (d["top"] + d["bottom"]) / 2)
            quads = (d["tl"] + d["tr"] + d["bl"] + d["br"]) / 4
            o = j * per
            out[rows, o + 0] = d["whole"]
            out[rows, o + 1] = d["whole"] / typical
            out[rows, o + 2] = halves - d["whole"]
            out[rows, o + 3] = halves / typical
            out[rows, o + 4] = quads - d["whole"]
            for n_kind, kind in enumerate(KINDS):
                syn = _at_most(rows[(kinds[rows] == kind) & valid[rows]], c)
                if len(syn) < min_boxes:
                    continue
                dk = _nearest(whole[rows], whole[syn], img[rows], img[syn])
                o = len(PROTO_CHANNELS) * per + j * per_kind + 2 * n_kind
                out[rows, o] = dk
                out[rows, o + 1] = dk - d["whole"]
    return out


def scenes(dataset: Dataset, sigs: dict | None = None) -> np.ndarray:
    """Image index → scene id: near-duplicate images (the same shot exported twice) share one.

    ``sigs``: the run's image signatures when the audit has them already (``image_checks.signatures``);
    read from the signature cache otherwise."""
    from curate.vision.hashing import SAME_SCENE_SIMILARITY, image_signatures, near_duplicate_groups

    sigs = image_signatures(dataset, progress=False) if sigs is None else sigs
    index = {r.rel: i for i, r in enumerate(dataset.images)}
    out = np.arange(len(dataset.images))
    for group in near_duplicate_groups(dataset, sigs, threshold=SAME_SCENE_SIMILARITY):
        ids = [index[r] for r in group if r in index]
        out[ids] = min(ids)
    return out


def box_descriptor(patches: np.ndarray) -> np.ndarray:
    """Cheap appearance of each patch's box interior (N×(SIB_STATS+SIB_GRID)); NaN where nothing is valid."""
    n = len(patches)
    inner = patches[:, M : P - M, M : P - M]
    col, grad, valid = inner[..., :3], inner[..., 3], inner[..., 4]
    mu = _wmean(col, valid[..., None], (1, 2))
    sd = np.sqrt(np.maximum(_wmean((col - np.nan_to_num(mu)[:, None, None, :]) ** 2, valid[..., None], (1, 2)), 0.0))
    g = _wmean(grad, valid, (1, 2))
    c = B // 4
    cells = (inner[..., 0] * valid).reshape(n, 4, c, 4, c).sum(axis=(2, 4)).reshape(n, 16)
    wc = valid.reshape(n, 4, c, 4, c).sum(axis=(2, 4)).reshape(n, 16)
    with np.errstate(invalid="ignore", divide="ignore"):
        grid = np.where(wc > 0, cells / np.maximum(wc, 1e-9), np.nan)
        gm = np.nanmean(np.where(np.isnan(grid).all(axis=1, keepdims=True), 0.0, grid), axis=1, keepdims=True)
        grid = np.where(np.isnan(grid), gm, grid)
        grid = (grid - grid.mean(axis=1, keepdims=True)) / (grid.std(axis=1, keepdims=True) + 0.02)
    out = np.concatenate([mu, sd, g[:, None], grid], axis=1).astype(np.float32)
    out[valid.sum(axis=(1, 2)) == 0] = np.nan
    return out


def _sibling_nn(d: np.ndarray) -> float:
    """Median over a sibling set of each member's nearest-other-member distance (``d`` = their pairwise distances)."""
    if len(d) < 2:
        return np.nan
    d = d.copy()
    np.fill_diagonal(d, np.inf)
    return float(np.median(d.min(axis=1)))


def _rms_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) root-mean-square distances between the rows of ``a`` and ``b``."""
    return np.sqrt(((a[:, None] - b[None]) ** 2).mean(-1))


def sibling_features(desc: np.ndarray, qs: list[Query], by_image: dict[int, list[int]], classes: list[np.ndarray]) -> np.ndarray:
    """How a box's content compares with the other boxes of its class in the same image (piles, trays).

    A right box resembles its same-class siblings; a shifted box covers halves of two objects or background, a
    grouped box a texture of several objects. Per query: siblings = the image's real same-class boxes other than
    the boxes it replaces (``exclude``); their count, the nearest descriptor distance (colour stats and the L
    layout grid separately), and each nearest distance over the siblings' own typical nearest distance.
    Computed from every row's descriptor after the (cached) pixel features, so a label edit can't serve stale
    values; per row it depends only on its image's boxes (and the dataset-wide scale of the colour stats).

    Memory stays bounded on a dense image: distances are computed per class of the image, for SIB_CHUNK query
    rows at a time, against at most SIB_MAX siblings (a fixed sample of a bigger pile). Over every box of an
    image at once, one label file of 10,000 boxes needed 10⁸ distances of 16 numbers (13 GB) and a nearest-
    sibling pass per box over all the others (10¹² steps).
    """
    out = np.full((len(qs), len(SIB_NAMES)), np.nan, np.float32)
    real = np.array([k for k, q in enumerate(qs) if q.kind == "ok" and q.line is not None], int)
    stats = desc[:, :SIB_STATS].astype(np.float64)
    scale = np.nanstd(stats[real], axis=0) if len(real) else np.ones(SIB_STATS)
    stats = stats / np.where(np.isfinite(scale) & (scale > 1e-6), scale, 1.0)
    grid = desc[:, SIB_STATS:].astype(np.float64)
    for i, ks in by_image.items():
        rows = {qs[k].line: k for k in ks if qs[k].kind == "ok" and qs[k].line is not None}
        c = classes[i]
        if not len(c):
            continue
        lines = np.array([j for j in range(len(c)) if j in rows], int)
        if not len(lines):
            continue
        rk = np.array([rows[j] for j in lines], int)
        ok_real = ~np.isnan(stats[rk]).any(axis=1)  # a box whose descriptor is undefined is nobody's sibling
        for cls in sorted({qs[k].cls for k in ks}):
            members = lines[(c[lines] == cls) & ok_real]  # this class's siblings, by line
            if len(members) > SIB_MAX:
                members = np.sort(np.random.default_rng([i, cls]).choice(members, SIB_MAX, replace=False))
            mk = np.array([rows[j] for j in members], int)
            rs, rg = stats[mk], grid[mk]
            ps, pg = _rms_distances(rs, rs), _rms_distances(rg, rg)  # sibling × sibling
            pos = {int(j): n for n, j in enumerate(members)}  # line → its column among the siblings
            typical: dict[bytes, tuple[float, float, float]] = {}  # sibling set → its typical nearest distances
            queries = [k for k in ks if qs[k].cls == cls]
            for at in range(0, len(queries), SIB_CHUNK):
                chunk = np.array(queries[at : at + SIB_CHUNK], int)
                ds, dg = _rms_distances(stats[chunk], rs), _rms_distances(grid[chunk], rg)  # query × sibling
                for row, k in enumerate(chunk):
                    q = qs[k]
                    sib = np.ones(len(members), bool)
                    for e in q.exclude:  # the boxes it replaces (a tuple of one to five; np.isin per row cost ~1 s)
                        if e in pos:
                            sib[pos[e]] = False
                    n = int(sib.sum())
                    out[k, 0] = n
                    if n == 0 or np.isnan(ds[row]).all():
                        continue
                    s = np.flatnonzero(sib)
                    a, b = ds[row, s], dg[row, s]
                    key = s.tobytes()  # a real box and its loose/shifted corruptions share one sibling set
                    if key not in typical:
                        ss, gg = ps[np.ix_(s, s)], pg[np.ix_(s, s)]
                        typical[key] = (_sibling_nn(ss), _sibling_nn(gg), _sibling_nn(ss + gg))
                    ns, ng, nb = typical[key]
                    out[k, 1], out[k, 3] = a.min(), b.min()
                    out[k, 2] = a.min() / (ns + 0.05)
                    out[k, 4] = b.min() / (ng + 0.05)
                    out[k, 5] = (a + b).min() / (nb + 0.1)
    return out


# --------------------------------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------------------------------


@dataclass
class BoxScores:
    """Scores of every real box for each kind, plus evidence for messages; keyed by (rel, line)."""

    index: dict[tuple[str, int], int]
    records: list[tuple[ImageRecord, int]]  # (record, label index) per row
    scores: dict[str, np.ndarray]  # kind → score in [0, 1] per row
    prob: np.ndarray  # N×4 out-of-fold class probabilities (ok, loose, shifted, grouped)
    features: np.ndarray
    names: list[str]
    method: str  # "pixels", "pixels+u2netp", "pixels+grabcut", "geometry"
    seconds: dict[str, float] = field(default_factory=dict)
    _evidence: dict[int, dict[str, Any]] = field(default_factory=dict, repr=False, compare=False)

    def evidence(self, row: int) -> dict[str, Any]:
        """:func:`evidence` of a row, computed once for the three box checks that each describe every box."""
        if row not in self._evidence:
            self._evidence[row] = evidence(self, row)
        return self._evidence[row]

    def value(self, row: int, name: str) -> float:
        try:
            return float(self.features[row, self.names.index(name)])
        except ValueError:
            return float("nan")


def _queries(dataset: Dataset, rng: np.random.Generator, *, with_corruptions: bool, share: float = defaults.BOXMODEL_CORRUPT_SHARE) -> tuple[list[Query], list[np.ndarray], list[np.ndarray]]:
    boxes = [np.array([lab.xyxy for lab in r.labels], float).reshape(-1, 4) for r in dataset.images]
    classes = [np.array([lab.class_id for lab in r.labels], int) for r in dataset.images]
    qs: list[Query] = []
    for i, rec in enumerate(dataset.images):
        for j, lab in enumerate(rec.labels):
            qs.append(Query(i, boxes[i][j], lab.class_id, "ok", (j,), line=j))
    if not with_corruptions:
        return qs, boxes, classes
    n = len(qs)
    per_kind = int(min(max(share * n, 200), defaults.BOXMODEL_MAX_CORRUPT))
    originals = [q for q in qs]
    for kind in KINDS:
        made = 0
        order = rng.permutation(n)
        for t in order:
            if made >= per_kind:
                break
            q = originals[t]
            b = boxes[q.image][q.line]
            if kind == "loose":
                out = corrupt_loose(b, rng)
                res = (out, (q.line,)) if out is not None else None
            elif kind == "shifted":
                out = corrupt_shifted(b, rng)
                res = (out, (q.line,)) if out is not None else None
            else:
                res = corrupt_grouped(boxes[q.image], classes[q.image], q.line, rng)
            if res is None:
                continue
            qs.append(Query(q.image, res[0], q.cls, kind, res[1]))
            made += 1
    return qs, boxes, classes


def _features(
    dataset: Dataset,
    qs: list[Query],
    boxes: list[np.ndarray],
    classes: list[np.ndarray],
    *,
    pixels: bool,
    masks: dict[str, np.ndarray] | None,
    progress: bool,
    signatures: dict | None = None,
) -> tuple[np.ndarray, list[str]]:
    from rich.progress import Progress

    nc = max(len(dataset.names), 1 + max((int(c.max()) for c in classes if len(c)), default=0))
    sizes: list[tuple[int, int]] = []
    for rec in dataset.images:
        try:
            sizes.append(rec.size if rec.labels else (1, 1))
        except Exception:
            sizes.append((1, 1))
    px = [b * np.array([w, h, w, h], float) for b, (w, h) in zip(boxes, sizes)]
    st = class_stats(px, classes, nc)
    by_image: dict[int, list[int]] = {}
    for k, q in enumerate(qs):
        by_image.setdefault(q.image, []).append(k)
    geo = np.zeros((len(qs), len(GEOM_NAMES)), np.float32)
    pix: np.ndarray | None = None
    pnames: list[str] = []
    with_mask = masks is not None
    if pixels:  # the feature names (and width) without touching an image
        pnames = pixel_features(np.zeros((1, P, P, 6 if with_mask else 5), np.float32), with_mask=with_mask)[1]
        pix = np.full((len(qs), len(pnames) + SIB_STATS + SIB_GRID + PROTO_WIDTH), np.nan, np.float32)  # features, descriptor, shape grids
    cache = FeatureCache(with_mask=with_mask) if pixels and defaults.BOXMODEL_FEATURE_CACHE else None
    todo: dict[int, list[int]] = {}  # image → query rows whose pixel features must be computed

    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("box features" + (" (pixels)" if pixels else ""), total=len(by_image))
        geo[:] = geometry_features(
            np.array([q.xyxy for q in qs], float).reshape(-1, 4), np.array([q.cls for q in qs], int), np.array([q.image for q in qs], int),
            [q.exclude for q in qs], boxes, classes, sizes, st,
        )
        for i, ks in by_image.items():
            if pixels:
                todo[i] = cache.fill(i, dataset.images[i], ks, qs, pix) if cache is not None else ks
            if not pixels or not todo[i]:
                bar.advance(task)

        def chunk_features(images: list[tuple[int, list[int]]]) -> tuple[list[int], np.ndarray | None]:
            """Pixel features of a chunk of (image, query rows) (decode, channels, patches, features)."""
            rows: list[int] = []
            patches: list[np.ndarray] = []
            for i, ks in images:
                rec = dataset.images[i]
                bgr = read_image(rec.path, max_side=defaults.PIXEL_MAX_SIDE)
                if bgr is not None:
                    mask = masks.get(rec.rel) if with_mask else None
                    if with_mask and mask is None:
                        mask = np.zeros(bgr.shape[:2], np.float32)
                    pyramid = image_channels(bgr, mask if with_mask else None)
                    for k in ks:
                        patches.append(context_patch(pyramid, qs[k].xyxy))
                        rows.append(k)
            if not patches:
                return rows, None
            stack = np.stack(patches)
            return rows, np.concatenate([pixel_features(stack, with_mask=with_mask)[0], box_descriptor(stack), shape_grids(stack)], axis=1)

        # cv2 and numpy's large reductions release the GIL: a few threads use the cores (and keep memory to a
        # chunk's patches each), where one thread left half of a 2-core machine idle
        busy = [i for i in todo if todo[i]]
        chunks = feature_chunks([(i, todo[i]) for i in busy])
        with ThreadPoolExecutor(max_workers=workers()) as pool:
            for part, (rows, f) in zip(chunks, pool.map(chunk_features, chunks)):
                if f is not None:
                    pix[rows] = f
                bar.advance(task, sum(ks[-1] == todo[i][-1] for i, ks in part))  # the images this job finished
        if cache is not None:
            cache.save(qs, pix, busy)
    if pixels and pix is not None:
        d0 = len(pnames) + SIB_STATS + SIB_GRID
        sib = sibling_features(pix[:, len(pnames) : d0], qs, by_image, classes)
        proto = prototype_features(pix[:, d0:], qs)
        neigh = neighbour_features(pix[:, d0:], qs, scene=scenes(dataset, signatures))
        return (np.concatenate([geo, pix[:, : len(pnames)], sib, proto, neigh], axis=1),
                list(GEOM_NAMES) + pnames + list(SIB_NAMES) + list(PROTO_NAMES) + list(NEIGHBOUR_NAMES))
    return geo, list(GEOM_NAMES)


def feature_chunks(work: list[tuple[int, list[int]]]) -> list[list[tuple[int, list[int]]]]:
    """The pixel-feature jobs: FEATURE_CHUNK images each, or fewer where they hold more than FEATURE_ROWS boxes to
    describe; an image with more than that is cut into pieces of FEATURE_ROWS (each piece decodes it again).

    A job holds all its patches and their intermediate arrays at once (about 300 KB a box): by images alone, one
    label file of 10,000 boxes (25,000 rows with the corrupted ones) was one job of several GB."""
    chunks: list[list[tuple[int, list[int]]]] = []
    part: list[tuple[int, list[int]]] = []
    rows = 0
    for i, ks in work:
        for n in range(0, len(ks), FEATURE_ROWS):
            piece = ks[n : n + FEATURE_ROWS]
            if part and (len(part) >= FEATURE_CHUNK or rows + len(piece) > FEATURE_ROWS):
                chunks.append(part)
                part, rows = [], 0
            part.append((i, piece))
            rows += len(piece)
    if part:
        chunks.append(part)
    return chunks


class FeatureCache:
    """Pixel features of boxes on disk, per image, keyed by the image's content hash.

    A box's pixel features depend only on the image's bytes and the box, so a re-audit after a label
    edit recomputes only the boxes that changed (the corruptions are drawn with the same seed, so they
    repeat too). One array per image: rows of (x1, y1, x2, y2, features, descriptor), boxes matched to 1e-6.
    The sibling features compare descriptors across an image's boxes, so they are computed after the cache,
    never stored.
    """

    VERSION = 4  # bump when pixel_features, box_descriptor, shape_grids or context_patch change

    def __init__(self, *, with_mask: bool) -> None:
        self.namespace = f"boxfeat-v{self.VERSION}-{defaults.PIXEL_MAX_SIDE}" + ("-mask" if with_mask else "")
        self.keys: dict[int, str] = {}  # image index → content hash (None when unreadable)
        self.images: dict[int, list[int]] = {}  # image index → query rows of that image
        self.cached: dict[int, np.ndarray] = {}

    @staticmethod
    def _rounded(xyxy: np.ndarray) -> tuple[int, ...]:
        return tuple(int(v) for v in np.round(np.asarray(xyxy, float) * 1e6))

    def fill(self, i: int, rec: ImageRecord, ks: list[int], qs: list[Query], pix: np.ndarray) -> list[int]:
        """Copy cached rows of image ``i`` into ``pix``; the query rows still to compute."""
        from curate.io import cache

        self.images[i] = ks
        try:
            key = cache.file_hash(rec.path)
        except OSError:
            return ks
        self.keys[i] = key
        arr = cache.load_array(self.namespace, key)
        if arr is None or arr.ndim != 2 or arr.shape[1] != 4 + pix.shape[1]:
            return ks
        self.cached[i] = arr
        index = {self._rounded(r[:4]): n for n, r in enumerate(arr)}
        todo = []
        for k in ks:
            n = index.get(self._rounded(qs[k].xyxy))
            if n is None:
                todo.append(k)
            else:
                pix[k] = arr[n, 4:]
        return todo

    def save(self, qs: list[Query], pix: np.ndarray, computed: list[int]) -> None:
        """Write back the rows of the images in ``computed`` (those :meth:`fill` left rows to compute for;
        NaN rows — unreadable — are not kept), with up to BOXMODEL_CACHE_KEEP older rows this run didn't ask for.

        An image whose rows all came from the cache is not rewritten, even when the cache holds more rows than
        this run asked for (another seed's corruptions): a warm run wrote every image again, ~8 s on food."""
        from curate.io import cache

        for i in computed:
            key, ks = self.keys.get(i), self.images[i]
            if key is None:
                continue
            rows = np.concatenate([np.array([qs[k].xyxy for k in ks], np.float64).reshape(-1, 4), pix[ks].astype(np.float64)], axis=1)
            rows = rows[~np.isnan(rows[:, 4:]).all(axis=1)]
            old = self.cached.get(i)
            if old is not None:
                have = {self._rounded(r[:4]) for r in rows}
                extra = old[[self._rounded(r[:4]) not in have for r in old]]
                rows = np.concatenate([rows, extra[-defaults.BOXMODEL_CACHE_KEEP :]], axis=0) if len(extra) else rows
            try:
                cache.save_array(self.namespace, key, rows)
            except OSError:  # a read-only or full cache: features are just recomputed next time
                pass


def _folds(dataset: Dataset, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 17)
    return rng.integers(0, k, size=len(dataset.images))


def _classifier(seed: int, iterations: int, *, fast: bool = False):
    """scikit-learn's histogram boosting; ``--fast``: :class:`curate.learn.boosting.BoostedTrees`, the same kind of
    model in numpy, because importing scikit-learn alone costs ~2 s of CPU, more than the rest of
    ``--fast``'s box model (held-out AP of the synthetic loose/shifted/grouped boxes on food: see
    benchmarks/README.md, Session 9)."""
    if fast:
        from curate.learn.boosting import BoostedTrees

        return BoostedTrees(iterations=iterations, learning_rate=defaults.BOXMODEL_FAST_LEARNING_RATE, max_depth=defaults.BOXMODEL_FAST_DEPTH, min_samples_leaf=20, l2_regularization=1.0, max_bins=defaults.BOXMODEL_MAX_BINS)
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=iterations,
        learning_rate=0.15,
        max_leaf_nodes=15,
        min_samples_leaf=20,
        l2_regularization=1.0,
        max_bins=defaults.BOXMODEL_MAX_BINS,
        early_stopping=False,  # scikit-learn's "auto" turns it on above 10,000 rows: a larger dataset would hold 10 % out and stop at another round count
        random_state=seed,
    )


def score_boxes(
    dataset: Dataset,
    *,
    fast: bool = False,
    use_mask: bool = False,
    seed: int = defaults.SEED,
    folds: int = defaults.BOXMODEL_FOLDS,
    iterations: int = defaults.BOXMODEL_ITERATIONS,
    rounds: int = defaults.BOXMODEL_ROUNDS,
    members: int = defaults.BOXMODEL_MEMBERS,
    progress: bool = True,
    signatures: dict | None = None,
) -> BoxScores:
    """Out-of-fold scores (loose, shifted, grouped) for every box of every split.

    ``fast`` uses geometry only (no image is decoded); ``use_mask`` adds U²-Net-p mask features (computed
    and cached for every image: ~250 ms an image the first time). Each fold is scored by ``members`` models
    that saw different corrupted boxes, averaged (see :func:`_crossfit`, :data:`defaults.BOXMODEL_MEMBERS`).
    """
    t0 = time.perf_counter()
    if fast:  # --fast promises hundreds of images a second: a lighter model on geometry alone
        iterations = min(iterations, defaults.BOXMODEL_FAST_ITERATIONS)
        folds = min(folds, 2)
        members = 1
    share = defaults.BOXMODEL_FAST_CORRUPT_SHARE if fast else defaults.BOXMODEL_CORRUPT_SHARE
    if not dataset.num_boxes:  # no boxes at all: nothing to learn from or score
        empty = np.zeros(0, np.float32)
        return BoxScores({}, [], {k: empty for k in KINDS}, np.zeros((0, 1 + len(KINDS)), np.float32), np.zeros((0, 0), np.float32), [], "geometry" if fast else "pixels")
    seconds: dict[str, float] = {}
    masks = None
    method = "geometry" if fast else "pixels"
    if use_mask and not fast:
        from curate.vision.foreground import get_model, masks_for

        model = get_model()
        masks = masks_for([r for r in dataset.images if r.labels], progress=progress, model=model)
        method = f"pixels+{model.method}"
        seconds["masks"] = time.perf_counter() - t0
    # the real boxes are the first rows of every member's queries (dataset order); only the corrupted rows differ.
    # A row's features depend only on its image's real boxes, so every member's rows are described in one pass
    # (one decode per image, one cache write) and sliced apart: the same values as one pass per member.
    drawn = [_queries(dataset, np.random.default_rng(seed + 101 * m), with_corruptions=True, share=share) for m in range(max(1, members))]
    boxes, classes = drawn[0][1], drawn[0][2]
    n_real = sum(len(r.labels) for r in dataset.images)
    union = list(drawn[0][0][:n_real])
    spans = []
    for qs_m, _, _ in drawn:
        spans.append(np.r_[0:n_real, len(union) : len(union) + len(qs_m) - n_real])
        union.extend(qs_m[n_real:])
    t1 = time.perf_counter()
    X_all, names = _features(dataset, union, boxes, classes, pixels=not fast, masks=masks, progress=progress, signatures=signatures)
    seconds["features"] = time.perf_counter() - t1
    parts = []
    for (qs_m, _, _), rows in zip(drawn, spans):
        y = np.array([0 if q.kind == "ok" else 1 + KINDS.index(q.kind) for q in qs_m])
        parts.append((qs_m, X_all[rows], y))
    qs, X, y = parts[0]
    real = np.array([k for k, q in enumerate(qs) if q.line is not None and q.kind == "ok"], int)
    fold_of_image = _folds(dataset, folds, seed)  # one fold per image for every member: each fold's models never saw it
    folds_of = [fold_of_image[np.array([q.image for q in p[0]])] for p in parts]
    t2 = time.perf_counter()
    from rich.progress import Progress

    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("box model (cross-fitted)", total=len(parts) * folds * rounds)
        keep = np.ones(len(real), bool)  # over the real boxes, the same rows in every member
        for r in range(rounds):
            prob = _crossfit([(p[1], p[2], fo) for p, fo in zip(parts, folds_of)], folds, keep, seed=seed, iterations=iterations, advance=lambda: bar.advance(task), fast=fast)
            if r + 1 < rounds:
                # the dataset's own worst boxes are probably real errors: don't teach the model they are "ok"
                p_ok = prob[real, 0]
                keep = p_ok >= np.quantile(p_ok, defaults.BOXMODEL_DROP_SHARE)
    seconds["model"] = time.perf_counter() - t2
    prior = np.bincount(y, minlength=1 + len(KINDS)) / len(y)
    scores = calibrate_heldout(prob, y, prior, real)
    prob = prob[real]
    rows = [(dataset.images[qs[k].image], qs[k].line) for k in real]
    index = {(rec.rel, rec.labels[j].line): n for n, (rec, j) in enumerate(rows)}
    seconds["total"] = time.perf_counter() - t0
    return BoxScores(index=index, records=rows, scores=scores, prob=prob, features=X[real], names=names, method=method, seconds=seconds)


def _crossfit(members: list[tuple[np.ndarray, np.ndarray, np.ndarray]], folds: int, keep: np.ndarray, *, seed: int, iterations: int, advance, fast: bool = False) -> np.ndarray:
    """Out-of-fold class probabilities of the first member's rows (real and corrupted), averaged over members.

    ``members`` are (X, y, fold) of the same real boxes (the first ``len(keep)`` rows, of which only ``keep``
    train) with each member's own corrupted boxes. Fold ``f``'s model of every member is trained on the
    images outside fold ``f`` and scores the first member's rows in it: a bag of models that saw different
    corruptions, calibrated once on the first member's held-out corrupted boxes. The fits run side by side
    (:func:`curate.app.env.fit_side_by_side`): on food-ingredients' pixel model, 3 folds took 27–29 s one after
    another on 2 OpenMP threads and 21–23 s side by side. ``fast``: the numpy model, one fit after another
    (the other core is busy with the parent's hashing, and threads would need scikit-learn's OpenMP limits).
    """
    X0, y0, fold0 = members[0]

    def fit(f: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        X, y, fold = members[m]
        train = fold != f
        train[: len(keep)] &= keep
        test = np.flatnonzero(fold0 == f)  # corrupted rows too: their held-out scores calibrate the originals'
        labels_present = np.unique(y[train])
        if not len(test) or len(labels_present) < 2:
            return None
        clf = _classifier(seed + f + 1000 * m, iterations, fast=fast)
        clf.fit(no_all_nan_columns(X[train]), y[train])  # sklearn 1.9 raises on an all-NaN feature
        return test, labels_present, clf.predict_proba(X0[test])

    jobs = [(f, m) for f in range(folds) for m in range(len(members))]
    total = np.zeros((len(y0), 1 + len(KINDS)), np.float64)
    count = np.zeros(len(y0), np.float64)
    if fast:
        results = []
        for f, m in jobs:
            results.append(fit(f, m))
            advance()
    else:
        results = fit_side_by_side([lambda f=f, m=m: fit(f, m) for f, m in jobs], done=advance)
    for res in results:
        if res is not None:
            test, labels_present, p = res
            total[np.ix_(test, labels_present)] += p
            count[test] += 1
    return (total / np.maximum(count, 1)[:, None]).astype(np.float32)


def calibrate(prob: np.ndarray, prior: np.ndarray) -> dict[str, np.ndarray]:
    """Map training-prior probabilities to scores: re-weight to a realistic error prior, then per kind.

    The classifier saw corrupted boxes at ``prior`` (tens of %); real errors are rarer. Bayes' rule with
    an assumed prior of :data:`defaults.BOXMODEL_ERROR_PRIOR` per kind turns P(kind | x) into the
    posterior a user cares about; that keeps a clean dataset's flags at a few per hundred.
    """
    target = np.array([1.0 - len(KINDS) * defaults.BOXMODEL_ERROR_PRIOR] + [defaults.BOXMODEL_ERROR_PRIOR] * len(KINDS))
    w = target / np.maximum(prior, 1e-9)
    p = prob * w[None, :]
    p = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
    return {kind: np.clip(p[:, 1 + i], 0.0, 1.0) for i, kind in enumerate(KINDS)}


def calibrate_heldout(prob: np.ndarray, y: np.ndarray, prior: np.ndarray, real: np.ndarray) -> dict[str, np.ndarray]:
    """Scores of the ``real`` rows, calibrated on the held-out scores of the corrupted boxes (Platt, per kind).

    Why: boosting on a small dataset is over-confident — on 230 boxes, originals that merely look unusual
    got P(shifted) ≈ 0.97 and one in twenty was flagged. The cross-fitted scores of the corrupted boxes
    are honest evidence of how well this dataset's model separates each kind from "ok": a logistic fit of
    the label (corrupted as ``kind`` vs original) on the logit of :func:`calibrate`'s score shrinks the
    score when the separation is poor, then re-weights from the fit's class ratio to the assumed error
    prior.

    That alone is conservative everywhere (on 1,600–4,600 boxes it halves the planted errors reaching 0.5
    while the prior-weighted score flags < 0.6 clean boxes per 100), so the score is the larger of the two
    — the prior-weighted logit shrunk by ``BOXMODEL_SMALL_SHRINK × ln(BOXMODEL_SMALL_BOXES / n)`` below
    ``BOXMODEL_SMALL_BOXES`` real boxes (the fewer boxes the model learnt from, the less its confidence
    is worth), and the held-out (Platt) score. Both maps are increasing, so the ranking (and AP) within a
    dataset is unchanged.
    """
    from curate.learn.boosting import platt

    base = calibrate(prob, prior)  # all rows: the corrupted ones are the calibration set
    scored = prob.sum(axis=1) > 0  # rows of a fold whose model could not be fitted have no prediction
    target_ok = 1.0 - len(KINDS) * defaults.BOXMODEL_ERROR_PRIOR
    shrink = defaults.BOXMODEL_SMALL_SHRINK * max(0.0, float(np.log(defaults.BOXMODEL_SMALL_BOXES / max(len(real), 1))))
    out: dict[str, np.ndarray] = {}
    for i, kind in enumerate(KINDS):
        z = np.log(np.clip(base[kind], 1e-6, 1 - 1e-6) / np.clip(1 - base[kind], 1e-6, 1))
        shrunk = z[real] - shrink
        rows = scored & ((y == 0) | (y == 1 + i))
        pos, neg = int(np.sum(rows & (y == 1 + i))), int(np.sum(rows & (y == 0)))
        if min(pos, neg) < defaults.BOXMODEL_CALIBRATION_MIN:  # too little to calibrate on
            out[kind] = (1.0 / (1.0 + np.exp(-shrunk))).astype(np.float32)
            continue
        a, b = platt(z[rows], y[rows] == 1 + i)  # LogisticRegression(C=1.0)'s fit, in numpy (no scikit-learn in --fast)
        a = max(a, 1e-3)
        log.debug("calibration %s: slope %.3f intercept %.3f (%d corrupted, %d originals)", kind, a, b, pos, neg)
        zc = a * z[real] + b + np.log(defaults.BOXMODEL_ERROR_PRIOR / target_ok) - np.log(pos / neg)
        zc = np.maximum(zc, shrunk)
        out[kind] = (1.0 / (1.0 + np.exp(-zc))).astype(np.float32)
    return out


def _model_options(ctx: Any) -> dict[str, Any]:
    """score_boxes' options from the audit's ``--config`` (the same for the in-process and the child run)."""
    return {
        "fast": ctx.fast,
        "use_mask": bool(ctx.param("background_heavy", "use_mask", defaults.BOXMODEL_USE_MASK)),
        "seed": ctx.seed,
        "iterations": int(ctx.param("grouped", "iterations", defaults.BOXMODEL_ITERATIONS)),
        "members": int(ctx.param("grouped", "members", defaults.BOXMODEL_MEMBERS)),
    }


_CHILD_KEY = "boxmodel_child"
WARM_CHILD_KEY = "boxmodel_warm"  # a child spawned before the dataset was read (see spawn_child), not yet called


def spawn_child() -> "worker.Job | None":  # noqa: F821 — curate.app.worker is imported lazily
    """A child process (:mod:`curate.app.worker`) that imports the box model and its numpy boosting now, for
    :func:`start_in_child` to hand the dataset to later; None on one core or when it cannot start.

    Why: the CLI spawns it before reading the dataset, so the child's start-up overlaps the read and the
    hashing, and its fit starts as soon as the dataset is there. Put it in ``ctx.shared`` under
    ``WARM_CHILD_KEY`` (``run_audit(box_model_child=...)`` does); one that is not needed is cancelled.
    """
    from curate.app import worker

    return worker.try_spawn("curate.audit.boxmodel", "curate.learn.boosting")


def start_in_child(ctx: Any) -> None:
    """``--fast``: run the geometry box model in a child process (:mod:`curate.app.worker`, a warm one from
    :func:`spawn_child` when there is one) while this process hashes the images; :func:`shared_scores`
    collects it.

    Only ``--fast`` and only with two cores or more: the full audit's model needs the image signatures
    first (its scenes), and one core gains nothing from a second process.
    """
    warm = ctx.shared.pop(WARM_CHILD_KEY, None)
    if not ctx.fast or _CHILD_KEY in ctx.shared or "boxmodel" in ctx.shared:
        if warm is not None:
            warm.cancel()
        return
    from curate.app import worker

    job = worker.try_call(warm or spawn_child(), "curate.audit.boxmodel:scores_by_position", ctx.dataset, **_model_options(ctx))
    if job is not None:  # else computed in this process
        ctx.shared[_CHILD_KEY] = job


def scores_by_position(dataset: Dataset, **options: Any) -> tuple[BoxScores, list[tuple[int, int]]]:
    """:func:`score_boxes` for a child process: its rows name their image by position in ``dataset.images``,
    so the parent points them at its own records instead of the child's unpickled copies."""
    bs = score_boxes(dataset, progress=False, **options)
    position = {id(rec): i for i, rec in enumerate(dataset.images)}
    rows = [(position[id(rec)], j) for rec, j in bs.records]
    bs.records = []
    return bs, rows


def cancel_child(ctx: Any) -> None:
    """Stop a child of :func:`spawn_child` or :func:`start_in_child` that nobody collected."""
    for key in (WARM_CHILD_KEY, _CHILD_KEY):
        job = ctx.shared.pop(key, None)
        if job is not None:
            job.cancel()


def _from_child(ctx: Any) -> BoxScores | None:
    """The child's scores, or None when it failed (``CURATE_DEBUG=1`` re-raises): then they are computed here."""
    job = ctx.shared.pop(_CHILD_KEY, None)
    if job is None:
        return None
    from curate.app.worker import WorkerError

    try:
        bs, rows = job.result()
    except (WorkerError, OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError):
        if os.environ.get("CURATE_DEBUG"):
            raise
        return None
    bs.records = [(ctx.dataset.images[i], j) for i, j in rows]
    return bs


def shared_scores(ctx: Any) -> BoxScores:
    """One computation per audit run, shared by the grouped, background_heavy and shifted checks."""
    key = "boxmodel"
    if key not in ctx.shared:
        bs = _from_child(ctx)
        if bs is None:
            sigs = None
            if not ctx.fast:  # the scenes of the neighbour features come from the signatures image_checks made
                from curate.audit.checks.image_checks import signatures

                sigs = signatures(ctx)
            bs = score_boxes(ctx.dataset, signatures=sigs, **_model_options(ctx))
        ctx.shared[key] = bs
    return ctx.shared[key]


# --------------------------------------------------------------------------------------------------
# evidence for messages and finding.data
# --------------------------------------------------------------------------------------------------


def evidence(bs: BoxScores, row: int) -> dict[str, Any]:
    """Readable numbers behind a box's scores: per-side object extent, background share, blobs, size."""
    v = bs.value
    ev: dict[str, Any] = {
        "method": bs.method,
        "area_vs_class": round(float(np.exp(v(row, "g_loga"))), 2),
        "same_class_inside": int(v(row, "g_n_same_in")),
        "p_ok": round(float(bs.prob[row, 0]), 3),
    }
    if bs.method != "geometry" and not np.isnan(v(row, "p_blobs")):  # NaN: the image could not be decoded
        # positive extent = the object ends that far inside the edge (background band); negative = it goes past
        ext = {s: v(row, f"p_ext_{s}_0.35") for s in SIDES}
        ev["side_extent"] = {s: (None if np.isnan(x) else round(float(x), 2)) for s, x in ext.items()}
        e = {s: (0.0 if np.isnan(x) else float(np.clip(x, 0.0, 0.5))) for s, x in ext.items()}
        ev["background_share"] = round(1.0 - (1 - e["left"] - e["right"]) * (1 - e["top"] - e["bottom"]), 2)
        ev["blobs"] = int(v(row, "p_blobs"))
        # centroid of object-ness in the context patch relative to the box centre, in box sizes
        ev["object_offset"] = [round(float(np.nan_to_num(v(row, "p_cx"))), 2), round(float(np.nan_to_num(v(row, "p_cy"))), 2)]
        ev["runs"] = int(max(v(row, "p_runs_col_0.35"), v(row, "p_runs_row_0.35")))
        halves = v(row, "n_halves")
        if not np.isnan(halves):  # < 0: its halves are nearer the class's other boxes than the whole box is
            ev["halves_like_one"] = bool(halves < 0)
        if "m_box" in bs.names and not np.isnan(v(row, "m_blobs")):
            ev["fg_fraction"] = round(v(row, "m_box"), 2)
            ev["mask_blobs"] = int(v(row, "m_blobs"))
    return ev


def loose_sides(ev: dict[str, Any], *, at: float = 0.12) -> list[str]:
    """Sides where the object ends well inside the box (a background band)."""
    return [s for s, x in (ev.get("side_extent") or {}).items() if x is not None and x >= at]


def cut_sides(ev: dict[str, Any], *, at: float = -0.05) -> list[str]:
    """Sides the object continues past."""
    return [s for s, x in (ev.get("side_extent") or {}).items() if x is not None and x <= at]


def findings_for(ctx: Any, kind: str, check: str, describe) -> list:
    """One finding per real box of every split for ``kind``; ``describe(ev, score, cls_name, threshold)`` → message
    (the check's configured threshold: a box it flags reads as flagged, one it passes as passed)."""
    from curate.core.findings import Finding

    bs = shared_scores(ctx)
    dataset = ctx.dataset
    scores = bs.scores[kind]
    threshold = ctx.threshold(check)
    out = []
    for row, (rec, j) in enumerate(bs.records):
        lab = rec.labels[j]
        ev = bs.evidence(row)
        name = dataset.class_name(lab.class_id)
        score = float(scores[row])
        data = {"class": name, **ev, "p_" + kind: round(float(bs.prob[row, 1 + KINDS.index(kind)]), 3)}
        if bs.method.endswith("grabcut"):
            data["fg_method"] = "grabcut"
        elif "fg_fraction" in ev:
            data["fg_method"] = "u2netp"
        out.append(Finding(rec.split, rec.rel, check, score, describe(ev, score, name, threshold), line=lab.line, data=data))
    if not ctx.fast and bs.method == "pixels" and ctx.finishing:
        queue_masks(ctx, bs, out, top=int(ctx.param(check, "mask_top", defaults.BOXMODEL_MASK_TOP)), threshold=ctx.threshold(check))
    return out


# --------------------------------------------------------------------------------------------------
# foreground masks for the flagged boxes the report shows (computed in the background)
# --------------------------------------------------------------------------------------------------

_JOBS_KEY = "mask_jobs"


def _mask_rows(found: list, threshold: float, top: int) -> list[int]:
    """The flagged boxes the report shows for one check: its ``top`` findings at or above ``threshold``."""
    rows = [r for r, f in enumerate(found) if f.score >= threshold and f.line is not None and f.data.get("method") == "pixels"]
    return sorted(rows, key=lambda r: -found[r].score)[:top]


def _mask_size(rec: ImageRecord) -> tuple[int, int]:
    w, h = rec.size
    s = min(1.0, defaults.PIXEL_MAX_SIDE / max(w, h))
    return max(1, round(w * s)), max(1, round(h * s))


def queue_masks(ctx: Any, bs: BoxScores, found: list, *, top: int, threshold: float) -> None:
    """Start computing (and caching) the foreground masks of a check's flagged boxes in a background thread.

    A mask costs 250–500 ms of U²-Net-p, 12 per pixel check: ~18 s on food-ingredients when the three box
    checks waited for them. ONNX Runtime releases the GIL, and the checks that run next (missing,
    class_inconsistent) leave part of a core idle, so the masks are mostly free there; :func:`finish_masks`
    collects them after the last check.
    """
    from concurrent.futures import ThreadPoolExecutor

    from curate.vision.foreground import foreground_mask, get_model

    rows = _mask_rows(found, threshold, top)
    if not rows:
        return
    pool, jobs = ctx.shared.setdefault(_JOBS_KEY, (ThreadPoolExecutor(max_workers=1, thread_name_prefix="curate-masks"), {}))
    model = get_model()
    for r in rows:
        rec = bs.records[r][0]  # ``found`` is one finding per row of the scores, in their order
        if rec.rel not in jobs:
            jobs[rec.rel] = pool.submit(lambda rec=rec: foreground_mask(rec, size=_mask_size(rec), model=model))


def finish_masks(ctx: Any, found: list, check: str, describe) -> None:
    """Add the measured foreground fraction to a check's flagged boxes the report shows (and their message).

    Runs after every check, on fresh and on cached findings alike: the masks come from the background jobs
    of :func:`queue_masks` or from the on-disk cache, and are computed here only when neither has them.
    """
    if ctx.fast:
        return
    rows = _mask_rows(found, ctx.threshold(check), int(ctx.param(check, "mask_top", defaults.BOXMODEL_MASK_TOP)))
    if not rows:
        return
    from curate.core.dataset import LabelLookup
    from curate.vision.foreground import foreground_mask, get_model

    jobs = ctx.shared.get(_JOBS_KEY, (None, {}))[1]
    lookup = LabelLookup(ctx.dataset)
    model = None
    for r in rows:
        f = found[r]
        lab = lookup.label(f)
        if lab is None:
            continue
        rec = lookup.records[f.image]
        try:
            if f.image in jobs:
                mask = jobs[f.image].result()
            else:
                model = model or get_model()
                mask = foreground_mask(rec, size=_mask_size(rec), model=model)
        except Exception:  # an unreadable image keeps its finding without a mask
            continue
        if mask is None:
            continue
        H, W = mask.shape
        x1, y1, x2, y2 = lab.xyxy
        crop = mask[max(int(y1 * H), 0) : max(int(np.ceil(y2 * H)), 1), max(int(x1 * W), 0) : max(int(np.ceil(x2 * W)), 1)]
        if crop.size == 0:
            continue
        f.data["fg_fraction"] = round(float((crop > 0.5).mean()), 2)
        f.data["fg_method"] = (model or get_model()).method
        f.message = describe(f.data, f.score, f.data["class"], ctx.threshold(check))
