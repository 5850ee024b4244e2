"""Four more columns for every box-model row: P(ok, loose, shifted, grouped) of the row's crop, from a crop network
trained on the dataset's own rows, out of fold by image.

Why: the box model's pixel evidence is hand-made (edge bands, blobs, small grids); where the dataset's look is one
the pretrained backbone does not know (traffic signs, construction sites) or cannot be asked about (one class:
potholes), its kinds were the weakest of the pool. Session 26's own-crop network (:mod:`curate.vision.owncrops`:
the shipped MobileNetV2's last blocks fine-tuned on the dataset's crops) names classes there better than the frozen
backbone; taught the box model's own labels instead (the real boxes "ok", the first member's corruptions their
kind), its probabilities lifted the planted loose / shifted / grouped boxes on traffic-signs-ro and potholes-road in
session 27's offline measurement (benchmarks/README.md, *Session 27 … ownbox*).

Out of fold by image, in the box model's own folds (:func:`curate.core.folds.image_folds`, the same seed): fold
``f``'s network is trained on the rows of the other folds' images and predicts every row (real, and every
member's corruptions) of fold ``f``'s images, so a row's four columns come from a network that never saw its image
or any label of it. The training runs in a :mod:`curate.runtime.worker` child (torch's memory is given back when
it ends; the audit's process never imports torch), here where no child can start, and is cached on disk under
:func:`columns_key`, so a re-audit of unchanged data does not train again.

Option ``grouped: {owncrops: one-class | auto | true | false}`` (:data:`curate.core.defaults.BOXMODEL_OWNCROPS`,
``one-class`` by default); :func:`wanted` decides. Why only one class by default: on the datasets with several
classes where ``auto`` opens (construction-ppe, traffic-signs-ro) the merged grouped and loose APs rose by .07–.14
but merged swapped fell by .048 and .024 and construction-ppe's false flags rose (the box model's scores of right
boxes rose above planted swaps; session 28 in benchmarks/README.md); with one class there is no swap to lose.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from curate.core import defaults

NAMES = ("oc_ok", "oc_loose", "oc_shifted", "oc_grouped")  # the columns, in the box model's class order
ONE_CLASS = "one-class"  # the default mode: on where every box has the same class
MODES = (True, False, "auto", ONE_CLASS)
# the training: 4 epochs, at most 4 × 3 × 2,500 crop-passes in all (fewer epochs above 2,500 training rows a fold:
# 1 on a 4,900-box dataset). Why 4, not 8: on potholes-road and one-class copies of traffic-signs-ro and
# bccd-blood-cells, 4 epochs ranked the planted boxes about as well in the merged list (mean of seeds: grouped .690
# against .689, loose .723 against .716) and raised no false flag where 8 did, at ~2/3 of the cost (session 29 onecls)
MAX_CROP_PASSES = 4 * 3 * 2500
EPOCHS = 4  # passes over a fold's training rows where the cap does not bind
# the gated modes (one-class, auto): off above this many boxes. Why 6,000: what the columns add shrinks as the box
# model has more boxes to learn from (one-class copies, session 29: +.04 to +.13 merged at 321-491 boxes, within
# ±.01 at 4,888), while their cost grows with every box (the frozen blocks run on every row of three members, ~8
# rows a box): football-players made one-class, 8,906 boxes, grouped alone +412 CPU-s (264 -> 676) and peak memory
# 1.4 -> 2.5 GB; every dataset measured with the columns holds fewer (bccd-blood-cells made one-class: 4,888, about
# 5,000 with the benchmark's planted errors)
MAX_BOXES = 6_000
VERSION = 1  # part of the cache key: raise it when the columns change in a way the constants don't show


def wanted(ctx: Any) -> bool:
    """Whether this audit run adds the columns: option ``owncrops`` true, or a gated mode whose gate is open.

    Both gates need: not ``--fast``, at most :data:`MAX_BOXES` real boxes and the backbone's weights there.

    ``one-class`` (the default): every box has the same class. Why: with one class there are no swaps for the
    columns to cost (where swaps exist, the box checks stop carrying some of them: merged swapped fell on
    construction-ppe and traffic-signs-ro, session 28), and the backbone cannot be asked whether it names the
    classes. Measured on potholes-road and one-class copies of bccd-blood-cells and traffic-signs-ro
    (benchmarks/README.md, session 29 ``onecls``). A dataset of two or more classes never computes the columns: its
    box model is the one without them, to the byte.

    ``auto``: one class, or a dataset whose look the pretrained backbone does not name —
    ``class_inconsistent``'s own test (:func:`~curate.audit.checks.class_inconsistent.backbone_knows`:
    leave-image-out nearest neighbours name < 0.75 of the classes; pool, seed 0: construction-ppe .59,
    traffic-signs-ro .42 | football .84, food .85, epicureai .93, bccd .96). Known before the model is fitted, it
    separates the pool widely and says what the columns are for: a look the box model's hand-made pixel features
    were never checked on. Not the default: on construction-ppe and traffic-signs-ro it lowered merged swapped
    (session 28)."""
    mode = ctx.param("grouped", "owncrops", defaults.BOXMODEL_OWNCROPS)
    if ctx.fast or mode is False:
        return False
    if mode is True:
        return True
    from curate.vision.embed import weights_path

    if ctx.dataset.num_boxes > MAX_BOXES or not weights_path().is_file():
        return False
    classes = {lb.class_id for _, lb in ctx.dataset.boxes()}
    if len(classes) < 2:
        return True
    if mode == ONE_CLASS:
        return False
    from curate.audit.checks.class_inconsistent import backbone_knows

    return backbone_knows(ctx) is False


def columns_key(
    paths: list[Path],
    image: np.ndarray,
    xyxy: np.ndarray,
    y: np.ndarray,
    fold: np.ndarray,
    train: np.ndarray,
    *,
    seed: int,
) -> str:
    """The cache key of :func:`out_of_fold_columns` for these arguments: every image's bytes, every row's image, box,
    label (real or its corruption kind), fold and whether it trains, the seed, the backbone's weights, owncrops'
    constants and this module's.

    Why all of them: a row's columns come from networks trained on the other folds' rows, so a label or box edited
    anywhere, or other corruptions drawn, change them (the networks train again)."""
    from curate.io import cache
    from curate.vision import owncrops
    from curate.vision.embed import weights_path

    constants = (
        VERSION, MAX_CROP_PASSES, EPOCHS, owncrops.VERSION, owncrops.CUT, owncrops.DECODE_SIDE, owncrops.PAD,
        owncrops.SIDE, owncrops.EPOCHS, owncrops.BATCH, owncrops.LR_BODY, owncrops.LR_HEAD, owncrops.LABEL_SMOOTHING,
    )  # fmt: skip
    h = hashlib.blake2b(repr((*constants, seed)).encode(), digest_size=16)
    for path in (weights_path(), *paths):
        try:
            h.update(cache.file_hash(path).encode())
        except OSError:
            h.update(b"unreadable")
    for a, dtype in ((image, np.int64), (xyxy, np.float64), (y, np.int64), (fold, np.int64), (train, np.bool_)):
        a = np.ascontiguousarray(a, dtype)
        h.update(repr(a.shape).encode() + a.tobytes())
    return h.hexdigest()


def out_of_fold_columns(
    paths: list[Path],
    image: np.ndarray,
    xyxy: np.ndarray,
    y: np.ndarray,
    fold: np.ndarray,
    train: np.ndarray,
    *,
    seed: int,
) -> np.ndarray:
    """(n, 4) float32 P(ok, loose, shifted, grouped) of every row: row ``r`` is the box ``xyxy[r]`` (normalized) of
    image ``paths[image[r]]``, labelled ``y[r]`` (0 ok, 1–3 :data:`~curate.audit.boxmodel.corruptions.KINDS`), in
    fold ``fold[r]``; the rows with ``train`` set teach the networks. Fold ``f``'s rows are predicted by a network
    trained on the ``train`` rows of the other folds. Uniform where a fold has no other fold or one label to learn.

    Torch work: run it in a child (:func:`columns`)."""
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "8")  # as curate.vision.embed: a batch per shape
    import torch

    from curate.runtime.env import workers
    from curate.vision import owncrops
    from curate.vision.embed import backbone

    n, k = len(y), len(NAMES)
    out = np.full((n, k), 1.0 / k, np.float32)
    if len(np.unique(fold)) < 2:
        return out
    torch.set_num_threads(workers())
    body = backbone()
    order = np.argsort(image, kind="stable")  # one decode per image
    batch = []
    for i in np.unique(image):
        rows = order[image[order] == i]
        batch.extend(owncrops.crops(paths[i], xyxy[rows]))
    H = owncrops._lower(body, batch)
    Hf = owncrops._lower(body, [c[:, ::-1] for c in batch])
    del batch
    position = np.empty(n, np.int64)
    position[order] = np.arange(n)  # row r's crop is batch[position[r]]
    yb = np.ascontiguousarray(y[order], np.int64)
    for f in np.unique(fold):
        fit = position[train & (fold != f)]
        test = np.flatnonzero(fold == f)
        if len(np.unique(yb[fit])) < 2:
            continue
        p = owncrops._fit_predict(
            body, H, Hf, yb, fit, position[test], k, seed * 1000 + int(f), MAX_CROP_PASSES, EPOCHS
        )
        out[test] = p
    return out / out.sum(axis=1, keepdims=True)


def columns(
    paths: list[Path],
    image: np.ndarray,
    xyxy: np.ndarray,
    y: np.ndarray,
    fold: np.ndarray,
    train: np.ndarray,
    *,
    seed: int,
) -> np.ndarray:
    """:func:`out_of_fold_columns` from the disk cache (namespace ``ownbox``, :func:`columns_key`), else computed
    in a child process where one can start (here where not; ``CURATE_DEBUG=1`` raises a child's failure) and
    cached."""
    from curate.io import cache
    from curate.runtime import worker

    args = (paths, image, xyxy, y, fold, train)
    key = columns_key(*args, seed=seed)
    out = cache.load_array("ownbox", key)
    if out is not None and out.shape == (len(y), len(NAMES)):
        return out
    out = None
    func = f"{__name__}:out_of_fold_columns"
    job = worker.try_call(worker.try_spawn(__name__), func, *args, seed=seed)
    if job is not None:
        try:
            out = job.result()
        except worker.WorkerError:
            if os.environ.get("CURATE_DEBUG"):
                raise
    if out is None:
        out = out_of_fold_columns(*args, seed=seed)
    out = np.asarray(out, np.float32)
    cache.save_array("ownbox", key, out)
    return out
