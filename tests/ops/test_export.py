"""`curate export`: reviewed FiftyOne labels back to a new YOLO folder (real FiftyOne database, real files).

Edits are made the way the App makes them — on the persistent FiftyOne dataset — and the test checks the
exact changes.csv rows, the rewritten label files, and that every other file is byte-identical.
"""

from __future__ import annotations

import csv
import json
import uuid
from pathlib import Path

import pytest
from PIL import Image

from curate.audit.runner import drop_ok, load_ok_marks
from curate.core.findings import Finding
from curate.fiftyone.load import to_fiftyone
from curate.io.yolo import WriteError, load_yolo
from curate.ops.export import OK_FILE, ExportError, export_reviewed

NAMES = ["apple", "banana", "carrot"]
LABELS = {
    "train/a": "0 0.5 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.1\n2 0.7 0.7 0.2 0.1\n",
    "train/b": "1 0.4 0.4 0.3 0.3\n",
    "train/c": "",  # background image, empty label file
    "train/d": "2 0.25 0.75 0.1 0.2\n0 0.6 0.6 0.1 0.1\n",
    "valid/e": "0 0.5 0.5 0.5 0.5\n",
}


def make_tree(root: Path) -> Path:
    """A small Roboflow-layout dataset: 4 train + 1 valid images, one background."""
    for key, text in LABELS.items():
        split, stem = key.split("/")
        (root / split / "images").mkdir(parents=True, exist_ok=True)
        (root / split / "labels").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 48), (120, 130, 140)).save(root / split / "images" / f"{stem}.jpg")
        (root / split / "labels" / f"{stem}.txt").write_text(text)
    (root / "data.yaml").write_text(f"train: ../train/images\nval: ../valid/images\nnc: 3\nnames: {NAMES}\n")
    return root


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / f"ds-{uuid.uuid4().hex[:8]}")


def exported_labels(out: Path) -> dict[str, bytes]:
    return {f"{p.parent.name}/{p.stem}": p.read_bytes() for p in (out / "labels").glob("*/*.txt")}


def source_labels(root: Path) -> dict[str, bytes]:
    split_of = {"train": "train", "valid": "val"}
    return {f"{split_of[p.parent.parent.name]}/{p.stem}": p.read_bytes() for p in root.glob("*/labels/*.txt")}


def rows(out: Path) -> list[dict[str, str]]:
    with (out / "changes.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_export_of_a_never_audited_dataset_says_to_audit_first(tree: Path, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="run `curate audit .*` first"):
        export_reviewed(load_yolo(tree), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unreviewed_export_is_byte_identical(tree: Path, tmp_path: Path) -> None:
    ds = load_yolo(tree)
    to_fiftyone(ds)  # what `curate audit` made
    result = export_reviewed(ds, tmp_path / "out")
    assert exported_labels(result.out) == source_labels(tree)
    assert rows(result.out) == []
    assert result.changes == [] and not (result.out / OK_FILE).exists()
    assert (result.out / "data.yaml").is_file() and "0 change(s)" in (result.out / "CHANGES.md").read_text()
    # images kept, background included
    assert sorted(p.name for p in (result.out / "images").glob("*/*.jpg")) == [
        "a.jpg",
        "b.jpg",
        "c.jpg",
        "d.jpg",
        "e.jpg",
    ]


def test_unreviewed_sample_export_is_byte_identical(sample_dir: Path, tmp_path: Path) -> None:
    if not sample_dir.is_dir():
        pytest.skip("bundled sample not committed yet")
    ds = load_yolo(sample_dir)
    to_fiftyone(ds)  # what `curate audit` made
    result = export_reviewed(ds, tmp_path / "out")
    assert result.changes == []
    src = {(r.split, r.path.stem): r.label_path.read_bytes() for r in ds.images if r.label_path is not None}
    got = {(p.parent.name, p.stem): p.read_bytes() for p in (result.out / "labels").glob("*/*.txt")}
    assert {k: got[k] for k in src} == src
    assert len(list((result.out / "images").glob("*/*"))) == len(ds.images)


def _edit_in_fiftyone(ds):
    """What a reviewer does in the App, done on the same FiftyOne dataset the App edits."""
    import fiftyone as fo

    from curate.fiftyone.load import to_fiftyone
    from curate.fiftyone.samples import EXCLUDE_TAG, OK_TAG

    fod = to_fiftyone(ds)
    by_rel = {s.curate_rel: s for s in fod}
    a = by_rel["train/images/a.jpg"]
    dets = a.ground_truth.detections
    dets[0].bounding_box = [0.45, 0.4, 0.2, 0.2]  # line 1 moved: cx 0.5 -> 0.55, cy 0.5 -> 0.5
    dets[1].label = "carrot"  # line 2 relabeled 1 -> 2
    del dets[2]  # line 3 deleted
    dets.append(fo.Detection(label="banana", bounding_box=[0.1, 0.1, 0.2, 0.2]))  # added -> new line 3
    a.save()
    by_rel["train/images/b.jpg"].tags.append(EXCLUDE_TAG)
    by_rel["train/images/b.jpg"].save()
    d = by_rel["train/images/d.jpg"]
    d.ground_truth.detections[1].tags.append(OK_TAG)  # looked at, fine
    d.save()
    return fod


def test_edits_give_exact_changes_and_files(tree: Path, tmp_path: Path) -> None:
    ds = load_yolo(tree)
    _edit_in_fiftyone(ds)
    result = export_reviewed(ds, tmp_path / "out")
    assert rows(result.out) == [
        {
            "split": "train",
            "image": "train/images/a.jpg",
            "line": "1",
            "kind": "edited",
            "before": "0 0.500000 0.500000 0.200000 0.200000",
            "after": "0 0.550000 0.500000 0.200000 0.200000",
            "source": "review",
            "confidence": "",
            "note": "",
        },
        {
            "split": "train",
            "image": "train/images/a.jpg",
            "line": "2",
            "kind": "relabeled",
            "before": "1 0.300000 0.300000 0.100000 0.100000",
            "after": "2 0.300000 0.300000 0.100000 0.100000",
            "source": "review",
            "confidence": "",
            "note": "",
        },
        {
            "split": "train",
            "image": "train/images/a.jpg",
            "line": "3",
            "kind": "deleted",
            "before": "2 0.700000 0.700000 0.200000 0.100000",
            "after": "",
            "source": "review",
            "confidence": "",
            "note": "",
        },
        {
            "split": "train",
            "image": "train/images/a.jpg",
            "line": "3",
            "kind": "added",
            "before": "",
            "after": "1 0.200000 0.200000 0.200000 0.200000",
            "source": "review",
            "confidence": "",
            "note": "",
        },
        {
            "split": "train",
            "image": "train/images/b.jpg",
            "line": "",
            "kind": "excluded",
            "before": "",
            "after": "",
            "source": "review",
            "confidence": "",
            "note": "",
        },
    ]
    got, src = exported_labels(result.out), source_labels(tree)
    assert got["train/a"] == b"0 0.55 0.5 0.2 0.2\n2 0.3 0.3 0.1 0.1\n1 0.2 0.2 0.2 0.2\n"
    assert "train/b" not in got and not (result.out / "images" / "train" / "b.jpg").exists()
    assert {k: v for k, v in got.items() if k != "train/a"} == {
        k: v for k, v in src.items() if k not in ("train/a", "train/b")
    }
    assert result.counts() == {"edited": 1, "added": 1, "deleted": 1, "relabeled": 1, "excluded": 1, "dropped": 0}
    md = (result.out / "CHANGES.md").read_text()
    assert "| relabeled | 1 |" in md and "train/images/b.jpg" in md
    marks = json.loads((result.out / OK_FILE).read_text())
    assert marks == [{"image": "images/train/d.jpg", "line": 2, "label": "0 0.6 0.6 0.1 0.1", "checks": []}]


def test_ok_marks_silence_later_audits_of_the_export(tree: Path, tmp_path: Path) -> None:
    ds = load_yolo(tree)
    _edit_in_fiftyone(ds)
    out = export_reviewed(ds, tmp_path / "out").out
    fixed = load_yolo(out)
    marks = load_ok_marks(fixed)
    assert marks == {("images/train/d.jpg", 2)}
    findings = [
        Finding("train", "images/train/d.jpg", "grouped", 0.9, "x", line=2),  # marked ok -> dropped
        Finding("train", "images/train/d.jpg", "grouped", 0.9, "x", line=1),  # other line -> kept
        Finding("train", "images/train/d.jpg", "leakage", 0.9, "x"),  # image-level -> kept
    ]
    assert [f.line for f in drop_ok(findings, marks)] == [1, None]


def test_ok_mark_lapses_when_the_line_changes(tree: Path, tmp_path: Path) -> None:
    ds = load_yolo(tree)
    _edit_in_fiftyone(ds)
    out = export_reviewed(ds, tmp_path / "out").out
    label = out / "labels" / "train" / "d.txt"
    label.write_text("2 0.25 0.75 0.1 0.2\n0 0.9 0.9 0.1 0.1\n")  # edited by hand after the review
    assert load_ok_marks(load_yolo(out)) == set()


@pytest.mark.parametrize("where", ["same", "inside"])
def test_refuses_to_write_over_input(tree: Path, where: str) -> None:
    ds = load_yolo(tree)
    before = source_labels(tree)
    target = tree if where == "same" else tree / "fixed"
    with pytest.raises(WriteError, match="refusing"):
        export_reviewed(ds, target)
    assert source_labels(tree) == before and not (tree / "fixed").exists()


def test_export_keeps_review_when_input_changed(tree: Path, tmp_path: Path) -> None:
    """The FiftyOne dataset holds the review: a changed folder must not make export rebuild (and lose) it."""
    ds = load_yolo(tree)
    _edit_in_fiftyone(ds)
    (tree / "valid" / "labels" / "e.txt").write_text("0 0.5 0.5 0.4 0.4\n")  # changed on disk after review
    result = export_reviewed(load_yolo(tree), tmp_path / "out")
    assert any("changed since" in w for w in result.warnings)
    kinds = [(c.image, c.kind) for c in result.changes]
    assert ("train/images/b.jpg", "excluded") in kinds and ("train/images/a.jpg", "added") in kinds


def test_label_marked_ok_is_not_flagged_by_the_next_audit(tmp_path: Path) -> None:
    """The whole loop: audit flags a duplicate box, the reviewer tags it ok, the audit of the export doesn't."""
    from curate.audit.runner import run_audit
    from curate.fiftyone.load import to_fiftyone
    from curate.fiftyone.samples import OK_TAG

    tree = make_tree(tmp_path / f"ds-{uuid.uuid4().hex[:8]}")
    (tree / "train" / "labels" / "d.txt").write_text("2 0.25 0.75 0.1 0.2\n2 0.25 0.75 0.1 0.2\n")  # an exact copy
    ds = load_yolo(tree)
    kw = dict(only={"duplicate"}, fiftyone=False, report=False, use_cache=False)
    first = run_audit(ds, out_dir=tmp_path / "a1", **kw)
    assert [(f.image, f.line) for f in first.findings if f.check == "duplicate"] == [("train/images/d.jpg", 2)]
    sample = next(s for s in to_fiftyone(ds) if s.curate_rel == "train/images/d.jpg")
    sample.ground_truth.detections[1].tags.append(OK_TAG)
    sample.save()
    out = export_reviewed(ds, tmp_path / "fixed").out
    again = run_audit(load_yolo(out), out_dir=tmp_path / "a2", **kw)
    assert [f for f in again.findings if f.check == "duplicate"] == []


def test_export_warns_about_malformed_lines_an_edit_drops(tree: Path, tmp_path: Path) -> None:
    """An edited label file is rewritten from the lines the reader kept: its malformed lines vanished from the
    export with nothing in changes.csv or on the console."""
    (tree / "train" / "labels" / "a.txt").write_text(LABELS["train/a"] + "0 0.5 0.5 0 0.1\n9 0.5 0.5 0.1 0.1\n")
    (tree / "train" / "labels" / "d.txt").write_text(
        LABELS["train/d"] + "0 0.5 0.5 0 0.1\n"
    )  # not edited: copied as is
    ds = load_yolo(tree)
    _edit_in_fiftyone(ds)
    result = export_reviewed(ds, tmp_path / "out")
    assert [w for w in result.warnings if "malformed" in w] == [
        "train/images/a.jpg: label line(s) 4, 5 were malformed (see `curate info`) and are not in the edited label file"
    ]
    assert exported_labels(result.out)["train/d"] == (tree / "train" / "labels" / "d.txt").read_bytes()
    # and changes.csv names each, with its text: every line not in the output as it was has a row
    dropped = [(r["image"], r["line"], r["before"], r["source"]) for r in rows(result.out) if r["kind"] == "dropped"]
    assert dropped == [
        ("train/images/a.jpg", "4", "0 0.5 0.5 0 0.1", "reader"),
        ("train/images/a.jpg", "5", "9 0.5 0.5 0.1 0.1", "reader"),
    ]
    kinds = [(r["image"], r["kind"], r["line"]) for r in rows(result.out)]
    assert kinds.index(("train/images/a.jpg", "dropped", "5")) < kinds.index(("train/images/a.jpg", "added", "3"))


def test_edit_of_a_file_listed_in_two_splits_is_kept(make_yolo_tree, tmp_path: Path) -> None:
    """``train: images/train`` and ``val: images/train``: one FiftyOne sample per split with the same rel. The
    review was read back keyed by rel alone, so the val copy's (unedited) labels replaced the train edit."""
    from curate.fiftyone.load import to_fiftyone

    root = make_yolo_tree(
        tmp_path / f"dup-{uuid.uuid4().hex[:8]}", {"train/a.jpg": ["0 0.5 0.5 0.2 0.2"]}, layout="ultralytics"
    )
    (root / "data.yaml").write_text("train: images/train\nval: images/train\nnames: [a, b]\n")
    ds = load_yolo(root)
    fod = to_fiftyone(ds)
    sample = next(s for s in fod if s.split == "train")
    sample.ground_truth.detections[0].bounding_box = [0.1, 0.1, 0.2, 0.2]
    sample.save()
    result = export_reviewed(ds, tmp_path / "out")
    assert [(r["image"], r["kind"], r["after"]) for r in rows(result.out)] == [
        ("images/train/a.jpg", "edited", "0 0.200000 0.200000 0.200000 0.200000")
    ]
    assert (result.out / "labels" / "train" / "a.txt").read_text() == "0 0.2 0.2 0.2 0.2\n"
    assert (result.out / "labels" / "val" / "a.txt").read_text() == "0 0.5 0.5 0.2 0.2\n"


def test_a_box_past_the_image_edge_survives_an_edit_of_its_file(make_yolo_tree, tmp_path: Path) -> None:
    """``0 1.0 0.5 0.2 0.2`` (centre on the right edge) is a box Ultralytics trains on; the reader dropped it as
    malformed, so an edit of another line in its file deleted it from the export. It reaches the App clipped
    to the image and is written back with its own numbers."""
    from curate.fiftyone.load import to_fiftyone

    root = make_yolo_tree(
        tmp_path / f"edge-{uuid.uuid4().hex[:8]}", {"train/a.jpg": ["0 1.0 0.5 0.2 0.2", "1 0.3 0.3 0.1 0.1"]}
    )
    ds = load_yolo(root)
    assert [f for f in ds.findings if f.check == "format"] == []
    sample = next(s for s in to_fiftyone(ds) if s.curate_rel == "train/images/a.jpg")
    assert sample.ground_truth.detections[0].bounding_box == pytest.approx([0.9, 0.4, 0.1, 0.2])
    sample.ground_truth.detections[1].bounding_box = [0.3, 0.25, 0.1, 0.1]  # line 2 moved
    sample.save()
    result = export_reviewed(ds, tmp_path / "out")
    assert [(r["line"], r["kind"]) for r in rows(result.out)] == [("2", "edited")]
    assert (result.out / "labels" / "train" / "a.txt").read_text() == "0 1 0.5 0.2 0.2\n1 0.35 0.3 0.1 0.1\n"


def test_a_relabelled_box_past_the_image_edge_keeps_its_own_numbers(make_yolo_tree, tmp_path: Path) -> None:
    """A relabel changes the class only: a box reaching past the edge was written back clipped to the image (its
    numbers changed, with nothing in changes.csv saying so)."""
    from curate.fiftyone.load import to_fiftyone

    root = make_yolo_tree(tmp_path / f"edge-{uuid.uuid4().hex[:8]}", {"train/a.jpg": ["0 1.0 0.5 0.2 0.2"]})
    ds = load_yolo(root)
    sample = next(s for s in to_fiftyone(ds) if s.curate_rel == "train/images/a.jpg")
    sample.ground_truth.detections[0].label = "b"
    sample.save()
    result = export_reviewed(ds, tmp_path / "out")
    assert [(r["line"], r["kind"]) for r in rows(result.out)] == [("1", "relabeled")]
    assert (result.out / "labels" / "train" / "a.txt").read_text() == "1 1 0.5 0.2 0.2\n"


def _listed_twice(make_yolo_tree, tmp_path: Path) -> Path:
    """``train: images/train`` and ``val: images/train``: a.jpg is one file in two splits, its line 3 an exact
    copy of line 2 (the duplicate check flags line 3 in both listings)."""
    lines = ["0 0.3 0.3 0.2 0.2", "1 0.7 0.7 0.2 0.2", "1 0.7 0.7 0.2 0.2"]
    root = make_yolo_tree(tmp_path / f"dup-{uuid.uuid4().hex[:8]}", {"train/a.jpg": lines}, layout="ultralytics")
    (root / "data.yaml").write_text("train: images/train\nval: images/train\nnames: [a, b]\n")
    return root


@pytest.mark.parametrize(
    "tagged, line1_deleted_in, expected",
    [
        ("train", None, [("images/train/a.jpg", 3), ("images/val/a.jpg", 3)]),
        ("val", "train", [("images/train/a.jpg", 2), ("images/val/a.jpg", 3)]),  # follows the renumbered train file
        ("train", "val", [("images/train/a.jpg", 3), ("images/val/a.jpg", 2)]),
    ],
)
def test_ok_mark_on_a_file_listed_in_two_splits_holds_for_each_exported_copy(
    make_yolo_tree, tmp_path: Path, tagged: str, line1_deleted_in: str | None, expected: list[tuple[str, int]]
) -> None:
    """Before the export both listings share one label file and the audit reads a mark for both; the export
    writes one file per split, and kept the mark for the last listing's copy only (rels collide), at the line
    of whichever listing was edited last: the next audit flagged the train copy again."""
    from curate.audit.runner import run_audit
    from curate.fiftyone.load import to_fiftyone
    from curate.fiftyone.samples import OK_TAG

    ds = load_yolo(_listed_twice(make_yolo_tree, tmp_path))
    kw = dict(only={"duplicate"}, fiftyone=False, report=False, use_cache=False)
    first = run_audit(ds, out_dir=tmp_path / "a1", **kw)
    assert sorted((f.split, f.line) for f in first.findings if f.check == "duplicate") == [("train", 3), ("val", 3)]
    for sample in to_fiftyone(ds):
        if sample.split == tagged:
            sample.ground_truth.detections[2].tags.append(OK_TAG)
        if sample.split == line1_deleted_in:
            del sample.ground_truth.detections[0]
        sample.save()
    out = export_reviewed(ds, tmp_path / "out").out
    marks = json.loads((out / OK_FILE).read_text())
    assert [(m["image"], m["line"], m["label"]) for m in marks] == [
        (img, line, "1 0.7 0.7 0.2 0.2") for img, line in expected
    ]
    again = run_audit(load_yolo(out), out_dir=tmp_path / "a2", **kw)
    assert [f for f in again.findings if f.check == "duplicate"] == []


def test_ok_mark_does_not_follow_to_a_listing_whose_copy_was_edited(make_yolo_tree, tmp_path: Path) -> None:
    from curate.fiftyone.load import to_fiftyone
    from curate.fiftyone.samples import OK_TAG

    ds = load_yolo(_listed_twice(make_yolo_tree, tmp_path))
    for sample in to_fiftyone(ds):
        dets = sample.ground_truth.detections
        if sample.split == "train":
            dets[2].tags.append(OK_TAG)
        else:
            dets[2].bounding_box = [0.1, 0.6, 0.2, 0.2]  # the val copy of line 3 moved: not what was vouched for
        sample.save()
    marks = json.loads((export_reviewed(ds, tmp_path / "out").out / OK_FILE).read_text())
    assert [(m["image"], m["line"]) for m in marks] == [("images/train/a.jpg", 3)]


def test_ok_marks_of_the_input_hold_for_every_listing_of_a_file(make_yolo_tree, tmp_path: Path) -> None:
    """curate_ok.json beside a data.yaml that lists one folder as train and val: a mark names the file's rel,
    which both listings share (their labels are one file), so it silences the finding on both."""
    root = _listed_twice(make_yolo_tree, tmp_path)
    (root / OK_FILE).write_text(json.dumps([{"image": "images/train/a.jpg", "line": 3, "label": "1 0.7 0.7 0.2 0.2"}]))
    ds = load_yolo(root)
    assert load_ok_marks(ds) == {("images/train/a.jpg", 3)}
    findings = [Finding(split, "images/train/a.jpg", "duplicate", 1.0, "x", line=3) for split in ("train", "val")]
    assert drop_ok(findings, load_ok_marks(ds)) == []


def _tag_samples(ds, tag: str, rels: list[str]):
    fod = to_fiftyone(ds)
    for s in fod:
        if s.curate_rel in rels:
            s.tags.append(tag)
            s.save()
    return fod


def test_an_image_tagged_ok_silences_its_image_level_findings_in_later_audits(tree: Path, tmp_path: Path) -> None:
    """A sample tagged ``ok`` (FiftyOne users tag samples as often as labels) meant nothing: the export wrote no
    mark and the next audit flagged the image again. It is marked like an ``ok`` box: its image-level findings are
    dropped, before the export (the tag in FiftyOne) and after it (curate_ok.json), while the image is unchanged."""
    from curate.audit.runner import run_audit
    from curate.fiftyone.samples import OK_TAG

    ds = load_yolo(tree)
    kw = dict(only={"low_information"}, report=False, use_cache=False)
    flagged = lambda result: {f.image for f in result.findings if f.check == "low_information"}  # noqa: E731
    assert "train/images/c.jpg" in flagged(run_audit(ds, out_dir=tmp_path / "a1", **kw))  # a flat grey image
    _tag_samples(ds, OK_TAG, ["train/images/c.jpg"])
    again = flagged(run_audit(ds, out_dir=tmp_path / "a2", **kw))
    assert "train/images/c.jpg" not in again and "train/images/a.jpg" in again

    result = export_reviewed(ds, tmp_path / "out")
    marks = json.loads((result.out / OK_FILE).read_text())
    assert [(m["image"], m["line"]) for m in marks] == [("images/train/c.jpg", None)]
    exported = load_yolo(result.out)
    assert load_ok_marks(exported) == {("images/train/c.jpg", None)}
    after = flagged(run_audit(exported, out_dir=tmp_path / "a3", fiftyone=False, **kw))
    assert "images/train/c.jpg" not in after and "images/train/a.jpg" in after
    image_level = Finding("train", "images/train/c.jpg", "leakage", 0.9, "x")
    box = Finding("train", "images/train/c.jpg", "grouped", 0.9, "x", line=1)
    region = Finding("train", "images/train/c.jpg", "missing", 0.9, "x", region=(0.5, 0.5, 0.1, 0.1))
    fmt = Finding("train", "images/train/c.jpg", "format", 1.0, "x")
    assert drop_ok([image_level, box, region, fmt], load_ok_marks(exported)) == [box, region, fmt]

    Image.new("RGB", (64, 48), (10, 10, 10)).save(result.out / "images" / "train" / "c.jpg")  # another image now
    assert load_ok_marks(load_yolo(result.out)) == set()


def test_an_export_that_excludes_every_image_stops_and_writes_nothing(tree: Path, tmp_path: Path) -> None:
    """It wrote a data.yaml with no split, whose audit stopped with "no images found"."""
    from curate.fiftyone.samples import EXCLUDE_TAG

    ds = load_yolo(tree)
    _tag_samples(ds, EXCLUDE_TAG, [r.rel for r in ds.images])
    with pytest.raises(ExportError, match="every image is tagged `exclude`.*nothing to export"):
        export_reviewed(ds, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_emptied_split_is_named_and_the_yaml_stays_readable_by_ultralytics(make_yolo_tree, tmp_path) -> None:
    """Every test image excluded: a warning names the split, and Ultralytics reads the data.yaml (train and val
    left). Every val image excluded: the warning says Ultralytics needs a val split."""
    from ultralytics.data.utils import check_det_dataset

    from curate.fiftyone.samples import EXCLUDE_TAG

    images = {
        "train/a.jpg": ["0 0.5 0.5 0.2 0.2"],
        "val/b.jpg": ["1 0.4 0.4 0.2 0.2"],
        "test/c.jpg": ["0 0.5 0.5 0.1 0.1"],
    }
    ds = load_yolo(make_yolo_tree(tmp_path / "three", images))
    _tag_samples(ds, EXCLUDE_TAG, ["test/images/c.jpg"])
    result = export_reviewed(ds, tmp_path / "no-test")
    assert [w for w in result.warnings if "every" in w] == [
        "every test image is tagged `exclude`: the export has no test split"
    ]
    data = check_det_dataset(str(result.out / "data.yaml"))
    assert Path(data["train"]).is_dir() and Path(data["val"]).is_dir() and "test" not in data

    _tag_samples(ds, EXCLUDE_TAG, ["valid/images/b.jpg"])
    result = export_reviewed(ds, tmp_path / "no-val")
    said = [w for w in result.warnings if w.startswith("every val image")]
    assert len(said) == 1 and "Ultralytics needs train and val" in said[0], result.warnings
