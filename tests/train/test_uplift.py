"""The uplift benchmark's batch cleaner (benchmarks/uplift.py): its policies, and the label measure that chose one.

The cleaned version (c) of the experiment is made by the real FiftyOne deletions and `curate export
--accept-proposals`; the policies are compared on labels by a copy of those edits without FiftyOne
(``cleaned_labels``). These tests pin what each policy does to each kind of flagged box, and that the copy
gives exactly the labels the real path exports.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from uplift import DELETE_FIX, Policy, cleaned_labels, drop_flagged, label_agreement

from curate.audit.proposals import Proposal
from curate.core.dataset import Dataset, ImageRecord, Label
from curate.fiftyone.load import to_fiftyone
from curate.fiftyone.proposals import write_proposals
from curate.io.yolo import load_yolo
from curate.ops.export import export_reviewed

A, B, V = "train/images/a.jpg", "train/images/b.jpg", "valid/images/v.jpg"
TREE = {
    "train/a.jpg": ["0 0.3 0.3 0.2 0.2", "0 0.31 0.3 0.2 0.2", "1 0.7 0.7 0.3 0.3", "1 0.7 0.3 0.2 0.2"],
    "train/b.jpg": ["0 0.5 0.5 0.6 0.6", "1 0.2 0.8 0.1 0.1"],
    "val/v.jpg": ["0 0.5 0.5 0.2 0.2", "0 0.51 0.5 0.2 0.2"],
}


def _finding(split, image, check, score, line=None, proposal=None, region=None) -> dict:
    return {
        "split": split,
        "image": image,
        "check": check,
        "score": score,
        "line": line,
        "region": region,
        "message": check,
        "data": {"proposal": proposal} if proposal else {},
    }


def _proposal(action: str, class_id: int, confidence: float, box: list[float] | None = None) -> dict:
    return {"action": action, "class_id": class_id, "box": box, "confidence": confidence}


#: One flagged box of every kind the policies treat differently, and their proposals (as the audit writes them).
FINDINGS = [
    _finding("train", A, "border_cut", 0.8, 1),  # a note: never deleted
    _finding("train", A, "duplicate", 0.95, 2, _proposal("delete", 0, 0.95)),
    _finding("train", A, "background_heavy", 0.92, 3, _proposal("resize", 1, 0.92, [0.7, 0.7, 0.15, 0.15])),
    _finding("train", A, "shifted", 0.7, 4),  # no proposal: repair keeps it, drop-flagged deletes it
    _finding("train", B, "grouped", 0.8, 1),  # no proposal, fix is deletion: both delete it
    _finding("train", B, "class_inconsistent", 0.6, 2, _proposal("relabel", 0, 0.6)),  # under the bar
    _finding("train", B, "missing", 0.93, None, _proposal("add", 1, 0.93, [0.8, 0.2, 0.1, 0.1]), [0.8, 0.2, 0.1, 0.1]),
    _finding("val", V, "duplicate", 0.99, 2, _proposal("delete", 0, 0.99)),
]
EXPECTED = {
    "repair": {
        "a.txt": [(0, 0.3, 0.3, 0.2, 0.2), (1, 0.7, 0.7, 0.15, 0.15), (1, 0.7, 0.3, 0.2, 0.2)],
        "b.txt": [(1, 0.2, 0.8, 0.1, 0.1), (1, 0.8, 0.2, 0.1, 0.1)],
    },
    "drop-flagged": {
        "a.txt": [(0, 0.3, 0.3, 0.2, 0.2), (1, 0.7, 0.7, 0.15, 0.15)],
        "b.txt": [(1, 0.8, 0.2, 0.1, 0.1)],
    },
}


def _train_labels(ds: Dataset) -> dict[str, list[tuple]]:
    return {
        Path(r.rel).with_suffix(".txt").name: [
            (lab.class_id, *(round(v, 4) for v in (lab.cx, lab.cy, lab.w, lab.h))) for lab in r.labels
        ]
        for r in ds.split("train")
    }


def _proposals(ds: Dataset) -> list[Proposal]:
    split_of = {r.rel: r.split for r in ds.images}
    return [
        Proposal(
            split_of[f["image"]],
            f["image"],
            f["line"],
            f["check"],
            p["action"],
            p["class_id"],
            None if p["box"] is None else tuple(p["box"]),
            p["confidence"],
        )
        for f in FINDINGS
        if (p := f["data"].get("proposal"))
    ]


@pytest.mark.parametrize("policy", [Policy(0.9, DELETE_FIX), Policy(0.9, None)], ids=["repair", "drop-flagged"])
def test_each_policy_cleans_train_the_same_with_and_without_fiftyone(make_yolo_tree, tmp_path: Path, policy):
    """repair applies the confident proposals (delete, resize, add), deletes the grouped box and keeps the
    shifted box and the unsure relabel; drop-flagged deletes those two as well. Val is left alone (its
    proposal rejected), and the FiftyOne path exports exactly the labels ``cleaned_labels`` computes."""
    root = make_yolo_tree(tmp_path / "noisy", {k: list(v) for k, v in TREE.items()})
    ds = load_yolo(root)
    assert {r.rel for r in ds.images} == {A, B, V}
    findings_json = tmp_path / "findings.json"
    findings_json.write_text(json.dumps({"findings": FINDINGS}))

    expected = EXPECTED[policy.name.split(" ")[0]]
    assert _train_labels(cleaned_labels(ds, FINDINGS, policy)) == expected

    write_proposals(to_fiftyone(ds), _proposals(ds), ds)  # what `curate audit` leaves in FiftyOne
    deleted = drop_flagged(root, findings_json, policy)
    assert deleted == {"repair": 1, "drop-flagged": 3}[policy.name.split(" ")[0]]
    export_reviewed(ds, tmp_path / "cleaned", min_confidence=policy.min_confidence)
    exported = load_yolo(tmp_path / "cleaned")
    assert _train_labels(exported) == expected
    (val,) = exported.split("val")
    assert len(val.labels) == 2  # the confident val proposal was rejected: only train is cleaned


def _ds(labels: list[Label]) -> Dataset:
    return Dataset(Path("/x"), "x", ["a", "b"], [ImageRecord("train", Path("/x/i.jpg"), "i.jpg", labels=labels)])


def test_label_agreement_counts_wrong_lost_and_loose_boxes():
    """Against two clean boxes: one kept exactly, one loosened (IoU 0.64: matched at 0.5–0.6, not above), one
    extra box of the wrong class on the first: matched 2 of 2, 1 matching none; F1 2·2/(2+3) at IoU 0.5, and
    over 0.5–0.95 the loose box counts at 3 of the 10 thresholds."""
    clean = _ds([Label(0, 0.3, 0.3, 0.2, 0.2, 1), Label(1, 0.7, 0.7, 0.2, 0.2, 2)])
    other = _ds([Label(0, 0.3, 0.3, 0.2, 0.2, 1), Label(1, 0.7, 0.7, 0.25, 0.25, 2), Label(1, 0.3, 0.3, 0.2, 0.2, 3)])
    a = label_agreement(clean, other)
    assert (a["clean_boxes"], a["boxes"], a["matched"], a["extra"]) == (2, 3, 2, 1)
    assert a["mean_iou"] == pytest.approx((1 + 0.64) / 2)
    assert a["f1_50"] == pytest.approx(0.8)
    assert a["f1_50_95"] == pytest.approx((3 * 0.8 + 7 * 0.4) / 10)
