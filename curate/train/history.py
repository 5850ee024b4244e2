"""The attempt history: one JSON line per train-and-compare run — the log users kept by hand.

Each line says when, which data (content fingerprints), what changed (the manifests other curate commands
leave in their output folders), the key metrics and the verdict. ``curate history`` prints it as a table.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

#: Where every train-and-compare attempt is recorded, whatever its ``--out``: one list to compare them all.
HISTORY_FILE = "history.jsonl"


def history_path(reports: Path = Path("reports")) -> Path:
    """``<reports>/history.jsonl``: the one attempt history of a project (``reports/`` beside where curate runs;
    a pipeline's ``--reports`` folder). Why one file: attempts spread beside each ``--out`` and each run folder
    could not be compared, and ``curate history`` showed one of them."""
    return Path(reports) / HISTORY_FILE


def entry(data: dict, out: Path) -> dict[str, Any]:
    """The history line for one compare.json dict (with the test set's suspect labels and, given ``--test-labels``,
    the verdict on the reviewed ones)."""
    b = data["bootstrap"]
    return {
        "date": time.strftime("%Y-%m-%d %H:%M", time.localtime()),
        "out": str(out),
        "before": {k: data["before"][k] for k in ("path", "fingerprint", "changes")},
        "after": {k: data["after"][k] for k in ("path", "fingerprint", "changes")},
        "test": {k: data["test"][k] for k in ("path", "split", "images")},
        "model": data["settings"]["model"],
        "epochs": data["settings"]["epochs"],
        "imgsz": data["settings"]["imgsz"],
        "seeds": len(data["settings"]["seeds_used"]),
        "metrics": {
            s: {k: data[s]["metrics"]["box"][k] for k in ("mAP50", "mAP50-95", "F1")} for s in ("before", "after")
        },
        "delta": b["delta"],
        "ci95": b["ci95"],
        "verdict": data["verdict"],
        "suspect_test_labels": (data["test"].get("audit") or {}).get("suspect"),
        "on_reviewed_test_labels": _on_reviewed(data.get("corrected")),
    }


def _on_reviewed(corrected: dict | None) -> dict | None:
    """The Δs, intervals and verdict on a reviewed copy of the test labels (``--test-labels``), when given."""
    if not corrected:
        return None
    b = corrected["bootstrap"]
    return {"delta": b["delta"], "ci95": b["ci95"], "verdict": corrected["verdict"]}


def append(path: Path, line: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(line, ensure_ascii=False) + "\n")
    return path


def read(path: Path) -> tuple[list[dict], list[str]]:
    """The entries, and one problem line per unreadable line (with its number)."""
    rows, problems = [], []
    for i, text in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not text.strip():
            continue
        try:
            rows.append(json.loads(text))
        except ValueError:
            problems.append(f"{path}:{i}: not a JSON line, skipped")
    return rows, problems


def changed(side: dict) -> str:
    """A few words on what a manifest says changed."""
    parts = []
    for name, info in (side.get("changes") or {}).items():
        if name == "changes.csv" and isinstance(info, dict):
            parts.append("review: " + ", ".join(f"{v} {k}" for k, v in info.items()))
        elif name == "rebalance.json":
            parts.append("rebalance" + (f" seed {info['seed']}" if isinstance(info, dict) and "seed" in info else ""))
        elif name == "backgrounds.json":
            parts.append("backgrounds")
    return "; ".join(parts) or "–"


def table(rows: list[dict]) -> Any:
    """The attempts, oldest first, in columns that fit an 80-column terminal (the paths are in the file)."""
    from rich import box
    from rich.table import Table

    t = Table(title="train-and-compare history", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("date", "AFTER (what changed)", "training", "mAP50-95", "Δ [95 % CI]", "verdict"):
        t.add_column(col, overflow="fold", no_wrap=col in ("date", "mAP50-95"))
    for r in rows:
        lo, hi = r["ci95"]["mAP50-95"]
        colour = {"better": "green", "worse": "red"}.get(r["verdict"], "white")
        t.add_row(
            r["date"],
            f"{Path(r['after']['path']).name} ({changed(r['after'])})",
            f"{Path(r['model']).stem} {r['epochs']}ep {r['imgsz']}px ×{r['seeds']}",
            f"{r['metrics']['before']['mAP50-95']:.3f}→{r['metrics']['after']['mAP50-95']:.3f}",
            f"{r['delta']['mAP50-95']:+.3f} [{lo:+.3f}, {hi:+.3f}]",
            f"[{colour}]{r['verdict']}[/]",
        )
    return t
