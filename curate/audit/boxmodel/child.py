"""Where an audit run's box scores come from: computed once per run and shared by the three box checks, in a
child process under ``--fast`` (:mod:`curate.runtime.worker`, overlapping the image hashing) or in this one.
"""

from __future__ import annotations

import os
import pickle
from typing import Any

from curate.audit.boxmodel.model import score_boxes
from curate.audit.boxmodel.scores import BoxScores
from curate.audit.checks.base import Shared
from curate.core import defaults
from curate.core.dataset import Dataset

#: The checks this model scores. It reads options of all three (grouped's iterations and members,
#: background_heavy's use_mask), so each keys its cached findings on all three (``Check.options_from``).
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


class BoxModel(Shared):
    """The box scores of one audit run, computed once and shared by the grouped, background_heavy and shifted
    checks: in a child process under ``--fast`` (:meth:`start`), else in this one on first use (:meth:`scores`).

    ``warm`` is a child the CLI spawned before the dataset was read (:func:`spawn_child`), not yet called;
    ``job`` the child computing this run's scores.
    """

    def __init__(self) -> None:
        self.warm: Any = None
        self.job: Any = None
        self._scores: BoxScores | None = None

    def start(self, ctx: Any) -> None:
        """``--fast``: run the geometry box model in a child process (:mod:`curate.runtime.worker`, the warm one
        when there is one) while this process hashes the images; :meth:`scores` collects it.

        Only ``--fast`` and only with two cores or more: the full audit's model needs the near-duplicate pairs
        first (its scenes), and one core gains nothing from a second process.
        """
        warm, self.warm = self.warm, None
        if not ctx.fast or self.job is not None or self._scores is not None:
            if warm is not None:
                warm.cancel()
            return
        from curate.runtime import worker

        job = worker.try_call(
            warm or spawn_child(), "curate.audit.boxmodel.child:scores_by_position", ctx.dataset, **_model_options(ctx)
        )
        if job is not None:  # else computed in this process
            self.job = job

    def stop(self, ctx: Any) -> None:
        """Stop a child that nobody collected (a warm one no check needed, or an audit that failed)."""
        for job in (self.warm, self.job):
            if job is not None:
                job.cancel()
        self.warm = self.job = None

    def uses(self, ctx: Any) -> tuple[type[Shared], ...]:
        """The full audit's model, until it has scored, reads the near-duplicate pairs (its scenes)."""
        from curate.audit.shared import NearDuplicatePairs

        return (NearDuplicatePairs,) if self._scores is None and not ctx.fast else ()

    def release(self, ctx: Any) -> None:
        """After the last box check (shifted, order 90): the scores, their feature rows and evidence (~0.1 GB at
        76,000 boxes) are no later check's."""
        self.stop(ctx)
        self._scores = None

    def scores(self, ctx: Any) -> BoxScores:
        """This run's box scores: the child's, or computed here when there is none or it failed."""
        if self._scores is None:
            bs = self._from_child(ctx)
            if bs is None:
                same_scene = None
                if not ctx.fast:  # the neighbour features' scenes, from the audit's one near-duplicate search
                    from curate.audit.shared import NearDuplicatePairs
                    from curate.vision.hashing import SAME_SCENE_SIMILARITY

                    same_scene = ctx.use(NearDuplicatePairs).at(ctx, SAME_SCENE_SIMILARITY)
                from curate.audit.boxmodel.owncrop_features import wanted

                bs = score_boxes(
                    ctx.dataset, same_scene=same_scene, owncrops=lambda: wanted(ctx), **_model_options(ctx)
                )
            self._scores = bs
        return self._scores

    def _from_child(self, ctx: Any) -> BoxScores | None:
        """The child's scores, or None when it failed (``CURATE_DEBUG=1`` re-raises)."""
        job, self.job = self.job, None
        if job is None:
            return None
        from curate.runtime.worker import WorkerError

        try:
            bs, rows = job.result()
        except (WorkerError, OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError):
            if os.environ.get("CURATE_DEBUG"):
                raise
            return None
        bs.records = [(ctx.dataset.images[i], j) for i, j in rows]
        return bs


def spawn_child() -> "worker.Job | None":  # noqa: F821 — curate.runtime.worker is imported lazily
    """A child process (:mod:`curate.runtime.worker`) that imports the box model and its numpy boosting now, for
    :meth:`BoxModel.start` to hand the dataset to later; None on one core or when it cannot start.

    Why: the CLI spawns it before reading the dataset, so the child's start-up overlaps the read and the
    hashing, and its fit starts as soon as the dataset is there. It becomes this run's ``BoxModel.warm``
    (``run_audit(box_model_child=...)``); one that is not needed is cancelled.
    """
    from curate.runtime import worker

    return worker.try_spawn("curate.audit.boxmodel.child", "curate.learn.boosting")


def scores_by_position(dataset: Dataset, **options: Any) -> tuple[BoxScores, list[tuple[int, int]]]:
    """:func:`score_boxes` for a child process: its rows name their image by position in ``dataset.images``,
    so the parent points them at its own records instead of the child's unpickled copies."""
    bs = score_boxes(dataset, progress=False, **options)
    position = {id(rec): i for i, rec in enumerate(dataset.images)}
    rows = [(position[id(rec)], j) for rec, j in bs.records]
    bs.records = []
    return bs, rows


def shared_scores(ctx: Any) -> BoxScores:
    """This audit run's box scores (:meth:`BoxModel.scores`)."""
    return ctx.use(BoxModel).scores(ctx)
