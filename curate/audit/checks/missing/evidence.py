"""A second evidence for the objectness windows: what a pretrained ImageNet backbone says of a window's crop,
against the dataset's labelled boxes (:mod:`curate.vision.embed`, the crop embeddings ``class_inconsistent`` uses).

Why: the window classifier's features are colour, contrast and edge means of a 96-px image. On the pool's worst
datasets the deleted boxes had a shortlisted window but ranked under unlabelled look-alikes and background
(leaf shadows and puddles among potholes, advertising boards among football players; benchmarks/README.md,
*Missing boxes*): telling an object of this dataset from its look-alike background needs features that know
objects. Each image's best windows (:data:`EMBED_PER_IMAGE` after NMS) are embedded, and
described by their cosine to the most similar labelled boxes of OTHER images and how much those agree on one
class (:func:`neighbour_features`). A small model learns, cross-fitted by image, how the labelled boxes (described
alike: their own embeddings, neighbours from other images) differ from those windows on these three numbers, and
its log-odds are added to the objectness log-odds (:func:`combine`; monotone: a window more like the dataset's
boxes never scores lower). Each image keeps its best :data:`~curate.audit.checks.missing.settings.MAX_PER_IMAGE`
by that sum, and the kept windows take, in that order, the values of the objectness scores the objectness model
alone would have kept (:func:`rescore`): the evidence reorders the regions; how many reach 0.5 and the budget stay
the objectness model's (a model's own probabilities, learnt between a labelled box's exact crop and a grid window,
sit far under the windows' objectness scores: fewer regions would reach 0.5, and fewer deleted boxes with them).

Cost and memory: torch is never imported in the audit's process (0.66 GiB it keeps, issue #25): the windows are
embedded in a child process (:mod:`curate.runtime.worker`, started before the objectness pass so that it imports
torch meanwhile), the boxes' embeddings come from :class:`~curate.audit.shared.CropEmbeddings` (the child
``class_inconsistent`` already uses). Gated like those: only where
:func:`~curate.audit.checks.class_inconsistent.embeddings_wanted` holds (not ``--fast``, at most 20,000 boxes) and
the weights file exists; otherwise, or if anything fails, the objectness scores stand as they were.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from curate.audit.checks.base import AuditContext
from curate.audit.checks.missing.settings import FOLDS, MAX_PER_IMAGE, NAME
from curate.core.folds import image_folds

NEIGHBOURS = 10  # labelled boxes of other images a crop is compared with
ITER = 60  # boosting iterations of the embedding model
# windows an image embedded and re-ordered (after NMS), of which MAX_PER_IMAGE are kept (both scaled by the image's
# cap, model.image_cap): more cost crops and found no more deleted boxes on the pool (benchmarks/README.md)
EMBED_PER_IMAGE = MAX_PER_IMAGE


def wanted(ctx: AuditContext) -> bool:
    """Whether the embedding evidence is used: option ``embeddings`` (``--config missing: {embeddings: false}``)
    not false, where ``class_inconsistent``'s crop embeddings are made (so they are made once, in their child) and
    the backbone's weights exist (without them: the objectness scores alone, no error)."""
    from curate.audit.checks.class_inconsistent import embeddings_wanted
    from curate.vision.embed import weights_path

    return ctx.param(NAME, "embeddings", True) is not False and embeddings_wanted(ctx) and weights_path().is_file()


def spawn() -> Any:
    """A child process importing the backbone's module, to be handed the windows later (None: none could start)."""
    from curate.runtime import worker
    from curate.vision import embed

    return worker.try_spawn(embed.__name__)


def window_embeddings(job: Any, items: list) -> list[np.ndarray]:
    """:func:`curate.vision.embed.window_embeddings` in the child ``job``, or here where there is none or it failed."""
    from curate.runtime import worker
    from curate.vision import embed

    job = worker.try_call(job, f"{embed.__name__}:window_embeddings", items)
    if job is not None:
        try:
            return job.result()
        except worker.WorkerError:
            if os.environ.get("CURATE_DEBUG"):
                raise
    return embed.window_embeddings(items)


def neighbour_features(
    Q: np.ndarray, q_group: np.ndarray, E: np.ndarray, e_group: np.ndarray, e_class: np.ndarray, k: int = NEIGHBOURS
) -> tuple[np.ndarray, np.ndarray]:
    """Per query row (L2-normalised embeddings ``Q``): the cosine of the most similar labelled box of another image
    (``E``, ``e_group``: its image), the mean cosine of the ``k`` most similar, and the share of those ``k`` that
    name the most named class; and that class (-1 where there is no other image's box)."""
    out = np.zeros((len(Q), 3), np.float32)
    guess = np.full(len(Q), -1, int)
    k = min(k, len(E))
    if not len(Q) or k < 1:
        return out, guess
    rows = max(1, 2**22 // len(E))  # a block of similarities holds at most 4 M floats (16 MB)
    for start in range(0, len(Q), rows):
        sims = Q[start : start + rows] @ E.T
        sims[q_group[start : start + rows, None] == e_group[None, :]] = -np.inf
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        s = np.take_along_axis(sims, top, axis=1)
        ok = np.isfinite(s)
        n = np.maximum(ok.sum(1), 1)
        votes = np.stack([((e_class[top] == c) & ok).sum(1) for c in np.unique(e_class)], axis=1)
        block = slice(start, start + len(s))
        out[block, 0] = np.where(ok.any(1), np.max(np.where(ok, s, -1.0), axis=1), 0.0)
        out[block, 1] = np.where(ok, s, 0.0).sum(1) / n
        out[block, 2] = votes.max(1) / n
        guess[block] = np.where(ok.any(1), np.unique(e_class)[votes.argmax(1)], -1)
    return out, guess


def _fit_predict(X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, seed: int) -> np.ndarray:
    """P(labelled box) of the rows ``test`` by a model of the rows ``train``, the objectness model's fit and odds
    at balanced classes, increasing in every feature; NaN without both classes to learn from."""
    from curate.audit.checks.missing.model import _fit, _predict

    clf = _fit(X, y, train, seed, ITER, monotonic=True) if test.any() else None
    if clf is None:
        return np.full(int(test.sum()), np.nan)
    return _predict(clf, X[test])


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def combine(
    sw: np.ndarray, fw: np.ndarray, w_fold: np.ndarray, fb: np.ndarray, b_fold: np.ndarray, seed: int
) -> np.ndarray:
    """The windows' objectness log-odds ``sw`` plus the log-odds of a model of their :func:`neighbour_features`
    ``fw`` (folds ``w_fold``) learnt against the labelled boxes' (``fb``, ``b_fold``) on the other folds.

    Why a sum and not the objectness score as one more feature: against a labelled box's exact crop any grid
    window scores low on objectness, so that model leant on it and its probabilities sat far under the
    windows' own (benchmarks/README.md); the embedding model alone asks only "does the crop look like this
    dataset's boxes"."""
    from curate.audit.checks.missing.model import _folds_at_once
    from curate.runtime.env import fit_side_by_side

    X = np.concatenate([fb, fw]).astype(np.float64)
    y = np.concatenate([np.ones(len(fb)), np.zeros(len(fw))])
    g = np.concatenate([b_fold, w_fold])
    emb = np.zeros(len(fw))
    # the folds side by side, as the objectness model's (one OpenMP thread each: the same fits, no barriers)
    jobs = [lambda f=f: _fit_predict(X, y, g != f, (y == 0) & (g == f), seed + 50 + f) for f in range(FOLDS)]
    for f, p in enumerate(fit_side_by_side(jobs, at_once=_folds_at_once(X, g))):
        emb[w_fold == f] = np.where(np.isnan(p), 0.0, _logit(p))
    return _logit(sw) + emb


def rescore(
    ctx: AuditContext, job: Any, shortlist: dict[int, tuple[np.ndarray, np.ndarray]], keep: int | dict[int, int]
) -> dict[int, tuple[np.ndarray, np.ndarray]] | None:
    """Each image's ``keep`` (a count, or one per image index) best windows by :func:`combine`, from its
    ``shortlist`` (image index → objectness scores, normalized xyxy, best first after NMS), with the objectness
    scores of the windows the objectness model alone would have kept, handed out in the new order; None where the
    evidence cannot be had (no weights, a failed child and a failed fallback): the caller keeps the objectness
    model's own."""
    from curate.audit.shared import CropEmbeddings

    ds = ctx.dataset
    ids = sorted(shortlist)
    try:
        per_image = ctx.use(CropEmbeddings).get(ctx)
        wins = window_embeddings(job, [(ds.images[i].path, shortlist[i][1], ds.images[i].readable_size()) for i in ids])
    except Exception:  # noqa: BLE001 — no weights, no torch, a broken child: the objectness scores stand
        if os.environ.get("CURATE_DEBUG"):
            raise
        return None
    have = [i for i, r in enumerate(ds.images) if r.labels and len(per_image[i]) == len(r.labels)]
    if not have or not ids:
        return None
    E = np.vstack([per_image[i] for i in have]).astype(np.float32)
    e_group = np.concatenate([np.full(len(ds.images[i].labels), i) for i in have])
    e_class = np.concatenate([[lb.class_id for lb in ds.images[i].labels] for i in have]).astype(int)
    w_group = np.concatenate([np.full(len(shortlist[i][1]), i) for i in ids])
    fw, _ = neighbour_features(np.vstack(wins).astype(np.float32), w_group, E, e_group, e_class)
    fb, _ = neighbour_features(E, e_group, E, e_group, e_class)
    fold = image_folds(len(ds.images), FOLDS, ctx.seed)
    sw = np.concatenate([shortlist[i][0] for i in ids])
    new = combine(sw, fw, fold[w_group], fb, fold[e_group], ctx.seed)
    return reorder(shortlist, dict(zip(ids, np.split(new, np.cumsum([len(shortlist[i][1]) for i in ids])[:-1]))), keep)


def reorder(
    shortlist: dict[int, tuple[np.ndarray, np.ndarray]], new: dict[int, np.ndarray], keep: int | dict[int, int]
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Each image's ``keep`` (a count, or one per image index: :func:`~.model.image_cap`) best windows of its
    ``shortlist`` (objectness scores best first, xyxy) by its ``new`` scores, given the objectness scores the
    shortlist's first ``keep`` windows had, highest to the highest new.

    Why the old values: the budget (at most 8 regions per 100 boxes reach 0.5) and the count that reaches it stay
    the objectness model's, which the pool was measured at; the evidence only chooses which windows get them."""
    ids = sorted(shortlist)
    k_of = keep if isinstance(keep, dict) else dict.fromkeys(ids, keep)
    picked = {i: np.argsort(-new[i], kind="stable")[: k_of[i]] for i in ids}
    if not ids:
        return {}
    ranked = np.concatenate([new[i][picked[i]] for i in ids])
    values = np.sort(np.concatenate([shortlist[i][0][: k_of[i]] for i in ids]))
    mapped = np.empty(len(ranked))
    mapped[np.argsort(ranked, kind="stable")] = values
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    at = 0
    for i in ids:
        k = len(picked[i])
        out[i] = (mapped[at : at + k], shortlist[i][1][picked[i]])
        at += k
    return out
