"""Rich tables the command line prints: ``info``'s, a run's plan, rebalance's counts (the audit's summary is in
:mod:`curate.app.audit_summary`)."""

from __future__ import annotations


def info_tables(ds, max_findings: int) -> list:
    """``curate info``: per split images, boxes, backgrounds and findings; per class instances per split; the
    first ``max_findings`` format findings (a line says how many more)."""
    from rich.table import Table

    from curate.app.console import plain

    splits = ds.splits
    t = Table(title=plain(f"{ds.name}  ({ds.root})"), title_justify="left")
    for col in ("split", "images", "boxes", "polygons", "background images", "empty label files", "format findings"):
        t.add_column(col, justify="left" if col == "split" else "right")
    for s in splits + ["all"]:
        recs = ds.images if s == "all" else ds.split(s)
        fnd = [f for f in ds.findings if s == "all" or f.split == s]
        t.add_row(
            s,
            str(len(recs)),
            str(sum(len(r.labels) for r in recs)),
            str(sum(1 for r in recs for lb in r.labels if lb.polygon is not None)),
            str(sum(1 for r in recs if r.is_background)),
            str(sum(1 for r in recs if r.label_path is not None and r.label_path.stat().st_size == 0)),
            str(len(fnd)),
            style="bold" if s == "all" else None,
        )
    counts = {s: ds.instance_counts(s) for s in splits}
    c = Table(title=f"{len(ds.names)} classes: instances per split", title_justify="left")
    c.add_column("id", justify="right")
    c.add_column("class")
    for s in splits:
        c.add_column(s, justify="right")
    for i, name in enumerate(ds.names):
        c.add_row(str(i), plain(name), *(str(counts[s][i]) if counts[s][i] else "[red]0[/]" for s in splits))
    if not ds.findings:
        return [t, c, "no format findings"]
    f = Table(title=f"format findings ({len(ds.findings)})", title_justify="left")
    for col in ("file", "line", "reason"):
        f.add_column(col)
    for x in ds.findings[:max_findings]:
        f.add_row(plain(x.data.get("label_file", x.image)), "" if x.line is None else str(x.line), plain(x.message))
    more = len(ds.findings) - max_findings
    return [t, c, f] + ([f"… and {more} more (`curate audit` writes them all to findings.csv)"] if more > 0 else [])


def plan_table(plan: list, title: str):
    """``curate run``'s plan: per stage run, skip, pause or off, and why."""
    from rich.table import Table

    from curate.app.console import plain

    t = Table(title=plain(title), title_justify="left")
    for col in ("stage", "action", "why"):
        t.add_column(col)
    style = {"run": "bold green", "skip": "dim", "pause": "bold yellow", "off": "dim"}
    for p in plan:
        t.add_row(p.stage, f"[{style[p.action]}]{p.action}[/]", plain(p.reason))
    return t


def rebalance_table(summary: dict):
    """A rich table: per class, instances before, after per split and each split's share; images last."""
    from rich.table import Table

    from curate.app.console import plain

    splits = list(summary["target_ratios"])
    t = Table(
        title=f"rebalance (seed {summary['seed']}): instances per class (train after cap/oversample)",
        title_justify="left",
    )
    t.add_column("class")
    t.add_column("before", justify="right")
    for s in splits:
        t.add_column(s, justify="right")
    t.add_column("split shares %", justify="right")
    before = summary["counts_before"]
    for name, row in summary["counts_after"].items():
        at_split = summary.get("counts_split", summary["counts_after"])[name]
        total = sum(at_split.values()) or 1
        shares = "/".join(f"{100 * at_split.get(s, 0) / total:.0f}" for s in splits)
        t.add_row(plain(name), str(sum(before.get(name, {}).values())), *(str(row.get(s, 0)) for s in splits), shares)
    img = summary["images"]["after"]
    achieved = summary["achieved_image_ratios"]
    t.add_section()
    t.add_row(
        "[bold]images[/]",
        str(sum(summary["images"]["before"].values())),
        *(str(img.get(s, 0)) for s in splits),
        "/".join(f"{100 * achieved[s]:.1f}" for s in splits),
    )
    return t
