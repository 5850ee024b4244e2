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
    return leak_warning(data) + _verdict_sentence(data["verdict"], data["bootstrap"], data["test"]["images"])


def _verdict_sentence(verdict: str, b: dict, images: int) -> str:
    lo, hi = b["ci95"]["mAP50-95"]
    words = {"better": "AFTER is **better** than BEFORE", "worse": "AFTER is **worse** than BEFORE"}.get(
        verdict, "**No significant difference** between BEFORE and AFTER"
    )
    return (
        f"{words} on mAP50-95: Δ = {_signed(b['delta']['mAP50-95'])}, "
        f"95 % interval [{lo:+.3f}, {hi:+.3f}] (paired bootstrap, {b['resamples']} resamples over "
        f"{images} test images, {len(b['classes'])} shared classes)."
    )


def test_label_lines(data: dict) -> list[str]:
    """What the test labels are worth: the audit's suspects, and the verdict on the reviewed labels when given.

    Why beside the verdict: a model is scored against the test labels, so when a tenth of them look wrong the
    verdict holds only as far as they do (compare.json's ``test.audit`` and ``corrected``).
    """
    lines = []
    audit = data["test"].get("audit")
    if audit:
        kinds = ", ".join(f"{k} {n}" for k, n in list(audit["kinds"].items())[:3])
        lines.append(
            f"Test labels: {audit['suspect']} of {audit['labels']} ({audit['share']:.0%}) look wrong to the audit's "
            f"--fast checks" + (f" ({kinds})" if kinds else "") + "."
        )
    c = data.get("corrected")
    if c:
        t = c["test"]
        lines.append(
            f"On the reviewed test labels ({t['removed']} removed or changed, {t['added']} added or changed into): "
            + _verdict_sentence(c["verdict"], c["bootstrap"], t["images"])
        )
    return lines


def same_boxes(data: dict) -> bool:
    """Both models scored on every test box: their overall numbers are over the same boxes and comparable.

    When a model does not know some test classes (a 36-class BEFORE against a 6-class AFTER), its overall mAP,
    P, R and F1 average over other boxes and classes than the other's; only the shared-class bootstrap of the
    headline, and the per-class rows, compare like with like.
    """
    t = data["test"]
    return not t.get("dropped_for_before") and not t.get("dropped_for_after")


def metric_rows(data: dict) -> list[tuple[str, ...]]:
    """Rows of the metric table: the test-set metrics (Δ only when :func:`same_boxes`), then the losses; with
    ``--test-labels`` three more cells per test-set row, the same on the reviewed labels.

    Losses never get a Δ: each side's are measured on its own train and val data, so two numbers of
    different data (and, for cls_loss, of a different number of classes) are shown side by side only.
    """
    rows = []
    c = data.get("corrected")
    for kind in ("box", "mask"):
        if kind not in data["before"]["metrics"]:
            continue
        for k in ROWS:
            label = k if kind == "box" else f"mask {k}"
            row = (label, *_triple(data, kind, k))
            rows.append(row + (_triple(c, kind, k) if c else ()))
        if kind == "box":
            conf = (_f(data[s]["metrics"]["box"]["F1_conf"], 2) for s in SIDES)
            rows.append(("F1-best confidence", *conf, "") + (("", "", "") if c else ()))
    lb, la = data["before"]["metrics"]["losses"], data["after"]["metrics"]["losses"]
    for k in lb:
        for which in ("final", "best"):
            row = (f"{k} ({which}, own data)", _f(lb[k][which]), _f(la[k].get(which) if k in la else None), "")
            rows.append(row + (("", "", "") if c else ()))
    return rows


def _triple(data: dict, kind: str, k: str) -> tuple[str, str, str]:
    """BEFORE, AFTER and Δ of one test-set number (no Δ when the two are over different boxes)."""
    mb, ma = data["before"]["metrics"].get(kind), data["after"]["metrics"].get(kind)
    if not mb or not ma:
        return ("–", "–", "")
    return (_f(mb[k]), _f(ma[k]), _signed(ma[k] - mb[k]) if same_boxes(data) else "")


def metric_header(data: dict) -> list[str]:
    head = ["metric (test set)", "BEFORE", "AFTER", "Δ"]
    return head + (["BEFORE, reviewed labels", "AFTER, reviewed labels", "Δ"] if data.get("corrected") else [])


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


def per_class_rows(data: dict) -> list[tuple[str, str, str, str, str]]:
    """Per class of either side: its name, AP50-95 BEFORE and AFTER, the change (blank when one lacks it) and the
    paired bootstrap's 95 % interval of that change with its verdict (the shared classes only)."""
    pb, pa = data["before"]["metrics"]["box"]["per_class"], data["after"]["metrics"]["box"]["per_class"]
    intervals = data["bootstrap"].get("per_class", {})
    rows = []
    for name in sorted(set(pb) | set(pa)):
        x, y = pb.get(name, {}).get("AP50-95"), pa.get(name, {}).get("AP50-95")
        ci = intervals.get(name)
        where = f"[{ci['ci95'][0]:+.3f}, {ci['ci95'][1]:+.3f}] {ci['verdict']}" if ci else ""
        rows.append((name, _f(x), _f(y), _signed(y - x) if x is not None and y is not None else "", where))
    return rows


def run_notes(data: dict) -> list[str]:
    """The warnings, then each run's notes (the loss plateau, a NaN/inf loss and its restart, a halved batch)."""
    return list(data["warnings"]) + [f"{r['side']} seed {r['seed']}: {n}" for r in data["runs"] for n in r["notes"]]


def render_md(data: dict) -> str:
    s, t = data["settings"], data["test"]
    lines = ["# Train and compare", "", headline(data), ""]
    b = data["bootstrap"]
    lines += [
        f"mAP50: Δ = {_signed(b['delta']['mAP50'])}, 95 % interval [{b['ci95']['mAP50'][0]:+.3f}, "
        f"{b['ci95']['mAP50'][1]:+.3f}] → {b['verdicts']['mAP50']}.",
        "",
    ]
    lines += [line for x in test_label_lines(data) for line in (x, "")]
    lines += [
        f"- BEFORE: `{data['before']['path']}` (fingerprint {data['before']['fingerprint']})",
        f"- AFTER: `{data['after']['path']}` (fingerprint {data['after']['fingerprint']})",
        f"- test: `{t['path']}` split `{t['split']}`, {t['images']} images, {t['boxes']} boxes"
        + (" (AFTER's test split, the default: the photos neither side trained on)" if t.get("default") else ""),
    ]
    if t.get("audit"):
        lines.append(f"- suspect test labels: `{t['audit']['findings']}`")
    if data.get("corrected"):
        lines.append(f"- reviewed test labels: `{data['corrected']['test']['path']}`")
    lines += [
        f"- model `{s['model']}` ({data['task']}), {s['epochs']} epochs, imgsz {s['imgsz']}, batch {s['batch']}, "
        f"seeds {s['seeds_used']}, device {s['device']}",
        "",
    ]
    head = metric_header(data)
    lines += ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in metric_rows(data)]
    lines += [""] + table_notes(data)
    lines += ["", "## Per class (AP50-95)", "", "| class | BEFORE | AFTER | Δ | Δ 95 % interval |"]
    lines += ["|---|---:|---:|---:|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in per_class_rows(data)]
    timing = [f"{r['side']} seed {r['seed']}: {r['epochs_done']} epochs in {r['seconds']:.0f} s" for r in data["runs"]]
    lines += ["", "## Notes", ""] + [f"- {n}" for n in run_notes(data) or ["none"]]
    lines += ["", "## Runs", ""] + [f"- {t_}" for t_ in timing] + [""]
    return "\n".join(lines)


def _img(path: str | None) -> str:
    if not path or not Path(path).exists():
        return "<div class='missing'>no plot</div>"
    b64 = base64.b64encode(Path(path).read_bytes()).decode()
    return f"<img src='data:image/png;base64,{b64}' alt='{html.escape(Path(path).name)}'>"


def render_html(data: dict) -> str:
    from curate.report.pages import render
    from curate.report.plots import training_curves

    plots = []
    for name in PLOTS:
        before, after = (
            {**m.get("plots", {}), **m.get("train_plots", {})} for m in (data[s]["metrics"] for s in SIDES)
        )
        if before.get(name) or after.get(name):
            plots.append((name, _img(before.get(name)), _img(after.get(name))))
    curves = {s: data[s]["metrics"]["curve"] for s in SIDES if data[s]["metrics"].get("curve")}
    rows = metric_rows(data)  # the test set's numbers at the top; the losses (no Δ) below the curves they end
    losses = [row[:3] for row in rows if row[0].endswith("own data)")]
    colour = {"better": "#1a7f37", "worse": "#cf222e"}.get(data["verdict"], "#6e7781")
    return render(
        "compare.html.j2",
        colour="#bf8700" if leak_warning(data) else colour,
        headline=headline(data).replace("**", ""), verdict=data["verdict"],
        verdict50=data["bootstrap"]["verdicts"]["mAP50"], before=data["before"]["path"], after=data["after"]["path"],
        test=data["test"]["path"], split=data["test"]["split"], notes=run_notes(data), losses=losses,
        metrics=[row for row in rows if not row[0].endswith("own data)")],
        plots=plots, per_class=per_class_rows(data), header=metric_header(data),
        table_notes=table_notes(data)[:-1], loss_note=table_notes(data)[-1],
        test_labels=[x.replace("**", "") for x in test_label_lines(data)],
        curves=training_curves(curves) if curves else {},
    )  # fmt: skip
