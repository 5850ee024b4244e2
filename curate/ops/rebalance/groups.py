"""Groups of images that must share a split: near-duplicate clusters, Roboflow variants of one photo, a
user pattern (union-find over all three).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Mapping, Sequence

from curate.core.dataset import Dataset, roboflow_photo

#: The pseudo class of background images (no boxes) in :class:`Group` counts: they are stratified too.
BACKGROUND = -1


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
