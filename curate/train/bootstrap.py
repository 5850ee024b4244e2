"""Paired bootstrap of mAP over test images: is AFTER really better than BEFORE, or is it noise?

Both models are scored on the same test images. Per image we keep what Ultralytics' validator computed
(per-prediction TP flags at IoU 0.50:0.95, confidence, predicted class; ground-truth classes). A
resample draws image indices with replacement; because AP depends only on the order of predictions by
confidence, the predictions are sorted ONCE and a resample only re-weights them by how often their image
was drawn (weighted cumulative sums) — no re-matching, no re-sorting, so 1,000 resamples take seconds.

The AP itself is Ultralytics' (:func:`ultralytics.utils.metrics.compute_ap`): the precision envelope
interpolated at 101 recall points, averaged over the classes that have ground truth in the resample.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: 101 recall points of the COCO interpolation, as Ultralytics uses.
_AP_X = np.linspace(0.0, 1.0, 101)


@dataclass
class ImageStats:
    """One test image as a model saw it: predictions (sorted or not) and the ground-truth classes."""

    tp: np.ndarray  # (n, T) bool: prediction j is a true positive at IoU threshold t
    conf: np.ndarray  # (n,)
    pred_cls: np.ndarray  # (n,) int
    target_cls: np.ndarray  # (m,) int


@dataclass
class Flat:
    """All predictions of one model, sorted per class by descending confidence, with their image index."""

    classes: np.ndarray  # the classes scored (those with ground truth in the full test set)
    order: list[np.ndarray] = field(default_factory=list)  # per class: (tp (k,T), image index (k,))
    gt: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (images, classes) ground-truth counts


def flatten(images: list[ImageStats], classes: np.ndarray) -> Flat:
    """Sort once: per class, the predictions of all images by descending confidence."""
    n_t = next((im.tp.shape[1] for im in images if im.tp.ndim == 2 and im.tp.shape[0]), 10)
    tp = np.concatenate([im.tp.reshape(-1, n_t) for im in images]) if images else np.zeros((0, n_t), bool)
    conf = np.concatenate([im.conf for im in images]) if images else np.zeros(0)
    cls = np.concatenate([im.pred_cls for im in images]).astype(int) if images else np.zeros(0, int)
    img = (
        np.concatenate([np.full(len(im.conf), i) for i, im in enumerate(images)]).astype(int)
        if images
        else np.zeros(0, int)
    )
    flat = Flat(classes=classes)
    for c in classes:
        sel = np.flatnonzero(cls == c)
        sel = sel[np.argsort(-conf[sel], kind="stable")]
        flat.order.append((tp[sel].astype(float), img[sel]))
    gt = np.zeros((len(images), len(classes)))
    index = {int(c): k for k, c in enumerate(classes)}
    for i, im in enumerate(images):
        for c in im.target_cls.astype(int):
            if int(c) in index:
                gt[i, index[int(c)]] += 1
    flat.gt = gt
    return flat


def _ap(tpc: np.ndarray, fpc: np.ndarray, n_gt: float) -> np.ndarray:
    """AP per IoU threshold from cumulative TP/FP counts (k, T): Ultralytics' 101-point interpolation."""
    n_t = tpc.shape[1]
    if tpc.shape[0] == 0:
        return np.zeros(n_t)
    recall = tpc / (n_gt + 1e-16)
    precision = tpc / np.maximum(tpc + fpc, 1e-16)
    out = np.empty(n_t)
    for t in range(n_t):
        mrec = np.concatenate(([0.0], recall[:, t], [recall[-1, t]], [1.0]))
        mpre = np.concatenate(([1.0], precision[:, t], [0.0], [0.0]))
        mpre = np.flip(np.maximum.accumulate(np.flip(mpre)))
        out[t] = np.trapezoid(np.interp(_AP_X, mrec, mpre), _AP_X)
    return out


def weighted_aps(flat: Flat, weights: np.ndarray) -> np.ndarray:
    """AP per class and IoU threshold (classes, T) when image i counts ``weights[i]`` times; NaN rows for the
    classes without ground truth in this draw."""
    n_gt = weights @ flat.gt if flat.gt.size else np.zeros(len(flat.classes))
    n_t = flat.order[0][0].shape[1] if flat.order else 10
    aps = np.full((len(flat.order), n_t), np.nan)
    for k, (tp, img) in enumerate(flat.order):
        if n_gt[k] <= 0:
            continue
        w = weights[img][:, None]
        keep = w[:, 0] > 0
        tpc = np.cumsum((tp * w)[keep], axis=0)
        fpc = np.cumsum(((1 - tp) * w)[keep], axis=0)
        aps[k] = _ap(tpc, fpc, n_gt[k])
    return aps


def _means(aps: np.ndarray) -> tuple[float, float]:
    a = aps[~np.isnan(aps[:, 0])] if aps.size else aps
    if not len(a):
        return 0.0, 0.0
    return float(a[:, 0].mean()), float(a.mean())


@dataclass
class BootstrapResult:
    """Point estimates on the full test set and the 95 % interval of the paired differences."""

    before: dict[str, float]  # mAP50, mAP50-95 on the full test set (mean over seeds)
    after: dict[str, float]
    delta: dict[str, float]
    ci95: dict[str, tuple[float, float]]
    resamples: int
    verdict: str  # verdict on mAP50-95 (the primary metric)
    verdicts: dict[str, str]
    #: per class (in the order of ``classes``): AP50-95 Δ, its 95 % interval and verdict; None without ground truth
    per_class: list[dict | None] = field(default_factory=list)


def verdict_of(low: float, high: float) -> str:
    """Plain words: the 95 % interval lies above 0, below 0, or straddles it."""
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    return "no significant difference"


def paired_bootstrap(
    pairs: list[tuple[list[ImageStats], list[ImageStats]]],
    classes: np.ndarray,
    *,
    resamples: int = 1000,
    seed: int = 0,
) -> BootstrapResult:
    """Paired bootstrap of ΔmAP = AFTER − BEFORE over test images, pooled over seed pairs.

    ``pairs`` holds one (before, after) per seed pair, each a list of :class:`ImageStats` over the SAME
    test images in the same order. Each pair gets ``resamples`` draws of image indices (the same draw for
    both models: that is what makes it paired); the differences of all pairs are pooled, so the interval
    holds both the image sampling noise and the seed-to-seed variance.
    """
    rng = np.random.default_rng(seed)
    keys = ("mAP50", "mAP50-95")
    deltas: list[tuple[float, float]] = []
    class_deltas: list[np.ndarray] = []  # per draw: AP50-95 of AFTER − BEFORE per class (NaN: no ground truth)
    points_b, points_a, class_points = [], [], []
    for before, after in pairs:
        if len(before) != len(after):
            raise ValueError("paired bootstrap needs the same test images for both models")
        fb, fa = flatten(before, classes), flatten(after, classes)
        n = len(before)
        ones = np.ones(n)
        ab, aa = weighted_aps(fb, ones), weighted_aps(fa, ones)
        points_b.append(_means(ab))
        points_a.append(_means(aa))
        class_points.append(aa.mean(1) - ab.mean(1))
        for _ in range(resamples):
            w = np.bincount(rng.integers(0, n, n), minlength=n).astype(float) if n else ones
            ab, aa = weighted_aps(fb, w), weighted_aps(fa, w)
            b, a = _means(ab), _means(aa)
            deltas.append((a[0] - b[0], a[1] - b[1]))
            class_deltas.append(aa.mean(1) - ab.mean(1))
    d = np.array(deltas) if deltas else np.zeros((1, 2))
    pb, pa = np.mean(points_b, axis=0), np.mean(points_a, axis=0)
    ci = {k: (float(np.percentile(d[:, i], 2.5)), float(np.percentile(d[:, i], 97.5))) for i, k in enumerate(keys)}
    verdicts = {k: verdict_of(*ci[k]) for k in keys}
    return BootstrapResult(
        before={k: float(pb[i]) for i, k in enumerate(keys)},
        after={k: float(pa[i]) for i, k in enumerate(keys)},
        delta={k: float(pa[i] - pb[i]) for i, k in enumerate(keys)},
        ci95=ci,
        resamples=len(deltas),
        verdict=verdicts["mAP50-95"],
        verdicts=verdicts,
        per_class=_per_class(np.array(class_points), np.array(class_deltas)),
    )


def _per_class(points: np.ndarray, draws: np.ndarray) -> list[dict | None]:
    """Per class: the AP50-95 Δ on the full test set (mean over seed pairs), the 2.5–97.5 percentiles of the
    draws where the class had ground truth, and the verdict they give; None for a class without ground truth."""
    out: list[dict | None] = []
    for k in range(points.shape[1] if points.ndim == 2 else 0):
        col = draws[:, k][~np.isnan(draws[:, k])] if len(draws) else np.zeros(0)
        if np.isnan(points[:, k]).all() or not len(col):
            out.append(None)
            continue
        lo, hi = float(np.percentile(col, 2.5)), float(np.percentile(col, 97.5))
        out.append({"delta": float(np.nanmean(points[:, k])), "ci95": [lo, hi], "verdict": verdict_of(lo, hi)})
    return out
