"""What ``curate audit`` prints when it is done: per check what it flagged, then where the findings, the report
and the FiftyOne views are."""

from __future__ import annotations

from curate.app.console import err, out, plain


def print_audit_summary(result) -> None:
    """The summary table, then where the findings, the report and the FiftyOne views are."""
    out.print(audit_table(result))
    for module, e in result.errors.items():
        err.print(f"[red]check {module} failed:[/] {plain(e)}", highlight=False, soft_wrap=True)
    out.print(plain(f"findings: {result.out_dir / 'findings.csv'}  ({len(result.findings)} rows)"))
    if result.report:
        out.print(plain(f"report:   {result.report}"))
    if result.fiftyone_name:
        out.print(
            plain(
                f"FiftyOne: dataset {result.fiftyone_name!r}, saved views audit/<check>  →  "
                f"curate review {result.dataset.root}"
            )
        )
    out.print(f"took {result.timings.get('total', 0):.1f} s")


def audit_table(result):
    """The audit's summary: per check, the boxes/images flagged and scored, the worst score, the seconds."""
    from rich.table import Table

    from curate.audit.checks import all_check_names, by_name

    per_check: dict[str, list] = {}
    for f in result.findings:
        per_check.setdefault(f.check, []).append(f)
    scored = result.scored
    module_of = {n: c.module for n, c in by_name().items()}
    t = Table(
        title=plain(
            f"audit of {result.dataset.name}: {len(result.dataset.images)} images, {result.dataset.num_boxes} boxes"
        ),
        title_justify="left",
    )
    for col in ("check", "flagged", "scored", "worst", "seconds"):
        t.add_column(col, justify="left" if col == "check" else "right")
    for name in all_check_names():
        flagged = per_check.get(name, [])
        module = module_of.get(name)
        if module in result.errors:
            t.add_row(name, "[red]failed[/]", "", "", "")
            continue
        if name in result.skipped:
            t.add_row(name, f"[dim]not run ({result.skipped[name]})[/]", "", "", "")
            continue
        secs = result.timings.get(module, 0.0) if module else 0.0
        worst = f"{max(f.score for f in flagged):.2f}" if flagged else ""
        t.add_row(
            name,
            f"[bold]{len(flagged)}[/]" if flagged else "0",
            str(scored.get(name, "")),
            worst,
            f"{secs:.1f}" if module else "",
        )
    return t
