"""Weighted isotonic regression in numpy (pool adjacent violators), and the calibration built on it: the
probability that a label is a real error, from synthetic errors (``duplicate``, ``class_inconsistent``).

Why not scikit-learn's ``IsotonicRegression``: ``duplicate`` runs in ``--fast``, which must not import
scikit-learn (~2 s of CPU, see :mod:`curate.learn.boosting`) nor ``scipy.optimize`` (~0.4 s). Fitted values
match scikit-learn's (``tests/learn/test_isotonic.py``).
"""

from __future__ import annotations

import numpy as np


def isotonic_fit(
    x: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None, *, increasing: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The monotone step function closest to ``y`` in weighted least squares, as (distinct x, fitted value).

    Points of equal ``x`` are pooled first (their weighted mean), as scikit-learn does; then adjacent
    blocks that break the order are merged until none does.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    w = np.ones_like(y) if weight is None else np.asarray(weight, np.float64)
    xs, where = np.unique(x, return_inverse=True)
    wsum = np.bincount(where, weights=w, minlength=len(xs))
    mean = np.bincount(where, weights=w * y, minlength=len(xs)) / np.maximum(wsum, 1e-300)
    if not increasing:
        mean = -mean
    values: list[float] = []  # blocks: mean, weight and how many distinct x each holds
    weights: list[float] = []
    sizes: list[int] = []
    for m, ww in zip(mean.tolist(), wsum.tolist()):
        size = 1
        while values and values[-1] >= m:  # the new point breaks the order: merge it into the last block
            pw = weights.pop()
            m = (values.pop() * pw + m * ww) / (pw + ww)
            ww += pw
            size += sizes.pop()
        values.append(m)
        weights.append(ww)
        sizes.append(size)
    fitted = np.repeat(np.array(values), sizes)
    return xs, (fitted if increasing else -fitted)


def isotonic_predict(xs: np.ndarray, fitted: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The fit at ``x``: linear between the distinct x of the fit, clipped to its ends (scikit-learn's
    ``out_of_bounds="clip"``)."""
    return np.interp(np.asarray(x, np.float64), xs, fitted)


def density_ratio(
    observed: np.ndarray, synthetic: np.ndarray, *, synthetic_weight: np.ndarray | None = None, increasing: bool = True
) -> np.ndarray:
    """At each ``observed`` score, the density of ``synthetic`` errors over the density of the labels as they are.

    An isotonic regression of "synthetic" (1) vs "observed" (0) on the score gives ``q``; with equal total
    weights on both sides (``synthetic_weight`` sums to ``len(observed)``, or both have as many points),
    ``r = q / (1 − q)`` is that ratio. ``increasing``: errors score higher.
    """
    n, m = len(observed), len(synthetic)
    weight = np.r_[np.ones(n), np.ones(m) if synthetic_weight is None else synthetic_weight]
    xs, fitted = isotonic_fit(np.r_[observed, synthetic], np.r_[np.zeros(n), np.ones(m)], weight, increasing=increasing)
    q = np.clip(isotonic_predict(xs, fitted, observed), 1e-6, 1 - 1e-6)
    return q / (1.0 - q)


#: the fewest labels a tail must hold for :func:`error_share` to read the share from it
SHARE_MIN_TAIL = 10


def error_share(observed: np.ndarray, synthetic: np.ndarray, prior: float, *, share_from: float) -> float:
    """The share of errors among the labels: the larger of ``prior`` and what the data show, for scores where
    higher means more error-like.

    What the data show is the mixture-proportion bound (Blanchard, Lee and Scott): for every tail "score ≥ t"
    the share is at most (share of labels in it) / (share of synthetic errors in it); the smallest over ``t``
    from ``share_from`` on, each tail holding at least :data:`SHARE_MIN_TAIL` labels. Why: where the labels
    hold more errors than the prior (many copied boxes), ``prior × r`` put the most error-like of them, pure
    errors, at ``prior × max r`` < 1 (0.62 with 3 % copies at a 2 % prior), under less certain errors of other
    checks. Tails, not the ratio's top step: a step holds a handful of labels next to the synthetic errors above
    them, so a dataset's few highest legitimate scores read as pure errors (share ~1/3). Only from
    ``share_from`` on, where a score means an error is possible.
    """
    obs = np.sort(np.asarray(observed, np.float64))[::-1]
    syn = np.sort(np.asarray(synthetic, np.float64))
    ts = obs[SHARE_MIN_TAIL - 1 :]
    ts = ts[ts >= share_from]
    if len(ts) == 0 or len(syn) == 0:
        return prior
    obs_tail = (np.arange(SHARE_MIN_TAIL, SHARE_MIN_TAIL + len(ts))) / len(obs)  # labels ≥ t (ties: a bound)
    syn_tail = (len(syn) - np.searchsorted(syn, ts, side="left")) / len(syn)
    bound = np.where(syn_tail > 0, obs_tail / np.maximum(syn_tail, 1e-12), np.inf)
    return max(prior, float(bound.min()))


def error_probability(
    observed: np.ndarray,
    synthetic: np.ndarray,
    prior: float,
    *,
    synthetic_weight: np.ndarray | None = None,
    increasing: bool = True,
) -> np.ndarray:
    """P(error) at each ``observed`` score, calibrated on ``synthetic`` errors' scores at ``prior``.

    With ``r`` the :func:`density_ratio` of errors over the labels as they are: those labels are a mixture of
    right ones and ``prior`` errors, so P(error) = ``prior × r``, capped at 1: no more than about 2 × ``prior``
    of the labels can reach 0.5, whatever the dataset. ``increasing``: errors score higher.
    """
    ratio = density_ratio(observed, synthetic, synthetic_weight=synthetic_weight, increasing=increasing)
    return np.minimum(prior * ratio, 1.0)
