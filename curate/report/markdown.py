"""report.md, the audit report's text twin: counts, verdict lines and the top findings as a table.

For a terminal or a pull request, where report.html's pictures cannot be shown. It is written from the same
sections as the page, so both say the same.
"""

from __future__ import annotations

import shlex
from collections import defaultdict
from typing import Any

from curate.core import defaults
from curate.core.dataset import Dataset, LabelLookup
from curate.core.findings import NOTE_CHECKS, Finding
from curate.report.display import TABLE_CHECKS
from curate.report.ranking import is_note
from curate.report.sections import CheckSection, _pct, _plural, _source, unique_pairs


def review_count(findings: list[Finding]) -> int:
    """Findings that may be errors, i.e. all but the notes (facts shown below every error)."""
    return sum(1 for f in findings if f.check not in NOTE_CHECKS)


def _count(n: int, what: str) -> str:
    return f"{n:,} {_plural(n, what, what + 's')}"


def _unlabelled(stats: dict[str, Any]) -> str:
    n = stats["background_unlabelled"]
    return f"; {n:,} of them with objects `missing` found unlabelled" if n else ""


def _md_cell(v: Any) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def render_markdown(
    dataset: Dataset,
    findings: list[Finding],
    sections: list[CheckSection],
    stats: dict[str, Any],
    lookup: LabelLookup,
    *,
    notes: list[str],
    top: int = defaults.REPORT_MD_TOP,
) -> str:
    """Counts, one verdict line per check, the worst findings per check, format problems, file names."""
    to_review = review_count(findings)
    split_txt = " · ".join(f"{s} {n:,}" for s, n in stats["per_split"].items())
    lines = [
        f"# curate audit — {dataset.name}",
        "",
        f"**{stats['images']:,} images** ({split_txt}) · **{stats['boxes']:,} boxes** · "
        f"**{stats['classes']} classes** · "
        f"**{stats['background']:,} background {_plural(stats['background'], 'image', 'images')}** "
        f"({_pct(stats['background_share'])}, advice {stats['background_advice']}{_unlabelled(stats)}) · "
        f"**{to_review:,} findings to review** · {_count(len(findings) - to_review, 'note')}",
        "",
    ]
    lines += [f"> {n}" for n in notes] + ([""] if notes else [])
    lines += ["## Verdict (worst first)", ""]
    clean = [s.name for s in sections if not s.count]
    lines += [f"- **{s.name}**: {s.verdict}" for s in sections if s.count and not is_note(s)]
    if clean:
        lines.append(f"- no problem found: {', '.join(clean)}")
    lines += [f"- **{s.name}**: {s.verdict}" for s in sections if s.count and is_note(s)]
    lines += [
        "",
        "## Top findings",
        "",
        "| check | score | file | line | class | message |",
        "|---|---:|---|---:|---|---|",
    ]
    by_check: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        by_check[f.check].append(f)
    for s in sections:
        if s.kind in TABLE_CHECKS:
            continue
        worst = sorted(by_check.get(s.name, []), key=lambda f: -f.score)
        worst = unique_pairs(worst) if s.kind == "pair" else worst
        for f in worst[:top]:
            where = f.image + (f" ↔ {f.data['partner']}" if "partner" in f.data else "")
            lines.append(
                f"| {s.name} | {f.score:.2f} | {_md_cell(where)} | {'' if f.line is None else f.line} | "
                f"{_md_cell(lookup.class_name(f))} | {_md_cell(f.message)} |"
            )
    for s in sections:
        if s.kind in TABLE_CHECKS and s.rows:
            title = "Format problems" if s.kind == "format" else "Dataset notes"
            lines += ["", f"## {title}", "", "| file | line | reason |", "|---|---:|---|"]
            lines += [f"| {_md_cell(r['file'])} | {r['line']} | {_md_cell(r['reason'])} |" for r in s.rows[:50]]
            if len(s.rows) > 50:
                lines.append(f"| … | | {len(s.rows) - 50} more in findings.csv |")
    reviewable = [s.name for s in sections if s.count and s.kind not in TABLE_CHECKS]
    first = reviewable[0] if reviewable else "<check>"
    lines += [
        "",
        "## Files",
        "",
        "- `report.html` — this report with pictures (opens from disk)",
        "- `findings.csv`, `findings.json` — every finding above threshold",
        f"- review in the FiftyOne App: `curate review {shlex.quote(str(_source(dataset)))} --check {first}`",
        "",
    ]
    return "\n".join(lines)
