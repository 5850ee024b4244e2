"""Where an audit run's box scores come from: computed once per run and shared by the three box checks, in a
child process under ``--fast`` (:mod:`curate.app.worker`, overlapping the image hashing) or in this one.
"""

from __future__ import annotations

import os
import pickle
from typing import Any

from curate.audit.boxmodel.model import score_boxes
from curate.audit.boxmodel.scores import BoxScores
from curate.core import defaults
from curate.core.dataset import Dataset

#: The checks this model scores. It reads options of all three (grouped's iterations and members,
#: background_heavy's use_mask), so each keys its cached findings on all three (``PARAMS_FROM``).
BOX_CHECKS: tuple[str, ...] = ("grouped", "background_heavy", "shifted")


def _model_options(ctx: Any) -> dict[str, Any]:
    """score_boxes' options from the audit's ``--config`` (the same for the in-process and the child run)."""
    return {
        "fast": ctx.fast,
        "use_mask": bool(ctx.param("background_heavy", "use_mask", defaults.BOXMODEL_USE_MASK)),
        "seed": ctx.seed,
        "iterations": int(ctx.param("grouped", "iterations", defaults.BOXMODEL_ITERATIONS)),
        "members": int(ctx.param("grouped", "members", defaults.BOXMODEL_MEMBERS)),
    }


_CHILD_KEY = "boxmodel_child"
WARM_CHILD_KEY = "boxmodel_warm"  # a child spawned before the dataset was read (see spawn_child), not yet called


def spawn_child() -> "worker.Job | None":  # noqa: F821 — curate.app.worker is imported lazily
    """A child process (:mod:`curate.app.worker`) that imports the box model and its numpy boosting now, for
    :func:`start_in_child` to hand the dataset to later; None on one core or when it cannot start.

    Why: the CLI spawns it before reading the dataset, so the child's start-up overlaps the read and the
    hashing, and its fit starts as soon as the dataset is there. Put it in ``ctx.shared`` under
    ``WARM_CHILD_KEY`` (``run_audit(box_model_child=...)`` does); one that is not needed is cancelled.
    """
    from curate.app import worker

    return worker.try_spawn("curate.audit.boxmodel.child", "curate.learn.boosting")


def start_in_child(ctx: Any) -> None:
    """``--fast``: run the geometry box model in a child process (:mod:`curate.app.worker`, a warm one from
    :func:`spawn_child` when there is one) while this process hashes the images; :func:`shared_scores`
    collects it.

    Only ``--fast`` and only with two cores or more: the full audit's model needs the image signatures
    first (its scenes), and one core gains nothing from a second process.
    """
    warm = ctx.shared.pop(WARM_CHILD_KEY, None)
    if not ctx.fast or _CHILD_KEY in ctx.shared or "boxmodel" in ctx.shared:
        if warm is not None:
            warm.cancel()
        return
    from curate.app import worker

    job = worker.try_call(
        warm or spawn_child(), "curate.audit.boxmodel.child:scores_by_position", ctx.dataset, **_model_options(ctx)
    )
    if job is not None:  # else computed in this process
        ctx.shared[_CHILD_KEY] = job


def scores_by_position(dataset: Dataset, **options: Any) -> tuple[BoxScores, list[tuple[int, int]]]:
    """:func:`score_boxes` for a child process: its rows name their image by position in ``dataset.images``,
    so the parent points them at its own records instead of the child's unpickled copies."""
    bs = score_boxes(dataset, progress=False, **options)
    position = {id(rec): i for i, rec in enumerate(dataset.images)}
    rows = [(position[id(rec)], j) for rec, j in bs.records]
    bs.records = []
    return bs, rows


def cancel_child(ctx: Any) -> None:
    """Stop a child of :func:`spawn_child` or :func:`start_in_child` that nobody collected."""
    for key in (WARM_CHILD_KEY, _CHILD_KEY):
        job = ctx.shared.pop(key, None)
        if job is not None:
            job.cancel()


def _from_child(ctx: Any) -> BoxScores | None:
    """The child's scores, or None when it failed (``CURATE_DEBUG=1`` re-raises): then they are computed here."""
    job = ctx.shared.pop(_CHILD_KEY, None)
    if job is None:
        return None
    from curate.app.worker import WorkerError

    try:
        bs, rows = job.result()
    except (WorkerError, OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError):
        if os.environ.get("CURATE_DEBUG"):
            raise
        return None
    bs.records = [(ctx.dataset.images[i], j) for i, j in rows]
    return bs


def shared_scores(ctx: Any) -> BoxScores:
    """One computation per audit run, shared by the grouped, background_heavy and shifted checks."""
    key = "boxmodel"
    if key not in ctx.shared:
        bs = _from_child(ctx)
        if bs is None:
            sigs = None
            if not ctx.fast:  # the scenes of the neighbour features come from the signatures image_checks made
                from curate.audit.checks.image_checks import signatures

                sigs = signatures(ctx)
            bs = score_boxes(ctx.dataset, signatures=sigs, **_model_options(ctx))
        ctx.shared[key] = bs
    return ctx.shared[key]
