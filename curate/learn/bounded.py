"""Bounded training samples: above a cap, a model LEARNS from a seeded, stratified sample of its rows, while every
row is still scored.

Why: a fit that learns from every image grows with the dataset, and on 2 cores the fits are much of what keeps a
100,000-image audit above 30 min (issue #25). Past a cap (:data:`curate.core.defaults.MISSING_MAX_TRAIN_IMAGES`) a
sample learns. Caps lie above every dataset the audit is tuned on and above food-ingredients x4, so those are fitted
on all their rows.

``$CURATE_TRAIN_CAPS`` (benchmarks only, read here and nowhere else) replaces a cap by a share of the rows it
bounds, e.g. ``missing=0.49``: a small dataset then learns from the share of its rows that a large one learns from
at the real cap, which is how a cap's cost in quality is measured where it never binds (benchmarks/README.md,
*Session 18: bounded training rows for the fits that grow with the data*: why only ``missing`` has a cap)."""

from __future__ import annotations

import math
import os

import numpy as np

ENV = "CURATE_TRAIN_CAPS"


def _shares() -> dict[str, float]:
    """``$CURATE_TRAIN_CAPS`` as {name: share}; a malformed entry stops with a one-line error."""
    out: dict[str, float] = {}
    for item in os.environ.get(ENV, "").replace(",", " ").split():
        name, _, value = item.partition("=")
        try:
            share = float(value)
        except ValueError:
            raise SystemExit(f"{ENV}: '{item}' is not NAME=SHARE (e.g. missing=0.5)") from None
        if not 0.0 < share <= 1.0:
            raise SystemExit(f"{ENV}: the share in '{item}' must be in (0, 1]")
        out[name.strip()] = share
    return out


def cap(name: str, limit: int, rows: int) -> int:
    """The most rows the fit called ``name`` learns from: ``limit``, or under ``$CURATE_TRAIN_CAPS`` its share of
    ``rows`` (the rows it would learn from uncapped)."""
    share = _shares().get(name)
    return limit if share is None else max(1, math.ceil(share * rows))


def by_group(group_rows: np.ndarray, stratum: np.ndarray, strata: int, quota: int, seed: int) -> np.ndarray:
    """Which groups learn: in each stratum, groups in a seeded random order while their rows add up to at most
    ``quota`` (at least the first group, so no stratum is left empty). Every group of a stratum whose rows fit the
    quota learns, so below it nothing changes.

    Why whole groups: the groups are images, whose rows (an image's boxes and windows) are described together; a
    sample of images keeps each learnt image whole. Why per stratum: the strata are the cross-fit's folds, so every
    fit (all folds but one) learns from at most ``(strata − 1) × quota`` rows."""
    group_rows = np.asarray(group_rows, int)
    keep = np.zeros(len(group_rows), bool)
    order = np.random.default_rng(seed).permutation(len(group_rows))
    for s in range(strata):
        members = order[stratum[order] == s]
        if group_rows[members].sum() <= quota:
            keep[members] = True
            continue
        within = np.cumsum(group_rows[members]) <= quota
        within[0] = True
        keep[members[within]] = True
    return keep
