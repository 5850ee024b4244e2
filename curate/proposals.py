"""Proposed fixes: for a flagged label, the edit that would correct it, where the audit's evidence says which.

Why: a reviewer who is told *what* is wrong still redraws every box by hand. The checks already measure what
a correction needs: the object's extent on each side of a loose or shifted box, the class a crop looks like,
the box a missing object would need, which of two copies is the later one. A proposal turns that into one
edit a reviewer accepts in the App (tag it ``accept``) or ``curate export --accept-proposals`` applies in
batch above a confidence bar.

A proposal is made only where the evidence names the edit; none is better than a wrong one accepted in
batch. ``confidence`` is the flagging check's score (how likely the label is wrong), times how sure the
evidence is about the edit where it has a measure of that (the crop model's probability of the class it
proposes); the benchmark (``benchmarks/proposals.py``) measures how close accepted proposals come to the
truth on planted errors.

Actions: ``relabel`` (same box, ``class_id``), ``delete``, ``resize`` (new ``box``, same class), ``add`` (a new
box for a region finding).
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

from curate.dataset import Dataset, LabelLookup
from curate.findings import Finding

#: Columns of proposals.csv (the box as YOLO's normalized centre, width and height).
CSV_COLUMNS = ("split", "image", "line", "check", "action", "class", "x", "y", "w", "h", "confidence")
#: A side moves by at most this share of the box (the evidence window reaches 1.35× the box).
MAX_SIDE_MOVE = 0.5
#: Sides whose measured object extent is smaller than this (share of the box) are left where they are.
MIN_SIDE_MOVE = 0.03
#: A group box is proposed for deletion only when its members already have boxes of their own.
MIN_MEMBERS_INSIDE = 2


@dataclass(frozen=True)
class Proposal:
    """One proposed edit of a label file line (``line`` None for an added box)."""

    split: str
    image: str
    line: int | None
    check: str
    action: str  # relabel | delete | resize | add
    class_id: int
    box: tuple[float, float, float, float] | None  # (cx, cy, w, h) normalized; the new box of resize/add
    confidence: float

    def to_dict(self) -> dict:
        d = asdict(self)
        d["box"] = None if self.box is None else [round(v, 6) for v in self.box]
        d["confidence"] = round(self.confidence, 4)
        return d


def propose(findings: Iterable[Finding], dataset: Dataset) -> list[Proposal]:
    """The proposals for ``findings`` (those listed: at or above their thresholds), one at most per finding."""
    lookup = LabelLookup(dataset)
    out = []
    for f in findings:
        p = _propose_one(f, lookup, dataset)
        if p is not None:
            out.append(p)
    return out


def _propose_one(f: Finding, lookup: LabelLookup, dataset: Dataset) -> Proposal | None:
    if f.region is not None:
        cls = f.data.get("class_id")
        if f.check != "missing" or not isinstance(cls, int) or not 0 <= cls < len(dataset.names):
            return None
        return Proposal(f.split, f.image, None, f.check, "add", cls, tuple(float(v) for v in f.region), f.score)
    label = lookup.label(f)
    if label is None:
        return None
    if f.check == "duplicate":
        return Proposal(f.split, f.image, f.line, f.check, "delete", label.class_id, None, f.score)
    if f.check == "class_inconsistent":
        name = f.data.get("suggested")
        if name not in dataset.names:
            return None
        confidence = f.score * float(f.data.get("p_suggested", 0.0))
        return Proposal(f.split, f.image, f.line, f.check, "relabel", dataset.names.index(name), None, confidence)
    if f.check == "grouped" and int(f.data.get("same_class_inside", 0)) >= MIN_MEMBERS_INSIDE:
        return Proposal(f.split, f.image, f.line, f.check, "delete", label.class_id, None, f.score)
    if f.check in ("background_heavy", "shifted"):
        box = moved_box((label.cx, label.cy, label.w, label.h), f.data.get("side_extent") or {})
        if box is None:
            return None
        return Proposal(f.split, f.image, f.line, f.check, "resize", label.class_id, box, f.score)
    return None


def moved_box(box: tuple[float, float, float, float], extent: dict[str, float | None]) -> tuple[float, float, float, float] | None:
    """``box`` with each side moved onto the object's measured extent, or None when no side moves.

    ``extent[side]`` is where the object ends, as a share of the box's size measured inward from that side
    (positive: a background band inside the box; negative: the object continues past it), as the box model's
    evidence gives it. Moves are capped at :data:`MAX_SIDE_MOVE`; the result is clipped to the image.
    """
    cx, cy, w, h = box
    moves = {}
    for side in ("left", "top", "right", "bottom"):
        x = extent.get(side)
        moves[side] = 0.0 if x is None or abs(x) < MIN_SIDE_MOVE else max(-MAX_SIDE_MOVE, min(MAX_SIDE_MOVE, float(x)))
    if not any(moves.values()):
        return None
    x1 = max(0.0, cx - w / 2 + moves["left"] * w)
    x2 = min(1.0, cx + w / 2 - moves["right"] * w)
    y1 = max(0.0, cy - h / 2 + moves["top"] * h)
    y2 = min(1.0, cy + h / 2 - moves["bottom"] * h)
    if x2 - x1 <= 0 or y2 - y1 <= 0:
        return None
    return ((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1)


def attach(findings: list[Finding], proposals: list[Proposal]) -> None:
    """Put each proposal into its finding's ``data["proposal"]`` (so findings.json carries it)."""
    by_key = {(p.image, p.line, p.check, p.box if p.line is None else None): p for p in proposals}
    for f in findings:
        key = (f.image, f.line, f.check, (tuple(float(v) for v in f.region) if f.region is not None else None))
        p = by_key.get(key)
        if p is not None:
            f.data["proposal"] = {k: v for k, v in p.to_dict().items() if k in ("action", "class_id", "box", "confidence")}


def write_csv(proposals: list[Proposal], dataset: Dataset, path: Path) -> Path:
    """``proposals.csv``: one row per proposal, worst first (the box columns empty where the box stays)."""
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_COLUMNS)
        for p in sorted(proposals, key=lambda p: (-p.confidence, p.split, p.image, p.line or 0)):
            box = [f"{v:.6f}" for v in p.box] if p.box is not None else ["", "", "", ""]
            w.writerow([p.split, p.image, "" if p.line is None else p.line, p.check, p.action,
                        dataset.class_name(p.class_id), *box, f"{p.confidence:.4f}"])  # fmt: skip
    return path
