"""A crop classifier taught by the dataset itself: the last blocks of the shipped MobileNetV2 body
(:mod:`curate.vision.embed`) fine-tuned on the dataset's own box crops, out of fold by image.

Why: the frozen body's last feature map names the class of few boxes where its ImageNet classes do not resemble the
dataset's (leave-image-out kNN: traffic-signs-ro 0.44, construction-ppe 0.61; a linear probe on it is no better), so
``class_inconsistent`` cannot tell a red hardhat labelled Safety Vest from a right one there. Training the body's
last blocks on the dataset's crops teaches it the dataset's own classes. Why out of fold: every box's probabilities
come from a network that never saw its image, so they hold no label of the box (the check's synthetic swaps stay
exact). Why only the last blocks: the frozen lower blocks' output is computed once per crop (and its mirror, the
one augmentation), and the small upper blocks train on it in seconds per 1,000 boxes on two cores.

Crops are cut from the image decoded at :data:`DECODE_SIDE` (a small box keeps its pixels), with :data:`PAD` of
the box's size as context on each side, and resized to :data:`SIDE` px square. The probabilities are cached on disk
under :func:`probs_key` (the check caches them), so a re-audit of unchanged data does not train again.
"""

from __future__ import annotations

import copy
import hashlib
import os
from pathlib import Path

import numpy as np

from curate.runtime.env import workers

CUT = 13  # blocks 0..CUT of the body stay frozen (ImageNet); the blocks above it and a linear head are trained
DECODE_SIDE = 640  # images are decoded at most this side before cropping
PAD = 0.15  # context around the box, as a share of its width / height on each side
SIDE = 64  # crops are resized to SIDE×SIDE px
FOLDS = 3  # out-of-fold K, grouped by image
EPOCHS = 8  # passes over a fold's training crops
BATCH = 64
# at most this many training crop-passes in all (folds × epochs × a fold's training crops): above it, fewer epochs,
# so the cost stays bounded on a large dataset (8 epochs on 3 folds of 1,500 boxes)
MAX_CROP_PASSES = 8 * 2 * 1500
LR_BODY, LR_HEAD = 3e-4, 3e-3
LABEL_SMOOTHING = 0.1
VERSION = 1  # part of the cache key (probs_key): raise it when the training changes in a way the constants don't show


def crops(path: Path, boxes) -> list[np.ndarray]:
    """One SIDE×SIDE BGR crop per normalized (x1, y1, x2, y2) row, with :data:`PAD` context, clipped to the image
    (at least 2 px each way); grey crops for an unreadable image."""
    from curate.vision.embed import _xyxy_crops
    from curate.vision.foreground import read_image

    img = read_image(path, max_side=DECODE_SIDE)
    if img is None or min(img.shape[:2]) < 2:
        return [np.full((SIDE, SIDE, 3), 127, np.uint8) for _ in boxes]
    padded = [
        (x1 - PAD * (x2 - x1), y1 - PAD * (y2 - y1), x2 + PAD * (x2 - x1), y2 + PAD * (y2 - y1))
        for x1, y1, x2, y2 in boxes
    ]
    return _xyxy_crops(img, padded, SIDE)


def probs_key(
    items: list[tuple[Path, np.ndarray]], y: np.ndarray, groups: np.ndarray, num_classes: int, *, seed: int
) -> str:
    """The cache key of :func:`out_of_fold_probs`' result for these arguments: every image's content, every box, label
    and image group, the class count, the seed, the backbone's weights and this module's constants.

    Why every label: a box's probabilities come from networks trained on the other images' boxes, so a label edited
    anywhere changes them (the folds train again). An unreadable image counts as such (its crops are grey)."""
    from curate.io import cache
    from curate.vision.embed import weights_path

    constants = (VERSION, CUT, DECODE_SIDE, PAD, SIDE, FOLDS, EPOCHS, BATCH, MAX_CROP_PASSES, LR_BODY, LR_HEAD)
    h = hashlib.blake2b(repr((*constants, LABEL_SMOOTHING, num_classes, seed)).encode(), digest_size=16)
    for path in (weights_path(), *(path for path, _ in items)):
        try:
            h.update(cache.file_hash(path).encode())
        except OSError:
            h.update(b"unreadable")
    for _, boxes in items:
        boxes = np.asarray(boxes, np.float64)
        h.update(repr(boxes.shape).encode() + boxes.tobytes())
    h.update(np.asarray(y, np.int64).tobytes() + np.asarray(groups, np.int64).tobytes())
    return h.hexdigest()


def _lower(body, batch: list[np.ndarray]):
    """The frozen blocks' output of a list of BGR crops, :data:`BATCH` at a time."""
    import torch

    from curate.vision.embed import MEAN, STD

    out = []
    for start in range(0, len(batch), BATCH):
        x = np.stack(batch[start : start + BATCH])
        x = (x[..., ::-1].astype(np.float32) / 255.0 - MEAN) / STD
        with torch.inference_mode():
            out.append(body[: CUT + 1](torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))))
    return torch.cat(out)


def epochs_for(n_train: int, max_crop_passes: int = MAX_CROP_PASSES, epochs: int = EPOCHS) -> int:
    """``epochs`` (:data:`EPOCHS`), fewer where a fold's ``n_train`` crops would pass more than ``max_crop_passes`` in
    all."""
    return max(1, min(epochs, max_crop_passes // max(1, FOLDS * n_train)))


def _fit_predict(
    body,
    H,
    Hf,
    y,
    train,
    test,
    num_classes: int,
    seed: int,
    max_crop_passes: int = MAX_CROP_PASSES,
    epochs: int = EPOCHS,
) -> np.ndarray:
    """Train a copy of the upper blocks and a head on ``train`` (random mirror per crop), predict ``test`` (the mean
    of the crop's and its mirror's probabilities). ``max_crop_passes`` and ``epochs``: the epoch count and its cap
    (:func:`epochs_for`); the box model's own-crop columns (:mod:`curate.audit.boxmodel.owncrop_features`) set their
    own."""
    import torch

    torch.manual_seed(seed)
    upper = copy.deepcopy(body[CUT + 1 :])
    head = torch.nn.Linear(1280, num_classes)
    model = torch.nn.Sequential(upper, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Dropout(0.2), head)
    epochs = epochs_for(len(train), max_crop_passes, epochs)
    steps = epochs * ((len(train) + BATCH - 1) // BATCH)
    opt = torch.optim.AdamW(
        [{"params": upper.parameters(), "lr": LR_BODY}, {"params": head.parameters(), "lr": LR_HEAD}], weight_decay=1e-4
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[LR_BODY, LR_HEAD], total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    labels = torch.from_numpy(y)
    rows = torch.from_numpy(train)
    model.train()
    upper.eval()  # the batch-norm statistics stay ImageNet's: a batch of 64 crops of one fold would be a poor estimate
    for _ in range(epochs):
        order = rows[torch.randperm(len(rows), generator=gen)]
        for start in range(0, len(order), BATCH):
            idx = order[start : start + BATCH]
            flip = torch.rand(len(idx), generator=gen) < 0.5
            x = torch.where(flip[:, None, None, None], Hf[idx], H[idx])
            loss = torch.nn.functional.cross_entropy(model(x), labels[idx], label_smoothing=LABEL_SMOOTHING)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    out = np.zeros((len(test), num_classes))
    t = torch.from_numpy(test)
    with torch.inference_mode():
        for start in range(0, len(t), 256):
            idx = t[start : start + 256]
            out[start : start + len(idx)] = ((model(H[idx]).softmax(1) + model(Hf[idx]).softmax(1)) / 2).numpy()
    return out


def out_of_fold_probs(
    items: list[tuple[Path, np.ndarray]], y: np.ndarray, groups: np.ndarray, num_classes: int, *, seed: int
) -> np.ndarray:
    """(n, num_classes) class probabilities of every box, each from a network trained on the boxes of other images
    (:data:`FOLDS` folds grouped by image). ``items``: per image, its path and its boxes' (k, 4) normalized x1 y1 x2 y2,
    in the order of ``y`` and ``groups``. Uniform where fewer than two folds or classes can be made."""
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "8")  # as curate.vision.embed: a batch per shape
    import torch
    from sklearn.model_selection import GroupKFold

    from curate.vision.embed import backbone

    probs = np.full((len(y), num_classes), 1.0 / num_classes)
    folds = min(FOLDS, len(np.unique(groups)))
    if folds < 2 or len(np.unique(y)) < 2:
        return probs
    torch.set_num_threads(workers())
    body = backbone()
    batch = [c for path, boxes in items for c in crops(path, boxes)]
    H = _lower(body, batch)
    Hf = _lower(body, [c[:, ::-1] for c in batch])
    del batch
    for k, (train, test) in enumerate(GroupKFold(n_splits=folds).split(y, y, groups)):
        if len(np.unique(y[train])) < 2:
            continue
        probs[test] = _fit_predict(body, H, Hf, y, train, test, num_classes, seed * 1000 + k)
    return probs / probs.sum(axis=1, keepdims=True)
