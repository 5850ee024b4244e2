"""The objectness model: the dataset's labelled boxes against uncovered windows, cross-fitted by image,
hard negatives from a shortlisting model; the regions it scores in each image."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from curate.audit.checks.missing.maps import FEATURES, box_descriptors, image_maps, window_features
from curate.audit.checks.missing.settings import (
    BOX_PX,
    CACHE_SIDE,
    CAP_AREA,
    CAP_BOXES,
    CAP_SCALE,
    CHUNK,
    FOLDS,
    HARD,
    HELD_BYTES,
    ITER1,
    ITER2,
    JITTERS,
    LARGE_MAX_SIDE,
    MAX_PER_IMAGE,
    MAX_SIDE,
    MIN_BOXES,
    MIN_WINDOW_PX,
    NEG_PER_IMAGE,
    NMS_INSIDE,
    NMS_IOU,
    SEED_IMAGES,
    SHORTLIST_ROWS,
    SIDE,
    SIDE_SAMPLE,
    SIDE_STEP,
    SIZE_CLUSTERS,
    TOPK,
)
from curate.audit.checks.missing.windows import dataset_sizes, image_sizes, jitter, sliding_windows, touching, uncovered
from curate.core import defaults
from curate.core.dataset import Dataset, ImageRecord
from curate.core.folds import image_folds
from curate.core.overlap import pairwise_iou_inside
from curate.runtime.env import fit_side_by_side, fits_at_once, no_all_nan_columns


def small_image(path: Path, side: int = SIDE) -> np.ndarray | None:
    """The image decoded with its longest side at most ``side``, cached on disk by content up to
    :data:`CACHE_SIDE` (27 KB an image at 96 px): decoding is a third of this check's time at 96 px and a
    re-audit after label edits needs the same pixels. Larger decodes are not cached (1.2 MB an image at 640 px
    on disk, for a decode of a few ms)."""
    from curate.io import cache
    from curate.vision.foreground import read_image

    if side > CACHE_SIDE:
        return read_image(path, max_side=side)
    try:
        key = cache.file_hash(path)
    except OSError:
        return None
    namespace = f"missing-img-v1-{side}"
    img = cache.load_array(namespace, key)
    if img is not None and img.ndim == 3 and img.dtype == np.uint8:
        return img
    img = read_image(path, max_side=side)
    if img is not None:
        try:
            cache.save_array(namespace, key, img)
        except OSError:  # a read-only or full cache: decode again next time
            pass
    return img


def decode_side(recs: list[ImageRecord], boxes: list[np.ndarray]) -> int:
    """The longest side to decode this dataset's images at: :data:`SIDE`, or more where the median box's shorter
    side would span under :data:`BOX_PX` pixels there, up to :func:`decode_ceiling`, read on a sample of image
    headers.

    Why: a window's features are means over its pixels; a football player 1 × 3 px at 96 px (a traffic sign
    3 × 4) is no object to them, and windows are at least :data:`MIN_WINDOW_PX`, so football's and traffic-signs'
    deleted boxes had no candidate window at all (benchmarks/README.md, *Missing boxes*). The count of windows
    does not depend on the side (they tile normalized coordinates), only the decode and the integral images do."""
    have = [i for i, b in enumerate(boxes) if len(b)]
    if not have:
        return SIDE
    short: list[np.ndarray] = []
    longs: list[int] = []
    for i in [have[k] for k in np.linspace(0, len(have) - 1, min(SIDE_SAMPLE, len(have))).astype(int)]:
        try:
            w, h = recs[i].size
        except Exception:  # an unreadable header: that image is skipped by the pixel pass too
            continue
        wh = boxes[i][:, 2:] - boxes[i][:, :2]
        short.append(np.minimum(wh[:, 0] * w, wh[:, 1] * h) / max(w, h, 1))
        longs.append(max(w, h))
    if not short:
        return SIDE
    need = BOX_PX / max(float(np.median(np.concatenate(short))), 1e-6)
    return int(np.clip(np.ceil(need / SIDE_STEP) * SIDE_STEP, SIDE, decode_ceiling(longs)))


def decode_ceiling(long_sides: list[int]) -> int:
    """The most :func:`decode_side` may give: :data:`MAX_SIDE`, or for a dataset of larger images (the median long
    side of its sampled headers) that side, in :data:`SIDE_STEP` steps, up to :data:`LARGE_MAX_SIDE`.

    Why it grows with the image: the boxes of a 1280-px drone view or 2 × 2 mosaic are half as large relative to
    the image as a 640-px photo's, so at a fixed 640 a football player's shorter side fell to 4 px, under
    :data:`MIN_WINDOW_PX`, and its window was never tried (benchmarks/README.md, Session 25, branch `domains`).
    Images up to MAX_SIDE keep it exactly: every pool image is ≤ 640 px, so the pool's decodes do not move."""
    if not long_sides:
        return MAX_SIDE
    long = int(np.median(long_sides))
    return int(np.clip(long // SIDE_STEP * SIDE_STEP, MAX_SIDE, LARGE_MAX_SIDE))


def image_cap(record: ImageRecord, n_boxes: int) -> int:
    """Region findings an image may hold: :data:`MAX_PER_IMAGE`, times its pixels over :data:`CAP_AREA` or its
    labelled boxes over :data:`CAP_BOXES` where either is above 1, at most :data:`CAP_SCALE` times.

    Why: three regions were sized for 416–640-px photos of 10–30 boxes. A 1280-px drone view or 2 × 2 mosaic of
    100 boxes held to three lost most of its forgotten boxes to the cap (football's mosaic: 3 regions in every
    image, 73 of 214 deleted boxes under any region; benchmarks/README.md, Session 25, branch `domains`), and so
    would a 640-px photo of 100 apples. How many reach 0.5 stays the split's budget (:data:`BUDGET_PER_100`); an
    unreadable header counts by its boxes alone."""
    w, h = record.readable_size() or (0, 0)
    scale = min(max(w * h / CAP_AREA, n_boxes / CAP_BOXES, 1.0), CAP_SCALE)
    return int(np.ceil(MAX_PER_IMAGE * scale - 1e-9))


def _boxes(rec: ImageRecord) -> tuple[np.ndarray, np.ndarray]:
    b = np.array([lb.xyxy for lb in rec.labels], float).reshape(-1, 4)
    return np.clip(b, 0, 1), np.array([lb.class_id for lb in rec.labels], int)


def _fit(X: np.ndarray, y: np.ndarray, train: np.ndarray, seed: int, iterations: int, monotonic: bool = False) -> Any:
    """HistGB on one fold's training rows (``train``, a mask of the rows of ``X``). No sample weights (they make
    HistGB ~20× slower here): the class balance is corrected on the odds in :func:`_predict`. ``monotonic``: the
    probability increasing in every feature (the embedding evidence's similarities, :mod:`.evidence`).

    The rows are taken here, as float64 (the dtype scikit-learn converts to): the three folds fit at once, and each
    held a float32 copy of its rows beside scikit-learn's float64 one while it fitted (issue #25)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    y = y[train]
    if len(np.unique(y)) < 2:
        return None
    X = X[train].astype(np.float64)
    clf = HistGradientBoostingClassifier(
        max_iter=iterations,
        learning_rate=0.1,
        max_leaf_nodes=15,
        min_samples_leaf=20,
        l2_regularization=1.0,
        monotonic_cst=[1] * X.shape[1] if monotonic else None,
        random_state=seed,
    )
    clf.fit(no_all_nan_columns(X), y)  # sklearn 1.9 raises on an all-NaN feature
    clf.balance_ = float((y == 0).sum() / max((y == 1).sum(), 1))
    return clf


def _folds_at_once(X: np.ndarray, g: np.ndarray) -> int:
    """Folds to fit side by side (:func:`curate.runtime.env.fits_at_once`): each fit holds its training rows as
    float64 twice (:func:`_fit`'s copy, and scikit-learn's early-stopping split of it above 10,000 rows)."""
    rows = max(int((g != f).sum()) for f in range(FOLDS))
    return fits_at_once(FOLDS, 2 * 8 * X.shape[1] * rows)


def _predict(clf: Any, X: np.ndarray) -> np.ndarray:
    """P(labelled-object-like) as if positives and negatives had been seen equally often."""
    if clf is None or not len(X):
        return np.zeros(len(X))
    p = np.clip(clf.predict_proba(X)[:, 1], 1e-9, 1 - 1e-9)
    odds = p / (1 - p) * clf.balance_
    return odds / (1 + odds)


def _batches(sizes: list[int], limit: int) -> list[list[int]]:
    """Consecutive runs of indices into ``sizes`` whose sizes sum to at most ``limit`` (a larger one alone)."""
    out: list[list[int]] = []
    total = limit + 1
    for k, n in enumerate(sizes):
        if total + n > limit:
            out.append([])
            total = 0
        out[-1].append(k)
        total += n
    return out


def _nms(s: np.ndarray, b: np.ndarray, k: int) -> list[int]:
    """Best-first non-maximum suppression: a window overlapping a kept one (IoU, or mostly inside either) goes."""
    iou, inside = pairwise_iou_inside(b, b)  # one pairwise matrix, then the greedy pass on it: no call per window
    clash = (iou >= NMS_IOU) | (inside >= NMS_INSIDE) | (inside.T >= NMS_INSIDE)
    kept: list[int] = []
    for i in np.argsort(-s, kind="stable"):
        if kept and clash[i, kept].any():
            continue
        kept.append(int(i))
        if len(kept) >= k:
            break
    return kept


def learnt_images(fold: np.ndarray, seed: int) -> np.ndarray:
    """Which images the final model learns from (a mask over the images): every one up to
    :data:`defaults.MISSING_MAX_TRAIN_IMAGES` a fit, above it a seeded sample of each fold's images
    (:func:`curate.learn.bounded.by_group`), so that each fit, which learns from every fold but one, holds at most
    about that many. Every image's windows are still shortlisted and scored; the shortlisting model learns from
    :data:`SEED_IMAGES` already."""
    from curate.learn.bounded import by_group, cap

    per_fold = np.bincount(fold, minlength=FOLDS)
    rows = int(per_fold.sum() - per_fold.min())  # the images of the largest fit
    limit = cap("missing", defaults.MISSING_MAX_TRAIN_IMAGES, rows)
    if rows <= limit:
        return np.ones(len(fold), bool)
    return by_group(np.ones(len(fold), int), fold, FOLDS, limit // (FOLDS - 1), seed + 31)


@dataclass
class ImageRows:
    """One image's training rows (positives, negatives) and its candidate windows with their features."""

    pos: np.ndarray
    neg: np.ndarray
    cand: np.ndarray  # normalized xyxy
    Xc: np.ndarray


@dataclass
class WindowFeatures:
    """The check's features of any window of an image, described as the image's windows were (the same decode and
    features): what the box a region's add proposes is chosen by (:mod:`curate.audit.checks.missing.extent`),
    without changing the region."""

    ds: Dataset
    side: int
    ds_loga: float

    def __call__(self, i: int, wins: np.ndarray, own: np.ndarray | None = None) -> np.ndarray | None:
        """The check's features of windows ``wins`` (normalized xyxy) of image ``i`` (``own``: the labelled box each
        window stands for, as for the model's positives; -1 for none); None where its pixels can't be read. A row of
        NaN for a window narrower or lower than the check's smallest window (a pixel's sliver at the image's edge has
        no inside to describe, and its bands would fall outside the image)."""
        img = small_image(self.ds.images[i].path, self.side)
        if img is None or min(img.shape[:2]) < MIN_WINDOW_PX or not len(wins):
            return None
        m = image_maps(img)
        b = _boxes(self.ds.images[i])[0]
        desc = box_descriptors(m, b) if len(b) else np.zeros((0, 6))
        wins = np.asarray(wins, float)
        own = np.full(len(wins), -1) if own is None else np.asarray(own)
        # a pixel's slack: grid windows are MIN_WINDOW_PX wide, rounded to 4 decimals (windows.sliding_windows)
        px = (wins[:, 2:] - wins[:, :2]) * (m.w, m.h)
        ok = (px >= MIN_WINDOW_PX - 1).all(axis=1)
        X = np.full((len(wins), len(FEATURES)), np.nan, np.float32)
        if ok.any():
            X[ok] = window_features(m, wins[ok], b, desc, own[ok], self.ds_loga)
        return X


def objectness_regions(
    ds: Dataset, *, seed: int = 0, progress: bool = False
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per image index: (scores, normalized xyxy) of its shortlisted uncovered windows, out-of-fold."""
    return objectness_pass(ds, seed=seed, progress=progress)[0]


def objectness_pass(
    ds: Dataset, *, seed: int = 0, progress: bool = False
) -> tuple[dict[int, tuple[np.ndarray, np.ndarray]], WindowFeatures | None]:
    """:func:`objectness_regions`, and how it described windows, as a :class:`WindowFeatures` (None where no window
    was described)."""
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,  # noqa: F401  (loaded before threadpool_limits, or it is not limited)
    )
    from threadpoolctl import threadpool_limits

    recs = ds.images
    boxes = [_boxes(r)[0] for r in recs]
    if sum(len(b) for b in boxes) < MIN_BOXES:
        return {}, None
    common = dataset_sizes(boxes, SIZE_CLUSTERS)
    side = decode_side(recs, boxes)
    allb = np.concatenate([b for b in boxes if len(b)])
    ds_loga = float(np.median(np.log(np.maximum((allb[:, 2] - allb[:, 0]) * (allb[:, 3] - allb[:, 1]), 1e-8))))
    fold = image_folds(len(recs), FOLDS, seed)
    caps = [image_cap(r, len(b)) for r, b in zip(recs, boxes)]
    empty = np.zeros((0, len(FEATURES)), np.float32)

    def rows(i: int) -> ImageRows | None:
        img = small_image(recs[i].path, side)
        if img is None or min(img.shape[:2]) < MIN_WINDOW_PX:
            return None
        m = image_maps(img)
        b = boxes[i]
        desc = box_descriptors(m, b) if len(b) else np.zeros((0, 6))
        cand = sliding_windows(image_sizes(b, common), MIN_WINDOW_PX / m.w, MIN_WINDOW_PX / m.h)
        cand = cand[uncovered(cand, b)]
        r = np.random.default_rng(seed * 100003 + i)
        jit, jit_own = jitter(b, r, JITTERS)
        pos_w, pos_own = np.concatenate([b, jit]), np.concatenate([np.arange(len(b)), jit_own]).astype(int)
        near = np.flatnonzero(touching(cand, b))
        pick_near = r.choice(near, min(NEG_PER_IMAGE // 2, len(near)), replace=False) if len(near) else np.zeros(0, int)
        rest = np.setdiff1d(np.arange(len(cand)), pick_near)
        pick = np.concatenate(
            [pick_near, r.choice(rest, min(NEG_PER_IMAGE - len(pick_near), len(rest)), replace=False)]
        ).astype(int)
        wins = np.concatenate([pos_w, cand])
        if not len(wins):
            return ImageRows(empty, empty, cand, empty)
        X = window_features(m, wins, b, desc, np.concatenate([pos_own, np.full(len(cand), -1)]), ds_loga)
        Xc = X[len(pos_w) :]
        # the positives copied out, not a view: a view kept every candidate window's features alive until the end,
        # after the shortlist had dropped them (1.07 GB at 30,000 images; issue #25)
        return ImageRows(X[: len(pos_w)].copy(), Xc[pick], cand, Xc)

    per: dict[int, ImageRows | None] = {}
    tops: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    m1: dict[int, Any] = {}

    def stack(ids: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        X, y, g = [empty], [np.zeros(0)], [np.zeros(0, int)]
        for i in ids:
            p = per[i]
            if p is not None:
                X += [p.pos, p.neg]
                y += [np.ones(len(p.pos)), np.zeros(len(p.neg))]
                g += [np.full(len(p.pos) + len(p.neg), fold[i])]
        return np.concatenate(X), np.concatenate(y), np.concatenate(g)

    def shortlist(ids: list[int]) -> None:
        """Each image's TOPK likeliest windows under the round-1 model of its fold; the rest is freed. Predicted
        :data:`SHORTLIST_ROWS` windows at a time: scikit-learn takes its input as float64, and 300 images of
        football players hold 6.4 million windows (1.1 GB of features, 2.2 GB as float64)."""
        for f in range(FOLDS):
            sel = [i for i in ids if per[i] is not None and fold[i] == f and len(per[i].cand)]
            shortlisted.extend(sel)
            for batch in _batches([len(per[i].cand) for i in sel], SHORTLIST_ROWS):
                part = [sel[j] for j in batch]
                p1 = _predict(m1[f], np.concatenate([per[i].Xc for i in part]))
                at = 0
                for i in part:
                    n = len(per[i].cand)
                    k = np.argsort(-p1[at : at + n], kind="stable")[: TOPK * caps[i] // MAX_PER_IMAGE]
                    tops[i] = (per[i].cand[k], per[i].Xc[k], p1[at : at + n][k])
                    at += n
        for i in ids:
            if per[i] is not None:
                per[i].Xc, per[i].cand = empty, np.zeros((0, 4))

    def hold(ids: list[int]) -> None:
        """Before the shortlisting model is fitted every image's candidate windows wait for it; past
        :data:`HELD_BYTES` an image's are dropped (its training rows kept) and described again after the fit
        (:func:`redo`): the same windows, bounded memory on dense images of small boxes."""
        nonlocal held
        for i in ids:
            p = per[i]
            if p is None or not len(p.cand):
                continue
            if held + p.Xc.nbytes > HELD_BYTES:
                dropped.append(i)
                p.cand, p.Xc = np.zeros((0, 4)), empty  # shortlist() skips it until redo() describes it again
            else:
                held += p.Xc.nbytes

    def redo(pool: ThreadPoolExecutor) -> None:
        """The dropped images' candidate windows described again and shortlisted, a chunk at a time."""
        for start in range(0, len(dropped), CHUNK):
            chunk = dropped[start : start + CHUNK]
            for i, again in zip(chunk, pool.map(rows, chunk)):
                if again is not None:  # decoded the first time, so again (the cache holds its pixels)
                    per[i].cand, per[i].Xc = again.cand, again.Xc
            shortlist(chunk)

    held = 0
    dropped: list[int] = []  # images whose candidate windows were dropped before the shortlisting model was fitted
    shortlisted: list[int] = []  # images in the order they were shortlisted
    order = np.random.default_rng(seed + 29).permutation(len(recs)).tolist()
    from rich.progress import Progress

    with (
        ThreadPoolExecutor(max_workers=2) as pool,
        threadpool_limits(limits=1),
        Progress(disable=not progress, transient=True) as bar,
    ):
        task = bar.add_task("missing boxes (objectness)", total=len(order))
        for start in range(0, len(order), CHUNK):
            chunk = order[start : start + CHUNK]
            per.update(zip(chunk, pool.map(rows, chunk)))
            if not m1:
                hold(chunk)
            if not m1 and (len(per) >= SEED_IMAGES or start + CHUNK >= len(order)):
                # round 1: a small model from the first images, only to shortlist each image's likeliest windows
                X1, y1, g1 = stack(list(per))
                m1 = dict(
                    enumerate(
                        fit_side_by_side(
                            [lambda f=f: _fit(X1, y1, g1 != f, seed + f, ITER1) for f in range(FOLDS)],
                            at_once=_folds_at_once(X1, g1),
                        )
                    )
                )
                shortlist(list(per))
                redo(pool)
                # the order they would have been shortlisted in with nothing dropped (by fold, then as read): the
                # hard negatives are stacked in it, and the final fits depend on their rows' order
                first = {i: k for k, i in enumerate(per)}
                shortlisted.sort(key=lambda i: (fold[i], first[i]))
            elif m1:
                shortlist(chunk)
            bar.advance(task, len(chunk))
        tops = {i: tops[i] for i in shortlisted if i in tops}
        # round 2: every (learning) image's rows plus its likeliest unlabelled windows as hard negatives
        learning = learnt_images(fold, seed)
        X, y, g = stack([i for i in per if learning[i]])
        per.clear()  # its rows are in X now: one copy of them through the fits, not two
        hard = [(tops[i][1][_nms(tops[i][2], tops[i][0], HARD)], fold[i]) for i in tops if learning[i]]
        if hard:
            X = np.concatenate([X, *[h for h, _ in hard]])
            y = np.concatenate([y, np.zeros(sum(len(h) for h, _ in hard))])
            g = np.concatenate([g, *[np.full(len(h), f) for h, f in hard]])
        m2 = dict(
            enumerate(
                fit_side_by_side(
                    [lambda f=f: _fit(X, y, g != f, seed + 10 + f, ITER2) for f in range(FOLDS)],
                    at_once=_folds_at_once(X, g),
                )
            )
        )
        out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for f in range(FOLDS):
            ids = [i for i in tops if fold[i] == f]
            if ids:
                p2 = _predict(m2[f], np.concatenate([tops[i][1] for i in ids]))
                at = 0
                for i in ids:
                    n = len(tops[i][0])
                    out[i] = (p2[at : at + n], tops[i][0])
                    at += n
    return out, WindowFeatures(ds, side, ds_loga)
