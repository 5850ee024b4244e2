"""The attempt history: one file for every train-and-compare run, a table that reads at 80 columns."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from curate.train import history as hist


def _entry(i: int, out: str) -> dict:
    return {
        "date": f"2026-12-0{i} 10:00", "out": out,
        "before": {"path": "/data/food-ingredients", "fingerprint": "ab" * 32, "changes": {}},
        "after": {"path": f"/data/food-fixed-{i}", "fingerprint": "cd" * 32, "changes": {"changes.csv": {"edited": i}}},
        "test": {"path": "/data/test", "split": "test", "images": 50}, "model": "yolov8n.yaml", "epochs": 30,
        "imgsz": 640, "seeds": 1,
        "metrics": {s: {"mAP50": 0.5, "mAP50-95": 0.3 + i / 100, "F1": 0.5} for s in ("before", "after")},
        "delta": {"mAP50": 0.01, "mAP50-95": 0.01 * i}, "ci95": {"mAP50-95": [-0.01, 0.02 * i]}, "verdict": "better",
    }  # fmt: skip


def test_every_attempt_goes_to_one_file_whatever_its_out(tmp_path: Path) -> None:
    path = hist.history_path(tmp_path / "reports")
    for i, out in enumerate(["reports/compare/a-vs-b", "/elsewhere/x", "reports/default-food/train-and-compare"], 1):
        hist.append(hist.history_path(tmp_path / "reports"), _entry(i, out))
    rows, problems = hist.read(path)
    assert path == tmp_path / "reports" / "history.jsonl" and len(rows) == 3 and not problems


def test_table_reads_at_80_columns() -> None:
    console = Console(width=80, record=True)
    console.print(hist.table([_entry(i, "o") for i in range(1, 6)]))
    text = console.export_text()
    assert all(len(line) <= 80 for line in text.splitlines())
    assert text.count("better") == 5 and "0.350→0.350" in text and "+0.050" in text and "2026-12-05 10:00" in text
