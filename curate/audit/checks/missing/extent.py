"""The box proposed for a ``missing`` region: among finer shifts and scales of the region's window, those a model
of this dataset's own labelled boxes expects to fit the object best (their mean).

Why: a region is a grid window (slid half a window at a time, at a handful of sizes), so the object it found
is typically a quarter of a box off-centre, or narrower or smaller than the window (benchmarks/README.md, issue
#23: potholes-road's misses at IoU 0.40–0.47). The region itself stays as the check found it (its score, the
regions flagged and their order are the check's); only the box an ``add`` proposes is moved.

Why a model of its own and not the objectness score: the objectness model learns labelled boxes *and* copies of
them moved to IoU 0.5 as positives (a grid window never fits exactly), so it rates a window a step off the object as
high as the object's own box; the best-scoring window near a region was further from the deleted box than the
region itself (benchmarks/README.md, Session 22, branch `missadd`). This one learns, from windows placed around
the dataset's labelled boxes, how well a window fits the object it is on (its IoU with the box), from the same
features.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from curate.audit.checks.missing.model import WindowFeatures, _boxes
from curate.audit.checks.missing.windows import uncovered

#: Centre shifts tried, as fractions of the window's width (x) and height (y): finer than the grid's half window.
SHIFTS = (-0.375, -0.25, -0.125, 0.0, 0.125, 0.25, 0.375)
#: Width and height scales tried (each axis on its own): the grid has a few sizes per image.
SCALES = (0.6, 0.7, 0.85, 1.0, 1.2, 1.4, 1.6)
#: The fit model learns from windows around the labelled boxes of at most this many images …
FIT_IMAGES = 200
#: … at most this many boxes an image, and this many windows around each (besides the box itself): moved by up to
#: FIT_SHIFT of the box's side and scaled by up to FIT_SCALE per axis, a region's error and a candidate's together.
FIT_BOXES, FIT_WINDOWS, FIT_SHIFT, FIT_SCALE = 8, 12, 0.6, 2.2
#: The proposed box is the mean of the windows whose expected fit is within this (log-odds) of the best.
PLATEAU_LOGIT = 1.0


def nearby_windows(xyxy: np.ndarray) -> np.ndarray:
    """Windows around ``xyxy`` (normalized): every combination of :data:`SHIFTS` and :data:`SCALES` per axis,
    clipped to the image (the window itself among them)."""
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    w, h, cx, cy = x2 - x1, y2 - y1, (x1 + x2) / 2, (y1 + y2) / 2
    dx, dy, sw, sh = (a.ravel() for a in np.meshgrid(SHIFTS, SHIFTS, SCALES, SCALES, indexing="ij"))
    ncx, ncy, nw, nh = cx + dx * w, cy + dy * h, w * sw, h * sh
    return np.clip(np.stack([ncx - nw / 2, ncy - nh / 2, ncx + nw / 2, ncy + nh / 2], axis=1), 0.0, 1.0)


def candidates(xyxy: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """``xyxy`` first, then the :func:`nearby_windows` that no labelled box of the image (``boxes``) covers (the
    check's own cover rule: an add there would label an object twice)."""
    xyxy = np.asarray(xyxy, float)
    wins = nearby_windows(xyxy)
    wins = wins[(wins[:, 2] > wins[:, 0]) & (wins[:, 3] > wins[:, 1])]
    return np.concatenate([xyxy[None], wins[uncovered(wins, boxes)]])


def around(box: np.ndarray, rng: np.random.Generator, k: int) -> np.ndarray:
    """``box`` and ``k`` windows moved and scaled around it (uniform shifts, log-uniform scales), clipped."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    d = rng.uniform(-FIT_SHIFT, FIT_SHIFT, (k, 2)) * (w, h)
    s = np.exp(rng.uniform(-np.log(FIT_SCALE), np.log(FIT_SCALE), (k, 2))) * (w, h)
    c = np.array([(x1 + x2) / 2, (y1 + y2) / 2]) + d
    wins = np.concatenate([box[None], np.concatenate([c - s / 2, c + s / 2], axis=1)])
    return np.clip(wins, 0.0, 1.0)


class BoxFit:
    """How well a window fits the object it lies on (its expected IoU with that object's box), learnt from windows
    around a sample of the dataset's labelled boxes (:func:`around`), described by the check's own features."""

    def __init__(self, describe: WindowFeatures, seed: int) -> None:
        from sklearn.ensemble import HistGradientBoostingRegressor

        from curate.core.overlap import pairwise_iou

        self.describe, self.model = describe, None
        recs = describe.ds.images
        rng = np.random.default_rng(seed + 43)
        have = [i for i, r in enumerate(recs) if r.labels]
        X, y = [], []
        for i in rng.permutation(have)[:FIT_IMAGES].tolist():
            b = _boxes(recs[i])[0]
            ok = np.flatnonzero((b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1]))
            pick = rng.permutation(ok)[:FIT_BOXES]
            if not len(pick):
                continue
            wins = [around(b[j], rng, FIT_WINDOWS) for j in pick]
            own = np.repeat(pick, FIT_WINDOWS + 1)
            f = describe(i, np.concatenate(wins), own)
            if f is None:
                continue
            ok = ~np.isnan(f).all(axis=1)  # slivers at the image's edge are not described
            X.append(f[ok])
            y.append(np.concatenate([pairwise_iou(w, b[j][None])[:, 0] for w, j in zip(wins, pick)])[ok])
        if len(X) and sum(len(v) for v in y) >= 50:
            self.model = HistGradientBoostingRegressor(max_iter=100, learning_rate=0.1, max_leaf_nodes=15,
                                                       min_samples_leaf=20, random_state=seed)  # fmt: skip
            self.model.fit(np.concatenate(X).astype(np.float64), np.concatenate(y))

    @property
    def ds(self):  # the dataset whose images it describes (benchmarks/proposals.py records by image name)
        return self.describe.ds

    def __call__(self, i: int, wins: np.ndarray) -> np.ndarray | None:
        """Expected IoU of windows ``wins`` (normalized xyxy) of image ``i`` with the object; None where not known."""
        if self.model is None:
            return None
        X = self.describe(i, wins)
        if X is None:
            return None
        q = np.full(len(X), -np.inf)  # a sliver (not described) is never proposed
        ok = ~np.isnan(X).all(axis=1)
        if ok.any():
            q[ok] = self.model.predict(X[ok].astype(np.float64))
        return q


def pick(wins: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """The mean of the windows whose expected fit is within :data:`PLATEAU_LOGIT` (log-odds) of the best one's.

    Why not the best window alone: the fit is a sum of trees, piecewise constant, so neighbouring windows tie or
    differ by its noise; the mean of the near-best is steadier (seeds 0-4 on the seven pool datasets: as many boxes
    at IoU >= 0.5 or more on six, one fewer on epicureai; benchmarks/README.md, Session 22, branch `missadd`)."""
    ok = np.isfinite(fit)  # slivers (-inf) are never proposed
    q = np.clip(fit[ok], 1e-9, 1 - 1e-9)
    z = np.log(q / (1 - q))
    return wins[ok][z >= z.max() - PLATEAU_LOGIT].mean(axis=0)


def proposed_box(fit: Any, i: int, xyxy: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """The box to propose for region ``xyxy`` of image ``i`` (:func:`pick` among :func:`candidates` under ``fit``,
    a :class:`BoxFit`); ``xyxy`` itself where the image can't be read or nothing was learnt."""
    wins = candidates(xyxy, boxes)
    q = fit(i, wins)
    return np.asarray(xyxy, float) if q is None else pick(wins, q)
