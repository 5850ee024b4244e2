"""The model: cross-fitted boosting over the box features, so no box is scored by a model that saw it, and
the calibration that turns its probabilities (trained at tens of % corrupted boxes) into scores at a
realistic error prior.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from curate.audit.boxmodel import owncrop_features
from curate.audit.boxmodel.corruptions import KINDS, _queries
from curate.audit.boxmodel.features import _features
from curate.audit.boxmodel.scores import BoxScores
from curate.core import defaults
from curate.core.dataset import Dataset
from curate.core.folds import image_folds
from curate.runtime.env import fit_side_by_side, fits_at_once, no_all_nan_columns
from curate.vision.hashing import Pair

log = logging.getLogger(__name__)

#: Fits of the cross-fit running at once (of folds × members = 9): each holds a float64 copy of its training
#: rows, so all 9 at once took food-ingredients' audit from 0.26 to 0.60 GB, more with more boxes (issue #25).
#: 3 keeps two cores busy and the jobs even (9 = 3 rounds of 3); the fits' CPU time is the same. Fewer where 3
#: copies pass :data:`curate.runtime.env.FIT_ROWS_BUDGET` (above ~20,000 images).
FITS_AT_ONCE = 3


@dataclass(frozen=True)
class MemberRows:
    """One member's rows of the feature matrix every member shares (the real boxes and its own corrupted ones):
    indexing reads those rows of ``matrix``, so no member holds a copy of it (three copies of the real boxes'
    rows were as large as the matrix itself)."""

    matrix: np.ndarray
    rows: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.rows), self.matrix.shape[1])

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: Any) -> np.ndarray:
        if isinstance(index, tuple):  # rows and columns: the rows first
            return self.matrix[self.rows[index[0]]][(slice(None), *index[1:])]
        return self.matrix[self.rows[index]]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self.matrix[self.rows]
        return out if dtype is None else out.astype(dtype)


def _classifier(seed: int, iterations: int, *, fast: bool = False):
    """scikit-learn's histogram boosting; ``--fast``: :class:`curate.learn.boosting.BoostedTrees`, the same kind of
    model in numpy, because importing scikit-learn alone costs ~2 s of CPU, more than the rest of
    ``--fast``'s box model (held-out AP of the synthetic loose/shifted/grouped boxes on food: see
    benchmarks/README.md, Session 9)."""
    if fast:
        from curate.learn.boosting import BoostedTrees

        return BoostedTrees(
            iterations=iterations,
            learning_rate=defaults.BOXMODEL_FAST_LEARNING_RATE,
            max_depth=defaults.BOXMODEL_FAST_DEPTH,
            min_samples_leaf=20,
            l2_regularization=1.0,
            max_bins=defaults.BOXMODEL_MAX_BINS,
        )
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=iterations,
        learning_rate=0.15,
        max_leaf_nodes=15,
        min_samples_leaf=20,
        l2_regularization=1.0,
        max_bins=defaults.BOXMODEL_MAX_BINS,
        # scikit-learn's "auto" turns it on above 10,000 rows: a larger dataset would hold 10 % out and stop at
        # another round count
        early_stopping=False,
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
    members: int = defaults.BOXMODEL_MEMBERS,
    progress: bool = True,
    same_scene: list[Pair] | None = None,
    owncrops: bool | Callable[[], bool] = False,
) -> BoxScores:
    """Out-of-fold scores (loose, shifted, grouped) for every box of every split.

    ``fast`` uses geometry only (no image is decoded); ``use_mask`` adds U²-Net-p mask features (computed
    and cached for every image: ~250 ms an image the first time). Each fold is scored by ``members`` models
    that saw different corrupted boxes, averaged (see :func:`_crossfit`, :data:`defaults.BOXMODEL_MEMBERS`), each
    fitted once with every real box taught as "ok": a second fit without the 3 % of real boxes the first finds most
    suspicious (probably real errors) finds no more planted errors (benchmarks/README.md, *Pixel checks*, tried
    and not kept).
    ``same_scene``: the audit's near-duplicate pairs at SAME_SCENE_SIMILARITY, for the neighbour features'
    scenes (:func:`~curate.audit.boxmodel.peers.scenes`); searched from the signature cache without them.
    """
    t0 = time.perf_counter()
    if fast:  # --fast promises hundreds of images a second: a lighter model on geometry alone
        iterations = min(iterations, defaults.BOXMODEL_FAST_ITERATIONS)
        folds = min(folds, 2)
        members = 1
    share = defaults.BOXMODEL_FAST_CORRUPT_SHARE if fast else defaults.BOXMODEL_CORRUPT_SHARE
    if not dataset.num_boxes:  # no boxes at all: nothing to learn from or score
        empty = np.zeros(0, np.float32)
        return BoxScores(
            {},
            [],
            {k: empty for k in KINDS},
            np.zeros((0, 1 + len(KINDS)), np.float32),
            np.zeros((0, 0), np.float32),
            [],
            "geometry" if fast else "pixels",
        )
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
    drawn = [
        _queries(dataset, np.random.default_rng(seed + 101 * m), with_corruptions=True, share=share)
        for m in range(max(1, members))
    ]
    boxes, classes = drawn[0][1], drawn[0][2]
    n_real = sum(len(r.labels) for r in dataset.images)
    union = list(drawn[0][0][:n_real])
    spans = []
    for qs_m, _, _ in drawn:
        spans.append(np.r_[0:n_real, len(union) : len(union) + len(qs_m) - n_real])
        union.extend(qs_m[n_real:])
    t1 = time.perf_counter()
    X_all, names = _features(
        dataset, union, boxes, classes, pixels=not fast, masks=masks, progress=progress, same_scene=same_scene
    )
    seconds["features"] = time.perf_counter() - t1
    fold_of_image = image_folds(len(dataset.images), folds, seed)  # one fold per image for every member
    if not fast and (owncrops() if callable(owncrops) else owncrops):
        t1 = time.perf_counter()
        X_all = np.hstack([X_all, _owncrop_columns(dataset, union, spans[0], fold_of_image, seed)])
        names = [*names, *owncrop_features.NAMES]
        seconds["owncrops"] = time.perf_counter() - t1
    prior_odds = None
    if not fast:  # the cross-dataset prior's per-kind log-odds of the first member's rows (issue #22)
        from curate.audit.boxmodel.prior import prior_log_odds

        prior_odds = prior_log_odds(X_all[: len(drawn[0][0])], names, n_real)
    parts = []
    for (qs_m, _, _), rows in zip(drawn, spans):
        y = np.array([0 if q.kind == "ok" else 1 + KINDS.index(q.kind) for q in qs_m])
        parts.append((qs_m, MemberRows(X_all, rows), y))
    qs, X, y = parts[0]
    real = np.array([k for k, q in enumerate(qs) if q.line is not None and q.kind == "ok"], int)
    # each fold's models never saw its images
    folds_of = [fold_of_image[np.array([q.image for q in p[0]])] for p in parts]
    t2 = time.perf_counter()
    from rich.progress import Progress

    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("box model (cross-fitted)", total=len(parts) * folds)
        prob = _crossfit(
            [(p[1], p[2], fo) for p, fo in zip(parts, folds_of)],
            folds,
            np.ones(len(real), bool),
            seed=seed,
            iterations=iterations,
            advance=lambda: bar.advance(task),
            fast=fast,
        )
    seconds["model"] = time.perf_counter() - t2
    prior = np.bincount(y, minlength=1 + len(KINDS)) / len(y)
    scores = calibrate_heldout(prob, y, prior, real)
    if prior_odds is not None:  # the prior reorders the dataset's own scores (prior.reordered: why)
        from curate.audit.boxmodel.prior import blended, reordered

        prob = blended(prob, prior_odds)
        scores = reordered(calibrate_heldout(prob, y, prior, real), scores)
    prob = prob[real]
    rows = [(dataset.images[qs[k].image], qs[k].line) for k in real]
    index = {(rec.rel, rec.labels[j].line): n for n, (rec, j) in enumerate(rows)}
    seconds["total"] = time.perf_counter() - t0
    return BoxScores(
        index=index,
        records=rows,
        scores=scores,
        prob=prob,
        features=X[real],
        names=names,
        method=method,
        seconds=seconds,
    )


def _owncrop_columns(
    dataset: Dataset, union: list, first: np.ndarray, fold_of_image: np.ndarray, seed: int
) -> np.ndarray:
    """The own-crop columns of every row of ``union`` (real, then each member's corruptions): the networks learn
    from the rows ``first`` (the real boxes, taught "ok", and the first member's corruptions, as the trees' first
    member), in the trees' folds by image."""
    image = np.array([q.image for q in union], np.int64)
    xyxy = np.array([q.xyxy for q in union], np.float64).reshape(-1, 4)
    y = np.array([0 if q.kind == "ok" else 1 + KINDS.index(q.kind) for q in union], np.int64)
    train = np.zeros(len(union), bool)
    train[first] = True
    paths = [r.path for r in dataset.images]
    return owncrop_features.columns(paths, image, xyxy, y, fold_of_image[image], train, seed=seed)


def _crossfit(
    members: list[tuple[np.ndarray | MemberRows, np.ndarray, np.ndarray]],
    folds: int,
    keep: np.ndarray,
    *,
    seed: int,
    iterations: int,
    advance,
    fast: bool = False,
) -> np.ndarray:
    """Out-of-fold class probabilities of the first member's rows (real and corrupted), averaged over members.

    ``members`` are (X, y, fold) of the same real boxes (the first ``len(keep)`` rows, of which only ``keep``
    train) with each member's own corrupted boxes. Fold ``f``'s model of every member is trained on the
    images outside fold ``f`` and scores the first member's rows in it: a bag of models that saw different
    corruptions, calibrated once on the first member's held-out corrupted boxes. The fits run side by side
    (:func:`curate.runtime.env.fit_side_by_side`): on food-ingredients' pixel model, 3 folds took 27–29 s one after
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
        rows = X[train] if fast else X[train].astype(np.float64)  # scikit-learn's dtype: one copy of them, not two
        clf.fit(no_all_nan_columns(rows), y[train])  # sklearn 1.9 raises on an all-NaN feature
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
        rows = max(int((fo != f).sum()) for _, _, fo in members for f in range(folds))  # as float64 in each fit
        at_once = fits_at_once(len(jobs), 8 * X0.shape[1] * rows, most=FITS_AT_ONCE)
        results = fit_side_by_side([lambda f=f, m=m: fit(f, m) for f, m in jobs], done=advance, at_once=at_once)
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
