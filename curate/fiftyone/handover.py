"""Carry a reviewer's work over when a FiftyOne dataset is rebuilt because its label files changed on disk.

A reviewer's work in the App (edited, added and deleted boxes, ``ok`` and ``exclude`` tags) lives only in
that FiftyOne dataset until it is exported, so it is never deleted: when the label files change on disk,
:func:`curate.fiftyone.load.to_fiftyone` rebuilds the dataset and carries each reviewed image over whose
label file and image are still the ones the review was made on (each sample keeps the labels it was loaded from
in ``curate_loaded``, and its image's hash in ``curate_image_hash``); an image reviewed *and* changed on disk (its
label file, or the picture itself) cannot be merged safely, so the old FiftyOne
dataset is then kept under a dated name, and a note says so with the command that exports it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from curate.core.dataset import Dataset, ImageRecord, Label
from curate.fiftyone.diff import _Box, _diff_record
from curate.fiftyone.identity import loaded_from_files_as_now
from curate.fiftyone.samples import IMAGE_HASH_FIELD, LOADED_FIELD, _loaded_labels, loaded_image_hashes, same_line
from curate.fiftyone.tags import AUDIT_PREFIX, _is_audit_tag

if TYPE_CHECKING:  # fiftyone is imported lazily: its import costs seconds
    import fiftyone as fo


@dataclass
class _Reviewed:
    """One sample of the old FiftyOne dataset that holds a reviewer's work."""

    sample_id: str
    tags: list[str]  # the reviewer's sample tags (no split, no audit tags)
    carry: bool  # its label file and its image are still the ones the review was made on


def _hand_over(old: "fo.Dataset", new: "fo.Dataset", dataset: Dataset, *, note: Callable[[str], None] | None) -> None:
    """Carry the review held in ``old`` over to ``new`` (just built from ``dataset``); delete ``old`` only
    when all of it was carried.

    A sample is *reviewed* when its boxes differ from those it was loaded with (matched by line, as the
    export matches them) or it or one of its boxes carries a tag of the reviewer's (``ok``, ``exclude``, any
    tag that is neither its split nor an ``audit:`` tag). A reviewed sample whose listing still has the
    labels and the image bytes the review was made on is carried over: its boxes (audit marks dropped) and the
    reviewer's tags. One whose label file or image changed on disk since, or whose image is gone, cannot be merged
    without guessing which version is right, so then ``old`` is kept whole under ``<name>-review-<date>``, and
    ``note`` gives the command that exports it.
    """
    reviewed = _reviewed_samples(old, dataset, loaded_image_hashes(new))
    kept_name = None
    if any(not r.carry for r in reviewed.values()):
        kept_name = f"{old.name}-review-{time.strftime('%Y%m%d-%H%M%S')}"
        old.name = kept_name
    carried = {key: r for key, r in reviewed.items() if r.carry}
    if carried:
        _carry(old, new, carried)
    if kept_name is None:
        old.delete()
    if note and carried:
        note(f"FiftyOne: the review of {len(carried)} image(s) was carried over to the rebuilt dataset")
    if note and kept_name:
        lost = sum(1 for r in reviewed.values() if not r.carry)
        why = (
            "changed on disk since their review"
            if old.has_sample_field(IMAGE_HASH_FIELD)
            else "changed on disk since their review, or cannot be told unchanged (the FiftyOne dataset was built by "
            "a curate that kept no image hash, and files changed since it was loaded)"
        )
        note(
            f"FiftyOne: {lost} reviewed image(s) {why}; the whole review is kept in "
            f"FiftyOne dataset {kept_name!r}: curate export {dataset.root} --from-fiftyone {kept_name} --out NEW/"
        )


def _reviewed_samples(
    old: "fo.Dataset", dataset: Dataset, new_hashes: dict[tuple[str, str], str | None]
) -> dict[tuple[str, str], _Reviewed]:
    """``(split, rel)`` → each sample of ``old`` that holds review work (see :func:`_hand_over`). ``new_hashes``: the
    images' hashes as the new dataset loaded them. A dataset built by a curate that kept no image hash: its images are
    the ones reviewed only while its own fingerprint holds (sizes and times as loaded); otherwise which of them
    changed cannot be told, and none is carried (a review of a picture that changed is never carried silently)."""
    has_loaded = old.has_sample_field(LOADED_FIELD)
    hashed = old.has_sample_field(IMAGE_HASH_FIELD)
    old_hashes = loaded_image_hashes(old)
    # A dataset built by an older curate has no loaded labels; if it was loaded from the files as they are
    # now (its own fingerprint still holds), those files are what it was loaded with.
    files_as_loaded = loaded_from_files_as_now(old, dataset)
    records = {(r.split, r.rel): r for r in dataset.images}
    attrs = ("label", "bounding_box", "line", "class_id", "tags")
    paths = ["id", "split", "curate_rel", "tags"] + [f"ground_truth.detections.{k}" for k in attrs]
    paths += [LOADED_FIELD] if has_loaded else []
    values = list(old.values(paths))
    if not has_loaded:
        values.append([None] * len(values[0]))
    from curate.fiftyone.proposals import PROPOSALS_FIELD

    if old.has_sample_field(PROPOSALS_FIELD):  # a proposal tagged accept/reject is review work too
        values.append(old.values(f"{PROPOSALS_FIELD}.detections.tags"))
    else:
        values.append([None] * len(values[0]))
    out: dict[tuple[str, str], _Reviewed] = {}
    for sid, split, rel, tags, ls, bs, ns, cs, lts, loaded, pts in zip(*values):
        if rel is None:
            continue
        key = (split, rel)
        record = records.get(key)
        reviewer_tags = [t for t in tags or [] if t != split and not _is_audit_tag(t)]
        label_tagged = any(not _is_audit_tag(t) for ts in [*(lts or []), *(pts or [])] for t in ts or [])
        if loaded is not None:
            base = _loaded_labels(loaded)
        elif files_as_loaded and record is not None:
            base = record.labels
        else:
            base = None  # what it was loaded with is unknown
        reference = base if base is not None else (record.labels if record is not None else [])
        dets = [_Box(*row) for row in zip(ls or [], bs or [], ns or [], cs or [])]
        if not (reviewer_tags or label_tagged or _edited(reference, dets, dataset, key)):
            continue
        same_file = base is not None and record is not None and _same_labels(base, record.labels)
        same_image = old_hashes.get(key) == new_hashes.get(key) if hashed else files_as_loaded
        out[key] = _Reviewed(sid, reviewer_tags, carry=same_file and same_image)
    return out


def _edited(labels: list[Label], detections: list[_Box], dataset: Dataset, key: tuple[str, str]) -> bool:
    """Whether ``detections`` differ from ``labels`` as the export would see it (any change at all)."""
    record = ImageRecord(key[0], Path(key[1]), key[1], labels=list(labels))
    try:
        return bool(_diff_record(record, detections, dataset)[1])
    except ValueError:  # a class the dataset doesn't know: the reviewer typed it
        return True


def _same_labels(loaded: list[Label], now: list[Label]) -> bool:
    """Whether a label file holds the lines a sample was loaded with, at the same line numbers (:func:`same_line`: a
    polygon's points too)."""
    return len(loaded) == len(now) and all(a.line == b.line and same_line(a, b) for a, b in zip(loaded, now))


def _carry(old: "fo.Dataset", new: "fo.Dataset", carried: dict[tuple[str, str], _Reviewed]) -> None:
    """Copy the boxes and the reviewer's tags of ``carried`` samples of ``old`` onto ``new``'s samples."""
    import fiftyone as fo

    new_ids = {(split, rel): sid for sid, split, rel in zip(*new.values(["id", "split", "curate_rel"]))}
    by_old_id = {r.sample_id: key for key, r in carried.items()}
    from curate.fiftyone.proposals import PROPOSALS_FIELD

    has_proposals = old.has_sample_field(PROPOSALS_FIELD)
    boxes: dict[str, Any] = {}
    tags: dict[str, list[str]] = {}
    proposals: dict[str, Any] = {}
    fields = ["ground_truth", "tags"] + ([PROPOSALS_FIELD] if has_proposals else [])
    for sample in old.select(list(by_old_id)).select_fields(fields):
        key = by_old_id[sample.id]
        sid = new_ids[key]
        dets = []
        for det in sample.ground_truth.detections if sample.ground_truth else []:
            d = det.to_dict()
            d.pop("_id", None)
            d["tags"] = [t for t in d.get("tags", []) if not _is_audit_tag(t)]
            for k in [k for k in d if k.startswith(f"{AUDIT_PREFIX}_")]:
                del d[k]
            dets.append(fo.Detection.from_dict(d))
        boxes[sid] = fo.Detections(detections=dets)
        tags[sid] = [key[0], *carried[key].tags]
        if has_proposals and sample[PROPOSALS_FIELD] is not None:
            proposals[sid] = sample[PROPOSALS_FIELD].copy()
    new.set_values("ground_truth", boxes, key_field="id")
    new.set_values("tags", tags, key_field="id")
    if proposals:
        new.set_values(PROPOSALS_FIELD, proposals, key_field="id")
