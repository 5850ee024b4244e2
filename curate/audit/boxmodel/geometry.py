"""Geometry features of a box relative to its class and its image: size and aspect vs the class's median,
same-class boxes inside or overlapping it, size vs the class's other boxes in the image, border contact.

The only features of ``--fast`` (no image is decoded); the pixel model adds :mod:`.pixels` and :mod:`.peers`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
    "g_logw",
    "g_logh",
    "g_loga",
    "g_logr",
    "g_za",
    "g_img_area",
    "g_n_same_in",
    "g_n_any_in",
    "g_cover_same",
    "g_iou_same",
    "g_iou_any",
    "g_n_same_img",
    "g_rel_sib",
    "g_n_img",
    "g_border_l",
    "g_border_t",
    "g_border_r",
    "g_border_b",
    "g_n_same_touch",
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
    call per image was 3 s of ``--fast`` on food. tests/audit/test_boxmodel.py checks it against a readable per-box
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
