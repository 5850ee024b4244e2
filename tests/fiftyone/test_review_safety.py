"""A user's labels are never lost or mixed up: dataset identity and the review held in FiftyOne.

Real FiftyOne database (tests/conftest.py), real files; edits are made on the persistent FiftyOne dataset,
as the App makes them.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from curate.audit.runner import run_audit
from curate.fiftyone.identity import IdentityError, default_name, find_fiftyone
from curate.fiftyone.load import BUILDING_SUFFIX, to_fiftyone
from curate.fiftyone.samples import OK_TAG, loaded_text
from curate.io.yolo import load_yolo
from curate.ops.export import ExportError, export_reviewed

IMAGES = {
    "train/a.jpg": ["0 0.5 0.5 0.2 0.2", "1 0.3 0.3 0.1 0.1"],
    "train/b.jpg": ["1 0.4 0.4 0.3 0.3"],
    "val/c.jpg": ["0 0.6 0.6 0.2 0.2"],
}
AUDIT = dict(only={"duplicate"}, report=False, use_cache=False)  # the FiftyOne part of an audit, quickly


def _sample(fo_dataset, rel: str):
    return next(s for s in fo_dataset if s.curate_rel == rel)


def _move_first_box(fo_dataset, rel: str, box: list[float]) -> None:
    s = _sample(fo_dataset, rel)
    s.ground_truth.detections[0].bounding_box = box
    s.save()


def _changes(out: Path) -> list[dict[str, str]]:
    with (out / "changes.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_two_folders_with_one_name_are_two_fiftyone_datasets(make_yolo_tree, tmp_path: Path) -> None:
    """The reported failure: `aquarium/` in two places, audit of the second, export of the first took the
    second's FiftyOne copy (3,219 false changes)."""
    first = load_yolo(make_yolo_tree(tmp_path / "one" / "aquarium", IMAGES))
    other = dict(IMAGES, **{"train/b.jpg": ["0 0.7 0.7 0.2 0.2"]})
    second = load_yolo(make_yolo_tree(tmp_path / "two" / "aquarium", other))
    assert first.name == second.name and first.key != second.key

    run_audit(second, out_dir=tmp_path / "a2", **AUDIT)
    _move_first_box(find_fiftyone(second), "train/images/a.jpg", [0.1, 0.1, 0.2, 0.2])  # reviewed the second
    with pytest.raises(ExportError, match="run `curate audit"):
        export_reviewed(first, tmp_path / "out1")  # the first has no FiftyOne dataset of its own yet

    run_audit(first, out_dir=tmp_path / "a1", **AUDIT)
    assert default_name(first) != default_name(second)
    assert default_name(first).startswith("curate-aquarium-")
    result = export_reviewed(first, tmp_path / "out1")
    assert result.changes == [] and result.fiftyone_name == default_name(first)
    assert len(export_reviewed(second, tmp_path / "out2").changes) == 1


def test_a_fiftyone_dataset_of_another_folder_is_refused(make_yolo_tree, tmp_path: Path) -> None:
    first = load_yolo(make_yolo_tree(tmp_path / "one" / "pets", IMAGES))
    second = load_yolo(make_yolo_tree(tmp_path / "two" / "pets", IMAGES))
    theirs = to_fiftyone(second)
    with pytest.raises(IdentityError, match="belongs to .*two/pets"):
        export_reviewed(first, tmp_path / "out", fiftyone_name=theirs.name)
    with pytest.raises(IdentityError):
        to_fiftyone(first, name=theirs.name)
    assert not (tmp_path / "out").exists()


def test_edit_survives_a_reaudit_after_another_label_file_changed(make_yolo_tree, tmp_path: Path) -> None:
    """The issue's test: edit a box in FiftyOne, change another label file on disk, re-audit: the edit is there."""
    root = make_yolo_tree(tmp_path / "fish", IMAGES)
    ds = load_yolo(root)
    run_audit(ds, out_dir=tmp_path / "a1", **AUDIT)
    fod = find_fiftyone(ds)
    _move_first_box(fod, "train/images/a.jpg", [0.1, 0.1, 0.2, 0.2])
    s = _sample(fod, "train/images/b.jpg")
    s.ground_truth.detections[0].tags.append(OK_TAG)
    s.save()
    (root / "valid" / "labels" / "c.txt").write_text("1 0.5 0.5 0.4 0.4\n")  # changed on disk, not reviewed

    notes: list[str] = []
    changed = load_yolo(root)
    run_audit(changed, out_dir=tmp_path / "a2", note=notes.append, **AUDIT)
    fod = find_fiftyone(changed)
    assert fod.name == default_name(changed)
    assert _sample(fod, "train/images/a.jpg").ground_truth.detections[0].bounding_box == [0.1, 0.1, 0.2, 0.2]
    assert OK_TAG in _sample(fod, "train/images/b.jpg").ground_truth.detections[0].tags
    assert _sample(fod, "valid/images/c.jpg").ground_truth.detections[0].label == "b"  # the new file's label
    assert any("carried over" in n for n in notes), notes
    kinds = {(c.image, c.kind) for c in export_reviewed(changed, tmp_path / "out").changes}
    assert kinds == {("train/images/a.jpg", "edited")}


def test_review_of_a_file_changed_on_disk_is_kept_under_a_dated_name(make_yolo_tree, tmp_path: Path) -> None:
    root = make_yolo_tree(tmp_path / "fish", IMAGES)
    ds = load_yolo(root)
    run_audit(ds, out_dir=tmp_path / "a1", **AUDIT)
    _move_first_box(find_fiftyone(ds), "train/images/a.jpg", [0.1, 0.1, 0.2, 0.2])
    (root / "train" / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")  # the same file changed on disk

    notes: list[str] = []
    changed = load_yolo(root)
    run_audit(changed, out_dir=tmp_path / "a2", note=notes.append, **AUDIT)
    import fiftyone as fo

    kept = [n for n in fo.list_datasets() if n.startswith(default_name(changed) + "-review-")]
    assert len(kept) == 1 and any(kept[0] in n and "--from-fiftyone" in n for n in notes), notes
    fresh = find_fiftyone(changed)
    assert len(_sample(fresh, "train/images/a.jpg").ground_truth.detections) == 1  # the file as it is now
    result = export_reviewed(changed, tmp_path / "out", fiftyone_name=kept[0])
    edited = [c for c in result.changes if c.image == "train/images/a.jpg" and c.kind == "edited"]
    assert edited and edited[0].after.startswith("0 0.200000 0.200000")  # the reviewer's box, not lost


def _kept_review(make_yolo_tree, tmp_path: Path, edit, on_disk: list[str]):
    """Audit, ``edit`` the FiftyOne dataset, rewrite train/a's label file to ``on_disk``, re-audit: the review is
    kept under a dated name. Returns the dataset as it is now and that name."""
    import fiftyone as fo

    root = make_yolo_tree(tmp_path / "fish", IMAGES)
    ds = load_yolo(root)
    run_audit(ds, out_dir=tmp_path / "a1", **AUDIT)
    edit(find_fiftyone(ds))
    (root / "train" / "labels" / "a.txt").write_text("".join(line + "\n" for line in on_disk))
    changed = load_yolo(root)
    run_audit(changed, out_dir=tmp_path / "a2", **AUDIT)
    kept = [n for n in fo.list_datasets() if n.startswith(default_name(changed) + "-review-")]
    assert len(kept) == 1
    return changed, kept[0]


def test_a_kept_review_keeps_the_lines_added_or_edited_on_disk_since(make_yolo_tree, tmp_path: Path) -> None:
    """Exported with --from-fiftyone, a review is merged into the file as it is now: a line added on disk after
    the review, and a line edited by hand that the reviewer did not touch, are kept (they were deleted/undone)."""
    hand_edited, added = "1 0.35 0.3 0.1 0.1", "0 0.8 0.8 0.1 0.1"
    changed, kept = _kept_review(
        make_yolo_tree,
        tmp_path,
        lambda fod: _move_first_box(fod, "train/images/a.jpg", [0.1, 0.1, 0.2, 0.2]),
        [added, "0 0.5 0.5 0.2 0.2", hand_edited],  # the reviewed line is now line 2
    )
    result = export_reviewed(changed, tmp_path / "out", fiftyone_name=kept)
    lines = (tmp_path / "out" / "labels" / "train" / "a.txt").read_text().splitlines()
    assert lines[0] == added and lines[2] == hand_edited, lines
    assert lines[1].startswith("0 0.2") and len(lines) == 3, lines  # the reviewer's move, on its line now
    assert [(c.line, c.kind) for c in result.changes if c.image == "train/images/a.jpg"] == [(2, "edited")]


def test_a_line_changed_both_in_a_kept_review_and_on_disk_keeps_the_disk_version(make_yolo_tree, tmp_path) -> None:
    """The one case a merge would have to guess: the disk's version is written, and a warning names the line."""
    changed, kept = _kept_review(
        make_yolo_tree,
        tmp_path,
        lambda fod: _move_first_box(fod, "train/images/a.jpg", [0.1, 0.1, 0.2, 0.2]),
        ["0 0.55 0.5 0.2 0.2", "1 0.3 0.3 0.1 0.1"],  # the reviewed line 1 moved by hand too
    )
    result = export_reviewed(changed, tmp_path / "out", fiftyone_name=kept)
    text = (tmp_path / "out" / "labels" / "train" / "a.txt").read_text()
    assert text == "0 0.55 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.1\n"  # untouched: byte for byte
    assert not [c for c in result.changes if c.image == "train/images/a.jpg"]
    assert any("train/images/a.jpg: line 1" in w and "on disk is kept" in w for w in result.warnings), result.warnings


def _accept(fod, proposals) -> None:
    """The audit's proposals for train/a written to FiftyOne, each tagged ``accept`` as the reviewer would."""
    from curate.fiftyone.proposals import ACCEPT_TAG, PROPOSALS_FIELD, write_proposals

    write_proposals(fod, proposals, load_yolo(Path(fod.info["curate_root"])))
    s = _sample(fod, "train/images/a.jpg")
    for p in s[PROPOSALS_FIELD].detections:
        p.tags.append(ACCEPT_TAG)
    s.save()


def test_an_accepted_proposal_follows_its_line_when_a_line_is_inserted_above_it_on_disk(
    make_yolo_tree, tmp_path: Path
) -> None:
    """A proposal names the line as the audit saw it: a line inserted by hand above it since moves it down. It was
    checked against the disk's line of the same number (another box), so the accepted fix was dropped with "the
    reviewer changed that label"; it is applied to its box where that box is now."""
    from curate.audit.proposals import Proposal

    relabel = Proposal("train", "train/images/a.jpg", 2, "ambiguous", "relabel", 0, None, 0.95)
    changed, kept = _kept_review(
        make_yolo_tree,
        tmp_path,
        lambda fod: _accept(fod, [relabel]),
        ["0 0.8 0.8 0.1 0.1", "0 0.5 0.5 0.2 0.2", "1 0.3 0.3 0.1 0.1"],  # a line inserted above both
    )
    result = export_reviewed(changed, tmp_path / "out", fiftyone_name=kept)
    lines = (tmp_path / "out" / "labels" / "train" / "a.txt").read_text().splitlines()
    assert lines == ["0 0.8 0.8 0.1 0.1", "0 0.5 0.5 0.2 0.2", "0 0.3 0.3 0.1 0.1"], lines
    assert [(c.line, c.kind, c.source) for c in result.changes if c.image == "train/images/a.jpg"] == [
        (3, "relabeled", "proposed")
    ]
    assert not [w for w in result.warnings if "not applied" in w], result.warnings


def test_an_accepted_proposal_whose_line_changed_on_disk_is_not_applied(make_yolo_tree, tmp_path: Path) -> None:
    """The box a proposal was made for was edited by hand since (and another line deleted above it): the proposal
    is not applied to whatever box now has its line number, and the warning says why, naming file and line."""
    from curate.audit.proposals import Proposal

    delete = Proposal("train", "train/images/a.jpg", 2, "duplicate", "delete", 1, None, 1.0)
    changed, kept = _kept_review(make_yolo_tree, tmp_path, lambda fod: _accept(fod, [delete]), ["1 0.32 0.3 0.1 0.1"])
    result = export_reviewed(changed, tmp_path / "out", fiftyone_name=kept)
    assert (tmp_path / "out" / "labels" / "train" / "a.txt").read_text() == "1 0.32 0.3 0.1 0.1\n"
    assert not [c for c in result.changes if c.image == "train/images/a.jpg"]
    assert any(
        w.startswith("train/images/a.jpg: proposal for line 2 (delete) not applied") and "changed on disk" in w
        for w in result.warnings
    ), result.warnings


def test_a_batch_accepted_proposal_in_a_stale_fiftyone_dataset_follows_its_line(make_yolo_tree, tmp_path) -> None:
    """``--accept-proposals`` on a FiftyOne dataset whose label file changed on disk since (not re-audited): the
    same re-addressing, and changes.csv marks the proposal's row ``proposed``, not the line of its old number."""
    from curate.audit.proposals import Proposal
    from curate.fiftyone.proposals import write_proposals

    root = make_yolo_tree(tmp_path / "fish", IMAGES)
    ds = load_yolo(root)
    run_audit(ds, out_dir=tmp_path / "a1", **AUDIT)
    fod = find_fiftyone(ds)
    write_proposals(
        fod, [Proposal("train", "train/images/a.jpg", 1, "loose", "resize", 0, (0.5, 0.5, 0.1, 0.1), 0.95)], ds
    )
    (root / "train" / "labels" / "a.txt").write_text("1 0.7 0.7 0.1 0.1\n0 0.5 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.1\n")
    result = export_reviewed(load_yolo(root), tmp_path / "out", min_confidence=0.9)
    lines = (tmp_path / "out" / "labels" / "train" / "a.txt").read_text().splitlines()
    assert lines[0] == "1 0.7 0.7 0.1 0.1" and lines[2] == "1 0.3 0.3 0.1 0.1", lines
    resized = [float(v) for v in lines[1].split()]
    assert resized == pytest.approx([0, 0.5, 0.5, 0.1, 0.1]), lines  # the resize, on the box it was made for
    assert [(c.line, c.kind, c.source) for c in result.changes] == [(2, "edited", "proposed")]


def test_an_accepted_add_is_not_doubled_by_a_box_drawn_on_disk_since(make_yolo_tree, tmp_path: Path) -> None:
    """An add proposed for an unlabelled object that someone boxed by hand after the audit: adding it too would put two
    boxes on one object. The hand-drawn box is kept, the add is not applied, and a warning names file and line; an add
    elsewhere in the same file is applied."""
    from curate.audit.proposals import Proposal
    from curate.fiftyone.proposals import write_proposals

    root = make_yolo_tree(tmp_path / "fish", IMAGES)
    ds = load_yolo(root)
    run_audit(ds, out_dir=tmp_path / "a1", **AUDIT)
    write_proposals(
        find_fiftyone(ds),
        [
            Proposal("train", "train/images/a.jpg", None, "missing", "add", 0, (0.8, 0.8, 0.1, 0.1), 0.95),
            Proposal("train", "train/images/a.jpg", None, "missing", "add", 1, (0.15, 0.8, 0.1, 0.1), 0.95),
        ],
        ds,
    )
    (root / "train" / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.1\n0 0.81 0.79 0.11 0.1\n")
    result = export_reviewed(load_yolo(root), tmp_path / "out", min_confidence=0.9)
    lines = (tmp_path / "out" / "labels" / "train" / "a.txt").read_text().splitlines()
    assert lines[:3] == ["0 0.5 0.5 0.2 0.2", "1 0.3 0.3 0.1 0.1", "0 0.81 0.79 0.11 0.1"], lines
    assert len(lines) == 4 and [float(v) for v in lines[3].split()] == pytest.approx([1, 0.15, 0.8, 0.1, 0.1])
    assert [(c.kind, c.source) for c in result.changes] == [("added", "proposed")]
    assert any(
        w.startswith("train/images/a.jpg: proposal to add") and "line 3" in w and "already boxes it" in w
        for w in result.warnings
    ), result.warnings


def test_a_review_made_by_an_older_curate_is_adopted_and_kept(make_yolo_tree, tmp_path: Path) -> None:
    """A FiftyOne dataset named `curate-<folder>` without loaded labels (bridge version 1) is renamed, and its
    review survives the rebuild that the new bridge version forces."""
    import fiftyone as fo

    from curate.fiftyone.identity import fingerprint
    from curate.fiftyone.samples import LOADED_FIELD

    root = make_yolo_tree(tmp_path / "legacy-pets", IMAGES)
    ds = load_yolo(root)
    old = to_fiftyone(ds, name=f"curate-{ds.name}")
    old.delete_sample_field(LOADED_FIELD)
    old.info.update(curate_bridge_version=1, curate_fingerprint=fingerprint(ds, version=1))
    old.save()
    _move_first_box(old, "train/images/b.jpg", [0.2, 0.2, 0.3, 0.3])

    notes: list[str] = []
    fod = to_fiftyone(load_yolo(root), note=notes.append)
    assert fod.name == default_name(ds) and not fo.dataset_exists(f"curate-{ds.name}")
    assert _sample(fod, "train/images/b.jpg").ground_truth.detections[0].bounding_box == [0.2, 0.2, 0.3, 0.3]
    assert fod.info["curate_bridge_version"] == 2 and _sample(fod, "train/images/b.jpg")[LOADED_FIELD]


def test_an_interrupted_build_is_never_taken_for_a_finished_one(make_yolo_tree, tmp_path: Path) -> None:
    """A build killed half-way leaves `<name>-building`: the next command deletes it and builds anew."""
    import fiftyone as fo

    ds = load_yolo(make_yolo_tree(tmp_path / "killed", IMAGES))
    half = fo.Dataset(default_name(ds) + BUILDING_SUFFIX, persistent=True)
    assert find_fiftyone(ds) is None
    fod = to_fiftyone(ds)
    assert fod.name == default_name(ds) and len(fod) == 3 and not fo.dataset_exists(half.name)


def test_loaded_text_is_exact() -> None:
    from curate.core.dataset import Label
    from curate.fiftyone.samples import _loaded_labels

    labels = [Label(1, 0.1 + 0.2, 1 / 3, 0.25, 2 / 7, line=4)]
    assert _loaded_labels(loaded_text(labels)) == labels


def test_export_cli_names_its_fiftyone_dataset_and_stops_without_one(make_yolo_tree, tmp_path: Path) -> None:
    root = make_yolo_tree(tmp_path / "cli", IMAGES)
    cmd = [sys.executable, "-m", "curate.app.cli", "export", str(root), "--out", str(tmp_path / "out")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "run `curate audit" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    to_fiftyone(load_yolo(root))
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert default_name(load_yolo(root)) in r.stdout.replace("\n", "")


def test_a_label_tagged_ok_in_the_app_is_not_flagged_by_a_reaudit_of_the_original(
    make_yolo_tree, tmp_path: Path
) -> None:
    """Before any export: the ok tag lives only in FiftyOne, and the next audit of the same folder honours it."""
    root = make_yolo_tree(tmp_path / "dup", {"train/d.jpg": ["1 0.25 0.75 0.1 0.2", "1 0.25 0.75 0.1 0.2"]})
    ds = load_yolo(root)
    first = run_audit(ds, out_dir=tmp_path / "a1", **AUDIT)
    assert [(f.image, f.line) for f in first.findings if f.check == "duplicate"] == [("train/images/d.jpg", 2)]
    s = _sample(find_fiftyone(ds), "train/images/d.jpg")
    s.ground_truth.detections[1].tags.append(OK_TAG)
    s.save()
    again = run_audit(load_yolo(root), out_dir=tmp_path / "a2", **AUDIT)
    assert [f for f in again.findings if f.check == "duplicate"] == []


def test_fast_audit_writes_its_own_folder_and_calls_skipped_checks_not_run(
    make_yolo_tree, tmp_path: Path, monkeypatch
) -> None:
    """`--fast` after a full audit replaced the full report and called the pixel checks it skipped clean."""
    import json

    from curate.audit.runner import default_out_dir

    ds = load_yolo(make_yolo_tree(tmp_path / "quick", IMAGES))
    monkeypatch.chdir(tmp_path)
    result = run_audit(ds, fast=True, fiftyone=False, use_cache=False)
    assert result.out_dir == default_out_dir(ds, fast=True) != default_out_dir(ds)
    assert result.out_dir.name == "audit-fast" and (tmp_path / result.out_dir / "findings.csv").is_file()
    assert result.skipped == {"missing": "--fast", "class_inconsistent": "--fast", "objectlab": "needs --model"}
    assert not any(f.check in result.skipped for f in result.scores)
    meta = json.loads((tmp_path / result.out_dir / "findings.json").read_text())
    assert meta["not_run"] == result.skipped
