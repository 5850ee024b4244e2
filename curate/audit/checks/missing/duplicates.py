"""Near-duplicate evidence: a box that a copy of the same shot has and this image lacks."""

from __future__ import annotations

import cv2
import numpy as np

from curate.audit.checks.missing.model import _boxes
from curate.audit.checks.missing.settings import SIDE
from curate.audit.checks.missing.windows import uncovered
from curate.core.dataset import Dataset
from curate.core.overlap import pairwise_iou
from curate.vision.hashing import SAME_SCENE_SIMILARITY, Pair

# thumbnail correlation of two copies of a shot (curate.vision.hashing: 0.90 = surely the same; 0.85 still the
# same scene)
DUP_SIMILARITY = SAME_SCENE_SIMILARITY
DUP_PATCH = 12  # crops under a box are compared at this side
DUP_CORR_AT_HALF = 0.6  # crop correlation that maps to score 0.5
DUP_AGREE = 0.5  # share of an image's boxes its copy repeats (IoU ≥ 0.5) for the two to count as aligned


def _grey_patch(grey: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """The crop under box ``b``, DUP_PATCH² grey, zero mean and unit norm (None when too small or flat)."""
    h, w = grey.shape
    x1, y1 = int(np.floor(b[0] * w)), int(np.floor(b[1] * h))
    x2, y2 = int(np.ceil(b[2] * w)), int(np.ceil(b[3] * h))
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
    if x2 - x1 < 3 or y2 - y1 < 3:
        return None
    p = cv2.resize(grey[y1:y2, x1:x2], (DUP_PATCH, DUP_PATCH), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    p -= p.mean()
    n = float(np.linalg.norm(p))
    return p / n if n > 1e-3 else None


def duplicate_regions(ds: Dataset, pairs: list[Pair]) -> dict[int, list[tuple[float, np.ndarray, int]]]:
    """Boxes a near-duplicate image has and this one lacks, where this image shows the same content; ``pairs``:
    the audit's near-duplicate pairs at DUP_SIMILARITY (:class:`curate.audit.shared.NearDuplicatePairs`).

    The same shot exported twice (another split, a re-compression, a brightness change) with a box on one
    copy only: the copy without it probably forgot it. Both copies must agree on most of the other boxes
    (so their geometry matches) and the crop under the box must correlate between them.
    """
    from curate.vision.foreground import read_image

    index = {r.rel: i for i, r in enumerate(ds.images)}
    grey: dict[int, np.ndarray | None] = {}

    def g(i: int) -> np.ndarray | None:
        if i not in grey:
            img = read_image(ds.images[i].path, max_side=SIDE)
            grey[i] = None if img is None else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        return grey[i]

    out: dict[int, list[tuple[float, np.ndarray, int]]] = {}
    for p in pairs:
        ia, ib = index.get(p.a), index.get(p.b)
        if ia is None or ib is None:
            continue
        for a, b in ((ia, ib), (ib, ia)):
            ba, ca = _boxes(ds.images[a])
            bb, cb = _boxes(ds.images[b])
            if not len(bb):
                continue
            todo = np.flatnonzero(uncovered(bb, ba))
            if not len(todo):
                continue
            if len(ba):
                iou = pairwise_iou(ba, bb)
                agree = float((iou.max(axis=1) >= 0.5).mean())
                if agree < DUP_AGREE:
                    continue
            ga, gb = g(a), g(b)
            if ga is None or gb is None:
                continue
            for k in todo:
                pa, pb = _grey_patch(ga, bb[k]), _grey_patch(gb, bb[k])
                if pa is None or pb is None:
                    continue
                c = float(pa @ pb)
                s = (
                    0.5 + 0.5 * (c - DUP_CORR_AT_HALF) / (1 - DUP_CORR_AT_HALF)
                    if c >= DUP_CORR_AT_HALF
                    else 0.5 * max(c, 0) / DUP_CORR_AT_HALF
                )
                out.setdefault(a, []).append((float(np.clip(s, 0, 1)), bb[k], int(cb[k])))
    return out


# ------------------------------------------------------------------------------------------------
# the check
# ------------------------------------------------------------------------------------------------
