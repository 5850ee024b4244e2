"""Write audit findings into FiftyOne as tags, scores and saved views, so a reviewer opens the worst first.

Audit results (:func:`tag_findings`)
    label tag ``audit:<check>`` and attribute ``audit_<check>`` (score) on flagged detections; sample tag
    ``audit:<check>`` for image-level findings; sample field ``audit_<check>`` = the sample's worst score
    for that check (image, label or region findings) and ``audit_worst`` = its worst score overall;
    region findings (e.g. ``missing``) as detections in ``audit_regions``. Saved views ``audit/<check>``
    and ``audit/all`` (FiftyOne accepts ``/`` in saved-view names; their URL slugs drop it:
    ``audit/grouped`` → ``auditgrouped``).

A re-run replaces the earlier marks (except those of the checks it did not run) and skips the rewrite when
nothing changed; the reviewer's own tags (``ok``, ``exclude``) are never touched.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from curate.core.findings import Finding
from curate.fiftyone.samples import _detection_doc

if TYPE_CHECKING:  # fiftyone is imported lazily: its import costs seconds
    import fiftyone as fo

#: Prefix of the tags, fields and saved views that :func:`tag_findings` owns (and replaces on re-run).
AUDIT_PREFIX = "audit"


def audit_tag(check: str) -> str:
    """The sample/label tag of a check: ``audit:<check>``."""
    return f"{AUDIT_PREFIX}:{check}"


def audit_field(check: str) -> str:
    """The sample field / detection attribute holding a check's score: ``audit_<check>``."""
    return f"{AUDIT_PREFIX}_{check}"


def audit_view_name(check: str) -> str:
    """The saved view of a check: ``audit/<check>`` (``audit/all`` for all checks)."""
    return f"{AUDIT_PREFIX}/{check}"


#: Sample field with a sample's worst audit score over all checks (sorts ``audit/all``).
WORST_FIELD = f"{AUDIT_PREFIX}_worst"
#: Sample field with region findings (e.g. ``missing``) as detections: label = check, confidence = score.
REGIONS_FIELD = f"{AUDIT_PREFIX}_regions"


@dataclass
class _Marks:
    """What :func:`tag_findings` will write, gathered from the findings before touching the database."""

    # check -> (sample id, label id) -> worst score
    label: dict[str, dict[tuple[str, str], float]] = dataclasses.field(default_factory=dict)
    sample_tag: dict[str, set[str]] = dataclasses.field(default_factory=dict)  # sid -> checks tagged on the sample
    sample_score: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)  # check -> sid -> worst
    regions: dict[str, list[Finding]] = dataclasses.field(default_factory=dict)  # sid -> region findings
    unmatched: int = 0  # findings whose image is not in the FiftyOne dataset


@dataclass
class _State:
    """The ids, lines and tags of a FiftyOne dataset, read in one query."""

    sample_ids: list[str]
    rels: list[str | None]
    sample_tags: list[list[str]]
    label_ids: list[list[str]]
    lines: list[list[int | None]]
    label_tags: list[list[list[str]]]

    @classmethod
    def read(cls, fo_dataset: "fo.Dataset") -> "_State":
        sids, rels, tags, lids, lines, ltags = fo_dataset.values(
            ["id", "curate_rel", "tags"] + [f"ground_truth.detections.{k}" for k in ("id", "line", "tags")]
        )
        return cls(sids, rels, [t or [] for t in tags], [x or [] for x in lids], [x or [] for x in lines],
                   [[t or [] for t in x] if x else [] for x in ltags])  # fmt: skip


def tag_findings(
    fo_dataset: "fo.Dataset", findings: list[Finding], *, keep: set[str] | frozenset[str] = frozenset()
) -> None:
    """Mark audit findings in FiftyOne and save one view per check, replacing any earlier audit marks
    except those of the checks in ``keep`` (checks this audit did not run, e.g. the pixel checks under
    ``--fast``: a quick run must not erase what the full audit found).

    - a finding with a ``line`` tags that detection ``audit:<check>`` and sets its attribute
      ``audit_<check>`` (the worst score if several findings hit it); a line that is no detection (e.g. a
      malformed line the reader skipped) is treated as image-level;
    - an image-level finding tags the sample ``audit:<check>``;
    - a region finding becomes a detection in ``audit_regions`` (label = check, confidence = score,
      tagged ``audit:<check>``);
    - every sample with a finding gets the field ``audit_<check>`` = its worst score for that check
      (whatever the kind), and ``audit_worst`` = its worst over all checks (kept ones included);
    - saved views ``audit/<check>`` (samples with a finding of that check, worst first) and ``audit/all``.

    Tags that are not ours (``ok``, ``exclude``, splits) are kept. Findings for images not in
    ``fo_dataset`` (dataset-level notes, label files without an image) are skipped. All writes are bulk
    (``set_values``/``set_label_values``): a handful of database round trips, not one per sample.
    """
    made_from = _findings_digest(findings) + "|kept:" + ",".join(sorted(keep))
    if fo_dataset.info.get(AUDIT_DIGEST_KEY) == _audit_digest(fo_dataset, made_from):
        return  # this dataset already carries exactly these marks: a re-run with no change skips the rewrite
    state = _State.read(fo_dataset)
    marks = _gather(state, findings)
    kept_scores, kept_regions = _kept_marks(fo_dataset, keep)
    _clear_audit_fields(fo_dataset, keep)
    _write_tags(fo_dataset, state, marks, keep)
    worst: dict[str, float] = {}
    for scores in [*marks.sample_score.values(), *kept_scores.values()]:
        for sid, s in scores.items():
            worst[sid] = max(worst.get(sid, 0.0), s)
    regions = {sid: _region_detections(marks.regions.get(sid, []), kept_regions.get(sid, []))
               for sid in set(marks.regions) | set(kept_regions)}  # fmt: skip
    _declare_audit_fields(fo_dataset, marks, worst=bool(worst), regions=bool(regions))

    # fields are declared above, so no per-value schema inference (expand_schema=False)
    for check, scores in marks.label.items():
        items = [{"sample_id": sid, "label_id": lid, "value": s} for (sid, lid), s in scores.items()]
        fo_dataset.set_label_values(f"ground_truth.detections.{audit_field(check)}", items)
    for check, scores in marks.sample_score.items():
        fo_dataset.set_values(audit_field(check), scores, key_field="id", expand_schema=False)
    if worst:
        fo_dataset.set_values(WORST_FIELD, worst, key_field="id", expand_schema=False)
    if regions:
        fo_dataset.set_values(REGIONS_FIELD, regions, key_field="id", expand_schema=False, validate=False)

    for check in sorted(marks.sample_score):
        _save_worst_first(fo_dataset, audit_view_name(check), audit_field(check), f"{check}, worst first")
    if worst:
        _save_worst_first(fo_dataset, audit_view_name("all"), WORST_FIELD, "all checks, worst first")
    fo_dataset.info[AUDIT_DIGEST_KEY] = _audit_digest(fo_dataset, made_from)  # the views just saved count too
    fo_dataset.save()


def _kept_marks(
    fo_dataset: "fo.Dataset", keep: set[str] | frozenset[str]
) -> tuple[dict[str, dict[str, float]], dict[str, list[dict[str, Any]]]]:
    """The sample scores (check → sample id → score) and region documents (sample id → docs) that the checks in
    ``keep`` wrote in an earlier audit."""
    if not keep:
        return {}, {}
    schema = fo_dataset.get_field_schema(flat=True)
    scores: dict[str, dict[str, float]] = {}
    for check in sorted(keep):
        if audit_field(check) in schema:
            ids, values = fo_dataset.values(["id", audit_field(check)])
            scores[check] = {sid: v for sid, v in zip(ids, values) if v is not None}
    regions: dict[str, list[dict[str, Any]]] = {}
    if REGIONS_FIELD in schema:
        paths = ["id"] + [f"{REGIONS_FIELD}.detections.{k}" for k in ("label", "bounding_box", "confidence")]
        for sid, labels, boxes, confs in zip(*fo_dataset.values(paths)):
            for label, box, conf in zip(labels or [], boxes or [], confs or []):
                if label in keep:
                    doc = _detection_doc(label, list(box), confidence=conf)
                    doc["tags"] = [audit_tag(label)]
                    regions.setdefault(sid, []).append(doc)
    return scores, regions


AUDIT_DIGEST_KEY = "curate_audit_digest"  # in ``fo_dataset.info``: what the audit marks were made from


def _findings_digest(findings: list[Finding]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for f in findings:
        h.update(f"{f.check}|{f.image}|{f.line}|{f.score:.6f}|{f.region}\n".encode())
    return h.hexdigest()


def _audit_digest(fo_dataset: "fo.Dataset", findings_digest: str) -> str:
    """The findings (their digest), the samples and boxes they were written onto, and the saved audit views.

    Any change to one of these (a new audit result, a box added or deleted in the App, a view removed by
    hand) changes the digest, so the marks are written again; two cheap aggregations, not a full read.
    """
    views = sorted(v for v in fo_dataset.list_saved_views() if v.startswith(f"{AUDIT_PREFIX}/"))
    state = repr((findings_digest, len(fo_dataset), fo_dataset.count("ground_truth.detections"), views))
    return hashlib.blake2b(state.encode(), digest_size=16).hexdigest()


def _save_worst_first(fo_dataset: "fo.Dataset", name: str, field: str, what: str) -> None:
    """Save the samples that have ``field`` set, highest first, as view ``name``."""
    view = fo_dataset.exists(field).sort_by(field, reverse=True)
    fo_dataset.save_view(name, view, description=f"curate audit: {what}", overwrite=True)


def _declare_audit_fields(fo_dataset: "fo.Dataset", marks: _Marks, *, worst: bool, regions: bool) -> None:
    import fiftyone as fo

    for check in marks.label:
        fo_dataset.add_sample_field(f"ground_truth.detections.{audit_field(check)}", fo.FloatField)
    for check in marks.sample_score:
        fo_dataset.add_sample_field(audit_field(check), fo.FloatField)
    if worst:
        fo_dataset.add_sample_field(WORST_FIELD, fo.FloatField)
    if regions:
        fo_dataset.add_sample_field(REGIONS_FIELD, fo.EmbeddedDocumentField, embedded_doc_type=fo.Detections)


def _gather(state: _State, findings: list[Finding]) -> _Marks:
    by_rel = {
        rel: (sid, dict(zip(lines, lids)))
        for sid, rel, lids, lines in zip(state.sample_ids, state.rels, state.label_ids, state.lines)
    }
    marks = _Marks()
    for f in findings:
        if f.image not in by_rel:
            marks.unmatched += 1
            continue
        sid, line_to_lid = by_rel[f.image]
        per_sample = marks.sample_score.setdefault(f.check, {})
        per_sample[sid] = max(per_sample.get(sid, 0.0), f.score)
        if f.region is not None:
            marks.regions.setdefault(sid, []).append(f)
        elif f.line is not None and f.line in line_to_lid:
            per_label = marks.label.setdefault(f.check, {})
            key = (sid, line_to_lid[f.line])
            per_label[key] = max(per_label.get(key, 0.0), f.score)
        else:
            marks.sample_tag.setdefault(sid, set()).add(f.check)
    return marks


def _is_audit_tag(tag: str) -> bool:
    return tag.startswith(f"{AUDIT_PREFIX}:")


def _write_tags(
    fo_dataset: "fo.Dataset", state: _State, marks: _Marks, keep: set[str] | frozenset[str] = frozenset()
) -> None:
    """Replace the audit tags of samples and labels in two bulk writes, keeping every other tag (and the audit
    tags of the checks in ``keep``)."""

    def ours(tag: str) -> bool:
        return _is_audit_tag(tag) and tag.split(":", 1)[1] not in keep

    label_checks: dict[str, list[str]] = {}
    for check in sorted(marks.label):
        for _, lid in marks.label[check]:
            label_checks.setdefault(lid, []).append(audit_tag(check))
    sample_values: dict[str, list[str]] = {}
    label_values: list[dict[str, Any]] = []
    for sid, tags, lids, ltags in zip(state.sample_ids, state.sample_tags, state.label_ids, state.label_tags):
        new = [t for t in tags if not ours(t)] + [audit_tag(c) for c in sorted(marks.sample_tag.get(sid, ()))]
        if new != tags:
            sample_values[sid] = new
        for lid, old in zip(lids, ltags):
            new_l = [t for t in old if not ours(t)] + label_checks.get(lid, [])
            if new_l != old:
                label_values.append({"sample_id": sid, "label_id": lid, "value": new_l})
    if sample_values:
        fo_dataset.set_values("tags", sample_values, key_field="id")
    if label_values:
        fo_dataset.set_label_values("ground_truth.detections.tags", label_values)


def _region_detections(findings: list[Finding], kept: list[dict[str, Any]] = ()) -> dict[str, Any]:
    """Region findings as a stored ``fo.Detections`` document: label = check, confidence = score; after
    ``kept``, the region documents of checks this audit did not run."""
    dets = list(kept)
    for f in findings:
        cx, cy, w, h = f.region  # type: ignore[misc]
        doc = _detection_doc(f.check, [cx - w / 2, cy - h / 2, w, h], confidence=f.score)
        doc["tags"] = [audit_tag(f.check)]
        dets.append(doc)
    return {"_cls": "Detections", "detections": dets}


def _clear_audit_fields(fo_dataset: "fo.Dataset", keep: set[str] | frozenset[str] = frozenset()) -> None:
    """Delete the audit sample fields, detection attributes and saved views (and the marks' digest), except
    those of the checks in ``keep``."""
    if fo_dataset.info.pop(AUDIT_DIGEST_KEY, None) is not None:
        fo_dataset.save()
    kept = {audit_field(c) for c in keep}
    schema = fo_dataset.get_field_schema(flat=True)
    attrs = [
        k
        for k in schema
        if k.startswith(f"ground_truth.detections.{AUDIT_PREFIX}_") and k.rsplit(".", 1)[1] not in kept
    ]
    fields = [k for k in schema if k.startswith(f"{AUDIT_PREFIX}_") and "." not in k and k not in kept]
    if attrs:
        fo_dataset.delete_sample_fields(attrs)
    if fields:
        fo_dataset.delete_sample_fields(fields)
    for view_name in fo_dataset.list_saved_views():
        if view_name.startswith(f"{AUDIT_PREFIX}/") and view_name.split("/", 1)[1] not in keep:
            fo_dataset.delete_saved_view(view_name)
