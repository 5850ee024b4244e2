"""Per-image pixel maps (Lab, gradient, distance to the dominant colour) as integral images, and the
features of a window read from them in O(1): inside vs ring, centre vs border, per-side bands, edges."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from curate.core.overlap import row_chunks


@dataclass
class Maps:
    """Integral images of one small decoded image: (L, a, b, gradient, distance to the dominant colour), and
    L², a², b²."""

    w: int
    h: int
    ii: np.ndarray  # (h+1, w+1, 5) float64
    ii2: np.ndarray  # (h+1, w+1, 3) float64


def _integral(ch: np.ndarray) -> np.ndarray:
    return cv2.integral(np.ascontiguousarray(ch), sdepth=cv2.CV_64F)


def image_maps(bgr: np.ndarray) -> Maps:
    """Lab (L 0–100), Sobel gradient of L and distance to the image's median colour, as integral images."""
    lab = cv2.cvtColor(bgr, cv2.COLOR_BGR2Lab).astype(np.float32)
    lab[:, :, 0] *= 100.0 / 255.0
    lab[:, :, 1:] -= 128.0
    L = lab[:, :, 0]
    # numpy, not cv2.magnitude: its last bit follows the arrays' memory offsets, so a run's regions would follow
    # what the process allocated before (boxmodel/pixels.py, benchmarks/README.md: football across runs)
    gx, gy = cv2.Sobel(L, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(L, cv2.CV_32F, 0, 1, ksize=3)
    grad = np.sqrt(gx * gx + gy * gy) / 8.0
    bg = np.median(lab[::3, ::3].reshape(-1, 3), axis=0)
    d = lab - bg.astype(lab.dtype)
    dist = np.sqrt(d[:, :, 0] * d[:, :, 0] + d[:, :, 1] * d[:, :, 1] + d[:, :, 2] * d[:, :, 2])
    return Maps(bgr.shape[1], bgr.shape[0], _integral(np.dstack([lab, grad, dist])), _integral(lab * lab))


def _rect(ii: np.ndarray, x1: np.ndarray, y1: np.ndarray, x2: np.ndarray, y2: np.ndarray) -> np.ndarray:
    """Sums over rectangles [x1, x2) × [y1, y2) of an integral image (h+1, w+1, C), rows (n, C)."""
    flat, stride = ii.reshape(-1, ii.shape[2]), ii.shape[1]
    return flat[y2 * stride + x2] - flat[y1 * stride + x2] - flat[y2 * stride + x1] + flat[y1 * stride + x1]


def _px(m: Maps, xyxy: np.ndarray) -> tuple[np.ndarray, ...]:
    """Normalized xyxy → integer pixel corners, at least one pixel wide and inside the image."""
    x1 = np.clip(np.floor(xyxy[:, 0] * m.w), 0, m.w - 1).astype(int)
    y1 = np.clip(np.floor(xyxy[:, 1] * m.h), 0, m.h - 1).astype(int)
    x2 = np.clip(np.ceil(xyxy[:, 2] * m.w), x1 + 1, m.w).astype(int)
    y2 = np.clip(np.ceil(xyxy[:, 3] * m.h), y1 + 1, m.h).astype(int)
    return x1, y1, x2, y2


def _mean(m: Maps, x1, y1, x2, y2) -> tuple[np.ndarray, np.ndarray]:
    """Channel means over rectangles (NaN where empty) and the areas."""
    x2 = np.maximum(x2, x1)
    y2 = np.maximum(y2, y1)
    a = ((x2 - x1) * (y2 - y1)).astype(float)
    s = _rect(m.ii, y1=y1, x1=x1, y2=y2, x2=x2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return s / np.where(a > 0, a, np.nan)[:, None], a


def _minus(sa, aa, sb, ab):
    """Mean over A \\ B from means/areas of A and B ⊂ A."""
    with np.errstate(invalid="ignore", divide="ignore"):
        d = aa - ab
        return (sa * aa[:, None] - np.nan_to_num(sb) * ab[:, None]) / np.where(d > 0, d, np.nan)[:, None]


def box_descriptors(m: Maps, xyxy: np.ndarray) -> np.ndarray:
    """Mean and std of L, a, b inside each box: what a sibling of the same class looks like."""
    x1, y1, x2, y2 = _px(m, xyxy)
    mean, a = _mean(m, x1, y1, x2, y2)
    sq = _rect(m.ii2, x1=x1, y1=y1, x2=x2, y2=y2) / a[:, None]
    std = np.sqrt(np.clip(sq - mean[:, :3] ** 2, 0, None))
    return np.concatenate([mean[:, :3], std], axis=1)


FEATURES = (
    [
        "in_L",
        "in_a",
        "in_b",
        "in_g",
        "in_d",
        "ring_dL",
        "ring_da",
        "ring_db",
        "ring_dg",
        "ring_dd",
        "ring_dlab",
        "core_dlab",
        "core_dg",
        "edge_g_rel",
        "sd_L",
        "sd_a",
        "sd_b",
    ]
    + [f"side_{s}_{k}" for s in "ltrb" for k in ("dlab", "dg")]
    + [
        "side_min_dlab",
        "side_mean_dlab",
        "logw",
        "logh",
        "logr",
        "cx",
        "cy",
        "border",
        "za_ds",
        "za_img",
        "n_boxes",
        "sib_dist",
        "sib_dsize",
        "sib2_dist",
        "cov_share",
        "n_touch",
        "in_box",
        "box_in",
    ]
)


def window_features(
    m: Maps, win: np.ndarray, boxes: np.ndarray, desc: np.ndarray, own: np.ndarray, ds_loga: float
) -> np.ndarray:
    """(n, F) features of windows ``win`` (normalized xyxy) in an image with ``boxes`` (their ``desc``);
    ``own[i]`` is the index of the box that window i is (a positive) or -1. In row slices (:func:`row_chunks`):
    its windows × boxes matrices of a dense image would not fit in memory at once."""
    pieces = list(
        row_chunks(len(win), 6 * len(boxes))
    )  # the (windows, boxes, 6) descriptor differences are the largest
    if len(pieces) > 1:
        return np.concatenate([window_features(m, win[r], boxes, desc, own[r], ds_loga) for r in pieces])
    n = len(win)
    x1, y1, x2, y2 = _px(m, win)
    ww, hh = x2 - x1, y2 - y1
    tx, ty = np.maximum(1, np.round(0.15 * ww).astype(int)), np.maximum(1, np.round(0.15 * hh).astype(int))
    cxw, cyh = np.clip(x1 - ww // 2, 0, m.w), np.clip(y1 - hh // 2, 0, m.h)
    lo_x, lo_y, hi_x, hi_y = (
        np.clip(x1 - tx, 0, m.w),
        np.clip(y1 - ty, 0, m.h),
        np.clip(x2 + tx, 0, m.w),
        np.clip(y2 + ty, 0, m.h),
    )
    rects = [
        (x1, y1, x2, y2),  # 0 inside
        (cxw, cyh, np.clip(x2 + ww // 2, 0, m.w), np.clip(y2 + hh // 2, 0, m.h)),  # 1 outer (ring = outer - inside)
        (
            x1 + ww // 4,
            y1 + hh // 4,
            np.maximum(x2 - ww // 4, x1 + ww // 4 + 1),
            np.maximum(y2 - hh // 4, y1 + hh // 4 + 1),
        ),  # 2 core
        (lo_x, lo_y, hi_x, hi_y),  # 3 window + band
        (x1 + tx, y1 + ty, np.maximum(x2 - tx, x1 + tx + 1), np.maximum(y2 - ty, y1 + ty + 1)),  # 4 window - band
        (x1, y1, x1 + tx, y2),
        (lo_x, y1, x1, y2),  # 5, 6 left in/out
        (x1, y1, x2, y1 + ty),
        (x1, lo_y, x2, y1),  # 7, 8 top
        (x2 - tx, y1, x2, y2),
        (x2, y1, hi_x, y2),  # 9, 10 right
        (x1, y2 - ty, x2, y2),
        (x1, y2, x2, hi_y),  # 11, 12 bottom
    ]
    R = [np.concatenate([r[k] for r in rects]) for k in range(4)]
    means, areas = _mean(m, *R)
    means, areas = means.reshape(len(rects), n, -1), areas.reshape(len(rects), n)
    inside, a_in = means[0], areas[0]
    ring = _minus(means[1], areas[1], inside, a_in)
    shell = _minus(inside, a_in, means[2], areas[2])
    band = _minus(means[3], areas[3], means[4], areas[4])
    core = means[2]
    sq = _rect(m.ii2, x1=x1, y1=y1, x2=x2, y2=y2) / a_in[:, None]
    sd = np.sqrt(np.clip(sq - inside[:, :3] ** 2, 0, None))
    d = means[5::2] - means[6::2]  # (4, n, C) inside band − outside band per side
    side_lab = np.linalg.norm(d[:, :, :3], axis=2)  # (4, n)
    with np.errstate(all="ignore"):
        f = [
            inside,
            inside - ring,
            np.linalg.norm((inside - ring)[:, :3], axis=1)[:, None],
            np.linalg.norm((core - shell)[:, :3], axis=1)[:, None],
            (core - shell)[:, 3:4],
            (band[:, 3] / (inside[:, 3] + 1e-3))[:, None],
            sd,
            np.stack([side_lab, d[:, :, 3]], axis=2).transpose(1, 0, 2).reshape(n, 8),
            np.fmin.reduce(side_lab, axis=0)[:, None],  # NaN only where no side has an outside band
            (np.nansum(side_lab, axis=0) / np.maximum(np.isfinite(side_lab).sum(axis=0), 1))[:, None],
        ]
    wn, hn = np.maximum(win[:, 2] - win[:, 0], 1e-4), np.maximum(win[:, 3] - win[:, 1], 1e-4)
    lw, lh = np.log(wn), np.log(hn)
    border = (win[:, 0] <= 0.01).astype(float) + (win[:, 1] <= 0.01) + (win[:, 2] >= 0.99) + (win[:, 3] >= 0.99)
    f += [
        lw[:, None],
        lh[:, None],
        (lw - lh)[:, None],
        ((win[:, 0] + win[:, 2]) / 2)[:, None],
        ((win[:, 1] + win[:, 3]) / 2)[:, None],
        border[:, None],
        (lw + lh - ds_loga)[:, None],
    ]
    # relation to the image's other boxes
    za_img = np.full(n, np.nan)
    n_boxes = np.full(n, float(len(boxes)))
    sib = np.full((n, 3), np.nan)
    ov = np.zeros((n, 4))
    if len(boxes):
        ix = np.clip(
            np.minimum(win[:, None, 2], boxes[None, :, 2]) - np.maximum(win[:, None, 0], boxes[None, :, 0]), 0, None
        )
        iy = np.clip(
            np.minimum(win[:, None, 3], boxes[None, :, 3]) - np.maximum(win[:, None, 1], boxes[None, :, 1]), 0, None
        )
        inter = ix * iy
        inter[own[:, None] == np.arange(len(boxes))[None, :]] = 0
        wa = (wn * hn)[:, None]
        ba = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-8)[None, :]
        ov[:, 0] = np.minimum(inter.sum(axis=1) / wa[:, 0], 1.5)
        ov[:, 1] = (inter > 0.02 * wa).sum(axis=1)
        ov[:, 2] = (inter / wa).max(axis=1)
        ov[:, 3] = (inter / ba).max(axis=1)
        bl = np.log(np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-8))
        wd = np.concatenate([inside[:, :3], sd], axis=1)
        scale = np.array([10, 10, 10, 5, 5, 5], float)
        a, d = wd / scale, desc / scale  # distances by |a|² + |d|² − 2 a·d: no (n, B, 6) array (football: 24 boxes)
        dist = np.sqrt(np.maximum((a * a).sum(axis=1)[:, None] + (d * d).sum(axis=1)[None, :] - 2 * a @ d.T, 0))
        mask = own[:, None] == np.arange(len(boxes))[None, :]
        dist[mask] = np.inf
        la = (lw + lh)[:, None] - bl[None, :]
        cnt = (~mask).sum(axis=1)
        za_img = np.where(cnt > 0, np.where(mask, 0.0, la).sum(axis=1) / np.maximum(cnt, 1), np.nan)
        n_boxes = n_boxes - (own >= 0)
        has = np.isfinite(dist).any(axis=1)
        order = np.argpartition(dist, min(1, len(boxes) - 1), axis=1)  # the nearest two first, in order
        j = order[:, 0]
        sib[has, 0] = dist[has, j[has]]
        sib[has, 1] = la[has, j[has]]
        if len(boxes) > 1:
            j2 = order[:, 1]
            ok2 = np.isfinite(dist[np.arange(n), j2])
            sib[ok2, 2] = dist[ok2, j2[ok2]]
    f += [np.asarray(za_img, float).reshape(n, 1), n_boxes[:, None], sib, ov]
    return np.concatenate(f, axis=1).astype(np.float32)
