"""The cross-dataset prior: a small model trained once on corrupted boxes of seven datasets of seven domains,
whose odds of each kind are multiplied into each dataset's own box model before its held-out calibration.

Why: the per-dataset model learns what a wrong box looks like from the dataset alone, and 114–200 train images
teach it little (construction-ppe, potholes-road). The prior has seen loose, shifted and grouped boxes on food,
cells, players, signs, PPE and potholes. It reads features that describe a box relative to its class, image or
patch (:data:`NOT_INVARIANT` lists those left out: box counts and the raw grey layout describe a dataset, not an
error), each as its quantile among the dataset's own real boxes (:func:`within_dataset`), so "unusual for this
dataset" carries over where raw scales do not. Blended (:func:`blended`), not given as features: as three more
features of the per-dataset model, leave-one-dataset-out, it lowered traffic-signs-ro's loose AP by 0.08;
blended at :data:`WEIGHT`, see benchmarks/README.md (issue #22).

The blend only **reorders** each kind's scores (:func:`reordered`): the box keeps the score the dataset's own
model gave the box of the blend's rank. Why: blended and calibrated as is, the prior also raised right boxes, which
pushed other checks' errors down the merged list (swapped −0.04/−0.05 on food, football and construction-ppe) and
put traffic-signs-ro's duplicates under the naive baseline; reordered, the scores a dataset's boxes take are its
own model's, so the merged list's other kinds stay where they were and only which boxes hold the top scores changes.

Stored as plain arrays (``prior.npz``: :meth:`curate.learn.boosting.BoostedTrees.to_arrays` plus the feature
names it reads and a version), loaded on first use, never unpickled. Trained by ``benchmarks/prior_train.py``;
judged only leave-one-dataset-out (``benchmarks/prior_lodo.py``): the shipped model saw all seven pool datasets,
so the pool's own figures with it are in-sample. Only the full (pixel) model uses it; ``--fast`` does not.
On by default: ``CURATE_BOXMODEL_PRIOR`` unset or ``on`` uses the shipped file, a path another one (a
leave-one-out model), ``off`` none.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import numpy as np

from curate.audit.boxmodel.corruptions import KINDS

log = logging.getLogger(__name__)

VERSION = 1  # bump when the features the prior reads change meaning: an old file is then ignored
PRIOR_PATH = Path(__file__).with_name("prior.npz")
WEIGHT = 0.25  # the exponent of the prior's odds in :func:`blended`
#: Features that describe a dataset rather than a box (how many boxes an image holds, the box's raw grey
#: layout): left out of the prior's input. Everything else is a ratio to the box's class, image or patch.
NOT_INVARIANT = ("g_img_area", "g_n_same_img", "g_n_img", "s_n")
PREDICT_ROWS = 20_000  # rows the prior scores at once (their float64 copy: ~35 MB)


def invariant(names: list[str] | tuple[str, ...]) -> list[str]:
    """The feature names the prior reads, of the box model's ``names``."""
    return [n for n in names if n not in NOT_INVARIANT and not n.startswith("p_grid")]


def within_dataset(X: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Each column of ``X`` as its quantile among the same column of ``reference`` (the dataset's real boxes):
    0 = below all of them, 1 = above all, NaN kept.

    Why: a feature's scale is the dataset's (grey contrast of cells vs of road, how far the boxes of a class
    spread); "unusual for this dataset's boxes" is what carries over to another dataset.
    """
    out = np.full(X.shape, np.nan, np.float32)
    for f in range(X.shape[1]):
        ref = np.sort(reference[:, f][np.isfinite(reference[:, f])])
        col = X[:, f]
        ok = np.isfinite(col)
        if len(ref):
            lo, hi = np.searchsorted(ref, col[ok], "left"), np.searchsorted(ref, col[ok], "right")
            out[ok, f] = (lo + hi) / (2.0 * len(ref))
    return out


def log_odds(prob: np.ndarray) -> np.ndarray:
    """The prior's columns: log P(kind) − log P(ok), per kind (columns in :data:`KINDS` order)."""
    p = np.clip(prob, 1e-6, 1.0)
    return (np.log(p[:, 1:]) - np.log(p[:, :1])).astype(np.float32)


@functools.lru_cache(maxsize=4)
def load(path: str):
    """(model, the feature names it reads), or None when the file is absent, of another version, or unreadable."""
    from curate.learn.boosting import BoostedTrees

    try:
        with np.load(path, allow_pickle=False) as arrays:
            if int(arrays["version"]) != VERSION:
                log.warning("box model prior %s is version %s, not %s: not used", path, arrays["version"], VERSION)
                return None
            return BoostedTrees.from_arrays(arrays), [str(n) for n in arrays["names"]]
    except (OSError, KeyError, ValueError) as exc:
        log.warning("box model prior %s not used: %s", path, exc)
        return None


def prior_path() -> str | None:
    """The prior to use: the shipped one unless ``$CURATE_BOXMODEL_PRIOR`` says ``off`` or names another file.

    On by default since the blend only reorders scores (:func:`reordered`): leave-one-dataset-out it lowered no
    kind's merged AP on the pool by more than 0.004 (benchmarks/README.md, issue #22).
    """
    chosen = os.environ.get("CURATE_BOXMODEL_PRIOR", "").strip()
    if chosen.lower() in ("off", "0", "none"):
        return None
    return str(PRIOR_PATH) if chosen.lower() in ("", "on", "1") else chosen


def prior_log_odds(X: np.ndarray, names: list[str], n_real: int) -> np.ndarray | None:
    """The prior's log-odds of every row of ``X`` (n × 3, kinds in :data:`KINDS` order); None when there is no
    prior or the rows lack a feature it reads. The first ``n_real`` rows are the dataset's real boxes: the
    reference of :func:`within_dataset`."""
    path = prior_path()
    loaded = load(path) if path else None
    if loaded is None:
        return None
    model, reads = loaded
    where = {n: i for i, n in enumerate(names)}
    if any(n not in where for n in reads):
        log.warning("box model prior not used: the rows lack %s", [n for n in reads if n not in where][:3])
        return None
    cols = np.array([where[n] for n in reads])
    reference = X[:n_real][:, cols]
    out = np.empty((len(X), len(KINDS)), np.float32)
    for start in range(0, len(X), PREDICT_ROWS):  # the model bins float64 copies: a slice of rows at a time
        rows = slice(start, start + PREDICT_ROWS)
        out[rows] = log_odds(model.predict_proba(within_dataset(X[rows][:, cols], reference)))
    return out


def blended(prob: np.ndarray, prior_log_odds: np.ndarray, weight: float = WEIGHT) -> np.ndarray:
    """The dataset model's class probabilities with each kind's odds multiplied by the prior's odds to the power
    ``weight``, renormalised; rows the cross-fit left unscored (all zero) stay zero.

    Before the held-out calibration (:func:`curate.audit.boxmodel.model.calibrate_heldout`), so the blend is
    calibrated on the dataset's own held-out synthetic boxes like the model alone was."""
    p = prob * np.exp(weight * np.concatenate([np.zeros((len(prob), 1)), prior_log_odds], axis=1))
    scored = prob.sum(axis=1, keepdims=True) > 0
    return (p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12) * scored).astype(prob.dtype)


def reordered(order: dict[str, np.ndarray], values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per kind, ``values``' scores handed out in ``order``'s ranking: the box ranked r-th by ``order`` gets the
    r-th smallest of ``values`` (boxes tied in ``order`` share the middle one of their block).

    Why: the blend's calibrated scores rank the planted boxes better than the dataset's own, but their levels also
    rose on right boxes (benchmarks/README.md, issue #22); the dataset's own scores are its held-out calibration's
    levels. Each kind keeps the same set of scores, so the merged list's other checks meet the same levels.
    """
    out = {}
    for kind, rank_by in order.items():
        levels = np.sort(values[kind])
        ranked = np.sort(rank_by)
        lo, hi = np.searchsorted(ranked, rank_by, "left"), np.searchsorted(ranked, rank_by, "right")
        out[kind] = levels[(lo + hi - 1) // 2].astype(values[kind].dtype)
    return out
