"""Train-only rebalancing after the split: cap the instances of frequent classes, oversample rare ones
(val/test keep the real class mix)."""

from __future__ import annotations

import statistics
from typing import Sequence

import numpy as np

from curate.core import defaults
from curate.core.dataset import ImageRecord
from curate.ops.rebalance.options import RebalanceError


def _count_matrix(records: Sequence[ImageRecord], nc: int) -> np.ndarray:
    m = np.zeros((len(records), nc))
    for i, r in enumerate(records):
        for lb in r.labels:
            m[i, lb.class_id] += 1
    return m


def cap_instances(
    records: Sequence[ImageRecord], cap: int, *, nc: int, seed: int = defaults.SEED
) -> tuple[list[ImageRecord], list[str]]:
    """Drop images until no class has more than ``cap`` instances; returns (kept, dropped rels).

    Greedy: among images holding an over-cap class, drop the one whose loss to the other classes is
    smallest (Σ its instances of a class / that class's count — losing 1 of 10 weighs more than 1 of
    1000), then the one removing most over-cap instances; ties at random (seeded).
    """
    if cap < 1:
        raise RebalanceError(f"--cap {cap}: must be at least 1")
    rng = np.random.default_rng(seed)
    m = _count_matrix(records, nc)
    alive = np.ones(len(records), dtype=bool)
    jitter = rng.random(len(records)) * 1e-9
    while True:
        counts = m[alive].sum(0)
        over = counts > cap
        if not over.any():
            break
        cand = np.flatnonzero(alive & (m[:, over].sum(1) > 0))
        safe = np.maximum(counts, 1.0)
        loss = (m[cand][:, ~over] / safe[~over]).sum(1)
        gain = np.minimum(m[cand][:, over], counts[over] - cap).sum(1)
        best = cand[np.lexsort((jitter[cand], -gain, loss))[0]]
        alive[best] = False
    kept = [r for r, a in zip(records, alive) if a]
    return kept, [r.rel for r, a in zip(records, alive) if not a]


def oversample(
    records: Sequence[ImageRecord],
    *,
    nc: int,
    target: int | None = None,
    max_copies: int | None = None,
) -> tuple[list[tuple[ImageRecord, int]], int]:
    """Pick images of rare classes to repeat until each class present reaches ``target`` instances.

    ``target`` defaults to the median class count (over classes present). The class furthest below
    target is served first, by its source image with the highest share of that class that still has
    copies left (``max_copies`` each) and that pushes no class above target where another would do.
    Returns ``([(source record, copy number 1..), ...], target)``; nothing is written.
    """
    max_copies = defaults.REBALANCE_MAX_COPIES if max_copies is None else max_copies
    m = _count_matrix(records, nc)
    counts = m.sum(0)
    present = np.flatnonzero(counts > 0)
    if target is None:
        if not len(present):  # the median of no classes: say so, not "--oversample 0"
            raise RebalanceError("--oversample median: the train split has no boxes to oversample")
        target = int(round(statistics.median(counts[present])))
    if target < 1:
        raise RebalanceError(f"--oversample {target}: target must be at least 1")
    used = np.zeros(len(records), dtype=int)
    share = m / np.maximum(m.sum(1, keepdims=True), 1.0)
    copies: list[tuple[ImageRecord, int]] = []
    stuck: set[int] = set()
    while True:
        need = [c for c in present if counts[c] < target and c not in stuck]
        if not need:
            break
        c = min(need, key=lambda c: (counts[c] / target, c))
        cand = np.flatnonzero((m[:, c] > 0) & (used < max_copies))
        if not len(cand):
            stuck.add(c)
            continue
        overshoot = ((counts + m[cand]) > np.maximum(target, counts)).sum(1)  # classes pushed above target
        best = cand[np.lexsort((cand, used[cand], -share[cand, c], overshoot))[0]]
        used[best] += 1
        counts += m[best]
        copies.append((records[best], int(used[best])))
    return copies, target


def copy_name(record: ImageRecord, number: int) -> str:
    """``<stem>__os<k><suffix>``: oversampled copies keep their source's name, made unique."""
    return f"{record.path.stem}__os{number}{record.path.suffix}"
