"""Read a review back from FiftyOne: the reviewed dataset, its label changes, and the labels marked ``ok``.

``ground_truth`` is matched to the label files by each detection's ``line``, so a sample nobody touched
keeps its original record and the writer copies its label file byte for byte; everything else becomes a
:class:`Change` (``changes.csv``). Accepted audit proposals are applied first
(:mod:`curate.fiftyone.proposals`), to the lines of the file as it was loaded (the lines they were made for);
where the file changed on disk since, the review and the proposals are then re-addressed to it together
(:func:`_rebase`), and a proposal whose line changed on disk is not applied.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from curate.core.dataset import Dataset, ImageRecord, Label
from curate.core.overlap import iou_one
from curate.fiftyone.identity import loaded_from_files_as_now
from curate.fiftyone.samples import (
    BOX_TOLERANCE,
    EXCLUDE_TAG,
    IMAGE_HASH_FIELD,
    LOADED_FIELD,
    OK_TAG,
    _loaded_labels,
    from_fo_box,
    image_hash,
    loaded_image_hashes,
    same_line,
    to_fo_box,
)

if TYPE_CHECKING:  # fiftyone is imported lazily: its import costs seconds
    import fiftyone as fo

#: ``dropped``: a malformed line of a rewritten label file, left out (the export adds these rows:
#: :func:`curate.ops.export.with_dropped_lines`).
CHANGE_KINDS = ("edited", "added", "deleted", "relabeled", "excluded", "dropped")
#: a box of an accepted add's class drawn on disk since the audit, at this IoU with the add's box, is the object the
#: add was proposed for: a hand-drawn and a proposed box of one object seldom agree closer, two objects seldom overlap
#: more (duplicate's own line between one object and two is 0.7; 0.5 leans towards not doubling)
ADD_SAME_IOU = 0.5


@dataclass(frozen=True)
class Change:
    """One reviewer edit, as written to ``changes.csv``.

    ``line`` is the 1-based line in the *original* label file for edited/relabeled/deleted labels, the
    line in the *written* label file for added ones, and None for excluded images. ``before``/``after``
    are YOLO-style ``"class_id cx cy w h"`` texts ("" where there is none): for a polygon line, its bounding
    box, which is what Ultralytics trains a detector on; ``note`` then says what became of its points. A label
    whose class and box both changed is one ``relabeled`` change.
    """

    image: str
    line: int | None
    kind: str
    before: str = ""
    after: str = ""
    split: str = ""  # the listing's split: a file listed under two splits is two records
    source: str = "review"  # "proposed": an audit proposal the reviewer accepted, or the batch bar did; "reader"
    confidence: float | None = None  # the proposal's confidence
    note: str = ""  # what the written line is when it is not the plain box of ``after`` (a polygon)


def from_fiftyone(
    fo_dataset: "fo.Dataset", original: Dataset, *, min_confidence: float | None = None
) -> tuple[Dataset, list[Change]]:
    """The dataset as reviewed in FiftyOne, ready for :func:`curate.io.yolo.save_yolo`.

    ``ground_truth`` is authoritative (``ground_truth_polylines`` is for display only). A sample whose
    detections all match their original label (same ``line``, class and box within
    :data:`BOX_TOLERANCE`) keeps its original record, so ``edited`` stays False and the writer copies its
    label file byte for byte. Otherwise the record is ``edited=True`` with labels in original line order
    (moved/resized/relabeled ones in place, deleted ones gone), then added detections (no ``line``);
    lines are renumbered to their position in the new file. A polygon whose box was moved or resized is
    mapped into the new box. Samples tagged ``exclude`` are left out; images of ``original`` that are
    not in ``fo_dataset`` (e.g. it is a view) are kept unchanged. Proposals the reviewer tagged ``accept``
    (and, with ``min_confidence``, every untagged one at or above it) are applied first
    (:mod:`curate.fiftyone.proposals`). Returns the new dataset and the changes, in dataset order then line order.
    """
    review = _review(fo_dataset, original, min_confidence)
    warnings = list(original.warnings) + review.warnings
    if review.unknown:
        warnings.append(
            f"{len(review.unknown)} FiftyOne sample(s) not in the dataset were ignored, e.g. {review.unknown[0]}"
        )
    return dataclasses.replace(original, images=review.images, warnings=warnings), review.changes


@dataclass
class _Review:
    images: list[ImageRecord]
    changes: list[Change]
    # (split, rel) of an edited record -> {original line: line in the new file}. Keyed by split too, as the
    # samples are: a file listed under several splits is one sample (and one written file) per listing.
    line_maps: dict[tuple[str, str], dict[int, int]]
    excluded: set[tuple[str, str]]  # (split, rel) of the samples tagged ``exclude``
    unknown: list[str]  # rels of FiftyOne samples that are not in the dataset
    warnings: list[str] = dataclasses.field(default_factory=list)  # proposals left out, review/disk conflicts
    # (split, rel) of a record whose label file changed on disk since it was loaded into FiftyOne -> {line as
    # loaded: its line on disk now}, for the loaded lines still on disk unchanged (:func:`_rebase`)
    rebased: dict[tuple[str, str], dict[int, int]] = dataclasses.field(default_factory=dict)


def _review(fo_dataset: "fo.Dataset", original: Dataset, min_confidence: float | None = None) -> _Review:
    from curate.fiftyone.proposals import accepted_proposals, apply, mark_proposed

    by_key = _reviewed_labels(fo_dataset)
    loaded = _loaded_by_key(fo_dataset)
    accepted = accepted_proposals(fo_dataset, min_confidence)
    review = _Review([], [], {}, set(), sorted({rel for _, rel in by_key} - {r.rel for r in original.images}))
    for record in original.images:
        if (record.split, record.rel) not in by_key:
            review.images.append(record)
            continue
        sample_tags, detections = by_key[(record.split, record.rel)]
        if EXCLUDE_TAG in sample_tags:
            review.changes.append(Change(record.rel, None, "excluded", split=record.split))
            review.excluded.add((record.split, record.rel))
            continue
        as_loaded = loaded.get((record.split, record.rel))
        stale = as_loaded is not None and not _same_lines(as_loaded, record.labels)
        on_disk = _match_lines(as_loaded, record.labels) if stale else {}  # line as loaded -> its line on disk now
        applied = []
        if (record.split, record.rel) in accepted:
            todo = accepted[(record.split, record.rel)]
            if stale:  # proposals name lines of the file as loaded: applied there, then re-addressed with the review
                todo, changed_on_disk = _still_on_disk(record, todo, on_disk)
                review.warnings.extend(changed_on_disk)
            as_reviewed = dataclasses.replace(record, labels=as_loaded) if stale else record
            detections, applied, left_out = apply(as_reviewed, detections, todo, original)
            review.warnings.extend(left_out)
        if stale:
            detections, conflicts = _rebase(record, as_loaded, on_disk, detections, original)
            review.rebased[(record.split, record.rel)] = on_disk
            review.warnings.extend(conflicts)
            applied = [a if a.line is None else dataclasses.replace(a, line=on_disk[a.line]) for a in applied]
        new_record, record_changes, line_map = _diff_record(record, detections, original)
        if applied:
            record_changes = mark_proposed(record_changes, applied, record)
        review.images.append(new_record)
        review.changes.extend(record_changes)
        if new_record.edited:
            review.line_maps[(record.split, record.rel)] = line_map
    return review


@dataclass(frozen=True)
class _Box:
    """A detection as read back from FiftyOne (``line``/``class_id`` None when the App added it).

    ``member``: the box is a split's first member put on its group box's line (:func:`curate.fiftyone.proposals.apply`):
    a new object, not the group box moved, so a polygon line does not keep the group's outline.
    """

    label: str | None
    bounding_box: list[float]
    line: int | None
    class_id: int | None
    member: bool = False


def _reviewed_labels(fo_dataset: "fo.Dataset") -> dict[tuple[str, str], tuple[list[str], list[_Box]]]:
    """``(split, rel) -> (sample tags, detections)``, read as plain values (no label objects: fast).

    Keyed by split too: a file listed under several splits (``train: images``, ``val: images``) is one
    sample per split, and keyed by ``rel`` alone the last sample's labels replaced every copy's, so an
    edit made on the train copy was lost.
    """
    attrs = ("label", "bounding_box", "line", "class_id")
    paths = ["curate_rel", "split", "tags"] + [f"ground_truth.detections.{k}" for k in attrs]
    rels, splits, tags, labels, boxes, lines, class_ids = fo_dataset.values(paths)
    out = {}
    for rel, split, t, ls, bs, ns, cs in zip(rels, splits, tags, labels, boxes, lines, class_ids):
        if rel is None:
            continue
        dets = [_Box(*row) for row in zip(ls or [], bs or [], ns or [], cs or [])]
        out[(split, rel)] = (t or [], dets)
    return out


def _loaded_by_key(fo_dataset: "fo.Dataset") -> dict[tuple[str, str], list[Label]]:
    """``(split, rel) -> the labels the sample was loaded with`` (none for a dataset built before they were kept)."""
    if not fo_dataset.has_sample_field(LOADED_FIELD):
        return {}
    rels, splits, texts = fo_dataset.values(["curate_rel", "split", LOADED_FIELD])
    return {(split, rel): _loaded_labels(text) for rel, split, text in zip(rels, splits, texts) if rel and text}


def _same_lines(loaded: list[Label], now: list[Label]) -> bool:
    """Whether a label file holds the lines a sample was loaded with, in order (:func:`same_line`)."""
    return len(loaded) == len(now) and all(same_line(a, b) for a, b in zip(loaded, now))


def _rebase(
    record: ImageRecord, loaded: list[Label], on_disk: dict[int, int], detections: list[_Box], dataset: Dataset
) -> tuple[list[_Box], list[str]]:
    """The review's detections re-addressed to the label file as it is on disk now (a three-way merge).

    Why: a review kept in FiftyOne (``--from-fiftyone``) was made on the file as it was loaded; the file may
    have changed on disk since (a line added, another edited by hand). Diffing the review against the file as
    it is now would delete the lines added on disk and undo the hand edits, though the reviewer never saw them.
    So each line as loaded is found on disk by its values (its own line number first): the reviewer's edit or
    delete of it applies to that disk line; a disk line no loaded line matches is kept as it is; the reviewer's
    added boxes are added. A line both the reviewer changed and the disk changed cannot be merged without
    guessing: the disk's version is kept and a warning names it (the review stays in FiftyOne). So is a box the
    reviewer added where a line of its class added or edited on disk since boxes the same object (IoU ≥
    :data:`ADD_SAME_IOU`): two people boxed one object, and writing both would double it.

    ``on_disk``: :func:`_match_lines` of ``loaded`` and the file now. Returns the detections addressed to disk
    lines, and the warnings.
    """
    matched = set(on_disk.values())
    free = {lab.line: lab for lab in record.labels if lab.line not in matched}
    loaded_by_line = {lab.line: lab for lab in loaded}
    out: list[_Box] = []
    conflicts: list[str] = []
    edited: set[int] = set()  # loaded lines the reviewer changed
    reviewed: set[int] = set()  # loaded lines still among the detections
    for det in detections:
        if det.line is None or det.line not in loaded_by_line or det.line in reviewed:
            drawn = next((lab for lab in free.values() if _same_box_object(det, lab, dataset)), None)
            if drawn is not None:  # boxed on disk since, too: the disk's version is kept, as for an edited line
                conflicts.append(
                    f"{record.rel}: a '{det.label}' box added in the review was not added: line {drawn.line}, "
                    "changed on disk since the review, already boxes it"
                )
                continue
            out.append(det if det.line is None else dataclasses.replace(det, line=None, class_id=None))  # added
            continue
        reviewed.add(det.line)
        if not _untouched(det, loaded_by_line[det.line], dataset, record.rel):
            edited.add(det.line)
        if det.line in on_disk:
            out.append(dataclasses.replace(det, line=on_disk[det.line]))
    gone = [n for n in sorted(loaded_by_line) if n not in on_disk]  # changed or removed on disk since
    conflicts += [
        f"{record.rel}: line {n} as loaded into FiftyOne was {'edited' if n in edited else 'deleted'} in the review "
        "and has changed on disk since: the file's version on disk is kept"
        for n in gone
        if n in edited or n not in reviewed
    ]
    out.extend(
        _Box(dataset.class_name(d.class_id), to_fo_box(d), d.line, d.class_id) for d in free.values()
    )  # lines added or changed on disk since the review: kept as they are
    return out, conflicts


def _match_lines(loaded: list[Label], disk: list[Label]) -> dict[int, int]:
    """``{line as loaded: line on disk now}`` for each loaded line still on disk unchanged (:func:`same_line`), found
    by its values (its own line number first; one disk line answers one loaded line)."""
    free = {lab.line: lab for lab in disk}
    on_disk: dict[int, int] = {}
    for lab in loaded:
        same = [lab.line] if lab.line in free and same_line(lab, free[lab.line]) else []
        same = same or [n for n, d in free.items() if same_line(lab, d)][:1]
        if same:
            on_disk[lab.line] = same[0]
            del free[same[0]]
    return on_disk


def _still_on_disk(record: ImageRecord, accepted: list, on_disk: dict[int, int]) -> tuple[list, list[str]]:
    """The accepted proposals whose line (as loaded) is still on disk unchanged, and one warning per line left out.

    Why: a proposal was made for the line as the audit saw it; a line edited or deleted by hand since is not the
    box it was made for, and applying it there would change a label nobody proposed a fix for. An add whose object
    someone boxed by hand since (a line added or edited on disk, of its class, at IoU ≥ ADD_SAME_IOU) is left out
    too: adding it would put two boxes on one object.
    """
    keep = [a for a in accepted if a.line is None or a.line in on_disk]
    gone = sorted({(a.line, a.action) for a in accepted if a.line is not None and a.line not in on_disk})
    warnings = [
        f"{record.rel}: proposal for line {line} ({action}) not applied: that line changed on disk since the audit"
        for line, action in gone
    ]
    still = set(on_disk.values())
    new_on_disk = [lab for lab in record.labels if lab.line not in still]  # lines added or edited on disk since
    doubled = {id(a): lab for a in keep if a.action == "add" for lab in new_on_disk if _same_object(a, lab)}
    warnings += [
        f"{record.rel}: proposal to add '{a.label}' not applied: line {doubled[id(a)].line}, changed on disk "
        "since the audit, already boxes it"
        for a in keep
        if id(a) in doubled
    ]
    return [a for a in keep if id(a) not in doubled], warnings


def one_object(fo_box, xyxy) -> bool:
    """True when a FiftyOne box (``[x, y, w, h]``, normalized) and a normalized ``xyxy`` box are one object's
    (IoU ≥ :data:`ADD_SAME_IOU`): the one line between an add and a box already there, for every add guard."""
    x, y, w, h = fo_box
    return iou_one((x, y, x + w, y + h), xyxy) >= ADD_SAME_IOU


def _same_object(add, lab: Label) -> bool:
    """True when a disk line boxes what an ``add`` proposal would (the same class, :func:`one_object`)."""
    return lab.class_id == add.class_id and one_object(add.box, lab.xyxy)


def _same_box_object(det: _Box, lab: Label, dataset: Dataset) -> bool:
    """True when a disk line boxes what a detection does (the same class, :func:`one_object`)."""
    return det.label == dataset.class_name(lab.class_id) and one_object(det.bounding_box, lab.xyxy)


def _untouched(det: _Box, lab: Label, dataset: Dataset, rel: str) -> bool:
    """True when a detection is its loaded label unchanged (the same class, the same box within the tolerance)."""
    box = from_fo_box(det.bounding_box)
    same_box = all(abs(a - b) <= BOX_TOLERANCE for a, b in zip(box, (lab.cx, lab.cy, lab.w, lab.h)))
    return same_box and _class_id(det, dataset, rel) == lab.class_id


def _diff_record(
    record: ImageRecord, detections: list[_Box], dataset: Dataset
) -> tuple[ImageRecord, list[Change], dict[int, int]]:
    """Compare one sample's detections with its record's labels (matched by ``line``).

    Returns the record (the original object when nothing changed), its changes, and for an edited
    record where each kept original line lands in the rewritten file.
    """
    original = {lab.line: lab for lab in record.labels}
    added_as_polygon = _adds_polygons(record.labels)
    seen: set[int] = set()
    changed: dict[int, Label] = {}
    added: list[Label] = []
    changes: list[Change] = []
    for det in detections:
        line = det.line
        class_id = _class_id(det, dataset, record.rel)
        cx, cy, w, h = from_fo_box(det.bounding_box)
        if line in original and line not in seen:
            seen.add(line)
            old = original[line]
            same_box = all(abs(a - b) <= BOX_TOLERANCE for a, b in zip((cx, cy, w, h), (old.cx, old.cy, old.w, old.h)))
            if same_box and class_id == old.class_id:
                continue
            if same_box:  # a relabel: the line's own numbers stay (a polygon's points, a box past the edge)
                new = dataclasses.replace(old, class_id=class_id)
            elif det.member:  # a new object on the group's line: its own box, in the line's form
                polygon = _rectangle(cx, cy, w, h) if old.polygon is not None else None
                new = Label(class_id, cx, cy, w, h, line=old.line, polygon=polygon)
            else:
                new = Label(class_id, cx, cy, w, h, line=old.line, polygon=_move_polygon(old, (cx, cy, w, h)))
            changed[line] = new
            kind = "relabeled" if class_id != old.class_id else "edited"
            note = ""
            if old.polygon is not None:
                note = POLYGON_KEPT if same_box else POLYGON_MEMBER if det.member else POLYGON_MOVED
            changes.append(
                Change(record.rel, line, kind, _label_text(old), _label_text(new), split=record.split, note=note)
            )
        else:
            added.append(
                Label(class_id, cx, cy, w, h, line=0, polygon=_rectangle(cx, cy, w, h) if added_as_polygon else None)
            )
    deleted = [lab for lab in record.labels if lab.line not in seen]
    if not changed and not added and not deleted:
        return record, [], {}
    changes.extend(
        Change(record.rel, lab.line, "deleted", _label_text(lab), "", split=record.split,
               note=POLYGON_DELETED if lab.polygon is not None else "")
        for lab in deleted
    )  # fmt: skip
    kept = [changed.get(lab.line, lab) for lab in record.labels if lab.line in seen]
    labels = [dataclasses.replace(lab, line=i) for i, lab in enumerate(kept + added, start=1)]
    changes.extend(
        Change(record.rel, lab.line, "added", "", _label_text(lab), split=record.split,
               note=POLYGON_ADDED if lab.polygon is not None else "")
        for lab in labels[len(kept) :]
    )  # fmt: skip
    if _mixes_rows(labels):
        changes = [dataclasses.replace(c, note="; ".join(filter(None, (c.note, MIXED_FILE)))) for c in changes]
    changes.sort(key=lambda c: (c.kind == "added", c.line or 0))
    line_map = {lab.line: i for i, lab in enumerate(kept, start=1)}
    return dataclasses.replace(record, labels=labels, edited=True), changes, line_map


def _class_id(det: _Box, dataset: Dataset, rel: str) -> int:
    """The class of a detection from its ``label`` (the App edits the label, not our ``class_id``)."""
    label = det.label
    stored = det.class_id
    if isinstance(stored, int) and dataset.class_name(stored) == label:
        return stored
    if label in dataset.names:
        return dataset.names.index(label)
    raise ValueError(
        f"{rel}: class {label!r} is not one of the dataset's classes ({', '.join(dataset.names)}); "
        "relabel it in the App to a known class"
    )


#: ``note`` of a change to a polygon line (changes.csv's ``before``/``after`` are its bounding box, which is how
#: Ultralytics reads a polygon when it trains a detector).
POLYGON_KEPT = "polygon line: its points kept (before/after: its bounding box)"
POLYGON_MOVED = "polygon line: its points moved and scaled into the new box (before/after: its bounding box)"
POLYGON_DELETED = "polygon line (before: its bounding box)"
POLYGON_ADDED = (
    "written as a 4-point polygon, the box's corners: the file's other rows are polygons, and Ultralytics skips "
    "a file that mixes polygon and box rows"
)
POLYGON_MEMBER = (
    "a group box split into its members: this member is a new object, written as the 4-point polygon of its box "
    "(the group's outline is not its own; before: the group's bounding box)"
)
#: ``note`` of every change to a label file that mixes polygon and box rows once written.
MIXED_FILE = (
    "the file mixes polygon and box rows: Ultralytics skips the whole image when training "
    "('labels mix segment and detection rows'; see `curate info`)"
)


def _adds_polygons(labels: list[Label]) -> bool:
    """Whether a box added to a file of ``labels`` is written as a polygon: when most of its rows are polygons
    (all of them, or a file that already mixes the two, ties included).

    Why: Ultralytics skips a file that mixes polygon and box rows, so a file of polygons gets polygons. A file
    that already mixes them is skipped either way; the added row takes the form of most of its rows, so the
    rows to rewrite when the file is fixed stay the few odd ones (on a tie a polygon: the 4 corners read as the
    same box to a detector, and a segmenter needs polygons).
    """
    polygons = sum(lab.polygon is not None for lab in labels)
    return bool(labels) and polygons * 2 >= len(labels)


def _mixes_rows(labels: list[Label]) -> bool:
    polygons = sum(lab.polygon is not None for lab in labels)
    return 0 < polygons < len(labels)


def _rectangle(cx: float, cy: float, w: float, h: float) -> tuple[float, ...]:
    """The 4 corners of a box as a polygon line's points (clockwise from the top left)."""
    x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
    return (x1, y1, x2, y1, x2, y2, x1, y2)


def _move_polygon(old: Label, box: tuple[float, float, float, float]) -> tuple[float, ...] | None:
    """Map a polygon from its old box into the new one (keeps the shape when a box is moved/resized)."""
    if old.polygon is None:
        return None
    cx, cy, w, h = box
    sx = w / old.w if old.w else 1.0
    sy = h / old.h if old.h else 1.0
    ox, oy = old.cx - old.w / 2, old.cy - old.h / 2
    nx, ny = cx - w / 2, cy - h / 2
    out: list[float] = []
    for x, y in zip(old.polygon[0::2], old.polygon[1::2]):
        out += [nx + (x - ox) * sx, ny + (y - oy) * sy]
    return tuple(out)


def _label_text(label: Label) -> str:
    return f"{label.class_id} {label.cx:.6f} {label.cy:.6f} {label.w:.6f} {label.h:.6f}"


def ok_labels(fo_dataset: "fo.Dataset", original: Dataset | None = None) -> list[tuple[str, int]]:
    """``(image rel, line)`` of the labels a reviewer tagged ``ok`` (not a problem), sorted.

    Export writes them to a sidecar so a later audit does not flag them again. Without ``original``
    the lines are those of the original label files. With it, they are the lines in the files that
    ``save_yolo(from_fiftyone(fo_dataset, original)[0], …)`` writes (:func:`ok_marks`: a label file
    rewritten because of other edits is renumbered, ok-tagged labels of excluded images are dropped; rels
    stay the original ones, the writer's layout maps them). Added detections (no ``line``) are skipped.
    """
    if original is None:
        return sorted({(rel, line) for _, rel, line in _ok_tagged(fo_dataset)})
    return sorted({(m.rel, m.written) for m in ok_marks(fo_dataset, original)})


def ok_images(fo_dataset: "fo.Dataset") -> set[tuple[str, None]]:
    """``(image rel, None)`` of the samples a reviewer tagged ``ok``: the image looked at and fine, so a later
    audit does not flag its image-level findings again (:func:`curate.audit.runner.drop_ok`; its boxes are marked
    one by one)."""
    rels, tags = fo_dataset.values(["curate_rel", "tags"])
    return {(rel, None) for rel, t in zip(rels, tags) if rel and OK_TAG in (t or [])}


def ok_on_changed_images(fo_dataset: "fo.Dataset", original: Dataset) -> tuple[set[tuple[str, str]], list[str]]:
    """``(split, rel)`` of the samples with an ``ok`` tag (on the sample or on a box) whose image file no longer has
    the bytes it was loaded into FiftyOne with (:func:`changed_images`), and one warning per file.

    Why: a reviewer's ``ok`` is for the picture the App showed, the file as loaded (:data:`IMAGE_HASH_FIELD`). A file
    replaced since, or rewritten with its size and time kept (the fingerprint, by size and time, does not see it), is
    a picture nobody looked at, so its marks are not used, as curate_ok.json's ``image_hash`` is not once exported.
    The tags stay in FiftyOne: they are the reviewer's.
    """
    tagged = {rel for rel, _ in ok_images(fo_dataset)} | {rel for _, rel, _ in _ok_tagged(fo_dataset)}
    changed = changed_images(fo_dataset, original, tagged)
    why = (
        "the image file changed since it was loaded there"
        if fo_dataset.has_sample_field(IMAGE_HASH_FIELD)
        else UNHASHED_CHANGED
    )
    warnings = [
        f"{rel}: tagged ok in FiftyOne, but {why}: the ok is not used (its findings are shown again)"
        for rel in sorted({rel for _, rel in changed})
    ]
    return changed, warnings


#: Why a review held in a FiftyOne dataset without image hashes is not used for an image (:func:`changed_images`).
UNHASHED_CHANGED = (
    "the FiftyOne dataset was built by a curate that kept no image hash and files changed since it was loaded, "
    "so whether this is the picture looked at cannot be told"
)


def changed_images(fo_dataset: "fo.Dataset", original: Dataset, rels: set[str]) -> set[tuple[str, str]]:
    """``(split, rel)`` of the samples among ``rels`` whose image file no longer has the bytes it was loaded into
    FiftyOne with (:data:`IMAGE_HASH_FIELD`).

    A FiftyOne dataset built by a curate that kept no image hash: none while its own fingerprint holds (every image's
    size and time as loaded, what that curate went by; the next audit or review hashes them,
    :func:`curate.fiftyone.load.to_fiftyone`), every one of ``rels`` once files changed since (which did cannot be
    told)."""
    if not rels:
        return set()
    paths = {(r.split, r.rel): r.path for r in original.images if r.rel in rels}
    if not fo_dataset.has_sample_field(IMAGE_HASH_FIELD):
        if loaded_from_files_as_now(fo_dataset, original):
            return set()
        return {key for key in zip(*fo_dataset.values(["split", "curate_rel"])) if key in paths}
    loaded = loaded_image_hashes(fo_dataset)
    return {key for key, h in loaded.items() if key in paths and h != image_hash(paths[key])}


@dataclass(frozen=True)
class OkMark:
    """An ``ok`` label in one listing (``split``, ``rel``) of its image: ``line`` in the original label file,
    ``written`` its line in the label file the export writes for that listing."""

    split: str
    rel: str
    line: int
    written: int


def ok_marks(fo_dataset: "fo.Dataset", original: Dataset, *, min_confidence: float | None = None) -> list[OkMark]:
    """The ``ok`` tags, addressed to the label files that ``save_yolo(from_fiftyone(fo_dataset, original)[0], …)``
    writes, sorted.

    A mark follows its label when other lines of its file are deleted (renumbered) and goes with its label
    or its sample (deleted, excluded). One image file listed under several splits is one sample per
    listing and, once exported, one label file per listing: a mark given on one listing holds for every
    listing whose copy of that label is unchanged: before the export the listings share one label file,
    and an audit of the input reads a mark for all of them (:func:`curate.audit.runner.load_ok_marks` keys marks
    by rel), so an audit of the export should too.
    """
    tagged = _ok_tagged(fo_dataset)
    if not tagged:
        return []
    review = _review(fo_dataset, original, min_confidence)
    originals = {(r.split, r.rel): {lab.line: lab for lab in r.labels} for r in original.images}
    written = {(r.split, r.rel): {lab.line: lab for lab in r.labels} for r in review.images}
    splits_of = original.splits_by_file()
    out: set[OkMark] = set()
    for tagged_split, rel, loaded_line in tagged:
        for split in splits_of.get(rel, []):
            key = (split, rel)
            # a file changed on disk since the review: the mark goes to its label's line now, if still there
            line = review.rebased[key].get(loaded_line) if key in review.rebased else loaded_line
            old = originals[key].get(line) if line is not None else None
            if key in review.excluded or key not in written or old is None:
                continue
            new_line = review.line_maps[key].get(line) if key in review.line_maps else line
            if new_line is None:  # the label itself was deleted on this listing
                continue
            if split != tagged_split and written[key].get(new_line) != dataclasses.replace(old, line=new_line):
                continue  # this listing's copy of the label was edited: the mark was not given for it
            out.add(OkMark(split, rel, line, new_line))
    return sorted(out, key=lambda m: (m.rel, m.split, m.line))


def _ok_tagged(fo_dataset: "fo.Dataset") -> set[tuple[str, str, int]]:
    """``(split, rel, original line)`` of every detection tagged ``ok``."""
    from fiftyone import ViewField as F

    view = fo_dataset.filter_labels("ground_truth", F("tags").contains(OK_TAG))
    splits, rels, lines = view.values(["split", "curate_rel", "ground_truth.detections.line"])
    return {
        (split, rel, int(line))
        for split, rel, ls in zip(splits, rels, lines)
        for line in (ls or [])
        if line is not None
    }
