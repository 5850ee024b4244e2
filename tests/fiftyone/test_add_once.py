"""An accepted ``add`` proposal is written once per object: not where the reviewer boxed that object in the App.

Real FiftyOne database (tests/conftest.py), real files; boxes are drawn on the persistent FiftyOne dataset, as the
App draws them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from curate.audit.proposals import Proposal
from curate.audit.runner import run_audit
from curate.fiftyone.identity import find_fiftyone
from curate.fiftyone.proposals import ACCEPT_TAG, PROPOSALS_FIELD, write_proposals
from curate.io.yolo import load_yolo
from curate.ops.export import export_reviewed

IMAGES = {"train/a.jpg": ["0 0.5 0.5 0.2 0.2", "1 0.3 0.3 0.1 0.1"], "val/b.jpg": ["0 0.6 0.6 0.2 0.2"]}
AUDIT = dict(only={"duplicate"}, report=False, use_cache=False)
A = "train/images/a.jpg"


def _proposed(tmp_path: Path, make_yolo_tree, proposals: list[Proposal]):
    root = make_yolo_tree(tmp_path / "adds", IMAGES)
    ds = load_yolo(root)
    run_audit(ds, out_dir=tmp_path / "a1", **AUDIT)
    fod = find_fiftyone(ds)
    write_proposals(fod, proposals, ds)
    return root, fod


def _sample(fod, rel: str):
    return next(s for s in fod if s.curate_rel == rel)


def _lines(out: Path) -> list[list[float]]:
    return [[float(v) for v in t.split()] for t in (out / "labels" / "train" / "a.txt").read_text().splitlines()]


def test_a_batch_accepted_add_is_not_doubled_by_the_box_the_reviewer_drew(make_yolo_tree, tmp_path: Path) -> None:
    """The reviewer drew the missing object's box in the App, then exported with ``--accept-proposals``: the add
    proposed for the same object was written too (two boxes on one object, which the next audit flags as
    duplicate). The reviewer's box is written, the add is not, and a warning says so; an add elsewhere is written."""
    import fiftyone as fo

    root, fod = _proposed(
        tmp_path,
        make_yolo_tree,
        [
            Proposal("train", A, None, "missing", "add", 0, (0.8, 0.8, 0.1, 0.1), 0.95),
            Proposal("train", A, None, "missing", "add", 1, (0.15, 0.8, 0.1, 0.1), 0.95),
        ],
    )
    s = _sample(fod, A)
    s.ground_truth.detections.append(fo.Detection(label="a", bounding_box=[0.757, 0.75, 0.1, 0.1]))  # by hand
    s.save()
    result = export_reviewed(load_yolo(root), tmp_path / "out", min_confidence=0.9)
    lines = _lines(tmp_path / "out")
    assert len(lines) == 4, lines
    assert lines[2] == pytest.approx([0, 0.807, 0.8, 0.1, 0.1]) and lines[3] == pytest.approx([1, 0.15, 0.8, 0.1, 0.1])
    assert [(c.kind, c.source) for c in result.changes] == [("added", "review"), ("added", "proposed")]
    said = [w for w in result.warnings if w.startswith(f"{A}: proposal to add 'a' not applied")]
    assert len(said) == 1 and "a box drawn in the review already boxes it" in said[0], result.warnings


def test_two_accepted_adds_on_one_object_are_written_once(make_yolo_tree, tmp_path: Path) -> None:
    """Two checks (or two regions) proposing the same object, both tagged ``accept``: one line, the more confident
    add's, and a warning for the other."""
    root, fod = _proposed(
        tmp_path,
        make_yolo_tree,
        [
            Proposal("train", A, None, "missing", "add", 0, (0.8, 0.8, 0.1, 0.1), 0.7),
            Proposal("train", A, None, "missing", "add", 0, (0.81, 0.8, 0.1, 0.1), 0.8),
        ],
    )
    s = _sample(fod, A)
    for p in s[PROPOSALS_FIELD].detections:
        p.tags.append(ACCEPT_TAG)
    s.save()
    result = export_reviewed(load_yolo(root), tmp_path / "out")
    lines = _lines(tmp_path / "out")
    assert len(lines) == 3 and lines[2] == pytest.approx([0, 0.81, 0.8, 0.1, 0.1]), lines
    assert [(c.kind, c.source) for c in result.changes] == [("added", "proposed")]
    assert any(
        "not applied" in w and "another accepted proposal's box already boxes it" in w for w in result.warnings
    ), result.warnings


def test_a_box_added_in_the_review_is_not_doubled_by_one_drawn_on_disk_since(make_yolo_tree, tmp_path: Path) -> None:
    """The reviewer boxed a missing object in the App while someone boxed it by hand in the label file: the export
    (of the review, merged into the file as it is now) wrote both. The disk's line is kept, as for a line changed on
    both sides, and a warning names it; the reviewer's other added box is written."""
    import fiftyone as fo

    root, fod = _proposed(tmp_path, make_yolo_tree, [])
    s = _sample(fod, A)
    s.ground_truth.detections.append(fo.Detection(label="a", bounding_box=[0.75, 0.75, 0.1, 0.1]))
    s.ground_truth.detections.append(fo.Detection(label="b", bounding_box=[0.1, 0.75, 0.1, 0.1]))
    s.save()
    (root / "train" / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.1\n0 0.81 0.79 0.11 0.1\n")
    result = export_reviewed(load_yolo(root), tmp_path / "out")
    lines = _lines(tmp_path / "out")
    assert len(lines) == 4 and lines[2] == pytest.approx([0, 0.81, 0.79, 0.11, 0.1]), lines
    assert lines[3] == pytest.approx([1, 0.15, 0.8, 0.1, 0.1])
    assert [(c.kind, c.line) for c in result.changes] == [("added", 4)]
    said = [w for w in result.warnings if w.startswith(f"{A}: a 'a' box added in the review was not added")]
    assert len(said) == 1 and "line 3" in said[0], result.warnings
