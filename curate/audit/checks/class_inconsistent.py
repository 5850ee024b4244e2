"""class_inconsistent: the box's crop looks like another class (a swapped label).

No pretrained weights exist offline, so the dataset teaches its own classifier: appearance features of
every crop (:mod:`curate.vision.crops`: colour, texture, size) plus image context — which other classes the
image holds (leave-one-out over the box itself) and how much the crop resembles the image's other boxes
of each class (a swapped box usually sits among correctly labelled siblings of its true class). Extremely
randomized trees give out-of-fold probabilities (K folds grouped by image, so no box is scored by a model
that saw it), and cleanlab's label-quality score on them ranks the boxes.

The score is 0.5 where the trees give the box's own label a probability of 2 % (:data:`RAW_AT_HALF`):
out of fold, 91–97 % of planted swaps fall below that and 0.2–0.5 % of clean boxes do (food-ingredients,
epicureai). A cap (:data:`CLEAN_FLAG_SHARE`) keeps a dataset the trees cannot learn from flagging more
than 5 % of its boxes.

When every box of a class in one image is flagged, the score is discounted below the threshold
(:func:`consistent_groups`): the annotator labelled them alike, so the model more likely meets a new look of
the class (a shelf of one product) than a swapped label. On food-ingredients (3 seeds), with the logistic
regression this check used before the trees, that raised the planted-swap AP from 0.74 to 0.85 and cut the
check's false flags from 1.26 to 0.78 per 100 clean boxes.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from curate.audit.checks.base import AuditContext, Check, Display
from curate.audit.shared import CropFeatures
from curate.core.findings import Finding
from curate.runtime.env import workers

NAME = "class_inconsistent"
FOLDS = 5  # out-of-fold K (grouped by image)
MIN_CLASS_INSTANCES = 5  # a class with fewer boxes is too rare to learn: its boxes are not flagged
MIN_CLASS_IMAGES = 3  # a class seen in fewer images can't be judged out-of-fold by image (its only image is held out)
# at most this share of boxes may reach score 0.5 (calibration cap; 0.02 with the logistic regression, whose scores
# crowded at 1)
CLEAN_FLAG_SHARE = 0.05
RAW_AT_HALF = 0.98  # raw score (1 − cleanlab quality) that maps to 0.5 unless the cap needs more: p(label) ≤ 0.02
FOREST_TREES = 200  # extra trees per fold (100: swapped AP −0.03 on food; 300: +0.01 for 1.5× the time)
FOREST_CHUNK = 25  # trees grown (and held in memory) at a time
# scores below 0.5 are multiplied by this (calibrate): weak evidence, not a probability near 0.5. 0.3 gave merged
# swapped AP +0.07 on bccd and +0.14 on football, but traffic-signs' loose 0.40 -> 0.33, under the naive baseline's 0.34
BELOW_HALF_WEIGHT = 0.1
CONSISTENT_FACTOR = 0.45  # score factor when every box of the class in the image is flagged alike (< 0.5 after)


def context_features(appearance: np.ndarray, classes: np.ndarray, num_classes: int) -> np.ndarray:
    """Per box: other classes present in its image (leave-one-out) and max cosine similarity to them.

    ``appearance`` is one image's (n, D) standardized features, ``classes`` their labels.
    """
    n = len(classes)
    present = np.zeros((n, num_classes), np.float32)
    sim = np.zeros((n, num_classes), np.float32)
    if n < 2:
        return np.hstack([present, sim])
    unit = appearance / np.maximum(np.linalg.norm(appearance, axis=1, keepdims=True), 1e-6)
    cos = unit @ unit.T
    np.fill_diagonal(cos, -np.inf)
    for k in np.unique(classes):
        cols = classes == k
        present[:, k] = cols.sum() - (classes == k)  # count of OTHER boxes of class k
        best = cos[:, cols].max(axis=1)
        sim[:, k] = np.where(np.isfinite(best), (best + 1) / 2, 0.0)
    present = np.minimum(present, 3) / 3
    return np.hstack([present, sim])


def out_of_fold_probs(X: np.ndarray, y: np.ndarray, groups: np.ndarray, num_classes: int, *, seed: int) -> np.ndarray:
    """(n, num_classes) probabilities, each box predicted by a forest trained on other images."""
    from sklearn.model_selection import GroupKFold

    probs = np.full((len(y), num_classes), 1.0 / num_classes)
    folds = min(FOLDS, len(np.unique(groups)))
    if folds < 2:
        return probs

    def fit(split: tuple[np.ndarray, np.ndarray]) -> None:
        train, test = split
        if len(np.unique(y[train])) < 2:
            return
        probs[test] = forest_probs(X[train], y[train], X[test], num_classes, seed=seed)

    # folds side by side, one thread each: the trees are grown without the GIL (and use no BLAS)
    with ThreadPoolExecutor(max_workers=workers()) as pool:
        list(pool.map(fit, GroupKFold(n_splits=folds).split(X, y, groups)))
    return probs / probs.sum(axis=1, keepdims=True)


def forest_probs(X: np.ndarray, y: np.ndarray, X_test: np.ndarray, num_classes: int, *, seed: int) -> np.ndarray:
    """Class probabilities of ``X_test`` from extremely randomized trees fitted on (X, y): FOREST_TREES
    trees grown FOREST_CHUNK at a time and their votes summed, so only one chunk is held in memory.

    Why trees: the classes of a food dataset differ by combinations (white *and* grainy *and* in a
    bag), which a linear model of these features cannot draw. Out of fold on food-ingredients with 3 %
    planted swaps (seeds 0, 1), before the consistent-group discount: logistic regression AP 0.75 / 0.77,
    1.37 / 1.11 false flags per 100; 200 extra trees 0.97 / 0.96, 0.09 / 0.23, in the same ~4 s. Why
    chunks: a fully grown tree stores a value per class in every node; 200 of them took 135 MB on food
    (4,761 boxes, 36 classes), a chunk of 25 about 17 MB, and both grow with the boxes and the classes.
    """
    from sklearn.ensemble import ExtraTreesClassifier

    chunks = FOREST_TREES // FOREST_CHUNK
    votes = np.zeros((len(X_test), num_classes))
    for chunk in range(chunks):
        forest = ExtraTreesClassifier(
            n_estimators=FOREST_CHUNK, max_features="sqrt", n_jobs=1, random_state=seed * 1000 + chunk
        )
        forest.fit(X, y)
        votes[:, forest.classes_] += forest.predict_proba(X_test)
    return votes / chunks


def calibrate(raw: np.ndarray) -> np.ndarray:
    """Monotone map of raw scores to [0, 1]: 0.5 at the larger of RAW_AT_HALF and the (1−cap) quantile.

    Ranking is unchanged; threshold 0.5 flags at most ~CLEAN_FLAG_SHARE of boxes. Below ``t`` the score is
    multiplied by :data:`BELOW_HALF_WEIGHT`: read as the probability of a real swap it is small there (91–97 % of
    planted swaps lie above ``t``), and at its linear 0.2–0.5 it outranked real grouped and loose boxes in the
    merged worst-first list (epicureai: grouped 0.96 alone, 0.75 merged).
    """
    if len(raw) == 0:
        return raw
    t = float(max(RAW_AT_HALF, np.quantile(raw, 1 - CLEAN_FLAG_SHARE)))
    t = min(t, 0.999)
    low = BELOW_HALF_WEIGHT * 0.5 * raw / t
    high = 0.5 + 0.5 * (raw - t) / (1 - t)
    return np.clip(np.where(raw < t, low, high), 0.0, 1.0)


def consistent_groups(boxes: list, scores: np.ndarray, rare: np.ndarray) -> dict[int, int]:
    """Boxes whose image holds ≥ 2 boxes of their class, all of them flagged (score ≥ 0.5).

    Why: a swapped label is one box that differs from how the annotator labelled its siblings; when every
    box of a class in an image "looks like" another class (a shelf of one pasta brand, seen as chickpeas),
    the labelling is consistent and the model has just not seen this look of the class in the
    other folds. On the unmodified food-ingredients all top-24 flags were such shelves. Returns
    box index → size of its group.
    """
    groups: dict[tuple[str, int], list[int]] = {}
    for i, (record, lb) in enumerate(boxes):
        groups.setdefault((record.rel, lb.class_id), []).append(i)
    out: dict[int, int] = {}
    for (_, cls), idx in groups.items():
        if len(idx) < 2 or rare[idx[0]]:
            continue
        if all(scores[j] >= 0.5 for j in idx):
            out.update({j: len(idx) for j in idx})
    return out


def skipped(ctx: AuditContext) -> str | None:
    """Crop features: not in ``--fast``."""
    return "--fast" if ctx.fast else None


def run(ctx: AuditContext) -> list[Finding]:
    ds = ctx.dataset
    boxes = [(r, lb) for r, lb in ds.boxes()]
    if not boxes:
        return []
    y = np.array([lb.class_id for _, lb in boxes])
    num_classes = max(len(ds.names), int(y.max()) + 1)
    counts = np.bincount(y, minlength=num_classes)
    if (counts > 0).sum() < 2:
        return [
            Finding(r.split, r.rel, NAME, 0.0, "single class: nothing to swap with", line=lb.line) for r, lb in boxes
        ]

    per_image = ctx.use(CropFeatures).get(ctx)
    A = np.vstack([f for f in per_image if len(f)]).astype(np.float32)
    mu, sd = A.mean(0), A.std(0) + 1e-6
    ctx_rows, groups = [], []
    for gi, (record, feats) in enumerate(zip(ds.images, per_image)):
        if not record.labels:
            continue
        cls = np.array([lb.class_id for lb in record.labels])
        ctx_rows.append(context_features((feats - mu) / sd, cls, num_classes))
        groups += [gi] * len(cls)
    X = np.hstack([A, np.vstack(ctx_rows)])

    from cleanlab.rank import get_label_quality_scores

    probs = out_of_fold_probs(X, y, np.array(groups), num_classes, seed=ctx.seed)
    quality = get_label_quality_scores(y, probs, method="self_confidence")
    scores = calibrate(1.0 - quality)
    images_of = np.zeros(num_classes, int)
    for record in ds.images:
        for c in {lb.class_id for lb in record.labels}:
            images_of[c] += 1
    rare = (counts[y] < MIN_CLASS_INSTANCES) | (images_of[y] < MIN_CLASS_IMAGES)
    consistent = consistent_groups(boxes, scores, rare)
    out = []
    for i, (record, lb) in enumerate(boxes):
        label = ds.class_name(lb.class_id)
        p = probs[i].copy()
        p[lb.class_id] = -1
        k = int(p.argmax())
        score = 0.0 if rare[i] else float(scores[i])
        if rare[i]:
            msg = (
                f"class '{label}' has {counts[lb.class_id]} boxes in {images_of[lb.class_id]} image(s) "
                f"(< {MIN_CLASS_INSTANCES} boxes or < {MIN_CLASS_IMAGES} images): too rare to judge"
            )
        else:
            msg = (
                f"looks like '{ds.class_name(k)}' (p={probs[i, k]:.2f}), "
                f"labelled '{label}' (p={probs[i, lb.class_id]:.2f})"
            )
        if i in consistent:
            score *= CONSISTENT_FACTOR
            msg += (
                f"; but all {consistent[i]} '{label}' boxes of this image look foreign alike: the annotator was "
                "consistent, so more likely a look of the class the model has not learnt than a swapped label"
            )
        data = {
            "suggested": ds.class_name(k),
            "p_label": round(float(probs[i, lb.class_id]), 4),
            "p_suggested": round(float(probs[i, k]), 4),
        }
        out.append(Finding(record.split, record.rel, NAME, score, msg, line=lb.line, data=data))
    return out


class ClassInconsistent(Check):
    names = (NAME,)
    description = "the box's crop looks like another class (a swapped label)"
    kind = "box"
    order = 110
    display = {
        "class_inconsistent": Display(70, "#0d9488"),
    }
    needs = (CropFeatures,)

    def skipped(self, ctx: AuditContext) -> str | None:
        return skipped(ctx)

    def run(self, ctx: AuditContext) -> list[Finding]:
        return run(ctx)
