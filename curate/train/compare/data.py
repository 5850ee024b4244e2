"""The data side: fingerprints, Ultralytics training folders, the one test set mapped by class name onto
each model's classes, and the leak check between the test set and the training sets."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from curate.core.dataset import Dataset, ImageRecord, Label


def content_fingerprint(dataset: Dataset) -> str:
    """sha256 over class names and, per image, its split, image bytes hash and labels: equal = same data."""
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
    keep = [r for r in dataset.images if r.split in ("train", "val")]
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


def leaks(test: list[ImageRecord], trains: dict[str, list[ImageRecord]]) -> list[str]:
    """Test images found in a training set: same bytes, or near-duplicates when :mod:`curate.vision.hashing` is
    there."""
    from curate.io.cache import file_hash

    found: list[str] = []
    test_hash = {file_hash(r.path): r.rel for r in test}
    for side, recs in trains.items():
        hits = sorted({test_hash[h] for h in (file_hash(r.path) for r in recs) if h in test_hash})
        if hits:
            found.append(f"{len(hits)} test image(s) are byte-identical to {side} training images (e.g. {hits[0]})")
    try:
        from curate.vision.hashing import image_signatures, near_duplicate_groups
    except ImportError:
        return found
    try:
        for side, recs in trains.items():
            tagged = [replace(r, rel=f"test/{r.rel}") for r in test] + [replace(r, rel=f"train/{r.rel}") for r in recs]
            ds = Dataset(root=Path("/"), name=f"leak-{side}", names=[], images=tagged)
            groups = near_duplicate_groups(ds, image_signatures(ds, progress=False))
            mixed = [
                g
                for g in groups
                if any(str(x).startswith("test/") for x in g) and any(str(x).startswith("train/") for x in g)
            ]
            if mixed:
                found.append(f"{len(mixed)} group(s) of near-duplicate images span the test set and {side} training")
    except Exception as exc:  # noqa: BLE001 — a leak check must never sink a comparison
        found.append(f"near-duplicate leak check skipped ({type(exc).__name__}: {exc})")
    return found
