"""The computations several checks share, prepared once per audit by the runner (:class:`Shared`); the box
model's own (:class:`~curate.audit.boxmodel.BoxModel`, :class:`~curate.audit.boxmodel.MaskJobs`) live with it.

A check declares the ones it uses in :attr:`Check.needs <curate.audit.checks.base.Check.needs>` and reaches
this audit's instance with ``ctx.use(ImageSignatures)``; the runner starts each one that a check about to
run needs before the first check, and stops all of them after the last. No check starts or names another.
"""

from __future__ import annotations

import os
from concurrent.futures import Future
from typing import Any

from curate.audit.checks.base import AuditContext, Shared
from curate.vision.hashing import NEAR_DUPLICATE_SIMILARITY, SAME_SCENE_SIMILARITY, Pair


class ImageSignatures(Shared):
    """Every image decoded once: perceptual hashes, decode status, EXIF orientation, quality statistics
    (:func:`curate.vision.hashing.image_signatures`), for image_checks, image_quality, near_duplicate,
    missing and the full audit's box model.

    Why started early: the runner runs the checks that need no pixels (duplicate, ambiguous, dataset
    statistics) first, while the images are hashed in a background thread: their Python work fills the
    gaps of the decoding threads instead of adding to the single-threaded stretch at the end of the audit.
    """

    def __init__(self) -> None:
        self._job: Future | None = None
        self._result: dict[str, Any] | None = None

    def start(self, ctx: AuditContext) -> None:
        if self._result is not None or self._job is not None:
            return
        from concurrent.futures import ThreadPoolExecutor

        from curate.vision.hashing import image_signatures

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="curate-hashing")
        self._job = pool.submit(image_signatures, ctx.dataset)
        pool.shutdown(wait=False)  # the thread ends with its one job

    def get(self, ctx: AuditContext) -> dict[str, Any]:
        """Image path (relative) → its signature; collected from :meth:`start`, or computed now."""
        if self._result is None:
            from curate.vision.hashing import image_signatures

            job, self._job = self._job, None
            self._result = job.result() if job is not None else image_signatures(ctx.dataset)
        return self._result

    def stop(self, ctx: AuditContext) -> None:
        if self._job is not None:
            self._job.cancel()  # only a job that has not started; a running one ends on its own
            self._job = None

    def release(self, ctx: AuditContext) -> None:
        """After the near-duplicate pairs are made (near_duplicate, order 60), no later check reads a signature:
        ~4.8 KB an image (its thumbnail and quality statistics), 0.15 GB at 30,000 images held under the box model,
        missing, class_inconsistent and the proposals' search."""
        self.stop(ctx)
        self._result = None


class NearDuplicatePairs(Shared):
    """The near-duplicate pairs of the audit's images (:func:`curate.vision.hashing.near_duplicate_pairs`),
    searched once, at the lowest similarity any user asks, and filtered to each one's own
    (:func:`~curate.vision.hashing.at_least`): near_duplicate lists pairs from 0.80, and missing's duplicate
    regions, the box model's scenes and the proposals' resize search join images from 0.85.

    Why: the search is all-pairs (quadratic: 27 CPU-s at 61,000 images), and each of those four searched on
    its own. Why held here and not in the disk cache: every user runs in the audit's process (the box model's
    child runs only under ``--fast``, whose geometry model has no scenes), so the pairs of this audit's
    signatures need no key; a later audit with the same images searches again (seconds, against the hashing's
    minutes). A user asking below the lowest so far (a ``--config`` near_duplicate similarity under 0.90) makes
    the one search at its threshold if it asks first, as near_duplicate does (it runs before the others).
    """

    #: The lowest similarity the audit's users ask at their defaults: near_duplicate's listing floor (0.80).
    LOWEST = min(SAME_SCENE_SIMILARITY, 2 * NEAR_DUPLICATE_SIMILARITY - 1.0)

    def __init__(self) -> None:
        self._threshold: float | None = None
        self._pairs: list[Pair] | None = None

    def start(self, ctx: AuditContext) -> None:
        """The images are hashed in the background meanwhile (:meth:`ImageSignatures.start`)."""
        ctx.use(ImageSignatures).start(ctx)

    def uses(self, ctx: AuditContext) -> tuple[type[Shared], ...]:
        """The signatures, until the pairs are searched."""
        return () if self._pairs is not None else (ImageSignatures,)

    def at(self, ctx: AuditContext, threshold: float) -> list[Pair]:
        """The pairs at or above ``threshold`` similarity, and the byte-identical files; most similar first."""
        from curate.vision.hashing import at_least, near_duplicate_pairs

        if threshold > 1.0:  # no filtered search stands for it (see at_least); only a --config asks this
            return near_duplicate_pairs(ctx.use(ImageSignatures).get(ctx), threshold=threshold)
        if self._pairs is None or self._threshold is None or threshold < self._threshold:
            self._threshold = min(threshold, self.LOWEST)
            self._pairs = near_duplicate_pairs(ctx.use(ImageSignatures).get(ctx), threshold=self._threshold)
        return at_least(self._pairs, threshold)


class CropFeatures(Shared):
    """Appearance features of every box's crop (:func:`curate.vision.crops.dataset_features`), one array per
    image; computed on first use."""

    def __init__(self) -> None:
        self._result: list | None = None

    def get(self, ctx: AuditContext) -> list:
        if self._result is None:
            from curate.vision.crops import dataset_features

            self._result = dataset_features(ctx.dataset)
        return self._result


class CropEmbeddings(Shared):
    """Every box's crop embedded by the pretrained backbone (:func:`curate.vision.embed.dataset_embeddings`), one
    (n, 1280) array per image: started in a child process before the first check, collected on first use.

    Why a child: importing torch and torchvision alone holds ~0.66 GB of a process's memory until it ends, on
    top of what the box model and ``missing`` leave behind: in this process the audit of a 10,000-box label
    file peaked at 2.2 GB (issue #25's limit is 2 GB). A child gives it back as soon as the embeddings are
    made. Why started early: while the parent's memory is still small (label checks, hashing), and its two
    threads fill the single-threaded stretches of the checks that run meanwhile. Only where
    ``class_inconsistent`` will look at them (:func:`~curate.audit.checks.class_inconsistent.embeddings_wanted`);
    without a child (one core, no weights file, a failed child) they are computed here on first use, the same
    numbers (the same code and threads; cached on disk per image either way).
    """

    def __init__(self) -> None:
        self._job: Any = None
        self._result: list | None = None

    def start(self, ctx: AuditContext) -> None:
        if self._result is not None or self._job is not None:
            return
        from curate.audit.checks.class_inconsistent import embeddings_wanted
        from curate.vision import embed

        if not embeddings_wanted(ctx) or not embed.weights_path().is_file():
            return  # not needed, or computed here on first use (its one-line error where the weights are missing)
        from curate.runtime import worker

        self._job = worker.try_call(
            worker.try_spawn(embed.__name__), f"{embed.__name__}:dataset_embeddings", ctx.dataset, progress=False
        )

    def get(self, ctx: AuditContext) -> list:
        if self._result is None:
            from curate.vision.embed import dataset_embeddings

            job, self._job = self._job, None
            if job is not None:
                from curate.runtime.worker import WorkerError

                try:
                    self._result = job.result()
                except WorkerError:
                    if os.environ.get("CURATE_DEBUG"):
                        raise
            if self._result is None:
                self._result = dataset_embeddings(ctx.dataset)
        return self._result

    def stop(self, ctx: AuditContext) -> None:
        if self._job is not None:
            self._job.cancel()  # a child nobody collected (embeddings not wanted after all, or the audit failed)
            self._job = None
