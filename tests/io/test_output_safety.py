"""Outputs never share bytes with the input, and no command writes inside its input (issue #25)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from curate.app.cli import app
from curate.io.yolo import load_yolo, save_yolo

IMAGES = {f"train/t{i}.jpg": ["0 0.5 0.5 0.3 0.3"] for i in range(6)}
IMAGES |= {"val/v0.jpg": ["1 0.4 0.4 0.2 0.2"], "test/s0.jpg": []}


def _digest(root: Path) -> dict[str, str]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _scribble(images: list[Path]) -> None:
    """What an in-place image editor does: write bytes into the file (not a new file renamed over it)."""
    for p in images:
        with open(p, "r+b") as fh:
            fh.seek(2)
            fh.write(b"\x00\x00")


def test_saved_images_are_copies(make_yolo_tree, tmp_path: Path) -> None:
    root = make_yolo_tree(tmp_path / "ds", IMAGES)
    before = _digest(root)
    out = save_yolo(load_yolo(root), tmp_path / "out")
    written = sorted((out / "images").rglob("*.jpg"))
    assert len(written) == len(IMAGES)
    _scribble(written)
    assert _digest(root) == before


def test_rebalanced_images_are_copies(make_yolo_tree, tmp_path: Path) -> None:
    """Oversampled copies too (they go through a staging folder of links)."""
    images = dict(IMAGES) | {f"train/r{i}.jpg": ["1 0.5 0.5 0.3 0.3"] for i in range(2)}
    root = make_yolo_tree(tmp_path / "ds", images)
    before = _digest(root)
    out = tmp_path / "out"
    args = ["rebalance", str(root), "--out", str(out), "--oversample", "6", "--no-near-duplicates"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    written = sorted((out / "images").rglob("*.jpg"))
    assert len(written) > len(images)  # copies were made
    _scribble(written)
    assert _digest(root) == before


def _refused(res, root: Path, before: dict[str, str]) -> None:
    assert res.exit_code == 1, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "refusing to write" in lines[0] and "inside the input" in lines[0], res.output
    assert _digest(root) == before and not (root / "reports").exists()


@pytest.mark.parametrize("where", [".", "sub/audit"])
def test_audit_refuses_out_inside_input(make_yolo_tree, tmp_path: Path, where: str) -> None:
    root = make_yolo_tree(tmp_path / "ds", IMAGES)
    before = _digest(root)
    res = CliRunner().invoke(app, ["audit", str(root), "--out", str(root / where), "--no-fiftyone"])
    _refused(res, root, before)
    assert not (root / "sub").exists()


@pytest.mark.parametrize("fast", [False, True])
def test_audit_default_out_refused_from_inside_the_dataset(
    make_yolo_tree, tmp_path: Path, monkeypatch, fast: bool
) -> None:
    """``cd DS && curate audit .``: the default reports/ would be inside DS (--fast also cancels its helper process)."""
    root = make_yolo_tree(tmp_path / "ds", IMAGES)
    before = _digest(root)
    monkeypatch.chdir(root)
    res = CliRunner().invoke(app, ["audit", ".", "--no-fiftyone"] + (["--fast"] if fast else []))
    _refused(res, root, before)
    assert "an --out" in res.output


def test_review_refused_from_inside_the_dataset(make_yolo_tree, tmp_path: Path, monkeypatch) -> None:
    """``cd DS && curate review .`` audits first: one line (not a WriteError traceback), nothing written in DS."""
    root = make_yolo_tree(tmp_path / "ds", IMAGES)
    before = _digest(root)
    monkeypatch.chdir(root)
    res = CliRunner().invoke(app, ["review", "."])
    _refused(res, root, before)
    assert "outside the dataset" in res.output and "WriteError" not in res.output


def test_train_and_compare_refuses_out_inside_input(make_yolo_tree, tmp_path: Path, monkeypatch) -> None:
    before_ds = make_yolo_tree(tmp_path / "before", IMAGES)
    after_ds = make_yolo_tree(tmp_path / "after", IMAGES)
    digests = _digest(before_ds), _digest(after_ds)
    for args in (["--out", str(after_ds / "cmp")], ["--out", str(before_ds)]):
        res = CliRunner().invoke(app, ["train-and-compare", str(before_ds), str(after_ds), *args])
        _refused(res, after_ds if "after" in args[1] else before_ds, digests[0] if "before" in args[1] else digests[1])
    res = CliRunner().invoke(app, ["train-and-compare", str(before_ds), str(after_ds), "--out", str(tmp_path)])
    assert res.exit_code == 1 and "contains the input" in res.output
    monkeypatch.chdir(before_ds)  # the default reports/compare/... inside BEFORE
    res = CliRunner().invoke(app, ["train-and-compare", ".", str(after_ds)])
    _refused(res, before_ds, digests[0])


def test_run_refuses_reports_inside_input(make_yolo_tree, tmp_path: Path, monkeypatch) -> None:
    root = make_yolo_tree(tmp_path / "ds", IMAGES)
    before = _digest(root)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\nstages:\n  export: {}\n  review: {skip: true}\n")
    res = CliRunner().invoke(app, ["run", str(recipe), str(root), "--reports", str(root / "out")])
    _refused(res, root, before)
    monkeypatch.chdir(root)  # the default reports/
    res = CliRunner().invoke(app, ["run", str(recipe), "."])
    _refused(res, root, before)
