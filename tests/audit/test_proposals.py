"""Proposed fixes: made from the checks' evidence, shown in FiftyOne, accepted by tag or in batch by the export."""

from __future__ import annotations

import csv
from pathlib import Path

from curate.audit.proposals import ADD_PRIOR, Proposal, propose
from curate.audit.runner import run_audit
from curate.core.dataset import Dataset, ImageRecord, Label
from curate.core.findings import Finding
from curate.fiftyone.identity import find_fiftyone
from curate.fiftyone.proposals import ACCEPT_TAG, PROPOSALS_FIELD, REJECT_TAG, write_proposals
from curate.io.yolo import load_yolo
from curate.ops.export import export_reviewed

AUDIT = dict(only={"duplicate"}, report=False, use_cache=False)


def _dataset() -> Dataset:
    labels = [
        Label(0, 0.5, 0.5, 0.4, 0.4, line=1),
        Label(0, 0.5, 0.5, 0.4, 0.4, line=2),
        Label(1, 0.2, 0.2, 0.1, 0.1, line=3),
    ]
    return Dataset(Path("/x"), "x", ["apple", "pear"], [ImageRecord("train", Path("/x/a.jpg"), "a.jpg", None, labels)])


def test_a_proposal_only_where_the_evidence_names_the_fix() -> None:
    ds = _dataset()
    found = [
        Finding("train", "a.jpg", "duplicate", 1.0, "copy", line=2),
        Finding(
            "train", "a.jpg", "class_inconsistent", 0.8, "pear?", line=1, data={"suggested": "pear", "p_suggested": 0.9}
        ),
        Finding(
            "train",
            "a.jpg",
            "missing",
            0.7,
            "unboxed",
            region=(0.8, 0.8, 0.1, 0.1),
            data={"class_id": 1, "evidence": "model"},
        ),
        Finding(
            "train",
            "a.jpg",
            "missing",
            0.9,
            "copy",
            region=(0.8, 0.2, 0.1, 0.1),
            data={"class_id": 0, "evidence": "duplicate"},
        ),
        Finding(
            "train", "a.jpg", "grouped", 0.9, "group", line=1, data={"same_class_inside": 2}
        ),  # no readable image to judge layouts of the box with: no split
        Finding(
            "train", "a.jpg", "background_heavy", 0.9, "loose", line=3, data={"side_extent": {"left": 0.3}}
        ),  # no readable image to learn a tighter box from: no resize
        Finding("train", "a.jpg", "ambiguous", 0.9, "which?", line=3),  # which box is right: not known
        Finding("train", "a.jpg", "missing", 0.7, "unboxed", region=(0.1, 0.8, 0.1, 0.1), data={"class_id": -1}),
    ]
    got = {(p.check, p.line, p.action, p.class_id, round(p.confidence, 3)) for p in propose(found, ds)}
    # an ambiguous second label of an object: its crop looks like the class of the box under it: delete it
    ds.images[0].labels.append(Label(1, 0.5, 0.5, 0.4, 0.4, line=4))
    extra = Finding(
        "train", "a.jpg", "class_inconsistent", 0.9, "apple?", line=4, data={"suggested": "apple", "p_suggested": 1.0}
    )
    (p,) = propose([extra], ds)
    assert (p.line, p.action) == (4, "delete")
    assert got == {("duplicate", 2, "delete", 0, 1.0), ("class_inconsistent", 1, "relabel", 1, 0.72),
                   ("missing", None, "add", 1, round(0.7 * ADD_PRIOR, 3)),
                   ("missing", None, "add", 0, 0.9)}  # fmt: skip


def test_an_add_proposes_the_checks_refined_box_and_attaches_to_its_region() -> None:
    """``missing`` puts the box to add in ``data["add_box"]`` (the region stays the window it found); a malformed one
    falls back to the region; the proposal lands in its own finding's data."""
    from curate.audit.proposals import attach

    ds = _dataset()
    refined = Finding("train", "a.jpg", "missing", 0.7, "unboxed", region=(0.8, 0.8, 0.1, 0.1),
                      data={"class_id": 1, "evidence": "objectness", "add_box": [0.82, 0.79, 0.12, 0.1]})  # fmt: skip
    broken = Finding("train", "a.jpg", "missing", 0.6, "unboxed", region=(0.2, 0.8, 0.1, 0.1),
                     data={"class_id": 1, "evidence": "objectness", "add_box": [0.2, "x", 2.0]})  # fmt: skip
    ps = propose([refined, broken], ds)
    assert [p.box for p in ps] == [(0.82, 0.79, 0.12, 0.1), (0.2, 0.8, 0.1, 0.1)]
    attach([refined, broken], ps)
    assert refined.data["proposal"]["box"] == [0.82, 0.79, 0.12, 0.1]
    assert broken.data["proposal"]["box"] == [0.2, 0.8, 0.1, 0.1]
    assert refined.region == (0.8, 0.8, 0.1, 0.1)


def test_a_relabel_only_where_the_crop_model_names_the_class_given_a_swap() -> None:
    """The confidence is the finding's P(swap) times the named class's share of the probability outside the label;
    no relabel where that share is below MIN_CLASS_SHARE (the crop model can't tell which class the box was)."""
    ds = _dataset()
    ds.names.extend(["plum", "fig", "kiwi"])

    def relabel(p_label: float, p_suggested: float) -> list[tuple[int, float]]:
        data = {"suggested": "pear", "p_label": p_label, "p_suggested": p_suggested}
        f = Finding("train", "a.jpg", "class_inconsistent", 0.5, "pear?", line=1, data=data)
        return [(p.class_id, round(p.confidence, 3)) for p in propose([f], ds)]

    # the label holds half: given a swap, pear (0.45 of the other 0.5) is nine times likelier than plum
    assert relabel(0.5, 0.45) == [(1, 0.45)]
    # pear 0.3 leads, but plum, fig and kiwi hold 0.5 beside it: given a swap, pear is less likely than not
    assert relabel(0.2, 0.3) == []


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _audited(make_yolo_tree, root: Path):
    root = make_yolo_tree(root, {"train/d.jpg": ["1 0.25 0.75 0.1 0.2", "1 0.25 0.75 0.1 0.2", "0 0.6 0.3 0.2 0.2"],
                                 "train/e.jpg": ["0 0.5 0.5 0.3 0.3", "0 0.52 0.5 0.3 0.3"]})  # fmt: skip
    ds = load_yolo(root)
    result = run_audit(ds, out_dir=root.parent / f"{root.name}-audit", **AUDIT)
    return ds, result


def test_proposals_reach_csv_json_and_fiftyone(make_yolo_tree, tmp_path: Path) -> None:
    ds, result = _audited(make_yolo_tree, tmp_path / "p")
    rows = _rows(result.out_dir / "proposals.csv")
    assert [(r["image"], r["line"], r["action"], r["class"]) for r in rows] == [
        ("train/images/d.jpg", "2", "delete", "b"),
        ("train/images/e.jpg", "2", "delete", "a"),
    ]
    dup = next(f for f in result.findings if f.check == "duplicate" and f.image == "train/images/d.jpg")
    assert dup.data["proposal"]["action"] == "delete" and dup.data["proposal"]["confidence"] == 1.0
    sample = next(s for s in find_fiftyone(ds) if s.curate_rel == "train/images/d.jpg")
    (p,) = sample[PROPOSALS_FIELD].detections
    assert (p.line, p.action, p.check, p.label) == (2, "delete", "duplicate", "b")


def test_batch_export_applies_only_confident_unrejected_proposals(make_yolo_tree, tmp_path: Path) -> None:
    ds, result = _audited(make_yolo_tree, tmp_path / "b")
    confidences = {r["image"]: float(r["confidence"]) for r in _rows(result.out_dir / "proposals.csv")}
    assert confidences["train/images/d.jpg"] == 1.0 and confidences["train/images/e.jpg"] < 0.9

    plain = export_reviewed(ds, tmp_path / "plain")
    assert plain.changes == []  # nothing accepted: nothing applied
    batch = export_reviewed(ds, tmp_path / "batch", min_confidence=0.9)
    assert [(c.image, c.line, c.kind, c.source, c.confidence) for c in batch.changes] == [
        ("train/images/d.jpg", 2, "deleted", "proposed", 1.0)
    ]
    assert (tmp_path / "batch" / "labels" / "train" / "d.txt").read_text() == "1 0.25 0.75 0.1 0.2\n0 0.6 0.3 0.2 0.2\n"
    row = _rows(tmp_path / "batch" / "changes.csv")[0]
    assert row["source"] == "proposed" and row["confidence"] == "1.0000"

    fod = find_fiftyone(ds)
    for s in fod:
        for p in s[PROPOSALS_FIELD].detections if s[PROPOSALS_FIELD] else []:
            p.tags.append(REJECT_TAG if s.curate_rel.endswith("d.jpg") else ACCEPT_TAG)
        s.save()
    tagged = export_reviewed(ds, tmp_path / "tagged", min_confidence=0.9)
    assert [(c.image, c.line, c.kind) for c in tagged.changes] == [("train/images/e.jpg", 2, "deleted")]


def test_the_reviewers_own_edit_of_a_line_wins_over_its_proposal(make_yolo_tree, tmp_path: Path) -> None:
    ds, _ = _audited(make_yolo_tree, tmp_path / "r")
    s = next(s for s in find_fiftyone(ds) if s.curate_rel == "train/images/d.jpg")
    s.ground_truth.detections[1].bounding_box = [0.5, 0.5, 0.1, 0.1]  # the reviewer moved the copy instead
    s.save()
    result = export_reviewed(ds, tmp_path / "out", min_confidence=0.5)
    d = [(c.line, c.kind, c.source) for c in result.changes if c.image == "train/images/d.jpg"]
    assert d == [(2, "edited", "review")]
    assert any("reviewer changed that label" in w for w in result.warnings)


def test_an_accepted_proposal_survives_a_reaudit(make_yolo_tree, tmp_path: Path) -> None:
    ds, _ = _audited(make_yolo_tree, tmp_path / "k")
    s = next(s for s in find_fiftyone(ds) if s.curate_rel == "train/images/e.jpg")
    s[PROPOSALS_FIELD].detections[0].tags.append(ACCEPT_TAG)
    s.save()
    run_audit(ds, out_dir=tmp_path / "again", **dict(AUDIT, only={"duplicate", "ambiguous"}))
    result = export_reviewed(ds, tmp_path / "out")
    assert [(c.image, c.line, c.kind, c.source) for c in result.changes] == [
        ("train/images/e.jpg", 2, "deleted", "proposed")
    ]


def test_proposals_are_drawn_in_their_own_colour(make_yolo_tree, tmp_path: Path) -> None:
    """Proposals and labels were drawn in similar blues in the App."""
    ds, _ = _audited(make_yolo_tree, tmp_path / "c")
    scheme = find_fiftyone(ds).app_config.color_scheme
    colours = {f["path"]: f["fieldColor"] for f in scheme.fields}
    assert colours[PROPOSALS_FIELD] != colours["ground_truth"] and scheme.color_by == "field"


def test_an_accepted_resize_moves_the_box_in_the_export(make_yolo_tree, tmp_path: Path) -> None:
    """A ``resize`` (a loose box tightened, a shifted one moved back) was counted as applied but left the box."""
    ds, _ = _audited(make_yolo_tree, tmp_path / "z")
    fod = find_fiftyone(ds)
    tight = Proposal("train", "train/images/d.jpg", 3, "background_heavy", "resize", 0, (0.62, 0.32, 0.1, 0.12), 0.95)
    write_proposals(fod, [tight], ds)
    s = next(s for s in fod if s.curate_rel == "train/images/d.jpg")
    shown = {(p.line, p.action): p.bounding_box for p in s[PROPOSALS_FIELD].detections}
    assert [round(v, 6) for v in shown[(3, "resize")]] == [0.57, 0.26, 0.1, 0.12]  # the new box, beside the label
    result = export_reviewed(ds, tmp_path / "out", min_confidence=0.9)
    assert [(c.image, c.line, c.kind, c.source) for c in result.changes] == [
        ("train/images/d.jpg", 3, "edited", "proposed")
    ]
    lines = (tmp_path / "out" / "labels" / "train" / "d.txt").read_text().splitlines()
    assert [[float(v) for v in ln.split()] for ln in lines[2:]] == [[0, 0.62, 0.32, 0.1, 0.12]]
    assert lines[:2] == ["1 0.25 0.75 0.1 0.2", "1 0.25 0.75 0.1 0.2"]  # the duplicate below the bar stays


def _split(ds, fod, line: int = 3, confidence: float = 0.95) -> list[Proposal]:
    """Line 3 of d.jpg (a box 0.2 × 0.2 at (0.6, 0.3)) proposed as its two halves, side by side."""
    members = [Proposal("train", "train/images/d.jpg", line, "grouped", "split", 0, (cx, 0.3, 0.1, 0.2), confidence)
               for cx in (0.55, 0.65)]  # fmt: skip
    write_proposals(fod, members, ds)
    return members


def test_a_split_replaces_the_group_box_by_its_members_in_batch(make_yolo_tree, tmp_path: Path) -> None:
    """A grouped finding's member boxes: shown as one proposal per member on the group box's line, applied together."""
    ds, _ = _audited(make_yolo_tree, tmp_path / "s")
    fod = find_fiftyone(ds)
    _split(ds, fod)
    s = next(s for s in fod if s.curate_rel == "train/images/d.jpg")
    shown = sorted((p.line, p.action, [round(v, 6) for v in p.bounding_box]) for p in s[PROPOSALS_FIELD].detections)
    assert shown == [(3, "split", [0.5, 0.2, 0.1, 0.2]), (3, "split", [0.6, 0.2, 0.1, 0.2])]
    result = export_reviewed(ds, tmp_path / "out", min_confidence=0.9)
    got = [(c.line, c.kind, c.source, c.confidence) for c in result.changes if c.image == "train/images/d.jpg"]
    assert got == [(3, "edited", "proposed", 0.95), (4, "added", "proposed", 0.95)]
    lines = (tmp_path / "out" / "labels" / "train" / "d.txt").read_text().splitlines()
    assert lines[:2] == ["1 0.25 0.75 0.1 0.2", "1 0.25 0.75 0.1 0.2"]
    assert sorted([round(float(v), 6) for v in ln.split()] for ln in lines[2:]) == [
        [0, 0.55, 0.3, 0.1, 0.2], [0, 0.65, 0.3, 0.1, 0.2]]  # fmt: skip


def test_one_accepted_member_accepts_its_split_and_a_rejected_member_is_left_out(make_yolo_tree, tmp_path) -> None:
    ds, _ = _audited(make_yolo_tree, tmp_path / "t")
    fod = find_fiftyone(ds)
    _split(ds, fod, confidence=0.6)  # below the batch bar: only the reviewer's tag applies it
    s = next(s for s in fod if s.curate_rel == "train/images/d.jpg")
    members = [p for p in s[PROPOSALS_FIELD].detections if p.action == "split"]
    members[0].tags.append(ACCEPT_TAG)
    s.save()
    lines = export_reviewed(ds, tmp_path / "both").out / "labels" / "train" / "d.txt"
    assert sorted(float(ln.split()[1]) for ln in lines.read_text().splitlines() if ln.startswith("0 ")) == [0.55, 0.65]
    # the reviewer keeps the split but rejects its second member; a re-audit keeps the reviewed split
    members[1].tags.append(REJECT_TAG)
    s.save()
    run_audit(ds, out_dir=tmp_path / "again", **AUDIT)
    lines = export_reviewed(ds, tmp_path / "one").out / "labels" / "train" / "d.txt"
    assert [float(ln.split()[1]) for ln in lines.read_text().splitlines() if ln.startswith("0 ")] == [0.55]


def test_a_splits_members_reach_findings_json_and_one_csv_row_each(tmp_path: Path) -> None:
    from curate.audit.proposals import attach, write_csv

    ds = _dataset()
    group = Finding("train", "a.jpg", "grouped", 0.9, "group", line=1)
    members = [Proposal("train", "a.jpg", 1, "grouped", "split", 0, (cx, 0.5, 0.2, 0.4), 0.8) for cx in (0.4, 0.6)]
    attach([group], members)
    assert group.data["proposal"] == {"action": "split", "class_id": 0, "confidence": 0.8,
                                      "members": [[0.4, 0.5, 0.2, 0.4], [0.6, 0.5, 0.2, 0.4]]}  # fmt: skip
    rows = _rows(write_csv(members, ds, tmp_path / "proposals.csv"))
    assert [(r["line"], r["action"], r["class"], r["x"]) for r in rows] == [
        ("1", "split", "apple", "0.400000"),
        ("1", "split", "apple", "0.600000"),
    ]


def test_the_benchmark_tables_relabels_and_what_a_batch_export_would_apply() -> None:
    """benchmarks/proposals.py: per dataset the relabels made on planted swaps and the share right, beside those at
    confidence >= 0.9 (what ``--accept-proposals`` applies by default), then the mean and the worst dataset."""
    import importlib.util
    import sys

    bench_dir = Path(__file__).resolve().parents[2] / "benchmarks"
    sys.path.insert(0, str(bench_dir))
    spec = importlib.util.spec_from_file_location("proposals_bench", bench_dir / "proposals.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)  # type: ignore[union-attr]

    def seed(made: int, right: int, sure: tuple[int, int]) -> dict:
        return {"made": {"swapped": made}, "right": {"swapped": right}, "confident": {"swapped": sure},
                "flagged": {"swapped": made + 1}, "flagged_with": {"swapped": made}, "on_untouched": 1,
                "iou": {"missing": [0.4, 0.6, 0.7]}}  # fmt: skip

    lines = bench.edits_table({"a": [seed(10, 9, (4, 4))], "b": [seed(4, 2, (0, 0))]})
    rows = {line.split(" | ")[0]: line.split(" | ")[1:] for line in lines if line.startswith("| ")}
    assert rows["| a"][:2] == ["10, 90%", "4, 100%"] and rows["| b"][:2] == ["4, 50%", "0"]
    assert rows["| a"][-3:] == ["67% (0.60)", "10 of 11", "1 |"]
    assert rows["| **mean**"][:2] == ["70%", "100%"] and rows["| **worst**"][:2] == ["50%", "100%"]
