"""missing: an object no box covers — a region finding (line None, region = normalized cx, cy, w, h).

The dataset teaches its own "objectness" (the idea of curate/audit/boxmodel.py): its labelled boxes (plus small
jitters) are positives, windows of the same sizes that no box covers are negatives, and a fast classifier
(scikit-learn's HistGradientBoostingClassifier) learns what a labelled object looks like *in this
dataset*. Cross-fitted by image (K folds): a window is scored only by a model that never saw its image.

Per window, on the image decoded small (longest side :data:`SIDE`, or up to :data:`MAX_SIDE` where the median box
would span under :data:`BOX_PX` pixels, :func:`decode_side`; Lab + gradient + distance to the image's dominant
colour, integral images so each window is O(1)): inside vs surrounding ring (colour,
edges), centre vs border of the window, per-side inside vs outside bands (an object's edges line up with
its box), edge energy on the boundary, size/aspect/position relative to the dataset's boxes and the
image's own boxes, the nearest labelled sibling's colour statistics, and how much of the window other
boxes already cover.

Candidates: sliding windows (stride half a window) at the sizes of the image's own boxes and of the
dataset's common box sizes (k-means on log w, log h), minus windows an existing box covers. Two rounds:
a small model fitted on a first sample of images shortlists each image's likeliest windows; the final
model is trained with each image's top shortlisted windows added as *hard* negatives (without them the
top findings were windows straddling labelled objects), and scores the shortlist. Scores are the
classifier's probability at balanced classes. Non-maximum suppression, at most :data:`MAX_PER_IMAGE` an image of up to
640 × 640 px and 30 boxes, more in larger or denser ones (:func:`~curate.audit.checks.missing.model.image_cap`).

Second evidence, a pretrained backbone (:mod:`curate.audit.checks.missing.evidence`): each image's kept windows are
embedded (ImageNet MobileNetV2, in a child process) and compared with the labelled boxes' embeddings of other
images; a small cross-fitted model of those similarities adds its log-odds to the objectness score, which reorders
the regions (the count that reaches 0.5 stays the objectness model's). Not in ``--fast``, above 20,000 boxes,
without the weights, or with ``embeddings: false``.

Third evidence, near-duplicates: the same shot exported twice (another split, a re-compression) with a
box on one copy only — when the copies agree on their other boxes and the crop under the box correlates,
the copy without it probably forgot it (:func:`duplicate_regions`, thumbnails from curate.vision.hashing).

Per-window features depend on the labels (the image's boxes set the candidate sizes and the context
features), so only the small decoded image is cached on disk by content (:func:`small_image`). Cost:
~25 s on food-ingredients (1,901 images) and ~10 s on epicureai on the shared 2-core machine, about 3× the CPU of
a 96-px decode on a dataset of small objects decoded at 512 px (football-players: ~20,000 windows an image); it needs
:data:`MIN_BOXES` labelled boxes to learn from. The class of a region is a best guess: the image's box of
the nearest size, or the dataset class of the nearest median size in an image with no boxes.

Limits, measured (benchmarks/README.md): in piles where the dataset labels only some of many identical
objects (onions, olives, lemons), a forgotten box looks like its unlabelled neighbours; the regions found
there are real but unlabelled items, and they are most of the ~35 regions per 100 boxes at score ≥ 0.5 on
the unmodified food-ingredients (epicureai: ~4 per 100 boxes). Why not match the image's own boxes as
templates: that cannot find an object without a labelled look-alike (benchmarks/README.md, *Missing boxes*).
At most :data:`BUDGET_PER_100` regions per 100 labelled boxes of each split reach 0.5 (:func:`split_midpoints`;
issue #22's target is ≤ 10 per 100): the rest stay in ``--all-scores``, in the same order.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import numpy as np

from curate.audit.checks.base import AuditContext, Check, Display
from curate.audit.checks.missing import evidence
from curate.audit.checks.missing.duplicates import DUP_SIMILARITY, duplicate_regions
from curate.audit.checks.missing.extent import BoxFit, proposed_box
from curate.audit.checks.missing.model import _boxes, _nms, image_cap, objectness_pass
from curate.audit.checks.missing.settings import BUDGET_PER_100, MAX_PER_IMAGE, NAME
from curate.audit.shared import CropEmbeddings, NearDuplicatePairs
from curate.core.dataset import Dataset
from curate.core.findings import Finding
from curate.runtime.env import release_freed_memory


def class_guess(xyxy: np.ndarray, boxes: np.ndarray, classes: np.ndarray, class_sizes: dict[int, np.ndarray]) -> int:
    """The image's box of the nearest (log w, log h), or the dataset class of the nearest median size."""
    lwh = np.log(np.maximum(xyxy[2:] - xyxy[:2], 1e-4))
    if len(boxes):
        d = np.linalg.norm(np.log(np.maximum(boxes[:, 2:] - boxes[:, :2], 1e-4)) - lwh, axis=1)
        return int(classes[int(np.argmin(d))])
    if not class_sizes:
        return -1
    return min(class_sizes, key=lambda c: float(np.linalg.norm(class_sizes[c] - lwh)))


def skipped(ctx: AuditContext) -> str | None:
    """Pixel evidence: not in ``--fast``."""
    return "--fast" if ctx.fast else None


def run(ctx: AuditContext) -> list[Finding]:
    """Region findings from both evidences, merged per image by NMS (a strong near-duplicate box first)."""
    ds = ctx.dataset
    if not any(r.labels for r in ds.images):
        return []  # nothing to learn what an object looks like from
    found: dict[int, list[tuple[float, np.ndarray, int, str]]] = {}
    try:
        dup = duplicate_regions(ds, ctx.use(NearDuplicatePairs).at(ctx, DUP_SIMILARITY))
    except Exception:  # a broken signature pass must not sink the check: the model still runs
        dup = {}
    for i, regs in dup.items():
        found.setdefault(i, []).extend((s, b, c, "duplicate") for s, b, c in regs)
    by_class: dict[int, list[np.ndarray]] = {}
    for r in ds.images:
        for lb in r.labels:
            by_class.setdefault(lb.class_id, []).append(np.log(np.maximum([lb.w, lb.h], 1e-4)))
    class_sizes = {c: np.median(np.array(v), axis=0) for c, v in by_class.items()}
    # the embedding evidence's child imports torch while the objectness pass runs
    job = evidence.spawn() if (want := evidence.wanted(ctx)) else None
    try:
        regions, describe = objectness_pass(ds, seed=ctx.seed, progress=len(ds.images) > 50)
    except BaseException:
        if job is not None:
            job.cancel()
        raise
    if job is not None:
        # the objectness pass's freed windows back to the system before the child loads torch beside this process:
        # on football-players this process kept ~0.4 GB of them, and the two together passed 2 GB (issue #25)
        release_freed_memory()
    fitting = _fit_in_background(describe, ctx.seed) if want and describe is not None else None
    caps = {i: image_cap(r, len(r.labels)) for i, r in enumerate(ds.images)}
    depth = {i: caps[i] * (evidence.EMBED_PER_IMAGE if want else MAX_PER_IMAGE) // MAX_PER_IMAGE for i in caps}
    best = {i: _nms(scores, wins, depth[i]) for i, (scores, wins) in regions.items()}
    shortlist = {i: (regions[i][0][k], regions[i][1][k]) for i, k in best.items()}
    rescored = evidence.rescore(ctx, job, shortlist, caps) if want and shortlist else None
    if rescored is None and job is not None:
        job.cancel()
    for i, (scores, wins) in (rescored or shortlist).items():
        b, c = _boxes(ds.images[i])
        for k in range(min(len(wins), caps[i])):
            found.setdefault(i, []).append(
                (float(scores[k]), wins[k], class_guess(wins[k], b, c, class_sizes), "objectness")
            )
    kept: list[tuple[int, tuple[float, np.ndarray, int, str]]] = []
    for i, regs in found.items():
        # a strong near-duplicate region first: it has the exact box, a window around the same object does not
        s = np.array([r[0] + (1.0 if r[3] == "duplicate" and r[0] >= 0.5 else 0.0) for r in regs])
        w = np.array([r[1] for r in regs])
        kept += [(i, regs[k]) for k in _nms(s, w, caps[i])]
    # the near-duplicate evidence (a box transferred from a copy of the shot) is not the classifier's: kept as it is
    at_half = split_midpoints(ds, kept)
    listed = ctx.threshold(NAME)  # only a listed region gets a proposal, so only its box is refined
    out: list[Finding] = []
    adds: list[tuple[int, int, np.ndarray]] = []  # (finding, image, window) of each listed objectness region
    for i, (raw, (x1, y1, x2, y2), cls, source) in kept:
        rec = ds.images[i]
        name = ds.names[cls] if 0 <= cls < len(ds.names) else str(cls)
        if source == "duplicate":
            score = raw
            msg = f"a near-duplicate image has a '{name}' box here and this one has none (score {score:.2f})"
        else:
            score = budget_score(raw, at_half[rec.split])
            msg = (
                f"unlabelled object: this area looks like this dataset's labelled boxes (score {score:.2f}); "
                f"class guess '{name}'"
            )
        region = ((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1)
        data = {"class": name, "class_id": cls, "evidence": source, "raw_score": round(float(raw), 4)}
        if source == "objectness" and describe is not None and score >= listed:
            adds.append((len(out), i, np.array([x1, y1, x2, y2])))
        out.append(Finding(rec.split, rec.rel, NAME, float(np.clip(score, 0, 1)), msg, region=region, data=data))
    if adds:
        # the box an add proposes (curate.audit.proposals): the region stays the grid window the check found
        fit = fitting.result() if fitting is not None else BoxFit(describe, ctx.seed)
        for (k, _, _), (bx1, by1, bx2, by2) in zip(adds, _proposed_boxes(fit, ds, adds)):
            out[k].data["add_box"] = [float(v) for v in ((bx1 + bx2) / 2, (by1 + by2) / 2, bx2 - bx1, by2 - by1)]
    return out


def _proposed_boxes(fit: BoxFit, ds: Dataset, adds: list[tuple[int, int, np.ndarray]]) -> list[np.ndarray]:
    """:func:`proposed_box` of each listed region (``(finding, image, window)``), in order, on every core.

    Why threads: each region is scored on its own (its candidate windows' features, then the fit's predictions),
    and the ~375 regions of food-ingredients took ~5 CPU-s on one thread at the end of the check (benchmarks/README.md,
    *Audit speed*, session 24); the features' decoding and numpy work and the predictions release the GIL. Each box is
    the one computed alone: the fit is only read, and a region's features depend on its image and window only.
    """
    from concurrent.futures import ThreadPoolExecutor

    from curate.runtime.env import workers

    def one(add: tuple[int, int, np.ndarray]) -> np.ndarray:
        _, i, window = add
        return proposed_box(fit, i, window, _boxes(ds.images[i])[0])

    with ThreadPoolExecutor(max_workers=workers()) as pool:
        return list(pool.map(one, adds))


def _fit_in_background(describe: Any, seed: int) -> Future:
    """The adds' box model (:class:`BoxFit`), fitted on a thread of its own from now.

    Why: it needs only the labelled boxes, the seed and the window features, not the regions or their embeddings,
    and the check next waits for the window embeddings' child, this thread idle (benchmarks/README.md, *Audit
    speed*, sessions 24–25: the fit sat on the critical path after that wait). The same fit as in this thread: the
    same rows from its own generator (``seed + 43``), and a HistGradientBoosting fit whose result does not depend on
    its OpenMP threads. Collected once the regions are scored, where one is listed; where none is, not used.
    """
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="curate-boxfit")
    job = pool.submit(BoxFit, describe, seed)
    pool.shutdown(wait=False)  # the thread ends with its one job
    return job


def split_midpoints(
    ds: Dataset, kept: list[tuple[int, tuple[float, np.ndarray, int, str]]], per_100: float = BUDGET_PER_100
) -> dict[str, float]:
    """Per split, the raw objectness score that maps to 0.5: :func:`budget_midpoint` on that split's objectness
    regions and boxes, less the split's near-duplicate regions at ≥ 0.5, which keep their own scores.

    Why per split: each split is reviewed, and measured, on its own; under one budget for the whole dataset the
    split the model scores highest took more than its share (construction-ppe's train 10.5 regions per 100 of its
    boxes, test 5.8). Why the near-duplicate regions count: a reviewer reads them in the same list, and on
    epicureai they added ~2 per 100 boxes on top of the budget (10.0 per 100 train boxes, seed 1)."""
    raw: dict[str, list[float]] = {}
    taken: dict[str, int] = {}
    for i, (score, _, _, source) in kept:
        split = ds.images[i].split
        if source == "objectness":
            raw.setdefault(split, []).append(score)
        elif score >= 0.5:
            taken[split] = taken.get(split, 0) + 1
    return {
        split: budget_midpoint(
            raw.get(split, []), ds.instance_counts(split).total(), taken=taken.get(split, 0), per_100=per_100
        )
        for split in ds.splits
    }


def budget_midpoint(raw: list[float], boxes: int, *, taken: int = 0, per_100: float = BUDGET_PER_100) -> float:
    """The raw score that maps to 0.5: 0.5 itself, or higher where more than ``per_100`` regions per 100 labelled
    boxes would reach it (:data:`BUDGET_PER_100`; another value only in benchmarks/missing_causes.py's offline
    re-scoring) — midway between the last region inside that budget and the first outside.

    Why: the window classifier's probability is at balanced classes, while a forgotten box is rare (a few per
    100 boxes), so on dense or partly labelled data its 0.5 flagged up to 1.4 regions per image (909 on 638
    underwater images; 43 per 100 boxes on potholes-road). Nobody reviews that. The budget is a prior: at most
    that many real misses per 100 boxes are expected, so the regions past it are more likely unlabelled
    background objects than errors."""
    limit = max(int(np.ceil(per_100 * max(boxes, 1) / 100)) - taken, 0)
    s = np.sort(np.asarray(raw, float))[::-1]
    if len(s) <= limit or s[limit] < 0.5:
        return 0.5
    return float(min((s[limit - 1] + s[limit]) / 2, 1 - 1e-6)) if limit else float(min(s[0] + 1e-6, 1 - 1e-6))


def budget_score(raw: float, at_half: float) -> float:
    """``raw`` shifted on the logit scale so that ``at_half`` maps to 0.5 (monotone: the ranking is unchanged)."""
    if at_half == 0.5:
        return float(raw)
    raw = min(max(float(raw), 1e-9), 1 - 1e-9)
    z = np.log(raw / (1 - raw)) - np.log(at_half / (1 - at_half))
    return float(1 / (1 + np.exp(-z)))


class Missing(Check):
    names = (NAME,)
    description = "an object no box covers (a region finding)"
    kind = "region"
    order = 100
    display = {
        "missing": Display(100, "#c026d3", "mask"),
    }
    needs = (NearDuplicatePairs, CropEmbeddings)
    # the embedding evidence (evidence.py): off with `embeddings: false`; it also follows class_inconsistent's option
    options = {"embeddings": True}
    options_from = (NAME, "class_inconsistent")

    def skipped(self, ctx: AuditContext) -> str | None:
        return skipped(ctx)

    def run(self, ctx: AuditContext) -> list[Finding]:
        return run(ctx)
