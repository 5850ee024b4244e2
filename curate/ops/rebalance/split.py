"""The split (pure): whole groups assigned to splits by iterative stratification over their class counts
(Sechidis, Tsoumakas & Vlahavas 2011), then polished by single-group moves."""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping, Sequence

import numpy as np

from curate.core import defaults
from curate.core.dataset import SPLITS, Dataset
from curate.ops.rebalance.groups import Group, Grouping
from curate.ops.rebalance.options import split_names


def plan_split(
    groups: Sequence[Group], ratios: Sequence[float], *, seed: int = defaults.SEED, polish: int | None = None
) -> dict[int, str]:
    """Assign every group to a split so images and each class's instances follow ``ratios``.

    Iterative stratification over groups: the class with the fewest remaining groups is placed first,
    each of its groups (largest first) into the split that still wants most of that class (ties: most
    images wanted, then random). Then ``polish`` passes of single-group moves that lower the squared
    deviation of per-class instance shares (weighted by class size) plus image shares. Deterministic
    for a seed; ``groups`` is not mutated. Returns ``{group.id: split name}``.
    """
    names = split_names(ratios)
    r = np.asarray(ratios, dtype=float)
    r = r / r.sum()
    if not groups:
        return {}
    rng = np.random.default_rng(seed)
    labels = sorted({c for g in groups for c in g.counts})
    col = {c: j for j, c in enumerate(labels)}
    m = np.zeros((len(groups), len(labels)))
    for i, g in enumerate(groups):
        for c, n in g.counts.items():
            m[i, col[c]] = n
    sizes = np.array([g.images for g in groups], dtype=float)
    want_label = r[:, None] * m.sum(0)[None, :]
    want_size = r * sizes.sum()
    assign = np.full(len(groups), -1)
    perm = rng.permutation(len(groups))
    rank = np.empty(len(groups), dtype=int)
    rank[perm] = np.arange(len(groups))
    label_rank = rng.permutation(len(labels))
    remaining = np.ones(len(groups), dtype=bool)
    while remaining.any():
        have = (m[remaining] > 0).sum(0)
        live = np.flatnonzero(have > 0)
        lab = live[np.lexsort((label_rank[live], have[live]))[0]]
        idx = np.flatnonzero(remaining & (m[:, lab] > 0))
        idx = idx[np.lexsort((rank[idx], -m[idx, lab]))]
        for gi in idx:
            best = np.flatnonzero(want_label[:, lab] == want_label[:, lab].max())
            if len(best) > 1:
                best = best[want_size[best] == want_size[best].max()]
            j = int(best[0] if len(best) == 1 else rng.choice(best))
            assign[gi] = j
            want_label[j] -= m[gi]
            want_size[j] -= sizes[gi]
            remaining[gi] = False
    assign = _polish(assign, m, sizes, r, rng, passes=defaults.REBALANCE_POLISH_PASSES if polish is None else polish)
    assign = _fill_empty_splits(assign, sizes, len(names))
    return {g.id: names[assign[i]] for i, g in enumerate(groups)}


def _fill_empty_splits(assign: np.ndarray, sizes: np.ndarray, n_splits: int) -> np.ndarray:
    """Give an empty split (train first, then val, then test) the smallest group of the split with most groups.

    Why: on a handful of images the shares round a split to nothing (3 images at 80/10/10 gave 3/0/0; one
    image at 50/50 went to val on a tie), and Ultralytics cannot train without a train and a val split.
    Only a split holding at least two groups gives one away, so no split is emptied to fill another, except
    for train (a lone group belongs there); on any dataset big enough for every split to get a group
    nothing moves.
    """
    assign = assign.copy()
    for j in range(n_splits):
        count = np.bincount(assign, minlength=n_splits)
        if count[j] or count.max() < (1 if j == 0 else 2):
            continue
        donor = int(np.argmax(count))
        members = np.flatnonzero(assign == donor)
        assign[members[np.argmin(sizes[members])]] = j
    return assign


def _polish(
    assign: np.ndarray, m: np.ndarray, sizes: np.ndarray, r: np.ndarray, rng: np.random.Generator, *, passes: int
) -> np.ndarray:
    """Greedy local search: move one group at a time when it lowers the split's deviation.

    Cost = Σ_class Σ_split (count − target)² / class total  +  w · Σ_split (images − target)² / all images,
    i.e. squared share deviations weighted by size, so large classes and the image ratio dominate and a
    class with 2 instances cannot hold the rest hostage. ``w`` makes images weigh as much as all classes.
    """
    assign = assign.copy()
    k = len(r)
    tot = np.maximum(m.sum(0), 1.0)
    n = sizes.sum()
    w = defaults.REBALANCE_IMAGE_WEIGHT * m.shape[1]
    have = np.stack([m[assign == j].sum(0) for j in range(k)])  # k × L
    size = np.array([sizes[assign == j].sum() for j in range(k)])
    t_lab = r[:, None] * tot[None, :]
    t_size = r * n
    for _ in range(passes):
        moved = 0
        for gi in rng.permutation(len(assign)):
            a = assign[gi]
            row, s = m[gi], sizes[gi]
            nz = row > 0
            da = have[a, nz] - t_lab[a, nz]
            base_a = ((da - row[nz]) ** 2 - da**2) / tot[nz]
            sa = (size[a] - t_size[a] - s) ** 2 - (size[a] - t_size[a]) ** 2
            best, best_delta = a, -1e-9
            for b in range(k):
                if b == a:
                    continue
                db = have[b, nz] - t_lab[b, nz]
                delta = float((base_a + ((db + row[nz]) ** 2 - db**2) / tot[nz]).sum())
                delta += w * (sa + (size[b] - t_size[b] + s) ** 2 - (size[b] - t_size[b]) ** 2) / n
                if delta < best_delta:
                    best, best_delta = b, delta
            if best != a:
                have[a] -= row
                have[best] += row
                size[a] -= s
                size[best] += s
                assign[gi] = best
                moved += 1
        moved += _swap_pass(assign, m, sizes, have, size, t_lab, t_size, tot, w, rng)
        if not moved:
            break
    return assign


def _swap_pass(assign, m, sizes, have, size, t_lab, t_size, tot, w, rng, *, sample: int = 1024) -> int:
    """One pass of pairwise swaps (group i in split a ↔ group j in split b) that lower the same cost.

    Single moves cannot fix a class when every fixing move would break the image ratio; a swap of two
    groups of similar size can. With D = have − target and d = row_j − row_i, the change of the class
    term is Σ (2d(D_a − D_b) + 2d²) / total; the image term likewise. Candidates j: all groups, or a
    seeded sample of ``sample`` of them on large datasets. Updates the arrays in place.
    """
    n_groups = len(assign)
    n = sizes.sum()
    swapped = 0
    for gi in rng.permutation(n_groups):
        a = assign[gi]
        cand = np.arange(n_groups) if n_groups <= sample else rng.choice(n_groups, size=sample, replace=False)
        cand = cand[assign[cand] != a]
        if not len(cand):
            continue
        b = assign[cand]
        d = m[cand] - m[gi]  # (c × L)
        da = have[a] - t_lab[a]
        db = have[b] - t_lab[b]  # (c × L)
        delta = ((2 * d * (da[None, :] - db) + 2 * d**2) / tot[None, :]).sum(1)
        ds = sizes[cand] - sizes[gi]
        delta += w * (2 * ds * ((size[a] - t_size[a]) - (size[b] - t_size[b])) + 2 * ds**2) / n
        best = int(np.argmin(delta))
        if delta[best] < -1e-9:
            gj, bj = cand[best], b[best]
            have[a] += d[best]
            have[bj] -= d[best]
            size[a] += ds[best]
            size[bj] -= ds[best]
            assign[gi], assign[gj] = bj, a
            swapped += 1
    return swapped


def assign_splits(dataset: Dataset, grouping: Grouping, plan: Mapping[int, str]) -> Dataset:
    """A new dataset whose records carry the split their group was planned into (labels untouched)."""
    images = [replace(r, split=plan[grouping.group_of[r.rel]]) for r in dataset.images]
    order = {s: i for i, s in enumerate(SPLITS)}
    images.sort(key=lambda r: (order.get(r.split, len(order)), r.rel))
    return replace(dataset, images=images)
