"""The attempt history: one JSON line per train-and-compare run — the log users kept by hand.

Each line says when, which data (content fingerprints), what changed (the manifests other curate commands
leave in their output folders), the key metrics and the verdict. ``curate history`` prints it as a table.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


def history_path(out: Path, *, default_out: bool) -> Path:
    """``reports/history.jsonl`` for the default ``reports/compare/<a>-vs-<b>``; else beside ``--out``."""
    out = Path(out)
    return out.parent.parent / "history.jsonl" if default_out else out.parent / "history.jsonl"


def entry(data: dict, out: Path) -> dict[str, Any]:
    """The history line for one compare.json dict."""
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
        "metrics": {s: {k: data[s]["metrics"]["box"][k] for k in ("mAP50", "mAP50-95", "F1")} for s in ("before", "after")},
        "delta": b["delta"],
        "ci95": b["ci95"],
        "verdict": data["verdict"],
    }


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
    from rich.table import Table

    t = Table(title="train-and-compare history", title_justify="left")
    for col in ("date", "before", "after", "what changed (after)", "model", "mAP50-95 before → after", "Δ [95 % CI]", "verdict"):
        t.add_column(col)
    for r in rows:
        lo, hi = r["ci95"]["mAP50-95"]
        colour = {"better": "green", "worse": "red"}.get(r["verdict"], "white")
        t.add_row(
            r["date"],
            f"{Path(r['before']['path']).name} {r['before']['fingerprint'][:8]}",
            f"{Path(r['after']['path']).name} {r['after']['fingerprint'][:8]}",
            changed(r["after"]),
            f"{Path(r['model']).name} {r['epochs']}ep {r['imgsz']}px ×{r['seeds']}",
            f"{r['metrics']['before']['mAP50-95']:.3f} → {r['metrics']['after']['mAP50-95']:.3f}",
            f"{r['delta']['mAP50-95']:+.3f} [{lo:+.3f}, {hi:+.3f}]",
            f"[{colour}]{r['verdict']}[/]",
        )
    return t
