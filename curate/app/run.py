"""``curate run``'s body: load the recipe, print the plan, then run it under the dataset's lock and say what
ran; at a review pause, the two commands that continue (:func:`pause_commands`)."""

from __future__ import annotations

from pathlib import Path

from curate.app.access import connect, database_errors, load, locked
from curate.app.console import fail, out, plain, spinner
from curate.fiftyone.options import ReviewOptions


def run_recipe(
    pipeline: Path,
    dataset: Path,
    *,
    profile: str | None,
    from_stage: str | None,
    dry_run: bool,
    name: str | None,
    sets: list[str] | None,
    reports: Path,
) -> None:
    """Plan, print and run ``pipeline`` on ``dataset`` (see :mod:`curate.app.pipeline`)."""
    from curate.app import pipeline as pl
    from curate.app.tables import plan_table

    try:
        recipe = pl.load_recipe(pipeline, profile=profile, overrides=list(sets or []))
    except pl.PipelineError as exc:
        fail(str(exc))
    ds = load(dataset)
    try:
        plan = pl.plan_run(recipe, ds, reports=reports, name=name, from_stage=from_stage)
    except pl.PipelineError as exc:
        fail(str(exc))
    run_name = pl.run_name(recipe, ds, name)
    out.print(plan_table(plan, f"plan of {run_name} ({reports / run_name})"))
    if dry_run:
        out.print("dry run: nothing written")
        return
    rv = recipe.stages.review
    commands = pause_commands(pipeline, dataset, rv, profile=profile, name=name, sets=sets, reports=reports)
    with locked(ds, "run"), database_errors(), spinner() as bar:
        if rv and not rv.skip and any(p.stage == "export" and p.action == "run" for p in plan):
            connect()  # the export reads the review from FiftyOne; the audit stage connects by itself
        task = bar.add_task("pipeline", total=None)
        try:
            result = pl.run_pipeline(
                recipe,
                ds,
                reports=reports,
                name=name,
                from_stage=from_stage,
                log=lambda m: out.print(plain(m), highlight=False, soft_wrap=True),
                progress=lambda m: bar.update(task, description=m),
                commands=commands,
            )
        except pl.PipelineError as exc:
            fail(str(exc))
    if result.paused:
        out.print("paused for the review (exit 0): run the two commands above")
    ran = ", ".join(f"{s} {t:.0f} s" for s, t in result.seconds.items()) or "nothing (every stage up to date)"
    out.print(f"ran: {ran}")
    if result.final is not None:
        out.print(plain(f"dataset: {result.final}"))
    out.print(plain(f"summary: {result.summary}"))


def pause_commands(
    pipeline: Path,
    dataset: Path,
    review: ReviewOptions | None,
    *,
    profile: str | None,
    name: str | None,
    sets: list[str] | None,
    reports: Path,
) -> dict[str, str]:
    """The ``curate review`` command with the recipe's review options, and the ``curate run ... --from export``
    that continues this same run (its profile, overrides, name and reports folder)."""
    extra = (
        (f" --profile {profile}" if profile else "")
        + "".join(f" --set {s}" for s in sets or [])
        + (f" --name {name}" if name else "")
    )
    extra += f" --reports {reports}" if reports != Path("reports") else ""
    return {
        "review the flagged boxes": (review or ReviewOptions()).command(dataset),
        "then continue with": f"curate run {pipeline} {dataset}{extra} --from export",
    }
