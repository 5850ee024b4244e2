"""Class surgery, train-only rebalancing and a leak-free, multi-label stratified re-split.

Why not a random split (Ultralytics ``autosplit``, FiftyOne ``random_split``): Roboflow exports hold
augmented variants of one photo (``name_jpg.rf.<hash>``) and users collect near-duplicate frames, so a
random split puts copies of one photo in train *and* test and the test mAP is inflated. Here images are
first joined into groups (near-duplicate clusters, Roboflow variants, a user pattern — union-find), and
whole groups are assigned to splits by iterative stratification (Sechidis, Tsoumakas & Vlahavas 2011)
over their class counts, then polished by a few passes of single-group moves. Rebalancing (``cap``,
``oversample``) happens after the split and only in train, so val/test keep the real class mix.

Everything here is pure over :class:`~curate.core.dataset.Dataset` objects (inputs are never mutated); only
:func:`write_rebalanced` touches the disk, through :func:`curate.io.yolo.save_yolo` into a new folder.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import statistics
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from curate.core import defaults
from curate.core.dataset import SPLITS, Dataset, ImageRecord, roboflow_photo

#: The pseudo class of background images (no boxes) in :class:`Group` counts: they are stratified too.
BACKGROUND = -1


class RebalanceError(ValueError):
    """Bad options (unknown class, bad ratios): one clear line for the user."""


# --------------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------------


def parse_ratios(text: str) -> tuple[float, ...]:
    """``"80/10/10"`` → ``(0.8, 0.1, 0.1)``; 2 ratios mean train/val, 3 train/val/test; they must sum to 100."""
    parts = [p.strip() for p in text.replace(",", "/").split("/")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise RebalanceError(f"--split {text!r}: expected numbers like 80/10/10") from None
    if len(values) not in (2, 3):
        raise RebalanceError(f"--split {text!r}: give 2 (train/val) or 3 (train/val/test) ratios, got {len(values)}")
    if any(v <= 0 for v in values):
        raise RebalanceError(f"--split {text!r}: every ratio must be above 0")
    if abs(sum(values) - 100) > 1e-6:
        raise RebalanceError(f"--split {text!r}: ratios must sum to 100 (got {sum(values):g})")
    return tuple(v / 100 for v in values)


def split_names(ratios: Sequence[float]) -> tuple[str, ...]:
    return SPLITS[: len(ratios)]


def _unknown(name: str, known: Sequence[str], option: str) -> RebalanceError:
    hint = difflib.get_close_matches(name, list(known), n=1, cutoff=0.5)
    return RebalanceError(f"{option}: unknown class {name!r}" + (f"; did you mean {hint[0]!r}?" if hint else ""))


# --------------------------------------------------------------------------------------------------
# Class surgery
# --------------------------------------------------------------------------------------------------


@dataclass
class Surgery:
    """What class surgery did: old → new class ids, and what was dropped or merged."""

    names: list[str]  # the new class names, in the new id order
    mapping: dict[int, int | None]  # old class id → new id (None: dropped)
    merged: dict[str, str] = field(default_factory=dict)  # source name → destination name
    dropped_classes: list[str] = field(default_factory=list)
    rare_classes: list[str] = field(default_factory=list)  # ... of which dropped by --min-instances
    dropped_boxes: int = 0
    emptied_images: list[str] = field(default_factory=list)  # images whose every box was dropped
    dropped_images: list[str] = field(default_factory=list)  # ... and were removed (--empty-images drop)
    edited_images: int = 0


def class_mapping(
    names: Sequence[str],
    counts: Mapping[int, int],
    *,
    keep: Sequence[str] | None = None,
    drop: Sequence[str] = (),
    merge: Mapping[str, str] | None = None,
    min_instances: int = 0,
) -> Surgery:
    """Pure: which old class ids survive, under which new id. Merges first, then keep/drop, then ``min_instances``.

    A kept or dropped name that is a merge source stands for its destination. Surviving classes keep
    their original order (ids renumbered 0..n-1). Unknown names raise a one-line :class:`RebalanceError`.
    """
    merge = dict(merge or {})
    index = {n: i for i, n in enumerate(names)}
    for src, dst in merge.items():
        for n, opt in ((src, "--merge"), (dst, "--merge")):
            if n not in index:
                raise _unknown(n, names, opt)
        if src == dst:
            raise RebalanceError(f"--merge {src}={dst}: a class cannot be merged into itself")
    for dst in merge.values():
        if dst in merge:
            raise RebalanceError(f"--merge: {dst!r} is both merged away and a merge destination")
    for n in list(keep or []) + list(drop):
        if n not in index:
            raise _unknown(n, names, "--keep-classes" if keep and n in keep else "--drop-class")
    target = {i: index[merge.get(n, n)] for i, n in enumerate(names)}  # old id → id it is merged into
    alive = {i for i in range(len(names)) if target[i] == i}
    if keep is not None:
        alive &= {index[merge.get(n, n)] for n in keep}
    alive -= {index[merge.get(n, n)] for n in drop}
    merged_counts = Counter()
    for i, c in counts.items():
        merged_counts[target[i]] += c
    low = {i for i in alive if merged_counts[i] < min_instances}
    alive -= low
    new_id = {old: k for k, old in enumerate(sorted(alive))}
    mapping = {i: new_id.get(target[i]) for i in range(len(names))}
    return Surgery(
        names=[names[i] for i in sorted(alive)],
        mapping=mapping,
        merged={s: d for s, d in merge.items()},
        dropped_classes=[names[i] for i in range(len(names)) if target[i] == i and i not in alive],
        rare_classes=[names[i] for i in sorted(low)],
    )


def apply_class_surgery(
    dataset: Dataset,
    *,
    keep: Sequence[str] | None = None,
    drop: Sequence[str] = (),
    merge: Mapping[str, str] | None = None,
    min_instances: int = 0,
    empty_images: str = "keep",
) -> tuple[Dataset, Surgery]:
    """A new dataset with classes kept/dropped/merged and renumbered; ``dataset`` is not changed.

    A record is marked ``edited`` only when its label lines really change (a box dropped or a class id
    renumbered), so untouched label files stay byte-identical through ``save_yolo``. Images left with no
    boxes are kept as background (``empty_images="keep"``) or removed (``"drop"``); images that were
    background to begin with are always kept.
    """
    if empty_images not in ("keep", "drop"):
        raise RebalanceError(f"--empty-images {empty_images!r}: expected keep or drop")
    counts = Counter(lb.class_id for _, lb in dataset.boxes())
    surgery = class_mapping(dataset.names, counts, keep=keep, drop=drop, merge=merge, min_instances=min_instances)
    images: list[ImageRecord] = []
    for record in dataset.images:
        labels = [
            replace(lb, class_id=surgery.mapping[lb.class_id])
            for lb in record.labels
            if surgery.mapping.get(lb.class_id) is not None
        ]
        if len(labels) == len(record.labels) and all(a.class_id == b.class_id for a, b in zip(labels, record.labels)):
            images.append(replace(record, labels=list(record.labels)))
            continue
        surgery.dropped_boxes += len(record.labels) - len(labels)
        surgery.edited_images += 1
        if not labels:
            surgery.emptied_images.append(record.rel)
            if empty_images == "drop":
                surgery.dropped_images.append(record.rel)
                continue
        labels = [replace(lb, line=k) for k, lb in enumerate(labels, start=1)]  # lines of the rewritten file
        images.append(replace(record, labels=labels, edited=True))
    return replace(
        dataset,
        names=list(surgery.names),
        images=images,
        findings=list(dataset.findings),
        warnings=list(dataset.warnings),
    ), surgery


# --------------------------------------------------------------------------------------------------
# Groups
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """Images that must land in one split, with the union of their class counts (``BACKGROUND``: empty images)."""

    id: int
    counts: Mapping[int, int]
    images: int = 1
    members: tuple[str, ...] = ()


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def pattern_key(file_name: str, pattern: re.Pattern[str]) -> str | None:
    """The first capture group of ``pattern`` in the file name, else the whole match; None when no match."""
    m = pattern.search(file_name)
    if m is None:
        return None
    return m.group(1) if m.re.groups and m.group(1) is not None else m.group(0)


@dataclass
class Grouping:
    groups: list[Group]
    group_of: dict[str, int]  # image rel → group id
    joined_by: dict[
        str, int
    ]  # how many images each rule put in a group of 2+ ("near_duplicate", "roboflow", "pattern")


def build_groups(
    dataset: Dataset,
    *,
    near_duplicates: Sequence[Sequence[str]] = (),
    pattern: str | re.Pattern[str] | None = None,
    roboflow: bool = True,
) -> Grouping:
    """Join images into groups that must not straddle splits: the union of near-duplicate clusters,
    Roboflow variants of one source and ``pattern`` matches. Group ids follow dataset order."""
    rels = [r.rel for r in dataset.images]
    pos = {rel: i for i, rel in enumerate(rels)}
    uf = _UnionFind(len(rels))
    joined: dict[str, set[int]] = {"near_duplicate": set(), "roboflow": set(), "pattern": set()}

    def join(members: list[int], rule: str) -> None:
        if len(members) > 1:
            joined[rule].update(members)
            for m in members[1:]:
                uf.union(members[0], m)

    for cluster in near_duplicates:
        join([pos[r] for r in cluster if r in pos], "near_duplicate")
    rx = re.compile(pattern) if isinstance(pattern, str) else pattern
    keyed: dict[tuple[str, str], list[int]] = {}
    for i, record in enumerate(dataset.images):
        if roboflow and (k := roboflow_photo(record.path.name)):
            keyed.setdefault(("roboflow", k), []).append(i)
        if rx is not None and (k := pattern_key(record.path.name, rx)) is not None:
            keyed.setdefault(("pattern", k), []).append(i)
    for (rule, _), members in keyed.items():
        join(members, rule)
    roots: dict[int, int] = {}
    group_of: dict[str, int] = {}
    counts: list[Counter] = []
    members: list[list[str]] = []
    for i, record in enumerate(dataset.images):
        root = uf.find(i)
        if root not in roots:
            roots[root] = len(roots)
            counts.append(Counter())
            members.append([])
        g = roots[root]
        group_of[record.rel] = g
        members[g].append(record.rel)
        if record.labels:
            counts[g].update(lb.class_id for lb in record.labels)
        else:
            counts[g][BACKGROUND] += 1
    groups = [Group(g, dict(c), len(m), tuple(m)) for g, (c, m) in enumerate(zip(counts, members))]
    return Grouping(groups, group_of, {k: len(v) for k, v in joined.items()})


# --------------------------------------------------------------------------------------------------
# The split (pure)
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# Train-only rebalancing
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# The whole command: surgery → groups → split → cap/oversample in train
# --------------------------------------------------------------------------------------------------

NearDuplicates = Callable[[Dataset], Sequence[Sequence[str]]]


@dataclass
class RebalanceOptions:
    """Every knob of ``curate rebalance``; the CLI fills it, tests build it directly."""

    ratios: tuple[float, ...] = (0.8, 0.1, 0.1)
    seed: int = defaults.SEED
    keep: list[str] | None = None
    drop: list[str] = field(default_factory=list)
    merge: dict[str, str] = field(default_factory=dict)
    min_instances: int = 0
    empty_images: str = "keep"
    cap: int | None = None
    oversample: int | str | None = None  # None: off; "median" or an instance count
    group_by: str | None = None
    near_duplicates: bool = True
    roboflow_groups: bool = True


@dataclass
class RebalanceResult:
    dataset: Dataset  # the output: records carry their new split; copies have their new file name
    copies: dict[str, Path]  # output record rel of an oversampled copy → the source image it repeats
    surgery: Surgery
    grouping: Grouping
    summary: dict  # what rebalance.json holds


def hashing_near_duplicates(dataset: Dataset) -> list[list[str]]:
    """Near-duplicate clusters from :mod:`curate.vision.hashing` (the audit's cached image signatures)."""
    from curate.vision.hashing import image_signatures, near_duplicate_groups

    sigs = image_signatures(dataset, progress=True)
    return [list(g) for g in near_duplicate_groups(dataset, sigs)]


def one_record_per_file(dataset: Dataset) -> tuple[Dataset, int]:
    """``dataset`` with each image file once (its first record), and how many repeats were dropped.

    Why: a data.yaml may list one folder under several splits (``train: images``, ``val: images``). A
    re-split places every image anew, so the repeats would only be written as extra copies (``a_1.jpg``).
    """
    first: dict[Path, ImageRecord] = {}
    for r in dataset.images:
        first.setdefault(r.path, r)
    repeated = len(dataset.images) - len(first)
    return (replace(dataset, images=list(first.values())), repeated) if repeated else (dataset, 0)


def rebalance(
    dataset: Dataset, options: RebalanceOptions, *, near_duplicates: NearDuplicates | None = None
) -> RebalanceResult:
    """Class surgery, a group-aware stratified split, then ``cap``/``oversample`` in train. Pure: writes nothing.

    ``near_duplicates`` returns clusters of image rels (default: :func:`hashing_near_duplicates` when
    ``options.near_duplicates``); tests pass a stand-in.
    """
    if options.group_by:
        try:
            re.compile(options.group_by)
        except re.error as exc:
            raise RebalanceError(f"--group-by {options.group_by!r}: not a regular expression ({exc})") from None
    if options.oversample is not None and not (
        options.oversample == "median" or (isinstance(options.oversample, int) and options.oversample >= 1)
    ):
        raise RebalanceError(f"--oversample {options.oversample!r}: expected 'median' or a positive instance count")
    dataset, repeated = one_record_per_file(dataset)
    surgered, surgery = apply_class_surgery(
        dataset,
        keep=options.keep,
        drop=options.drop,
        merge=options.merge,
        min_instances=options.min_instances,
        empty_images=options.empty_images,
    )
    if not surgered.images:
        raise RebalanceError("no images left after class surgery")
    if dataset.names and not surgered.names:  # nc: 0 is no detection dataset: Ultralytics cannot train on it
        gone = ", ".join(surgery.dropped_classes)
        raise RebalanceError(f"no classes left after class surgery (dropped: {gone})")
    clusters: Sequence[Sequence[str]] = ()
    if options.near_duplicates:
        clusters = (near_duplicates or hashing_near_duplicates)(surgered)
    grouping = build_groups(
        surgered, near_duplicates=clusters, pattern=options.group_by, roboflow=options.roboflow_groups
    )
    plan = plan_split(grouping.groups, options.ratios, seed=options.seed)
    split = assign_splits(surgered, grouping, plan)
    split_images = Counter(r.split for r in split.images)
    nc = len(surgered.names)
    train = split.split("train")
    others = [r for r in split.images if r.split != "train"]
    capped: list[str] = []
    if options.cap is not None:
        train, capped = cap_instances(train, options.cap, nc=nc, seed=options.seed)
    copies: dict[str, Path] = {}
    copy_records: list[ImageRecord] = []
    target = None
    if options.oversample is not None:
        picks, target = oversample(
            train, nc=nc, target=None if options.oversample == "median" else int(options.oversample)
        )
        for source, k in picks:
            name = copy_name(source, k)
            rel = f"images/train/{name}"  # where the writer puts it
            copy_records.append(replace(source, path=source.path.with_name(name), rel=rel))
            copies[rel] = source.path
    out = replace(split, images=train + copy_records + others)
    summary = _summary(dataset, out, options, surgery, grouping, split_images, capped, copies, target)
    summary["counts_split"] = _per_class(split)  # after surgery and the split, before cap/oversample
    if repeated:
        summary["notes"].append(f"{repeated} image(s) listed under several splits in the input were written once")
    return RebalanceResult(out, copies, surgery, grouping, summary)


def _per_class(ds: Dataset) -> dict[str, dict[str, int]]:
    table = {n: {s: 0 for s in ds.splits} for n in ds.names}
    for r, lb in ds.boxes():
        table[ds.class_name(lb.class_id)][r.split] += 1
    return table


def _shares(counter: Mapping[str, int]) -> dict[str, float]:
    total = sum(counter.values()) or 1
    return {s: round(n / total, 4) for s, n in counter.items()}


def _summary(
    before: Dataset,
    after: Dataset,
    options: RebalanceOptions,
    surgery: Surgery,
    grouping: Grouping,
    split_images: Counter,
    capped: list[str],
    copies: dict[str, Path],
    target: int | None,
) -> dict:
    names = split_names(options.ratios)
    sizes = sorted(grouping.groups, key=lambda g: -g.images)
    largest = sizes[0] if sizes else None
    return {
        "input": str(before.root),
        "seed": options.seed,
        "target_ratios": dict(zip(names, options.ratios)),
        "achieved_image_ratios": _shares({s: split_images.get(s, 0) for s in names}),
        "final_image_ratios": _shares(Counter(r.split for r in after.images)),
        "images": {
            "before": dict(Counter(r.split for r in before.images)),
            "after": {s: sum(1 for r in after.images if r.split == s) for s in after.splits},
            "background_after": {
                s: sum(1 for r in after.images if r.split == s and r.is_background) for s in after.splits
            },
        },
        "classes": {"before": list(before.names), "after": list(after.names)},
        "merged": surgery.merged,
        "dropped_classes": surgery.dropped_classes,
        "dropped_rare_classes": surgery.rare_classes,
        "dropped_boxes": surgery.dropped_boxes,
        "edited_label_files": surgery.edited_images,
        "emptied_images": len(surgery.emptied_images),
        "dropped_empty_images": surgery.dropped_images,
        "groups": {
            "count": len(grouping.groups),
            "multi_image": sum(1 for g in grouping.groups if g.images > 1),
            "largest": largest.images if largest else 0,
            "largest_members": list(largest.members[:20]) if largest else [],
            "images_joined_by": grouping.joined_by,
            "group_by": options.group_by,
        },
        "cap": {"cap": options.cap, "dropped_images": capped} if options.cap is not None else None,
        "oversample": {"target": target, "copies": [{"copy": rel, "source": str(src)} for rel, src in copies.items()]}
        if options.oversample is not None
        else None,
        "notes": _notes(after, surgery, options),
        "counts_before": _per_class(before),
        "counts_after": _per_class(after),
    }


def _notes(after: Dataset, surgery: Surgery, options: RebalanceOptions) -> list[str]:
    """One-line remarks for the user: what they may not have expected."""
    notes = []
    background = sum(1 for r in after.images if r.is_background)
    lo, hi = defaults.BACKGROUND_SHARE_ADVICE
    if surgery.emptied_images and options.empty_images == "keep" and background > hi * len(after.images):
        notes.append(
            f"{len(surgery.emptied_images)} images lost all their boxes and were kept as background: {background} of "
            f"{len(after.images)} images ({100 * background / len(after.images):.0f} %) are background, "
            f"above the advised {100 * hi:.0f} %; --empty-images drop removes them"
        )
    for name in surgery.rare_classes:
        notes.append(f"class {name!r} dropped: fewer than {options.min_instances} instances (--min-instances)")
    return notes


def write_rebalanced(result: RebalanceResult, out: str | Path, *, overwrite: bool = False) -> Path:
    """Write the new YOLO folder (``save_yolo``) plus ``rebalance.json``, whole or not at all
    (:func:`curate.io.outputs.atomic_output`). The input is never written to.

    Oversampled copies need their own file names, and ``save_yolo`` names files after ``record.path``,
    so each copy's source image is hard-linked (else copied) under its new name in a staging folder
    next to ``out`` for the duration of the write (named as a temporary output, so a killed run's is
    removed by the next); ``save_yolo`` copies from there.
    """
    from curate.io.outputs import atomic_output
    from curate.io.yolo import check_output_dir, save_yolo

    out = check_output_dir(Path(out), [result.dataset.root], overwrite=overwrite)
    with atomic_output(out, "rebalance") as tmp:
        staging = tmp.parent / f".{out.name}-staging.curate-tmp-{os.getpid()}"
        try:
            images = []
            for i, r in enumerate(result.dataset.images):
                if r.rel in result.copies:
                    dst = staging / str(i) / r.path.name
                    dst.parent.mkdir(parents=True)
                    try:
                        dst.hardlink_to(result.copies[r.rel])
                    except OSError:
                        shutil.copy2(result.copies[r.rel], dst)
                    r = replace(r, path=dst)
                images.append(r)
            save_yolo(replace(result.dataset, images=images), tmp)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        summary = json.dumps(result.summary, indent=2, ensure_ascii=False) + "\n"
        (tmp / "rebalance.json").write_text(summary, encoding="utf-8")
    return out


def parse_merge(items: Sequence[str]) -> dict[str, str]:
    """``["mayonnaise=ketchup", ...]`` → ``{"mayonnaise": "ketchup"}``."""
    out: dict[str, str] = {}
    for item in items:
        src, sep, dst = item.partition("=")
        if not sep or not src.strip() or not dst.strip():
            raise RebalanceError(f"--merge {item!r}: expected SRC=DST (class names)")
        out[src.strip()] = dst.strip()
    return out


def parse_names(text: str | None) -> list[str] | None:
    """``"a, b,c"`` → ``["a", "b", "c"]`` (None stays None)."""
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise RebalanceError("--keep-classes: give at least one class name")
    return names


def summary_table(summary: dict):
    """A rich table: per class, instances before, after per split and each split's share; images last."""
    from rich.table import Table

    splits = list(summary["target_ratios"])
    t = Table(
        title=f"rebalance (seed {summary['seed']}): instances per class (train after cap/oversample)",
        title_justify="left",
    )
    t.add_column("class")
    t.add_column("before", justify="right")
    for s in splits:
        t.add_column(s, justify="right")
    t.add_column("split shares %", justify="right")
    before = summary["counts_before"]
    for name, row in summary["counts_after"].items():
        at_split = summary.get("counts_split", summary["counts_after"])[name]
        total = sum(at_split.values()) or 1
        shares = "/".join(f"{100 * at_split.get(s, 0) / total:.0f}" for s in splits)
        t.add_row(name, str(sum(before.get(name, {}).values())), *(str(row.get(s, 0)) for s in splits), shares)
    img = summary["images"]["after"]
    achieved = summary["achieved_image_ratios"]
    t.add_section()
    t.add_row(
        "[bold]images[/]",
        str(sum(summary["images"]["before"].values())),
        *(str(img.get(s, 0)) for s in splits),
        "/".join(f"{100 * achieved[s]:.1f}" for s in splits),
    )
    return t
