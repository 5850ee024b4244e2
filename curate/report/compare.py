"""compare.md and compare.html from compare.json's dict: the verdict first, then the numbers, then the plots.

The HTML is self-contained (plots inlined as base64 PNG) so it can be mailed or attached to an issue.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

ROWS = ("mAP50", "mAP50-95", "precision", "recall", "F1")
PLOTS = ("results.png", "BoxPR_curve.png", "BoxF1_curve.png", "confusion_matrix_normalized.png", "MaskPR_curve.png")


def _f(x: Any, d: int = 3) -> str:
    return f"{x:.{d}f}" if isinstance(x, (int, float)) else "–"


def _signed(x: float) -> str:
    return f"{x:+.3f}"


def headline(data: dict) -> str:
    """One sentence: the verdict and the interval it rests on."""
    b = data["bootstrap"]
    lo, hi = b["ci95"]["mAP50-95"]
    words = {"better": "AFTER is **better** than BEFORE", "worse": "AFTER is **worse** than BEFORE"}.get(
        data["verdict"], "**No significant difference** between BEFORE and AFTER"
    )
    return (
        f"{words} on mAP50-95: Δ = {_signed(b['delta']['mAP50-95'])}, "
        f"95 % interval [{lo:+.3f}, {hi:+.3f}] (paired bootstrap, {b['resamples']} resamples over "
        f"{data['test']['images']} test images, {len(b['classes'])} shared classes)."
    )


def metric_rows(data: dict) -> list[tuple[str, str, str, str]]:
    rows = []
    for kind in ("box", "mask"):
        if kind not in data["before"]["metrics"]:
            continue
        mb, ma = data["before"]["metrics"][kind], data["after"]["metrics"][kind]
        for k in ROWS:
            label = k if kind == "box" else f"mask {k}"
            rows.append((label, _f(mb[k]), _f(ma[k]), _signed(ma[k] - mb[k])))
        if kind == "box":
            rows.append(("F1-best confidence", _f(mb["F1_conf"], 2), _f(ma["F1_conf"], 2), ""))
    lb, la = data["before"]["metrics"]["losses"], data["after"]["metrics"]["losses"]
    for k in lb:
        for which in ("final", "best"):
            rows.append((f"{k} ({which})", _f(lb[k][which]), _f(la[k][which]), _signed(la[k][which] - lb[k][which])))
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
        + (" (AFTER's test split, the default)" if t.get("default") else ""),
        f"- model `{s['model']}` ({data['task']}), {s['epochs']} epochs, imgsz {s['imgsz']}, batch {s['batch']}, "
        f"seeds {s['seeds_used']}, device {s['device']}",
        "",
    ]
    lines += ["| metric (test set) | BEFORE | AFTER | Δ |", "|---|---:|---:|---:|"]
    lines += [f"| {a} | {b_} | {c} | {d} |" for a, b_, c, d in metric_rows(data)]
    lines += ["", "## Per class (AP50-95)", "", "| class | BEFORE | AFTER | Δ |", "|---|---:|---:|---:|"]
    pb, pa = data["before"]["metrics"]["box"]["per_class"], data["after"]["metrics"]["box"]["per_class"]
    for name in sorted(set(pb) | set(pa)):
        x, y = pb.get(name, {}).get("AP50-95"), pa.get(name, {}).get("AP50-95")
        d = _signed(y - x) if x is not None and y is not None else ""
        lines.append(f"| {name} | {_f(x)} | {_f(y)} | {d} |")
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
    e = html.escape
    verdict = data["verdict"]
    colour = {"better": "#1a7f37", "worse": "#cf222e"}.get(verdict, "#6e7781")
    head = e(headline(data)).replace("**", "")
    rows = "".join(f"<tr><td>{e(a)}</td><td>{b}</td><td>{c}</td><td>{d}</td></tr>" for a, b, c, d in metric_rows(data))
    plots = []
    for name in PLOTS:
        pb = {**data["before"]["metrics"].get("plots", {}), **data["before"]["metrics"].get("train_plots", {})}.get(
            name
        )
        pa = {**data["after"]["metrics"].get("plots", {}), **data["after"]["metrics"].get("train_plots", {})}.get(name)
        if pb or pa:
            plots.append(
                f"<h3>{e(name)}</h3><div class='pair'><figure>{_img(pb)}<figcaption>BEFORE</figcaption></figure>"
                f"<figure>{_img(pa)}<figcaption>AFTER</figcaption></figure></div>"
            )
    notes = list(data["warnings"]) + [f"{r['side']} seed {r['seed']}: {n}" for r in data["runs"] for n in r["notes"]]
    md_rest = render_md(data).split("## Per class", 1)[1].split("## Notes", 1)[0]
    per_class = "".join(
        "<tr>" + "".join(f"<td>{e(c.strip())}</td>" for c in line.strip("|").split("|")) + "</tr>"
        for line in md_rest.splitlines()
        if line.startswith("|") and "---" not in line and "class |" not in line
    )
    return f"""<!doctype html><html><head><meta charset='utf-8'><title>curate: train and compare</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;color:#24292f}}
.verdict{{font-size:1.3em;padding:.6em 1em;border-left:6px solid {colour};background:#f6f8fa}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #d0d7de;padding:3px 8px;text-align:right}}
td:first-child{{text-align:left}}.pair{{display:flex;gap:1em}}figure{{flex:1;margin:0}}img{{width:100%}}
figcaption{{text-align:center;font-weight:bold}}.missing{{color:#999}}</style></head><body>
<h1>Train and compare</h1><p class='verdict'>{head}</p>
<p>verdict on mAP50-95: <b>{e(verdict)}</b> · on mAP50: <b>{e(data["bootstrap"]["verdicts"]["mAP50"])}</b></p>
<p>BEFORE <code>{e(data["before"]["path"])}</code> · AFTER <code>{e(data["after"]["path"])}</code> · test
<code>{e(data["test"]["path"])}</code> split {e(data["test"]["split"])}</p>
<table><tr><th>metric (test set)</th><th>BEFORE</th><th>AFTER</th><th>Δ</th></tr>{rows}</table>
<h2>Notes</h2><ul>{"".join(f"<li>{e(n)}</li>" for n in notes) or "<li>none</li>"}</ul>
<h2>Plots</h2>{"".join(plots)}
<h2>Per class (AP50-95)</h2><table><tr><th>class</th><th>BEFORE</th><th>AFTER</th><th>Δ</th></tr>{per_class}</table>
</body></html>
"""
