"""Rich tables the command line prints (the audit's summary stays beside its command in :mod:`curate.app.cli`)."""

from __future__ import annotations


def rebalance_table(summary: dict):
    """A rich table: per class, instances before, after per split and each split's share; images last."""
    from rich.table import Table

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
        t.add_row(name, str(sum(before.get(name, {}).values())), *(str(row.get(s, 0)) for s in splits), shares)
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
