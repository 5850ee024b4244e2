"""The data side: fingerprints, Ultralytics training folders, the one test set mapped by class name onto
each model's classes, and the leak check between the test set and the training sets."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from curate.core.dataset import Dataset, ImageRecord, Label
from curate.train.compare.settings import CompareError

#: The splits a model learns from: train, and val (Ultralytics picks ``best.pt`` on it).
SEEN = ("train", "val")


def content_fingerprint(dataset: Dataset) -> str:
    """sha256 over class names and, per image, its split, image bytes hash and labels: equal = same data.

    Not :func:`curate.fiftyone.identity.fingerprint`, on purpose: that one asks "are these the same files,
    unchanged, at this place?" (paths, sizes and mtimes, no pixel read: milliseconds), this one "is this the
    same data wherever it lies?" (a copy in another folder is equal), which is what says a training can be
    reused; it reads every image once (cached by :func:`curate.io.cache.file_hash`)."""
    from curate.io.cache import file_hash

    h = hashlib.sha256("\0".join(dataset.names).encode() + b"\1")
    for r in sorted(dataset.images, key=lambda r: (r.split, r.rel)):
        h.update(f"{r.split}\0{file_hash(r.path)}\0".encode())
        h.update(
            b"\0".join(f"{l.class_id} {l.cx:.6f} {l.cy:.6f} {l.w:.6f} {l.h:.6f}".encode() for l in r.labels) + b"\2"
        )
    return h.hexdigest()[:16]


def is_segmentation(dataset: Dataset) -> bool:
    """Polygon labels in most labelled images → train the ``-seg`` model."""
    labelled = [r for r in dataset.images if r.labels]
    return bool(labelled) and sum(any(l.is_polygon for l in r.labels) for r in labelled) > len(labelled) / 2


def seg_model_name(model: str) -> str:
    """``yolov8n.yaml`` → ``yolov8n-seg.yaml`` (a name already ending -seg, or a .pt, is kept)."""
    p = Path(model)
    if p.suffix == ".yaml" and not p.stem.endswith("-seg"):
        return str(p.with_name(p.stem + "-seg.yaml"))
    return model


def with_val(dataset: Dataset, *, seed: int) -> tuple[Dataset, str | None]:
    """A train set needs a val split for Ultralytics; carve 10 % of train (by a fixed seed) when absent."""
    if dataset.split("val") or not dataset.split("train"):
        return dataset, None
    train = dataset.split("train")
    rng = np.random.default_rng(seed)
    k = max(1, len(train) // 10)
    chosen = {train[i].rel for i in rng.choice(len(train), size=k, replace=False)}
    images = [replace(r, split="val") if r.rel in chosen else r for r in dataset.images]
    return replace(
        dataset, images=images
    ), f"{dataset.name} has no val split: {k} train images (seed {seed}) used as val"


def training_folder(dataset: Dataset, out: Path) -> Path:
    """Normalise into ``out`` (Ultralytics layout, relative data.yaml); train/val only. Reused if present."""
    from curate.io.outputs import atomic_output, is_complete
    from curate.io.yolo import save_yolo

    yaml_path = out / "data.yaml"
    stamp = out / ".fingerprint"
    fp = content_fingerprint(dataset)
    if is_complete(out) and stamp.exists() and stamp.read_text() == fp:
        return yaml_path
    keep = _seen(dataset)
    with atomic_output(out, "train-and-compare") as tmp:
        save_yolo(replace(dataset, images=keep), tmp)
        (tmp / ".fingerprint").write_text(fp)
    return yaml_path


def map_labels(labels: list[Label], src_names: list[str], dst_names: list[str]) -> tuple[list[Label], list[str]]:
    """Labels re-numbered by class NAME into ``dst_names``; returns the kept labels and the dropped names."""
    index = {n: i for i, n in enumerate(dst_names)}
    kept, dropped = [], []
    for l in labels:
        name = src_names[l.class_id] if 0 <= l.class_id < len(src_names) else str(l.class_id)
        if name in index:
            kept.append(replace(l, class_id=index[name]))
        else:
            dropped.append(name)
    return kept, dropped


def test_folder(
    test: list[ImageRecord], test_names: list[str], model_names: list[str], out: Path, *, root: Path
) -> tuple[Path, dict[str, int]]:
    """The fixed test images with labels mapped onto a model's classes; a data.yaml with train=val=test."""
    import yaml as pyyaml

    from curate.io.outputs import atomic_output
    from curate.io.yolo import save_yolo

    dropped: dict[str, int] = {}
    images = []
    for r in test:
        kept, gone = map_labels(r.labels, test_names, model_names)
        for n in gone:
            dropped[n] = dropped.get(n, 0) + 1
        images.append(replace(r, split="test", labels=kept, edited=True))
    ds = Dataset(root=root, name="test", names=list(model_names), images=images)
    cfg = {
        "train": "images/test",
        "val": "images/test",
        "test": "images/test",
        "nc": len(model_names),
        "names": {i: n for i, n in enumerate(model_names)},
    }
    with atomic_output(out, "train-and-compare") as tmp:
        save_yolo(ds, tmp)
        (tmp / "data.yaml").write_text(pyyaml.safe_dump(cfg, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return out / "data.yaml", dropped


def resolve_test(path: Path, split: str | None, loader: Callable[[Path], Dataset]) -> tuple[Dataset, str]:
    """``--test`` is a dataset (its ``split``, default test) or a split folder of one (``food/valid``)."""
    aliases = {"valid": "val", "validation": "val"}
    name = path.name.lower()
    if path.is_dir() and name in ("train", "val", "valid", "test") and not (path / "data.yaml").exists():
        ds = loader(path.parent)
        return ds, aliases.get(name, name)
    ds = loader(path)
    return ds, aliases.get(split or "test", split or "test")


def same_photos(test: list[ImageRecord], trains: dict[str, list[ImageRecord]]) -> dict[str, list[tuple[int, int]]]:
    """Per side, ``(test index, training index)`` of every test image that is the same photo as a training image.

    Matched by image content (:mod:`curate.vision.hashing`: the same bytes, or a near-duplicate at the audit's
    threshold), never by file name: a re-split moves photos between splits and Roboflow re-encodes them, so a
    test image a model was trained on rarely keeps its name or its bytes.
    """
    from curate.vision.hashing import image_signatures, near_duplicate_pairs

    tagged = [replace(r, rel=f"test\0{i}") for i, r in enumerate(test)]
    for side, recs in trains.items():
        tagged += [replace(r, rel=f"{side}\0{j}") for j, r in enumerate(recs)]
    sigs = image_signatures(Dataset(root=Path("/"), name="same-photos", names=[], images=tagged), progress=False)
    found: dict[str, set[tuple[int, int]]] = {side: set() for side in trains}
    for pair in near_duplicate_pairs(sigs):
        (sa, ia), (sb, ib) = (pair.a.split("\0"), pair.b.split("\0"))
        if sa == "test" and sb in found:
            found[sb].add((int(ia), int(ib)))
        elif sb == "test" and sa in found:
            found[sa].add((int(ib), int(ia)))
    return {side: sorted(pairs) for side, pairs in found.items()}


@dataclass
class TestSet:
    """The one test set both models are scored on, and how it relates to what they trained on."""

    dataset: Dataset
    split: str
    images: list[ImageRecord]
    before: Dataset  # BEFORE as it is trained: without the default test set's photos (``held_out``)
    leaked: dict[str, int] = field(default_factory=dict)  # side → test images that side trained on
    leaked_any: int = 0  # test images either side trained on
    held_out: int = 0  # BEFORE's train/val images left out of its training: they are test photos
    left_out: int = 0  # images of AFTER's test split left out of the default test set: AFTER trained on them
    notes: list[str] = field(default_factory=list)


def choose_test_set(
    before: Dataset, after: Dataset, test: tuple[Dataset, str] | None, log: Callable[[str], None]
) -> TestSet:
    """``--test`` as given (its leaks into either side's train/val counted), or by default a test set neither
    side trained on.

    The default starts from AFTER's test split: after a re-split most of those photos sat in BEFORE's train set,
    and a model scored on photos it learned from looks better than it is. So the photos AFTER trained on leave
    the test set, and BEFORE is trained without the ones it holds (both sides then lose the same photos: the
    test photos). What is left out is counted and said; nothing left is one line naming ``--test``.
    """
    if test is not None:
        test_ds, split = test
        recs = test_ds.split(split)
        if not recs:
            raise CompareError(f"the test set {test_ds.root} has no images in split {split!r}")
        trains = {"BEFORE": _seen(before), "AFTER": _seen(after)}
        pairs = same_photos(recs, trains)
        leaked = {side: len({t for t, _ in p}) for side, p in pairs.items()}
        either = len({t for p in pairs.values() for t, _ in p})
        notes = [
            f"{n} of {len(recs)} test images are in {side}'s train/val (same photo, e.g. "
            f"{recs[p[0][0]].rel} = {trains[side][p[0][1]].rel}): its scores on them are not a test"
            for side, p in pairs.items()
            if (n := leaked[side])
        ]
        return TestSet(test_ds, split, recs, before, leaked, either, notes=notes)
    candidates = after.split("test")
    if not candidates:
        raise CompareError(f"AFTER ({after.root}) has no test split: pass --test PATH (a dataset or a split of one)")
    before_seen = _seen(before)
    pairs = same_photos(candidates, {"BEFORE": before_seen, "AFTER": _seen(after)})
    after_trained = {t for t, _ in pairs["AFTER"]}
    recs = [r for i, r in enumerate(candidates) if i not in after_trained]
    if not recs:
        raise CompareError(
            f"all {len(candidates)} images of AFTER's test split are in AFTER's train/val (same photo): no fair "
            "default test set; pass --test PATH with images neither side trained on"
        )
    held = {id(before_seen[j]) for t, j in pairs["BEFORE"] if t not in after_trained}
    kept = [r for r in before.images if id(r) not in held]
    log(
        f"test set: {len(recs)} of AFTER's {len(candidates)} test images, none of them trained on by either side"
        + (f" ({len(after_trained)} left out: AFTER trained on them)" if after_trained else "")
        + (f"; BEFORE trains without the {len(held)} of its train/val images that are these photos" if held else "")
    )
    notes = []
    if held:
        notes.append(
            f"BEFORE is trained without {len(held)} of its {len(before_seen)} train/val images: they are photos of the "
            "test set (same photo as an image of AFTER's test split)"
        )
    if after_trained:
        notes.append(
            f"{len(after_trained)} image(s) of AFTER's test split are left out of the test set: AFTER trained on them"
        )
    return TestSet(
        after,
        "test",
        recs,
        replace(before, images=kept),
        {"BEFORE": 0, "AFTER": 0},
        held_out=len(held),
        left_out=len(after_trained),
        notes=notes,
    )


def _seen(dataset: Dataset) -> list[ImageRecord]:
    return [r for r in dataset.images if r.split in SEEN]
