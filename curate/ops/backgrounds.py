"""Background-only (and instance-only) train images made from the dataset's own photos.

Why: Ultralytics advises 0–10 % background images (no labels) to cut false positives, and backgrounds
taken from the same photos match the dataset's domain (same tables, fridges, lighting) better than
stock pictures. Every labelled object AND every salient object (U²-Net-p, :mod:`curate.vision.foreground`)
must be gone, else the model learns to ignore a real object:

1. Object mask of a train photo = its boxes (grown by a margin) ∪ U²-Net-p foreground, dilated.
2. ``crop``: the largest window (the dataset's typical aspect, at least ``BACKGROUND_MIN_CROP`` of the
   shorter side) holding at most ``BACKGROUND_MAX_LEFTOVER`` object pixels; leftovers are inpainted
   (OpenCV TELEA; ``crop+inpaint``); the window is resized to the typical image size.
3. ``inpaint``: when no window qualifies but objects cover little of the photo, the whole photo with the
   object mask inpainted.
4. Every candidate is re-run through U²-Net-p; its *residual* (share of pixels whose raw probability is
   above ``BACKGROUND_RESIDUAL_PROB``) above ``BACKGROUND_MAX_RESIDUAL`` means an object probably
   remains, and it is rejected. The raw probability is used, not the min-max normalized mask of
   :meth:`ForegroundModel.predict`: normalization always stretches the most salient speck of an empty
   scene to 1.
5. A candidate that looks like a val/test image (thumbnail correlation, :mod:`curate.vision.hashing`) is
   rejected, and train photos that are Roboflow variants or near-duplicates of a val/test image are
   never used as sources: a leak otherwise.

Sources: train only, round-robin over classes (each turn takes an unused photo holding the next class),
so backgrounds come from many photos and classes; a photo is reused only when all have been tried.

Instance-only images (``instances``): a labelled object cut out with the U²-Net-p mask inside its box,
pasted at a random scale and place on a generated background or a plain canvas, labelled with the tight
box of the pasted mask.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from curate.core import defaults
from curate.core.dataset import Dataset, ImageRecord, Label, roboflow_photo
from curate.core.overlap import iou_one
from curate.io.decode import imread
from curate.ops.options import BackgroundsOptions
from curate.vision import hashing

log = logging.getLogger(__name__)


class BackgroundError(ValueError):
    """Bad options: one clear line for the user."""


@dataclass
class Generated:
    """One generated image (in memory until written) and where it came from."""

    file: str  # file name in images/train
    kind: str  # "background" or "instance"
    source: str  # source image, relative to the dataset root
    method: str  # crop | crop+inpaint | inpaint | paste
    region: list[int]  # [x, y, w, h] in source pixels (the crop, or the pasted object's box)
    residual: float  # share of salient pixels U²-Net-p finds in the result (backgrounds; 0 for instances)
    similarity: float  # highest thumbnail correlation with any val/test image
    inpainted: float  # share of the result's pixels that were inpainted
    labels: list[Label] = field(default_factory=list)
    image: np.ndarray | None = field(default=None, repr=False)  # BGR uint8

    def record(self) -> dict:
        d = asdict(self)
        d.pop("image")
        d["labels"] = [[l.class_id, round(l.cx, 6), round(l.cy, 6), round(l.w, 6), round(l.h, 6)] for l in self.labels]
        return d


@dataclass
class BackgroundResult:
    dataset: Dataset
    generated: list[Generated]
    requested: int
    rejected: dict[str, int]
    warnings: list[str]
    seconds: float
    size: tuple[int, int]

    @property
    def backgrounds(self) -> list[Generated]:
        return [g for g in self.generated if g.kind == "background"]

    @property
    def instances(self) -> list[Generated]:
        return [g for g in self.generated if g.kind == "instance"]


# --------------------------------------------------------------------------------------------------
# Masks and scores
# --------------------------------------------------------------------------------------------------


def saliency(bgr: np.ndarray, *, model=None) -> np.ndarray:
    """U²-Net-p's raw probability (320×320, not min-max stretched); the GrabCut mask without weights."""
    from curate.vision import foreground

    model = model or foreground.get_model()
    if model.session is None:
        return model.predict(bgr)
    side = model.side
    rgb = cv2.cvtColor(cv2.resize(bgr, (side, side), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    x = rgb.astype(np.float32) / max(float(rgb.max()), 1.0)  # the same input as ForegroundModel.predict
    x = ((x - foreground._MEAN) / foreground._STD).transpose(2, 0, 1)[None]
    return model.session.run([model._output], {model._input: np.ascontiguousarray(x, dtype=np.float32)})[0][0, 0]


def residual_score(bgr: np.ndarray, *, model=None, prob: float | None = None) -> float:
    """Share of pixels U²-Net-p calls salient: near 0 for an empty scene, high when an object remains."""
    prob = defaults.BACKGROUND_RESIDUAL_PROB if prob is None else prob
    return float((saliency(bgr, model=model) > prob).mean())


def object_mask(
    record: ImageRecord, size: tuple[int, int], *, model=None, fg_threshold: float | None = None, salient: bool = True
) -> np.ndarray:
    """uint8 {0, 1} mask at ``size`` = (w, h): grown boxes ∪ salient foreground, dilated a little.

    ``salient=False`` gives the boxes alone (no model run): a cheap lower bound used to skip crowded
    photos before paying for their U²-Net-p mask.
    """
    from curate.vision import foreground

    w, h = size
    thr = defaults.BACKGROUND_FG_THRESHOLD if fg_threshold is None else fg_threshold
    fg = foreground.foreground_mask(record, size=size, model=model) if salient else None
    mask = (fg > thr).astype(np.uint8) if fg is not None else np.zeros((h, w), np.uint8)
    m = defaults.BACKGROUND_BOX_MARGIN
    pad = max(2, round(0.01 * max(w, h)))
    for lab in record.labels:
        x1, y1, x2, y2 = lab.xyxy
        bw, bh = (x2 - x1) * w, (y2 - y1) * h
        mask[
            max(0, int((y1 * h) - m * bh - pad)) : min(h, int(np.ceil(y2 * h + m * bh + pad))),
            max(0, int((x1 * w) - m * bw - pad)) : min(w, int(np.ceil(x2 * w + m * bw + pad))),
        ] = 1
    k = 2 * pad + 1
    return cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))


def find_windows(
    mask: np.ndarray, aspect: float, *, min_side: float, max_leftover: float, steps: int = 8
) -> list[tuple[float, int, int, int, int]]:
    """Windows of the given aspect (w/h) ranked by (large, few object pixels): ``(score, x, y, w, h)``.

    A summed-area table makes each window's object share O(1); sizes go from the whole image down to
    ``min_side`` of its shorter side, positions on a grid of 1/8 of the window.
    """
    H, W = mask.shape
    sat = cv2.integral(mask.astype(np.uint8))
    h_max = min(H, W / aspect)
    out = []
    for f in np.linspace(1.0, min_side, 10):
        wh = int(h_max * f)
        ww = int(wh * aspect)
        if wh < 8 or ww < 8:
            continue
        stride_y, stride_x = max(1, wh // steps), max(1, ww // steps)
        ys = np.arange(0, H - wh + 1, stride_y)
        xs = np.arange(0, W - ww + 1, stride_x)
        Y, X = np.meshgrid(ys, xs, indexing="ij")
        s = sat[Y + wh, X + ww] - sat[Y, X + ww] - sat[Y + wh, X] + sat[Y, X]
        cov = s / float(wh * ww)
        for y, x, c in zip(Y.ravel(), X.ravel(), cov.ravel()):
            if c <= max_leftover:
                out.append((float(f) - 3.0 * float(c), int(x), int(y), ww, wh))
    out.sort(key=lambda t: -t[0])
    return out


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """IoU of two ``(x, y, w, h)`` pixel rectangles."""
    (ax, ay, aw, ah), (bx, by, bw, bh) = a, b
    return iou_one((ax, ay, ax + aw, ay + ah), (bx, by, bx + bw, by + bh))


def _inpaint(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    if not mask.any():
        return img
    radius = max(3, round(0.012 * max(img.shape[:2])))
    return cv2.inpaint(img, mask * 255, radius, cv2.INPAINT_TELEA)


def make_candidates(
    img: np.ndarray, mask: np.ndarray, size: tuple[int, int], *, tries: int, rng: np.random.Generator
) -> list[tuple[str, list[int], float, np.ndarray]]:
    """Up to ``tries`` object-free versions of one photo: ``(method, [x, y, w, h], inpainted share, image)``."""
    tw, th = size
    windows = find_windows(
        mask, tw / th, min_side=defaults.BACKGROUND_MIN_CROP, max_leftover=defaults.BACKGROUND_MAX_LEFTOVER
    )
    picked: list[tuple[int, int, int, int]] = []
    # shuffle ties a little so two seeds can give two different windows of the same quality
    windows = sorted(windows, key=lambda t: -(t[0] + 1e-3 * rng.random()))
    for _, x, y, w, h in windows:
        r = (x, y, w, h)
        if any(_iou(r, p) > 0.25 for p in picked):
            continue
        picked.append(r)
        if len(picked) >= tries:
            break
    out = []
    for x, y, w, h in picked:
        crop, leftover = img[y : y + h, x : x + w], mask[y : y + h, x : x + w]
        share = float(leftover.mean())
        crop = _inpaint(crop, leftover)
        resized = cv2.resize(crop, (tw, th), interpolation=cv2.INTER_AREA if w >= tw else cv2.INTER_CUBIC)
        out.append(("crop+inpaint" if share > 0 else "crop", [x, y, w, h], share, resized))
    if not out and mask.mean() <= defaults.BACKGROUND_MAX_INPAINT:
        H, W = mask.shape
        full = cv2.resize(_inpaint(img, mask), (tw, th), interpolation=cv2.INTER_AREA)
        out.append(("inpaint", [0, 0, W, H], float(mask.mean()), full))
    return out


# --------------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------------


def roboflow_base(stem: str) -> str:
    """The photo a file was made from (:func:`curate.core.dataset.roboflow_photo`), else its own stem."""
    return roboflow_photo(stem) or stem


def _thumb_of(bgr: np.ndarray) -> np.ndarray:
    """The same normalized thumbnail as :func:`curate.vision.hashing.compute_signature`, from pixels."""
    return hashing.normalized_thumbnail(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))


def _imread_quarter(path: Path) -> np.ndarray | None:
    """The image decoded at 1/4 size, or in full where OpenCV cannot reduce it; None when unreadable."""
    img = imread(path, 4)
    return img if img is not None else imread(path)


class HeldOut:
    """Thumbnails of val/test images: the similarity of anything to the nearest of them."""

    def __init__(self, records: list[ImageRecord]) -> None:
        thumbs = []
        for r in records:
            img = _imread_quarter(r.path)  # as curate.vision.hashing decodes: fast
            if img is not None:
                thumbs.append(_thumb_of(img))
        self.matrix = np.stack(thumbs) if thumbs else np.zeros((0, hashing.THUMB**2), np.float32)
        self.bases = {roboflow_base(r.stem) for r in records}

    def similarity(self, thumb: np.ndarray) -> float:
        return float((self.matrix @ thumb).max()) if len(self.matrix) else 0.0


def source_order(train: list[ImageRecord], *, rng: np.random.Generator) -> list[ImageRecord]:
    """Train photos in round-robin order over classes (rarest first), each photo once.

    Photos without boxes go last as their own turn (they are backgrounds already, but may hold salient
    objects; the residual check decides).
    """
    by_class: dict[int, list[ImageRecord]] = defaultdict(list)
    for r in train:
        classes = sorted({l.class_id for l in r.labels}) or [-1]
        by_class[int(rng.choice(classes))].append(r)
    queues = {c: [rs[i] for i in rng.permutation(len(rs))] for c, rs in by_class.items()}
    order_classes = sorted(queues, key=lambda c: (c == -1, len(queues[c]), c))
    out: list[ImageRecord] = []
    while any(queues.values()):
        for c in order_classes:
            if queues[c]:
                out.append(queues[c].pop())
    return out


def typical_size(records: list[ImageRecord]) -> tuple[int, int]:
    """The most common (w, h) among the records (640×640 for a Roboflow export)."""
    from collections import Counter

    sizes = Counter()
    for r in records:
        try:
            sizes[r.size] += 1
        except Exception:  # noqa: BLE001 — unreadable headers are the image checks' business
            continue
    return sizes.most_common(1)[0][0] if sizes else (640, 640)


def _unique_name(prefix: str, stem: str, taken: set[str]) -> str:
    k = 0
    while f"{prefix}_{stem}_{k}.jpg" in taken:
        k += 1
    name = f"{prefix}_{stem}_{k}.jpg"
    taken.add(name)
    return name


# --------------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------------


def make_backgrounds(
    dataset: Dataset,
    count: int,
    *,
    seed: int = 0,
    model=None,
    held_out: HeldOut | None = None,
    taken: set[str] | None = None,
    progress: bool = True,
) -> tuple[list[Generated], dict[str, int]]:
    """``count`` background images from train photos, and why candidates were rejected (counts)."""
    from rich.progress import Progress

    from curate.vision import foreground
    from curate.vision.foreground import read_image

    model = model or foreground.get_model()
    rng = np.random.default_rng(seed)
    train = dataset.split("train")
    held_out = held_out or HeldOut([r for r in dataset.images if r.split in ("val", "test")])
    taken = set(r.path.name for r in train) if taken is None else taken
    size = typical_size(train)
    rejected: dict[str, int] = defaultdict(int)
    sources = []
    for r in source_order(train, rng=rng):
        if roboflow_base(r.stem) in held_out.bases:
            rejected["source is a variant of a val/test image"] += 1
        else:
            sources.append(r)
    out: list[Generated] = []
    used_regions: dict[str, list[list[int]]] = defaultdict(list)
    dead: set[str] = set()  # sources with nothing left to give: not retried in later passes
    max_passes = 3
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("background images", total=count)
        for attempt in range(max_passes):
            for rec in sources:
                if len(out) >= count:
                    break
                if rec.rel in dead:
                    continue
                img = read_image(rec.path)
                if img is None:
                    rejected["unreadable source"] += 1
                    continue
                if attempt == 0 and held_out.similarity(_thumb_of(img)) >= _near():
                    rejected["source near-duplicates a val/test image"] += 1
                    dead.add(rec.rel)
                    continue
                H, W = img.shape[:2]
                boxes_only = object_mask(rec, (W, H), salient=False)
                if boxes_only.mean() > defaults.BACKGROUND_MAX_INPAINT and not find_windows(
                    boxes_only,
                    size[0] / size[1],
                    min_side=defaults.BACKGROUND_MIN_CROP,
                    max_leftover=defaults.BACKGROUND_MAX_LEFTOVER,
                ):
                    rejected["no object-free region"] += 1  # boxes alone leave no room: skip the model run
                    dead.add(rec.rel)
                    continue
                mask = object_mask(rec, (W, H), model=model)
                cands = make_candidates(
                    img, mask, size, tries=defaults.BACKGROUND_TRIES_PER_SOURCE + len(used_regions[rec.rel]), rng=rng
                )
                cands = [c for c in cands if not any(_iou(tuple(c[1]), tuple(u)) > 0.25 for u in used_regions[rec.rel])]
                if not cands:
                    rejected["no object-free region"] += 1
                    dead.add(rec.rel)
                    continue
                for method, region, share, cand in cands:
                    res = residual_score(cand, model=model)
                    if res > defaults.BACKGROUND_MAX_RESIDUAL:
                        rejected["object remains (residual foreground)"] += 1
                        continue
                    if blank(cand):
                        rejected["blank (nearly uniform, too dark or overexposed)"] += 1
                        continue
                    sim = held_out.similarity(_thumb_of(cand))
                    if sim >= _near():
                        rejected["near-duplicate of a val/test image"] += 1
                        continue
                    used_regions[rec.rel].append(region)
                    name = _unique_name("bg", rec.stem, taken)
                    out.append(
                        Generated(
                            name,
                            "background",
                            rec.rel,
                            method,
                            region,
                            round(res, 5),
                            round(sim, 4),
                            round(share, 4),
                            [],
                            cand,
                        )
                    )
                    bar.advance(task)
                    break  # one per source per pass: spread over photos
            if len(out) >= count:
                break
    return out, dict(rejected)


def _near() -> float:
    """curate.vision.hashing's near-duplicate similarity, so both checks stay in step."""
    return float(hashing.NEAR_DUPLICATE_SIMILARITY)


def make_instances(
    dataset: Dataset,
    count: int,
    *,
    seed: int = 0,
    canvases: list[np.ndarray] | None = None,
    model=None,
    taken: set[str] | None = None,
    progress: bool = True,
) -> tuple[list[Generated], dict[str, int]]:
    """``count`` instance-only images: one labelled train object, cut out by its mask, on a canvas.

    Canvases are the generated backgrounds (when given) or plain light colours, half and half. The label
    is the tight box of the pasted mask, so it is exactly on the object.
    """
    from rich.progress import Progress

    from curate.vision import foreground
    from curate.vision.foreground import read_image

    model = model or foreground.get_model()
    rng = np.random.default_rng(seed + 1)
    train = dataset.split("train")
    taken = set(r.path.name for r in train) if taken is None else taken
    size = typical_size(train)
    tw, th = size
    rejected: dict[str, int] = defaultdict(int)
    by_class: dict[int, list[tuple[ImageRecord, Label]]] = defaultdict(list)
    for r in train:
        for lab in r.labels:
            by_class[lab.class_id].append((r, lab))
    for c in by_class:
        by_class[c] = [by_class[c][i] for i in rng.permutation(len(by_class[c]))]
    classes = sorted(by_class, key=lambda c: len(by_class[c]))
    out: list[Generated] = []
    turn = 0
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("instance images", total=count)
        while len(out) < count and any(by_class.values()):
            c = classes[turn % len(classes)]
            turn += 1
            if not by_class[c]:
                continue
            rec, lab = by_class[c].pop()
            img = read_image(rec.path)
            if img is None:
                rejected["unreadable source"] += 1
                continue
            H, W = img.shape[:2]
            x1, y1, x2, y2 = lab.xyxy
            bx1, by1 = max(0, int(round(x1 * W))), max(0, int(round(y1 * H)))
            bx2, by2 = min(W, int(round(x2 * W))), min(H, int(round(y2 * H)))
            if bx2 - bx1 < 12 or by2 - by1 < 12:
                rejected["box too small"] += 1
                continue
            fg = foreground.foreground_mask(rec, size=(W, H), model=model)
            if fg is None:
                rejected["unreadable source"] += 1
                continue
            alpha = (fg[by1:by2, bx1:bx2] > 0.5).astype(np.uint8)
            n, comp, stats, _ = cv2.connectedComponentsWithStats(alpha, connectivity=8)
            if n <= 1:
                rejected["no foreground in box"] += 1
                continue
            alpha = (comp == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
            if alpha.mean() < defaults.INSTANCE_MIN_FILL:
                rejected["foreground fills too little of the box"] += 1
                continue
            ys, xs = np.nonzero(alpha)
            oy1, oy2, ox1, ox2 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
            obj, alpha = img[by1:by2, bx1:bx2][oy1:oy2, ox1:ox2], alpha[oy1:oy2, ox1:ox2]
            canvas = _canvas(size, canvases, rng)
            scale = rng.uniform(*defaults.INSTANCE_SCALE) * min(tw, th) / max(obj.shape[:2])
            ow, oh = max(2, round(obj.shape[1] * scale)), max(2, round(obj.shape[0] * scale))
            if ow >= tw or oh >= th:
                s2 = 0.9 * min(tw / ow, th / oh)
                ow, oh = max(2, int(ow * s2)), max(2, int(oh * s2))
            obj = cv2.resize(obj, (ow, oh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
            a = cv2.resize(alpha.astype(np.float32), (ow, oh), interpolation=cv2.INTER_LINEAR)
            a = cv2.GaussianBlur(a, (3, 3), 0)[..., None]  # soft 1-px edge: no hard cut-out seam
            px, py = int(rng.integers(0, tw - ow + 1)), int(rng.integers(0, th - oh + 1))
            roi = canvas[py : py + oh, px : px + ow].astype(np.float32)
            canvas[py : py + oh, px : px + ow] = np.clip(a * obj + (1 - a) * roi, 0, 255).astype(np.uint8)
            ys, xs = np.nonzero(a[..., 0] > 0.5)
            if not len(xs):
                rejected["object vanished when scaled"] += 1
                continue
            qx1, qx2, qy1, qy2 = px + xs.min(), px + xs.max() + 1, py + ys.min(), py + ys.max() + 1
            label = Label(
                lab.class_id, (qx1 + qx2) / 2 / tw, (qy1 + qy2) / 2 / th, (qx2 - qx1) / tw, (qy2 - qy1) / th, 1
            )
            name = _unique_name("inst", rec.stem, taken)
            region = [bx1 + int(ox1), by1 + int(oy1), int(ox2 - ox1), int(oy2 - oy1)]
            out.append(Generated(name, "instance", rec.rel, "paste", region, 0.0, 0.0, 0.0, [label], canvas))
            bar.advance(task)
    return out, dict(rejected)


def _canvas(size: tuple[int, int], canvases: list[np.ndarray] | None, rng: np.random.Generator) -> np.ndarray:
    tw, th = size
    if canvases and rng.random() < 0.5:
        c = canvases[int(rng.integers(len(canvases)))]
        return cv2.resize(c, (tw, th)).copy() if c.shape[:2] != (th, tw) else c.copy()
    colour = rng.integers(150, 246, size=3).astype(np.uint8)  # light, plain: a table top or a backdrop
    return np.broadcast_to(colour, (th, tw, 3)).copy()


# --------------------------------------------------------------------------------------------------
# The whole step
# --------------------------------------------------------------------------------------------------


#: Share of train images without a box above which adding backgrounds is warned about: such a set (e.g. after
#: ``rebalance --keep-classes`` kept the images that lost every box) needs objects, not more empty images.
MOSTLY_BACKGROUND = 0.5


def backgrounds(
    dataset: Dataset, options: BackgroundsOptions | None = None, *, model=None, progress: bool = True
) -> BackgroundResult:
    """Generate round(fraction × train images) backgrounds and ``instances`` instance images (in memory)."""
    options = options or BackgroundsOptions()
    fraction, instances, seed = options.fraction, options.instances, options.seed
    train = dataset.split("train")
    if not train:
        raise BackgroundError("the dataset has no train images: backgrounds are made from, and added to, train only")
    warnings = []
    if fraction > defaults.BACKGROUND_WARN_FRACTION:
        warnings.append(
            f"--fraction {fraction:g} is above {defaults.BACKGROUND_WARN_FRACTION:g}: "
            "Ultralytics advises 0–10 % background images; more can lower recall"
        )
    empty = sum(not r.labels for r in train)
    if empty > MOSTLY_BACKGROUND * len(train):
        warnings.append(
            f"train is already {100 * empty / len(train):.0f} % background images ({empty} of {len(train)} have no "
            "box): more backgrounds rarely help and can lower recall"
        )
    t0 = time.perf_counter()
    count = round(fraction * len(train))
    held_out = HeldOut([r for r in dataset.images if r.split in ("val", "test")])
    taken = {r.path.name for r in train}
    bgs, rejected = make_backgrounds(
        dataset, count, seed=seed, model=model, held_out=held_out, taken=taken, progress=progress
    )
    if len(bgs) < count:
        warnings.append(
            f"made {len(bgs)} of {count} background images: the other train photos have no object-free region"
        )
    inst, rej2 = (
        make_instances(
            dataset, instances, seed=seed, canvases=[g.image for g in bgs], model=model, taken=taken, progress=progress
        )
        if instances
        else ([], {})
    )
    if len(inst) < instances:
        warnings.append(f"made {len(inst)} of {instances} instance images: too few boxes with a clean foreground mask")
    for k, v in rej2.items():
        rejected[f"instance: {k}"] = v
    return BackgroundResult(
        dataset, bgs + inst, count, rejected, warnings, time.perf_counter() - t0, typical_size(train)
    )


def write_backgrounds(result: BackgroundResult, out: str | Path, *, overwrite: bool = False) -> Path:
    """OUT/ = the dataset (``save_yolo``) + the generated train images and labels + contact sheet + JSON,
    whole or not at all (:func:`curate.io.outputs.atomic_output`)."""
    from curate.io.outputs import atomic_output
    from curate.io.yolo import check_output_dir

    target = check_output_dir(Path(out), [result.dataset.root], overwrite=overwrite)
    with atomic_output(target, "backgrounds") as tmp:
        _write_backgrounds(result, tmp)
    return target


def _write_backgrounds(result: BackgroundResult, out: Path) -> None:
    from curate.io.yolo import format_label_lines, save_yolo

    save_yolo(result.dataset, out)
    img_dir, lab_dir = out / "images" / "train", out / "labels" / "train"
    img_dir.mkdir(parents=True, exist_ok=True)
    lab_dir.mkdir(parents=True, exist_ok=True)
    for g in result.generated:
        cv2.imwrite(str(img_dir / g.file), g.image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        (lab_dir / (Path(g.file).stem + ".txt")).write_text(
            format_label_lines(g.labels), encoding="utf-8", newline="\n"
        )
    if result.generated:
        contact_sheet(result.generated, out / "backgrounds_contact.png")
    n = len(result.backgrounds)
    summary = {
        "requested": result.requested,
        "backgrounds": n,
        "instances": len(result.instances),
        "train_images_before": len(result.dataset.split("train")),
        "image_size": list(result.size),
        "residual_threshold": defaults.BACKGROUND_MAX_RESIDUAL,
        "residual_prob": defaults.BACKGROUND_RESIDUAL_PROB,
        "salient_share": (sum(g.residual > defaults.BACKGROUND_MAX_RESIDUAL for g in result.backgrounds) / n)
        if n
        else 0.0,
        "max_val_test_similarity": max((g.similarity for g in result.backgrounds), default=0.0),
        "rejected": result.rejected,
        "warnings": result.warnings,
        "seconds": round(result.seconds, 2),
        "generated": [g.record() for g in result.generated],
    }
    (out / "backgrounds.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def blank(bgr: np.ndarray) -> bool:
    """A crop a model learns nothing from: what the audit's ``low_information``, ``dark`` or ``overexposed``
    checks would flag (the same cleanvision measures and cut points), e.g. a patch of white wall."""
    from curate.vision.hashing import quality_stats

    q = quality_stats(bgr, cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    return (
        q["entropy"] < defaults.QUALITY_LOW_ENTROPY
        or q["brightness_p99"] < defaults.QUALITY_DARK_P99
        or q["brightness_p5"] > defaults.QUALITY_LIGHT_P5
    )


def contact_sheet(items: list[Generated], path: Path, *, thumb: int = 160, cols: int = 8) -> Path:
    """A grid of thumbnails (aspect kept, on grey) with two caption lines under each: how it was made and the
    source photo's name, each cut to the thumbnail's width; instance boxes drawn in red."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    line_h = 12
    label_h = 2 * line_h + 4
    cols = max(1, min(cols, len(items)))
    rows = -(-len(items) // cols)
    sheet = Image.new("RGB", (cols * thumb, rows * (thumb + label_h)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, g in enumerate(items):
        h, w = g.image.shape[:2]
        f = thumb / max(h, w)
        tw, th = max(1, round(w * f)), max(1, round(h * f))
        im = cv2.cvtColor(cv2.resize(g.image, (tw, th), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
        x, y = (i % cols) * thumb, (i // cols) * (thumb + label_h)
        draw.rectangle([x, y, x + thumb - 1, y + thumb - 1], fill=(200, 200, 200))
        ox, oy = x + (thumb - tw) // 2, y + (thumb - th) // 2
        sheet.paste(Image.fromarray(im), (ox, oy))
        for lab in g.labels:
            x1, y1, x2, y2 = lab.xyxy
            draw.rectangle([ox + x1 * tw, oy + y1 * th, ox + x2 * tw, oy + y2 * th], outline=(255, 40, 40), width=2)
        for k, text in enumerate((f"{g.kind}: {g.method}", roboflow_base(Path(g.source).stem))):
            draw.text((x + 3, y + thumb + 2 + k * line_h), _fit(draw, text, font, thumb - 6), fill=(0, 0, 0), font=font)
    from PIL import Image as _I

    # 256 colours without dithering: a third of the size, thumbnails still readable (README keeps it < 1.5 MB)
    sheet.quantize(colors=256, method=_I.Quantize.MEDIANCUT, dither=_I.Dither.NONE).save(path, optimize=True)
    return path


def _fit(draw, text: str, font, width: int) -> str:
    """``text`` cut (with an ellipsis) so that it is at most ``width`` pixels wide."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"
