"""Proposed fixes: for a flagged label, the edit that would correct it, where the audit's evidence says which.

Why: a reviewer who is told *what* is wrong still redraws every box by hand. Some checks already know the
fix: the later of two copies is the one to delete, a crop that looks like another class names that class, a
labelled box in a near-duplicate photo names the box and class an unlabelled object needs. A proposal turns
that into one edit a reviewer accepts in the App (tag it ``accept``) or ``curate export --accept-proposals``
applies in batch above a confidence bar.

A proposal is made only where a measurement says the evidence names the edit (``benchmarks/proposals.py``,
planted errors; numbers in benchmarks/README.md); none is better than a wrong one accepted in batch. A loose
box's tightened box and a shifted box's moved one are searched for among candidate boxes
(:mod:`curate.audit.refine`), and proposed only where the search was right often enough on the dataset's own
corrupted boxes. A group box's member boxes are searched for among layouts of it (:mod:`curate.audit.members`),
judged and calibrated the same way, on the dataset's own synthetic merges.

``confidence`` is the share of such proposals that were right on planted errors, for the flagging check's
score: the score itself where the edit follows from the finding (a duplicate copy), times the crop model's
probability of the proposed class among the classes other than the label (relabel; none below
:data:`MIN_CLASS_SHARE`), times :data:`ADD_PRIOR` for an added box whose class is a guess,
times the search's held-out chance of a right box (resize) or of a right set of members (split).

Actions: ``relabel`` (same box, ``class_id``), ``delete``, ``add`` (a new box for a region finding), ``resize``
(same class, the new box), ``split`` (the line replaced by several boxes of its class: one proposal per member,
each with the group box's line and the same confidence; they are applied together).
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

from curate.core import defaults
from curate.core.dataset import Dataset, LabelLookup
from curate.core.findings import Finding
from curate.core.overlap import iou_one
from curate.vision.hashing import Pair

#: Columns of proposals.csv (the box as YOLO's normalized centre, width and height).
CSV_COLUMNS = ("split", "image", "line", "check", "action", "class", "x", "y", "w", "h", "confidence")
#: A relabel only where the named class holds at least this share of the crop model's probability outside the box's
#: own label (:func:`class_share`, its chance of being the original class if the label is a swap). On planted swaps
#: the named class is seldom the original below 0.4 and almost always at or above it, on each pool dataset
#: (benchmarks/README.md, Session 15, branch `proposals`).
MIN_CLASS_SHARE = 0.4
#: Share of ``missing`` regions found by the image model (not copied from a near-duplicate's box) whose added
#: box and class were right on planted deletions (epicureai, seed 0: 17 of 26): such an add never reaches the
#: default batch bar (0.9) on its own. Measured when the add's box was the region's grid window; the refined box
#: (:func:`added_box`) is at least as often right on every pool dataset, but its own share is not fitted here.
ADD_PRIOR = 0.65


@dataclass(frozen=True)
class Proposal:
    """One proposed edit of a label file line (``line`` None for an added box)."""

    split: str
    image: str
    line: int | None
    check: str
    action: str  # relabel | delete | add | resize | split
    class_id: int
    box: tuple[float, float, float, float] | None  # (cx, cy, w, h) normalized; the new box of an add or resize
    confidence: float

    def to_dict(self) -> dict:
        d = asdict(self)
        d["box"] = None if self.box is None else [round(v, 6) for v in self.box]
        d["confidence"] = round(self.confidence, 4)
        return d


def propose(
    findings: Iterable[Finding],
    dataset: Dataset,
    *,
    pixels: bool = True,
    seed: int = defaults.SEED,
    same_scene: Callable[[], list[Pair]] | None = None,
) -> list[Proposal]:
    """The proposals for ``findings`` (those listed: at or above their thresholds), one at most per finding.

    ``pixels`` False (``--fast``): no resize or split proposals (the refiner learns from the box model's pixel
    features). A split is one proposal per member box. ``same_scene``: the audit's near-duplicate pairs for the
    search's scenes, asked only if it runs (:func:`curate.audit.refine.refine`).
    """
    findings = list(findings)
    lookup = LabelLookup(dataset)
    out = []
    for f in findings:
        p = _propose_one(f, lookup, dataset)
        if p is not None:
            out.append(p)
    if pixels:
        out += _resize(findings, lookup, dataset, seed, same_scene)
    return out


def _resize(
    findings: list[Finding],
    lookup: LabelLookup,
    dataset: Dataset,
    seed: int,
    same_scene: Callable[[], list[Pair]] | None = None,
) -> list[Proposal]:
    """``resize`` proposals for loose and shifted findings, ``split`` ones for grouped findings
    (:mod:`curate.audit.refine`)."""
    from curate.audit import members
    from curate.audit.refine import GROUP_CHECK, KIND_OF_CHECK, MAX_SEARCHED, refine

    flagged = []
    for checks, most in ((set(KIND_OF_CHECK), MAX_SEARCHED), ({GROUP_CHECK}, members.MAX_SEARCHED)):
        mine = [f for f in findings if f.check in checks and f.line is not None and lookup.label(f) is not None]
        if len(mine) > most:  # the highest-scored, kept in their order
            top = {id(f) for f in sorted(mine, key=lambda f: -f.score)[:most]}
            mine = [f for f in mine if id(f) in top]
        flagged += mine
    refined = refine(dataset, [(f.image, f.line, f.check) for f in flagged], seed=seed, same_scene=same_scene)
    out = []
    for f in flagged:
        r = refined.get((f.image, f.line, f.check))
        if r is None:
            continue
        action, boxes = ("split", r.boxes) if isinstance(r, members.Members) else ("resize", (r.xyxy,))
        for x1, y1, x2, y2 in boxes:  # a split: one proposal per member box
            out.append(Proposal(f.split, f.image, f.line, f.check, action, lookup.label(f).class_id,
                                ((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), f.score * r.p_right))  # fmt: skip
    return out


def _propose_one(f: Finding, lookup: LabelLookup, dataset: Dataset) -> Proposal | None:
    if f.region is not None:
        cls = f.data.get("class_id")
        if f.check != "missing" or not isinstance(cls, int) or not 0 <= cls < len(dataset.names):
            return None
        prior = 1.0 if f.data.get("evidence") == "duplicate" else ADD_PRIOR  # a near-duplicate's own box and class
        return Proposal(f.split, f.image, None, f.check, "add", cls, added_box(f), f.score * prior)
    label = lookup.label(f)
    if label is None:
        return None
    if f.check == "duplicate":
        return Proposal(f.split, f.image, f.line, f.check, "delete", label.class_id, None, f.score)
    if f.check == "class_inconsistent":
        name = f.data.get("suggested")
        if name not in dataset.names:
            return None
        cls = dataset.names.index(name)
        share = class_share(f.data)
        confidence = f.score * share
        # a box of that class already sits on this object: the box is a second label of it (ambiguous), and
        # relabelling would make it a duplicate: the box itself is the error
        others = [o for o in lookup.records[f.image].labels if o.line != label.line and o.class_id == cls]
        if any(iou_one(o.xyxy, label.xyxy) >= defaults.DUPLICATE_IOU for o in others):
            return Proposal(f.split, f.image, f.line, f.check, "delete", label.class_id, None, confidence)
        if share < MIN_CLASS_SHARE:  # a swap, maybe, but to which class the crop model can't tell
            return None
        return Proposal(f.split, f.image, f.line, f.check, "relabel", cls, None, confidence)
    return None


def added_box(f: Finding) -> tuple[float, float, float, float]:
    """The box an add proposes for a region finding: the check's refined box (``data["add_box"]``: the likeliest
    window near the region, :mod:`curate.audit.checks.missing.extent`) where it has a valid one, else the region.

    Why not the region itself: it is a grid window, often a quarter box off the object; the region stays what the
    check found (findings.csv), the proposal is the edit."""
    box = f.data.get("add_box")
    if isinstance(box, (list, tuple)) and len(box) == 4:
        try:
            b = tuple(float(v) for v in box)
        except (TypeError, ValueError):
            b = ()
        if len(b) == 4 and all(0.0 <= v <= 1.0 for v in b) and b[2] > 0 and b[3] > 0:
            return b  # type: ignore[return-value]
    return tuple(float(v) for v in f.region)  # type: ignore[return-value]


def class_share(data: dict) -> float:
    """The chance that a swapped box's original class is the one ``class_inconsistent`` names: the crop model's
    probability of that class among the classes other than the label (a swap's original is never its label).

    Why not the named class's probability itself: it leaves the label's own share in the denominator, so a box the
    model half believes (label 0.5, named class 0.45) read as 0.45 although, given a swap, the named class is nine
    times likelier than the rest together.
    """
    p = float(data.get("p_suggested", 0.0))
    rest = 1.0 - float(data.get("p_label", 0.0))
    return min(1.0, p / rest) if rest > 0 else 0.0


def attach(findings: list[Finding], proposals: list[Proposal]) -> None:
    """Put each proposal into its finding's ``data["proposal"]`` (so findings.json carries it)."""
    by_key = {(p.image, p.line, p.check, p.box if p.line is None else None): p for p in proposals}
    members: dict[tuple, list[Proposal]] = {}
    for p in proposals:
        if p.action == "split":
            members.setdefault((p.image, p.line, p.check, None), []).append(p)
    for f in findings:
        key = (f.image, f.line, f.check, (added_box(f) if f.region is not None else None))
        p = by_key.get(key)
        if p is not None:
            f.data["proposal"] = {
                k: v for k, v in p.to_dict().items() if k in ("action", "class_id", "box", "confidence")
            }
        if key in members:  # a split: its member boxes, one proposal
            f.data["proposal"]["members"] = [m.to_dict()["box"] for m in members[key]]
            del f.data["proposal"]["box"]


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
