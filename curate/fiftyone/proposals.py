"""Proposals in FiftyOne: written by the audit, accepted in the App, applied by the export.

The audit writes each :class:`curate.audit.proposals.Proposal` as a detection of the sample field ``proposals``,
drawn beside ``ground_truth``: label = the proposed class, the box it would have (the line's own box for
``relabel``/``delete``, the new box for ``resize``), ``confidence``, and the attributes ``line`` (the label
file line it would change), ``check`` and ``action``. A reviewer accepts one by tagging it ``accept`` (or
``reject``s it); the export applies accepted proposals as if the reviewer had made the edit, and
``--accept-proposals --min-confidence X`` accepts every untagged one at or above ``X``. A proposal never
overrides the reviewer: one whose line the reviewer edited or deleted is not applied (the export warns).

A ``split`` (a group box's member boxes) is one detection per member, each with the group box's ``line``: they
replace that line together. Tagging any member ``accept`` accepts the split; a member tagged ``reject`` is left
out of it (a reviewer drops one wrong member and keeps the others).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from curate.audit.proposals import Proposal
from curate.core.dataset import Dataset, ImageRecord

if TYPE_CHECKING:
    import fiftyone as fo

    from curate.fiftyone.diff import Change, _Box

#: The sample field holding the proposals (a ``fo.Detections``).
PROPOSALS_FIELD = "proposals"
#: Label tags a reviewer sets on a proposal in the App.
ACCEPT_TAG = "accept"
REJECT_TAG = "reject"
_ATTRS = ("label", "bounding_box", "confidence", "line", "check", "action", "class_id", "tags")


@dataclass(frozen=True)
class Accepted:
    """A proposal the export applies: by the reviewer's ``accept`` tag, or by the batch bar."""

    line: int | None
    action: str
    label: str
    class_id: int
    box: tuple[float, float, float, float]  # FiftyOne's [x, y, w, h]
    confidence: float


def write_proposals(
    fo_dataset: "fo.Dataset",
    proposals: list[Proposal],
    dataset: Dataset,
    *,
    keep: set[str] | frozenset[str] = frozenset(),
) -> None:
    """Replace the audit's proposals with ``proposals``, keeping every one a reviewer tagged (``accept``,
    ``reject``: review work is never dropped) and those of the checks in ``keep`` (not run this time)."""
    import fiftyone as fo

    from curate.fiftyone.samples import _detection_doc

    fo_dataset.add_sample_field(PROPOSALS_FIELD, fo.EmbeddedDocumentField, embedded_doc_type=fo.Detections)
    labels = {(r.split, r.rel): {lab.line: lab for lab in r.labels} for r in dataset.images}
    new: dict[tuple[str, str], list[Proposal]] = {}
    for p in proposals:
        new.setdefault((p.split, p.image), []).append(p)
    values: dict[str, Any] = {}
    for sid, split, rel, dets in _read(fo_dataset):
        reviewed_splits = {(d["line"], d["check"]) for d in dets if d["tags"] and d["action"] == "split"}
        # a tagged member keeps its whole split: the others are the rest of what the reviewer accepted
        kept = [d for d in dets if d["tags"] or d["check"] in keep or
                d["action"] == "split" and (d["line"], d["check"]) in reviewed_splits]  # fmt: skip
        fresh = [
            p
            for p in new.get((split, rel), [])
            if (p.line, p.check, p.action) not in {(d["line"], d["check"], d["action"]) for d in kept}
        ]
        if not kept and not fresh and not dets:
            continue
        docs = [_doc(d, _detection_doc) for d in kept]
        for p in fresh:
            own = labels.get((split, rel), {}).get(p.line)
            box = p.box if p.box is not None else (own.cx, own.cy, own.w, own.h) if own is not None else None
            if box is None:
                continue
            cx, cy, w, h = box
            docs.append(_detection_doc(dataset.class_name(p.class_id), [cx - w / 2, cy - h / 2, w, h],
                                       confidence=round(p.confidence, 4), line=p.line, check=p.check,
                                       action=p.action, class_id=p.class_id))  # fmt: skip
        values[sid] = {"_cls": "Detections", "detections": docs}
    if values:
        fo_dataset.set_values(PROPOSALS_FIELD, values, key_field="id", validate=False)
    _distinct_colours(fo_dataset)


#: App colours by field: the labels in blue, proposals in orange, missing-box regions in red, so a proposal
#: is never taken for a label (FiftyOne's default pool gave both similar blues).
FIELD_COLOURS = {"ground_truth": "#1f77b4", PROPOSALS_FIELD: "#ff7f0e", "audit_regions": "#d62728"}


def _distinct_colours(fo_dataset: "fo.Dataset") -> None:
    """Give the label, proposal and region fields their own colours, unless the user chose a colour scheme."""
    import fiftyone as fo

    if fo_dataset.app_config.color_scheme is not None:
        return
    fo_dataset.app_config.color_scheme = fo.ColorScheme(
        color_by="field", fields=[{"path": path, "fieldColor": colour} for path, colour in FIELD_COLOURS.items()]
    )
    fo_dataset.save()


def _read(fo_dataset: "fo.Dataset") -> list[tuple[str, str, str, list[dict[str, Any]]]]:
    """``(sample id, split, rel, proposals as dicts)`` of every sample (empty lists where none)."""
    has = fo_dataset.has_sample_field(PROPOSALS_FIELD)
    paths = ["id", "split", "curate_rel"] + ([f"{PROPOSALS_FIELD}.detections.{k}" for k in _ATTRS] if has else [])
    cols = list(fo_dataset.values(paths))
    out = []
    for row in zip(*cols):
        sid, split, rel = row[:3]
        dets = [dict(zip(_ATTRS, d)) for d in zip(*(c or [] for c in row[3:]))] if has else []
        for d in dets:
            d["tags"] = list(d["tags"] or [])
        out.append((sid, split, rel, dets))
    return out


def _doc(d: dict[str, Any], make) -> dict[str, Any]:
    doc = make(d["label"], list(d["bounding_box"]), confidence=d["confidence"], line=d["line"], check=d["check"],
               action=d["action"], class_id=d["class_id"])  # fmt: skip
    doc["tags"] = list(d["tags"])
    return doc


def accepted_proposals(fo_dataset: "fo.Dataset", min_confidence: float | None) -> dict[tuple[str, str], list[Accepted]]:
    """``(split, rel)`` → the proposals to apply: tagged ``accept``, or (with ``min_confidence``) untagged ones
    at or above it; never one tagged ``reject``."""
    if not fo_dataset.has_sample_field(PROPOSALS_FIELD):
        return {}
    out: dict[tuple[str, str], list[Accepted]] = {}
    for _, split, rel, dets in _read(fo_dataset):
        # one member tagged ``accept`` accepts its split (the line's other members)
        accepted_splits = {d["line"] for d in dets if d["action"] == "split" and ACCEPT_TAG in d["tags"]}
        for d in dets:
            if REJECT_TAG in d["tags"] or d["action"] is None:
                continue
            by_batch = min_confidence is not None and (d["confidence"] or 0.0) >= min_confidence
            by_split = d["action"] == "split" and d["line"] in accepted_splits
            if ACCEPT_TAG in d["tags"] or by_batch or by_split:
                out.setdefault((split, rel), []).append(
                    Accepted(
                        d["line"],
                        d["action"],
                        d["label"],
                        int(d["class_id"]),
                        tuple(d["bounding_box"]),
                        float(d["confidence"] or 0.0),
                    )
                )
    return out


def apply(
    record: ImageRecord, detections: list["_Box"], accepted: list[Accepted], dataset: Dataset
) -> tuple[list["_Box"], list[Accepted], list[str]]:
    """``detections`` with ``accepted`` applied; the proposals applied, and one warning per one left out.

    A proposal on a line applies only while that line's detection is as it was loaded (the reviewer's own
    edit of the line wins); two proposals on one line: the more confident one. An add is not applied where a
    detection of its class already boxes its object (:func:`_boxed_by`): the reviewer drew it in the App, a label
    is there, or a more confident add was applied there.
    """
    from curate.fiftyone.diff import _Box
    from curate.fiftyone.samples import BOX_TOLERANCE, to_fo_box

    original = {lab.line: lab for lab in record.labels}
    dets = list(detections)
    applied: list[Accepted] = []
    warnings: list[str] = []
    done: set[int] = set()
    members: dict[int | None, list[Accepted]] = {}
    for a in accepted:
        if a.action == "split":
            members.setdefault(a.line, []).append(a)
    proposed: set[int] = set()  # id() of the boxes the adds and splits put in
    for a in sorted(accepted, key=lambda a: -a.confidence):
        if a.action == "add":
            there = _boxed_by(a, dets)
            if there is not None:
                if id(there) in proposed:
                    by = "another accepted proposal's box"
                elif there.line is not None:
                    by = f"line {there.line}"
                else:
                    by = "a box drawn in the review"
                warnings.append(f"{record.rel}: proposal to add '{a.label}' not applied: {by} already boxes it")
                continue
            dets.append(_Box(a.label, list(a.box), None, a.class_id))
            proposed.add(id(dets[-1]))
            applied.append(a)
            continue
        i = next((k for k, d in enumerate(dets) if d.line == a.line), None)
        lab = original.get(a.line)
        if a.line in done:
            continue
        if (
            i is None
            or lab is None
            or dets[i].label != dataset.class_name(lab.class_id)
            or any(abs(x - y) > BOX_TOLERANCE for x, y in zip(dets[i].bounding_box, to_fo_box(lab)))
        ):
            warnings.append(
                f"{record.rel}: proposal for line {a.line} ({a.action}) not applied: the reviewer changed that label"
            )
            if a.action == "split":  # one warning for the split, not one per member
                done.add(a.line)
            continue
        done.add(a.line)
        if a.action == "delete":
            del dets[i]
        elif a.action == "relabel":
            dets[i] = _Box(a.label, dets[i].bounding_box, a.line, a.class_id)
        elif a.action == "resize":  # the same label, the proposed box (a loose box tightened, a shifted one moved)
            dets[i] = _Box(dets[i].label, list(a.box), a.line, dets[i].class_id)
        elif a.action == "split":  # the group box becomes its first member, the others are new boxes
            first, *rest = members[a.line]
            dets[i] = _Box(dets[i].label, list(first.box), a.line, dets[i].class_id, member=True)
            new = [_Box(dets[i].label, list(m.box), None, dets[i].class_id) for m in rest]
            dets += new
            proposed.update(map(id, new))
            applied += rest
            a = first
        applied.append(a)
    return dets, applied, warnings


def _boxed_by(add: Accepted, detections: list["_Box"]) -> "_Box | None":
    """The first detection of the add's class that boxes the add's object (IoU ≥
    :data:`curate.fiftyone.diff.ADD_SAME_IOU`), else None.

    Why: the reviewer who sees an unlabelled object often draws its box in the App rather than tag the proposal,
    and ``--accept-proposals`` then accepted the add too: two boxes on one object in the export (and two checks, or
    two regions of one check, may propose the same object). The line between one object and two is the one the add
    guard of a kept review uses (:func:`curate.fiftyone.diff.one_object`).
    """
    from curate.fiftyone.diff import one_object

    x, y, w, h = add.box
    for det in detections:
        if det.label == add.label and one_object(det.bounding_box, (x, y, x + w, y + h)):
            return det
    return None


def mark_proposed(changes: list["Change"], applied: list[Accepted], record: ImageRecord) -> list["Change"]:
    """The changes of one record, those that come from an applied proposal marked ``source="proposed"``."""
    from curate.fiftyone.samples import from_fo_box

    by_line = {a.line: a for a in applied if a.line is not None}
    # boxes the proposals added: an add's box, and a split's members (all but the first are new lines)
    added = {" ".join(f"{v:.6f}" for v in from_fo_box(a.box)): a for a in applied
             if a.line is None or a.action == "split"}  # fmt: skip
    out = []
    for c in changes:
        a = by_line.get(c.line) if c.kind in ("edited", "relabeled", "deleted") else None
        if c.kind == "added":
            a = added.get(c.after.split(" ", 1)[1] if " " in c.after else "")
        out.append(dataclasses.replace(c, source="proposed", confidence=a.confidence) if a is not None else c)
    return out
