"""The audit report: one self-contained page a person would rather look at than read, plus a short text twin.

``report.html`` embeds every picture (plots as PNG, thumbnails as small JPEG data URIs) and its CSS, runs
no script and loads nothing from the network, so it opens from disk, from a zip or from a CI artifact.
``report.md`` is the terminal / pull-request version: counts, verdict lines and the top findings as a table.

This module assembles them: the sections (:mod:`curate.report.sections`), their thumbnails
(:mod:`curate.report.thumbs`), the plots (:mod:`curate.report.plots`) and report.md
(:mod:`curate.report.markdown`), rendered through ``templates/report.html.j2``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from curate.core.dataset import Dataset, LabelLookup
from curate.core.findings import Finding
from curate.report.display import CHECK_COLOURS
from curate.report.markdown import render_markdown, review_count
from curate.report.plots import make_plots
from curate.report.sections import _source, build_sections, contact_sheet, summary_numbers
from curate.report.thumbs import MaskFn


def write_report(
    dataset: Dataset,
    findings: list[Finding],
    out_dir: Path,
    *,
    summary: dict | None = None,
    thresholds: dict[str, float] | None = None,
    fiftyone_name: str | None = None,
    masks: MaskFn | None = None,
    notes: list[str] | None = None,
    plots_drawing=None,
) -> Path:
    """Write ``out_dir/report.html`` (self-contained) and ``out_dir/report.md``; return the HTML path.

    ``findings`` are those above threshold (what findings.csv lists). ``summary`` holds free-form facts
    about the run shown in a table (seconds, foreground model, ``fast`` …); its key ``checks`` (the checks
    that ran) decides which checks get a "no problem found" line — without it, the checks in ``thresholds``
    (or else only those with findings) do, so a check that did not run is never reported as clean.
    ``summary["fiftyone_views"]`` may map a check to its saved-view name (default ``audit/<check>``).
    ``masks(record)`` may return a foreground mask (any size, bool/0–1/0–255) drawn over thumbnails of
    pixel-based checks. ``notes`` are one-line remarks shown at the top (e.g. "rembg weights absent: GrabCut").
    ``plots_drawing`` is a :func:`start_dataset_plots` job started earlier (the dataset's plots drawn meanwhile).
    """
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = dict(summary or {})
    lookup = LabelLookup(dataset)
    sections = build_sections(dataset, findings, lookup, summary=summary, thresholds=thresholds, masks=masks)
    contact = contact_sheet(sections)
    stats = summary_numbers(dataset, findings)
    plots = make_plots(dataset, findings, lookup, drawing=plots_drawing, geometry=not summary.get("fast"))
    run_rows = [(k, _fmt_value(v)) for k, v in summary.items() if k not in ("checks", "fiftyone_views")]
    context = {
        "dataset": dataset,
        "source": str(_source(dataset)),
        "stats": stats,
        "sections": sections,
        "contact": contact,
        "plots": plots,
        "notes": list(notes or []) + list(dataset.warnings),
        "run_rows": run_rows,
        "fiftyone_name": fiftyone_name,
        "total_findings": len(findings),
        "review_findings": review_count(findings),
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "fmt": _fmt_int,
        "colours": CHECK_COLOURS,
    }
    env = Environment(
        loader=FileSystemLoader(str(Path(__file__).parent / "templates")),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    html_path = out_dir / "report.html"
    html_path.write_text(env.get_template("report.html.j2").render(**context), encoding="utf-8")
    md = render_markdown(dataset, findings, sections, stats, lookup, notes=context["notes"])
    (out_dir / "report.md").write_text(md, encoding="utf-8")
    return html_path


def _fmt_int(n: int | float) -> str:
    return f"{n:,}" if isinstance(n, int) else f"{n:,.2f}"


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, (list, tuple)):
        return ", ".join(map(str, v))
    return str(v)
