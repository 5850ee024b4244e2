"""Making the images: backgrounds from the sources, instance images pasted on them, and the whole step with its
warnings (what ``curate backgrounds`` runs before writing)."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from curate.core import defaults
from curate.core.dataset import Dataset, ImageRecord, Label
from curate.ops.backgrounds.masks import object_mask, residual_score
from curate.ops.backgrounds.regions import blank, find_windows, make_candidates, window_iou
from curate.ops.backgrounds.sources import HeldOut, roboflow_base, source_order, thumb_of, typical_size, unique_name
from curate.ops.options import BackgroundsOptions
from curate.vision import hashing


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
                if attempt == 0 and held_out.similarity(thumb_of(img)) >= _near():
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
                cands = [
                    c for c in cands if not any(window_iou(tuple(c[1]), tuple(u)) > 0.25 for u in used_regions[rec.rel])
                ]
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
                    sim = held_out.similarity(thumb_of(cand))
                    if sim >= _near():
                        rejected["near-duplicate of a val/test image"] += 1
                        continue
                    used_regions[rec.rel].append(region)
                    name = unique_name("bg", rec.stem, taken)
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
            name = unique_name("inst", rec.stem, taken)
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
