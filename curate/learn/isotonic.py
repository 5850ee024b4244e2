"""Weighted isotonic regression in numpy (pool adjacent violators): the calibration of ``duplicate``'s score.

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
