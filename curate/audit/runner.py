"""`curate audit`: run every check, keep what crosses its threshold, write findings, tag FiftyOne, report.

Data flows one way: dataset → checks (all scores) → findings (thresholded) → findings.csv/json →
FiftyOne tags + saved views → report. Each check's scores are cached on disk by the dataset's content
fingerprint, the check's options and curate's version, so a re-run with no change takes seconds.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable

from curate import __version__
from curate.audit.boxmodel import BoxModel
from curate.audit.checks import all_check_names, finish_checks, registered
from curate.audit.checks.base import AuditContext, Check, Shared
from curate.audit.proposals import Proposal, attach, propose
from curate.audit.proposals import write_csv as write_proposals_csv
from curate.audit.shared import NearDuplicatePairs
from curate.core.dataset import Dataset
from curate.core.findings import Finding, sort_findings, write_csv, write_json
from curate.io import cache
from curate.io.yolo import WriteError, check_outside_inputs
from curate.runtime.env import release_freed_memory
from curate.vision.hashing import SAME_SCENE_SIMILARITY

#: Bump when a check's scoring changes in a way the cache key can't see (it includes curate's version).
#: 2: the box model is a 2-member ensemble; 3: leakage of a file listed under several splits; 4: neighbour
#: features; 5: boxes past the image edge read, upright sizes of EXIF-rotated photos, leakage messages name
#: the splits; 6: a bag of 3 box models; 7: --fast boxes scored by numpy boosting, score calibration by a numpy
#: Platt fit; 8: findings stored as rows (Finding.to_row), not dicts; 9: class_inconsistent by extra trees;
#: 10: bytes after a JPEG's end marker are not truncation; 11: border slivers are border_cut notes, not
#: ambiguous scores; tiny at 2 px, not 4; weak ambiguous and class_inconsistent evidence x0.1; missing
#: regions past 8 per 100 boxes below 0.5; 12: class_inconsistent's crop embeddings on where the backbone knows
#: the crops (``embeddings: auto`` by default); 13: missing's kept windows re-ordered by crop embeddings; 14:
#: missing's smallest window 5 px, not 6; 15: class_inconsistent re-reads the trees' probabilities by a second
#: stage where they name few labels; 16: missing's listed regions carry the box their add proposes (``add_box``);
#: 17: class_inconsistent grows 1,600 trees per fold, not 200, where the trees name few labels; 18: duplicate and
#: ambiguous raise a pair drawn edge for edge on its partner (``duplicate.copy_like``) whatever its class and share.
CACHE_VERSION = 18


@dataclass
class AuditResult:
    """What one audit produced; ``findings`` are what findings.csv lists. ``scores`` are every check's scores
    with ``all_scores``, else only those at or above their threshold; ``scored`` counts every score per check."""

    dataset: Dataset
    findings: list[Finding]
    scores: list[Finding]
    out_dir: Path
    timings: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    fiftyone_name: str | None = None
    report: Path | None = None
    skipped: dict[str, str] = field(default_factory=dict)  # check name -> why it did not run
    proposals: list[Proposal] = field(default_factory=list)  # proposed fixes of the flagged labels
    scored: dict[str, int] = field(default_factory=dict)  # check name -> items it scored

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.findings:
            out[f.check] = out.get(f.check, 0) + 1
        return out


def all_shared() -> list[type[Shared]]:
    """The shared computations the checks need, in the order of the first check that needs each."""
    return list(dict.fromkeys(dep for c in registered() for dep in c.needs))


def stop_shared(ctx: AuditContext) -> None:
    """Stop every shared computation still running (a warm box-model child no check reached, too)."""
    for dep in all_shared():
        ctx.use(dep).stop(ctx)


def release_unneeded(ctx: AuditContext, left: list[Check]) -> None:
    """Release each shared result that none of the checks ``left`` to run needs, directly or through another's
    :meth:`Shared.uses <curate.audit.checks.base.Shared.uses>` (:meth:`Shared.release`)."""
    needed = {dep for c in left for dep in c.needs}
    todo = list(needed)
    while todo:
        for dep in ctx.use(todo.pop()).uses(ctx):
            if dep not in needed:
                needed.add(dep)
                todo.append(dep)
    for dep in all_shared():
        if dep not in needed:
            ctx.use(dep).release(ctx)


def default_out_dir(dataset: Dataset, *, fast: bool = False) -> Path:
    """``reports/<name>-<key>/audit`` (``audit-fast`` for ``--fast``): one folder per dataset root, so two
    datasets that share a folder name never write over each other's report (:attr:`Dataset.slug`), and a
    quick ``--fast`` run never replaces the full audit's report."""
    return Path("reports") / dataset.slug / ("audit-fast" if fast else "audit")


def _cache_key(fp: str, check: Check, ctx: AuditContext) -> str:
    opts = {n: ctx.params.get(n, {}) for n in (check.options_from or check.names)}
    payload = json.dumps(
        [CACHE_VERSION, __version__, fp, check.module, opts, ctx.fast, ctx.model, ctx.seed], sort_keys=True, default=str
    )
    return hashlib.blake2b(payload.encode(), digest_size=16).hexdigest()


def _from_cache(key: str) -> list[Finding] | None:
    rows = cache.load_json("audit", key)
    if rows is None:
        return None
    return [Finding.from_row(r) for r in rows]


def _save_cache(key: str, found: list[Finding]) -> None:
    """Store one check's scores as rows (:meth:`Finding.to_row`): a third cheaper to encode than dicts."""
    cache.save_json("audit", key, [f.to_row() for f in found])


def score_dataset(
    ctx: AuditContext,
    *,
    only: set[str] | None = None,
    use_cache: bool = True,
    on_check: Callable[[str], None] | None = None,
    flagged_only: bool = False,
    scored: dict[str, int] | None = None,
) -> tuple[list[Finding], dict[str, float], dict[str, str]]:
    """Run each available check module (cached); return all scores, seconds per module, and errors.

    A check that raises is reported (one line in the terminal and the report) and the others still run;
    ``CURATE_DEBUG=1`` re-raises instead. ``flagged_only`` keeps only the scores at or above their check's
    threshold (what findings.csv lists; the cache on disk still holds them all): a check scores every box or
    image, about 1 KB a Finding and ten per box, so holding them all until the end grew with the dataset (52 MB
    on food-ingredients, 0.2 GB at 4 times its size, 2.7 GB projected at 100,000 images; issue #25).
    ``scored``, when given, is filled with the number of items each check name scored.
    """
    import os

    from curate.fiftyone.identity import fingerprint

    fp = fingerprint(ctx.dataset)
    scores: list[Finding] = []
    timings: dict[str, float] = {}
    errors: dict[str, str] = {}
    ran: dict[Check, list[Finding]] = {}
    ctx.finishing = True
    todo: list[Check] = []
    for check in registered():
        if only is not None and not set(check.names) & only:
            continue
        if (why := check.skipped(ctx)) is not None:
            ctx.skipped.update(dict.fromkeys(check.names, why))
            continue
        todo.append(check)
    counts: dict[str, int] = scored if scored is not None else {}

    def keep(found: list[Finding]) -> list[Finding]:
        for f in found:
            counts[f.check] = counts.get(f.check, 0) + 1
        return [f for f in found if f.score >= ctx.threshold(f.check)] if flagged_only else found

    keys = {c: _cache_key(fp, c, ctx) for c in todo}
    cached: dict[Check, list[Finding] | None] = {}
    for c in todo:  # filtered as each is read: one check's pile at a time
        found = _from_cache(keys[c]) if use_cache else None
        cached[c] = None if found is None else keep(found)
    found = None  # not the last check's unfiltered pile
    needed = {dep for c in todo if cached[c] is None for dep in c.needs}
    for dep in all_shared():  # e.g. the images are hashed in the background while the label-only checks run
        (ctx.use(dep).start if dep in needed else ctx.use(dep).stop)(ctx)
    try:
        for k, check in enumerate(todo):
            if on_check:
                on_check(check.module)
            t0 = time.perf_counter()
            found = cached[check]
            if found is None:
                try:
                    found = list(check.run(ctx))
                except Exception as exc:  # noqa: BLE001 — one broken check must not lose the others
                    if os.environ.get("CURATE_DEBUG"):
                        raise
                    errors[check.module] = f"{type(exc).__name__}: {exc}"
                    found = []
                else:
                    _save_cache(keys[check], found)
                    found = keep(found)
            release_unneeded(ctx, [c for c in todo[k + 1 :] if cached[c] is None])  # e.g. the signatures
            release_freed_memory()  # what the check freed, before the next one's peak
            timings[check.module] = time.perf_counter() - t0
            scores.extend(found)
            if check.module not in errors:
                ran[check] = found
    finally:
        stop_shared(ctx)  # not collected: every check that needed it failed before, or an error stopped the audit
    seconds, failed = finish_checks(ctx, ran)  # e.g. the masks made in the background meanwhile
    for check, sec in seconds.items():
        timings[check.module] += sec
    for check, line in failed.items():
        errors[check.module] = line
    return scores, timings, errors


def apply_thresholds(scores: list[Finding], ctx: AuditContext) -> list[Finding]:
    return [f for f in scores if f.score >= ctx.threshold(f.check)]


# --- reviewer "ok" marks (written by `curate export` as curate_ok.json) -------------------------------


def load_ok_marks(dataset: Dataset) -> set[tuple[str, int | None]]:
    """``(image rel, line)`` of labels a reviewer marked ``ok`` in ``<root>/curate_ok.json``, and ``(image rel,
    None)`` of images marked ``ok`` (a sample tag: ``"line": null``).

    A mark counts only while its line still holds the label it was given for (``label`` text), and an image's
    while the file has the bytes it was given for (``image_hash``), so a file changed by hand since does not hide
    a new problem. Unreadable sidecar → no marks.
    """
    from curate.io.yolo import format_label

    path = Path(dataset.root) / "curate_ok.json"
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    labels = {(r.rel, lab.line): format_label(lab) for r in dataset.images for lab in r.labels}
    images = {r.rel: r.path for r in dataset.images}
    marks: set[tuple[str, int | None]] = set()
    for row in rows if isinstance(rows, list) else []:
        try:
            key = (str(row["image"]), None if row["line"] is None else int(row["line"]))
        except (KeyError, TypeError, ValueError):
            continue
        if key[1] is None:
            if key[0] in images and row.get("image_hash") == _image_hash(images[key[0]]):
                marks.add(key)
        elif key in labels and row.get("label", labels[key]) == labels[key]:
            marks.add(key)
    return marks


def _image_hash(path: Path) -> str | None:
    from curate.io.cache import file_hash

    try:
        return file_hash(path)
    except OSError:
        return None


def drop_ok(findings: list[Finding], marks: set[tuple[str, int | None]]) -> list[Finding]:
    """The findings not about a label marked ``ok``, nor image-level findings of an image marked ``ok``
    (``(image, None)``: its boxes' findings, its missing-box regions and the reader's format findings stay)."""
    if not marks:
        return findings
    return [f for f in findings if (f.image, f.line) not in marks or f.line is None and _not_image_level(f)]


def _not_image_level(f: Finding) -> bool:
    return f.region is not None or f.check == "format"


def run_audit(
    dataset: Dataset,
    *,
    out_dir: Path | None = None,
    params: dict[str, dict[str, Any]] | None = None,
    fast: bool = False,
    model: str | None = None,
    all_scores: bool = False,
    only: set[str] | None = None,
    fiftyone: bool = True,
    report: bool = True,
    use_cache: bool = True,
    on_check: Callable[[str], None] | None = None,
    box_model_child: Any = None,
    note: Callable[[str], None] | None = None,
) -> AuditResult:
    """The whole audit of ``dataset``; writes findings.csv/json (+ all_scores.csv), FiftyOne tags, report.

    ``box_model_child`` is a :func:`curate.audit.boxmodel.spawn_child` process started before the dataset was
    read (the CLI does, for ``--fast``); it is used or cancelled. ``note`` is told where a review held in
    FiftyOne went when the dataset's FiftyOne copy had to be rebuilt (:func:`curate.fiftyone.load.to_fiftyone`).
    """
    default = out_dir is None
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(dataset, fast=fast)
    try:  # never write reports into the user's dataset (e.g. the default reports/ when run from inside it)
        check_outside_inputs(out_dir, [dataset.root], may_contain=True)
    except WriteError as exc:
        if box_model_child is not None:
            box_model_child.cancel()
        hint = " (run curate from a folder outside the dataset, or give `curate audit` an --out)"
        raise WriteError(f"{exc}{hint}" if default else str(exc)) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = AuditContext(dataset, params=params or {}, fast=fast, model=model)
    if box_model_child is not None:
        ctx.use(BoxModel).warm = box_model_child
    t0 = time.perf_counter()
    drawing = None
    if report and not fast:  # --fast draws no matplotlib figure (see curate.report.plots.dataset_plots)
        from curate.report.plots import start_dataset_plots

        drawing = start_dataset_plots(dataset)  # the report's dataset plots are drawn in a second process meanwhile
    try:
        return _audit(
            ctx,
            out_dir,
            t0,
            drawing,
            all_scores=all_scores,
            only=only,
            fiftyone=fiftyone,
            report=report,
            use_cache=use_cache,
            on_check=on_check,
            note=note,
        )
    finally:
        stop_shared(ctx)  # e.g. a warm box-model child that score_dataset never reached
        if drawing is not None:
            drawing.cancel()  # already collected by the report, or not needed after an error


def _audit(
    ctx: AuditContext,
    out_dir: Path,
    t0: float,
    drawing: Any,
    *,
    all_scores: bool,
    only: set[str] | None,
    fiftyone: bool,
    report: bool,
    use_cache: bool,
    on_check: Callable[[str], None] | None,
    note: Callable[[str], None] | None,
) -> AuditResult:
    """:func:`run_audit` after its child processes are started (they are stopped by the caller, whatever
    happens here)."""
    dataset, fast = ctx.dataset, ctx.fast
    if fiftyone:
        from curate.fiftyone.database import start_database

        database = start_database()  # FiftyOne's database starts while the checks run
    scored: dict[str, int] = {}
    scores, timings, errors = score_dataset(
        ctx, only=only, use_cache=use_cache, on_check=on_check, flagged_only=not all_scores, scored=scored
    )
    marks = load_ok_marks(dataset)
    if fiftyone:
        t = time.perf_counter()
        from curate.fiftyone.database import wait_database
        from curate.fiftyone.diff import ok_images, ok_labels
        from curate.fiftyone.load import to_fiftyone
        from curate.fiftyone.proposals import write_proposals
        from curate.fiftyone.tags import tag_findings

        wait_database(database)
        fo_dataset = to_fiftyone(dataset, note=note)
        # labels a reviewer tagged ok in the App and not yet exported: the FiftyOne dataset now holds the files
        # as they are, so its original lines are the label files' lines, and every ok'd image has the bytes it was
        # loaded with (to_fiftyone rebuilds a dataset where one does not, carrying no review of a changed picture)
        marks |= set(ok_labels(fo_dataset)) | ok_images(fo_dataset)
    findings = sort_findings(drop_ok(list(dataset.findings) + apply_thresholds(scores, ctx), marks))
    # the fix each flagged label's evidence names, where it names one
    same_scene = partial(ctx.use(NearDuplicatePairs).at, ctx, SAME_SCENE_SIMILARITY)  # the checks' one search
    proposals = propose(findings, dataset, pixels=not fast, seed=ctx.seed, same_scene=same_scene)
    attach(findings, proposals)
    result = AuditResult(
        dataset,
        findings,
        scores,
        out_dir,
        timings,
        errors,
        skipped=dict(ctx.skipped),
        proposals=proposals,
        scored=scored,
    )
    thresholds = {n: ctx.threshold(n) for n in all_check_names()}
    write_csv(findings, out_dir / "findings.csv")
    write_proposals_csv(proposals, dataset, out_dir / "proposals.csv")
    if all_scores:
        write_csv(sort_findings(scores), out_dir / "all_scores.csv")
    if fiftyone:
        tag_findings(fo_dataset, findings, keep=set(ctx.skipped))  # an earlier audit's marks of the checks not run stay
        write_proposals(fo_dataset, proposals, dataset, keep=set(ctx.skipped))
        result.fiftyone_name = fo_dataset.name
        timings["fiftyone"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    if report:
        from curate.report.audit import write_report

        masks = None
        if not fast:
            try:
                from curate.vision.foreground import cached_mask as masks  # noqa: N813
            except ImportError:
                masks = None
        notes = [f"check {m} failed: {e}" for m, e in errors.items()]
        ran = [n for c in registered() if only is None or set(c.names) & only for n in c.names]
        ran = [n for n in ran if n not in ctx.skipped]
        summary = {"checks": ["format", *ran], "fast": fast, "seconds": round(timings["total"], 1)}
        if ctx.skipped:
            summary["not run"] = "; ".join(f"{n} ({why})" for n, why in sorted(ctx.skipped.items()))
        result.report = write_report(
            dataset,
            findings,
            out_dir,
            summary=summary,
            thresholds=thresholds,
            fiftyone_name=result.fiftyone_name,
            masks=masks,
            notes=notes,
            plots_drawing=drawing,
        )
    timings["total"] = time.perf_counter() - t0
    write_json(
        findings,
        out_dir / "findings.json",
        dataset=str(dataset.root),
        curate_version=__version__,
        thresholds=thresholds,
        timings=timings,
        errors=errors,
        fast=fast,
        not_run=ctx.skipped,
        fiftyone_dataset=result.fiftyone_name,
    )
    return result
