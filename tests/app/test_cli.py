"""The command line: numbers `info` prints, one-line errors, `audit` outputs, unbuilt commands."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from curate.app.cli import app
from curate.core.findings import CSV_COLUMNS

runner = CliRunner()


def _tree(root: Path) -> Path:
    """Two splits, one bad line, one background image, Roboflow paths."""
    files = {
        "train/a": "0 0.5 0.5 0.4 0.4\n1 0.2 0.2 0.1 0.1\n",
        "train/b": "0 0.3 0.3 0.2 0.2\n0 0.3 0.3 0.2 0.2\nbad line\n",  # exact duplicate + malformed line 3
        "train/bg": "",
        "valid/c": "1 0.5 0.5 0.3 0.3\n",
    }
    for key, text in files.items():
        split, stem = key.split("/")
        (root / split / "images").mkdir(parents=True, exist_ok=True)
        (root / split / "labels").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 48), (40, 90, 160)).save(root / split / "images" / f"{stem}.jpg")
        (root / split / "labels" / f"{stem}.txt").write_text(text)
    (root / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\nnc: 2\nnames: [apple, pear]\n")
    return root


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for cmd in ("info", "audit", "review", "export", "rebalance", "backgrounds", "train-and-compare", "run", "history"):
        assert cmd in result.output


def test_info_counts(tmp_path: Path) -> None:
    root = _tree(tmp_path / "ds")
    result = runner.invoke(app, ["info", str(root)], terminal_width=200)
    assert result.exit_code == 0, result.output
    rows = {
        line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
        for line in result.output.splitlines()
        if line.startswith("│") and line.count("│") == 8
    }
    assert rows["train"][:4] == ["3", "4", "0", "1"]  # images, boxes, polygons, backgrounds
    assert rows["val"][:2] == ["1", "1"]
    assert rows["all"][-1] == "1"  # one format finding
    assert "wrong field count" in result.output


@pytest.mark.parametrize(
    "command", ["info", "audit", "review", "export", "rebalance", "backgrounds", "train-and-compare", "run", "history"]
)
def test_every_command_has_help(command: str) -> None:
    result = runner.invoke(app, [command, "--help"], terminal_width=120)
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_missing_dataset_is_one_line_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["info", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "no such file or folder" in result.output and "Traceback" not in result.output


def test_audit_writes_findings_with_exact_columns(tmp_path: Path) -> None:
    root = _tree(tmp_path / "ds")
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["audit", str(root), "--out", str(out), "--fast", "--no-fiftyone", "--all-scores"], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    with (out / "findings.csv").open() as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        rows = list(reader)
    assert {"train/images/b.jpg"} <= {r["image"] for r in rows}
    fmt = [r for r in rows if r["check"] == "format"]
    assert fmt and fmt[0]["line"] == "3"
    dup = [r for r in rows if r["check"] == "duplicate"]
    assert (
        dup and dup[0]["image"] == "train/images/b.jpg" and float(dup[0]["score"]) >= 0.5
    )  # the exact copy on line 2 of b.txt
    assert (out / "findings.json").exists() and (out / "all_scores.csv").exists() and (out / "report.html").exists()


def test_audit_config_typo_is_one_line_with_suggestion(tmp_path: Path) -> None:
    root = _tree(tmp_path / "ds")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("checks:\n  duplicat: {threshold: 0.6}\n")
    result = runner.invoke(app, ["audit", str(root), "--config", str(cfg), "--no-fiftyone"])
    assert result.exit_code == 1
    assert "unknown check 'duplicat'" in result.output and "did you mean 'duplicate'" in result.output
    cfg.write_text("checks:\n  duplicate: {threshold: 1.5}\n")
    result = runner.invoke(app, ["audit", str(root), "--config", str(cfg), "--no-fiftyone"])
    assert result.exit_code == 1 and "invalid value" in result.output


def test_names_and_paths_with_brackets_are_printed_as_they_are(tmp_path: Path) -> None:
    """rich reads ``[...]`` as markup: a class named ``[person]`` printed as an empty cell, a file ``img [b].jpg``
    lost its ``[b]`` (read as bold), and ``[/x]`` raised MarkupError (a traceback)."""
    root = tmp_path / "ds [b]"
    (root / "train" / "images").mkdir(parents=True)
    (root / "train" / "labels").mkdir(parents=True)
    for k in range(4):
        Image.new("RGB", (64, 48), (40, 60 * k, 160)).save(root / "train" / "images" / f"{k}.jpg")
        (root / "train" / "labels" / f"{k}.txt").write_text(f"{k % 2} 0.5 0.5 0.4 0.4\n")
    Image.new("RGB", (64, 48), (40, 90, 160)).save(root / "train" / "images" / "img [b].jpg")
    (root / "train" / "labels" / "img [b].txt").write_text("0 0.5 0.5 0.4 0.4\n1 0.2 0.2 0.1 0.1\nbad [/x]\n")
    (root / "data.yaml").write_text("train: ../train/images\nnames: ['[person]', '[/x]']\n")
    result = runner.invoke(app, ["info", str(root)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "[person]" in result.output and "[/x]" in result.output
    assert "img [b].txt" in result.output and "ds [b]" in result.output
    out = tmp_path / "out [/x]"
    result = runner.invoke(app, ["rebalance", str(root), "--out", str(out), "--split", "50/50"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output and "[person]" in result.output


def test_an_unexpected_error_is_one_line_at_any_width(tmp_path: Path) -> None:
    """The catch-all's line, as a user's terminal or log gets it: not wrapped at 80 columns (rich's width off a
    terminal), only the exception's first line, and its text literal (here a file curate cannot decode)."""
    import os
    import subprocess
    import sys

    history = tmp_path / "history.jsonl"
    history.write_bytes(b"\xff\xfe{not utf-8 at all}\n" + b"x" * 300 + b"\n")
    env = {**os.environ, "COLUMNS": "80"}
    env.pop("CURATE_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-m", "curate.app.cli", "history", str(history)], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: UnicodeDecodeError: ") and "CURATE_DEBUG=1" in lines[0]
