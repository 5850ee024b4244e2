"""compare.md and compare.html from compare.json's dict: the verdict first, then the numbers, then the plots.

The HTML is self-contained (plots inlined as base64 PNG) so it can be mailed or attached to an issue; it is
rendered from ``templates/compare.html.j2`` with the rows the Markdown is made of (:func:`metric_rows`,
:func:`per_class_rows`), text escaped by :func:`html.escape` (the ``esc`` filter).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

ROWS = ("mAP50", "mAP50-95", "precision", "recall", "F1")
SIDES = ("before", "after")
PLOTS = ("results.png", "BoxPR_curve.png", "BoxF1_curve.png", "confusion_matrix_normalized.png", "MaskPR_curve.png")


def _f(x: Any, d: int = 3) -> str:
    return f"{x:.{d}f}" if isinstance(x, (int, float)) else "–"


def _signed(x: float) -> str:
    return f"{x:+.3f}"


def leak_warning(data: dict) -> str:
    """ "" when neither model trained on the test set; else the words that open the verdict line, with counts.

    Why in the verdict itself: a model scored on photos it learned from looks better than it is, and a note
    below the headline is the line nobody reads.
    """
    t = data["test"]
    leaked = {side: n for side, n in (t.get("leaked") or {}).items() if n}
    if not leaked:
        return ""
    where = " and ".join(f"{n} in {side}'s" for side, n in leaked.items())
    return (
        f"NOT A FAIR TEST: {t.get('leaked_any', max(leaked.values()))} of {t['images']} test images were trained "
        f"on ({where} train/val) — "
    )


def headline(data: dict) -> str:
    """One sentence: the verdict and the interval it rests on, opened by a leak warning when the test set leaks."""
    b = data["bootstrap"]
    lo, hi = b["ci95"]["mAP50-95"]
    words = {"better": "AFTER is **better** than BEFORE", "worse": "AFTER is **worse** than BEFORE"}.get(
        data["verdict"], "**No significant difference** between BEFORE and AFTER"
    )
    return (
        f"{leak_warning(data)}{words} on mAP50-95: Δ = {_signed(b['delta']['mAP50-95'])}, "
        f"95 % interval [{lo:+.3f}, {hi:+.3f}] (paired bootstrap, {b['resamples']} resamples over "
        f"{data['test']['images']} test images, {len(b['classes'])} shared classes)."
    )


def same_boxes(data: dict) -> bool:
    """Both models scored on every test box: their overall numbers are over the same boxes and comparable.

    When a model does not know some test classes (a 36-class BEFORE against a 6-class AFTER), its overall mAP,
    P, R and F1 average over other boxes and classes than the other's; only the shared-class bootstrap of the
    headline, and the per-class rows, compare like with like.
    """
    t = data["test"]
    return not t.get("dropped_for_before") and not t.get("dropped_for_after")


def metric_rows(data: dict) -> list[tuple[str, str, str, str]]:
    """Rows of the metric table: the test-set metrics (Δ only when :func:`same_boxes`), then the losses.

    Losses never get a Δ: each side's are measured on its own train and val data, so two numbers of
    different data (and, for cls_loss, of a different number of classes) are shown side by side only.
    """
    rows = []
    comparable = same_boxes(data)
    for kind in ("box", "mask"):
        if kind not in data["before"]["metrics"]:
            continue
        mb, ma = data["before"]["metrics"][kind], data["after"]["metrics"][kind]
        for k in ROWS:
            label = k if kind == "box" else f"mask {k}"
            rows.append((label, _f(mb[k]), _f(ma[k]), _signed(ma[k] - mb[k]) if comparable else ""))
        if kind == "box":
            rows.append(("F1-best confidence", _f(mb["F1_conf"], 2), _f(ma["F1_conf"], 2), ""))
    lb, la = data["before"]["metrics"]["losses"], data["after"]["metrics"]["losses"]
    for k in lb:
        for which in ("final", "best"):
            rows.append((f"{k} ({which}, own data)", _f(lb[k][which]), _f(la[k].get(which) if k in la else None), ""))
    return rows


def table_notes(data: dict) -> list[str]:
    """Why some Δ cells of the metric table are blank."""
    notes = ["Losses are each side's own training and validation losses (different data): no Δ."]
    if not same_boxes(data):
        t = data["test"]
        gone = {s: sum((t.get(f"dropped_for_{s}") or {}).values()) for s in SIDES}
        notes.insert(
            0,
            "mAP, P, R and F1 above are each over the test boxes of the classes that model knows "
            f"(BEFORE leaves out {gone['before']}, AFTER {gone['after']}): not comparable, no Δ; the verdict "
            f"compares the {len(data['bootstrap']['classes'])} shared classes.",
        )
    return notes


def per_class_rows(data: dict) -> list[tuple[str, str, str, str]]:
    """Per class of either side: its name, AP50-95 BEFORE and AFTER, and the change (blank when one lacks it)."""
    pb, pa = data["before"]["metrics"]["box"]["per_class"], data["after"]["metrics"]["box"]["per_class"]
    rows = []
    for name in sorted(set(pb) | set(pa)):
        x, y = pb.get(name, {}).get("AP50-95"), pa.get(name, {}).get("AP50-95")
        rows.append((name, _f(x), _f(y), _signed(y - x) if x is not None and y is not None else ""))
    return rows


def render_md(data: dict) -> str:
    s, t = data["settings"], data["test"]
    lines = ["# Train and compare", "", headline(data), ""]
    b = data["bootstrap"]
    lines += [
        f"mAP50: Δ = {_signed(b['delta']['mAP50'])}, 95 % interval [{b['ci95']['mAP50'][0]:+.3f}, "
        f"{b['ci95']['mAP50'][1]:+.3f}] → {b['verdicts']['mAP50']}.",
        "",
    ]
    lines += [
        f"- BEFORE: `{data['before']['path']}` (fingerprint {data['before']['fingerprint']})",
        f"- AFTER: `{data['after']['path']}` (fingerprint {data['after']['fingerprint']})",
        f"- test: `{t['path']}` split `{t['split']}`, {t['images']} images, {t['boxes']} boxes"
        + (" (AFTER's test split, the default: the photos neither side trained on)" if t.get("default") else ""),
        f"- model `{s['model']}` ({data['task']}), {s['epochs']} epochs, imgsz {s['imgsz']}, batch {s['batch']}, "
        f"seeds {s['seeds_used']}, device {s['device']}",
        "",
    ]
    lines += ["| metric (test set) | BEFORE | AFTER | Δ |", "|---|---:|---:|---:|"]
    lines += [f"| {a} | {b_} | {c} | {d} |" for a, b_, c, d in metric_rows(data)]
    lines += [""] + table_notes(data)
    lines += ["", "## Per class (AP50-95)", "", "| class | BEFORE | AFTER | Δ |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {x} | {y} | {d} |" for name, x, y, d in per_class_rows(data)]
    notes = list(data["warnings"]) + [f"{r['side']} seed {r['seed']}: {n}" for r in data["runs"] for n in r["notes"]]
    timing = [f"{r['side']} seed {r['seed']}: {r['epochs_done']} epochs in {r['seconds']:.0f} s" for r in data["runs"]]
    lines += ["", "## Notes", ""] + [f"- {n}" for n in notes or ["none"]]
    lines += ["", "## Runs", ""] + [f"- {t_}" for t_ in timing] + [""]
    return "\n".join(lines)


def _img(path: str | None) -> str:
    if not path or not Path(path).exists():
        return "<div class='missing'>no plot</div>"
    b64 = base64.b64encode(Path(path).read_bytes()).decode()
    return f"<img src='data:image/png;base64,{b64}' alt='{html.escape(Path(path).name)}'>"


def render_html(data: dict) -> str:
    from curate.report.pages import render

    plots = []
    for name in PLOTS:
        before, after = (
            {**m.get("plots", {}), **m.get("train_plots", {})} for m in (data[s]["metrics"] for s in SIDES)
        )
        if before.get(name) or after.get(name):
            plots.append((name, _img(before.get(name)), _img(after.get(name))))
    notes = list(data["warnings"]) + [f"{r['side']} seed {r['seed']}: {n}" for r in data["runs"] for n in r["notes"]]
    colour = {"better": "#1a7f37", "worse": "#cf222e"}.get(data["verdict"], "#6e7781")
    return render(
        "compare.html.j2",
        colour="#bf8700" if leak_warning(data) else colour,
        headline=headline(data).replace("**", ""), verdict=data["verdict"],
        verdict50=data["bootstrap"]["verdicts"]["mAP50"], before=data["before"]["path"], after=data["after"]["path"],
        test=data["test"]["path"], split=data["test"]["split"], metrics=metric_rows(data), notes=notes, plots=plots,
        per_class=per_class_rows(data), table_notes=table_notes(data),
    )  # fmt: skip
