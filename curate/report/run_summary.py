"""``summary.html`` of a ``curate run``: one page linking each stage's report and the run's attempt history.

Rendered from ``templates/run_summary.html.j2``, like the audit report; text is escaped with
:func:`html.escape` (the ``esc`` filter), the page's one rule for what a dataset path or a reason may hold.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from curate import __version__


def render(
    *,
    run_dir: Path,
    recipe_name: str,
    description: str,
    root: Path,
    images: int,
    boxes: int,
    paused: bool,
    stages: list[dict[str, Any]],
    attempts: list[dict[str, Any]],
) -> str:
    """The page. ``stages``: per stage its ``stage``, ``action``, ``reason``, ``seconds`` (None when it never
    ran) and ``outputs`` (name → path); ``attempts``: the history entries of this run (:mod:`curate.train.history`)."""
    from curate.report.pages import render

    rows = []
    for s in stages:
        links = []
        for name, value in (s.get("outputs") or {}).items():
            target = Path(value)
            if target.exists():
                links.append((name, str(target.relative_to(run_dir) if target.is_relative_to(run_dir) else target)))
        secs = s.get("seconds")
        rows.append({**s, "seconds": "" if secs is None else f"{secs:.1f}", "links": links})
    history = []
    for h in attempts:
        before = h.get("metrics", {}).get("before", {})
        after = h.get("metrics", {}).get("after", {})
        delta = h.get("delta", {})
        history.append({
            "date": h.get("date", ""), "model": h.get("model", ""), "epochs": h.get("epochs", ""),
            "imgsz": h.get("imgsz", ""), "verdict": h.get("verdict", ""),
            "before": _num(before.get("mAP50-95")), "after": _num(after.get("mAP50-95")),
            "delta": _num(delta.get("mAP50-95") if isinstance(delta, dict) else None, signed=True),
            "href": _rel(Path(str(h.get("out", ""))) / "compare.html", run_dir),
        })  # fmt: skip
    return render(
        "run_summary.html.j2",
        run_name=run_dir.name, recipe_name=recipe_name, description=description, root=str(root), images=images,
        boxes=boxes, status="paused for review" if paused else "finished", version=__version__,
        now=time.strftime("%Y-%m-%d %H:%M"), stages=rows, attempts=history,
    )  # fmt: skip


def _num(v: Any, *, signed: bool = False) -> str:
    if not isinstance(v, (int, float)):
        return ""
    return f"{v:+.3f}" if signed else f"{v:.3f}"


def _rel(target: Path, base: Path) -> str:
    try:
        return str(target.resolve().relative_to(base.resolve()))
    except ValueError:
        return target.as_uri() if target.is_absolute() else str(target)
