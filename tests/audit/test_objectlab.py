"""objectlab check: cleanlab ObjectLab scores from a YOLO model's predictions."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from curate.audit.checks import objectlab
from curate.audit.checks.base import AuditContext
from curate.core.dataset import Dataset, ImageRecord, Label

os.environ.setdefault("YOLO_OFFLINE", "1")

NAMES = ["red", "blue"]
COLORS = [(220, 30, 30), (30, 30, 220)]


def _make_images(folder: Path, n: int, seed: int = 0) -> list[ImageRecord]:
    """64×64 grey images with one or two coloured squares; labels on the squares."""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(n):
        arr = np.full((64, 64, 3), 128, np.uint8)
        labels = []
        for k in range(1 + i % 2):
            c = int(rng.integers(2))
            s = int(rng.integers(14, 22))
            x0, y0 = int(rng.integers(0, 64 - s)), int(rng.integers(0, 64 - s))
            arr[y0 : y0 + s, x0 : x0 + s] = COLORS[c]
            labels.append(Label(c, (x0 + s / 2) / 64, (y0 + s / 2) / 64, s / 64, s / 64, line=k + 1))
        path = folder / "images" / f"{i}.png"
        Image.fromarray(arr).save(path)
        (folder / "labels" / f"{i}.txt").write_text(
            "".join(f"{lab.class_id} {lab.cx} {lab.cy} {lab.w} {lab.h}\n" for lab in labels)
        )
        records.append(ImageRecord("train", path, f"images/{i}.png", folder / "labels" / f"{i}.txt", labels))
    return records


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Dataset]:
    """A YOLOv8n trained for one epoch at imgsz 64 on CPU (~20 s): real weights, real predictions."""
    root = tmp_path_factory.mktemp("ol")
    records = _make_images(root / "train", 16)
    (root / "data.yaml").write_text(f"path: {root}\ntrain: train/images\nval: train/images\nnames: {NAMES}\n")
    from ultralytics import YOLO

    model = YOLO("yolov8n.yaml")
    model.train(
        data=str(root / "data.yaml"),
        epochs=1,
        imgsz=64,
        device="cpu",
        workers=0,
        plots=False,
        val=False,
        batch=8,
        project=str(root / "runs"),
        name="t",
        verbose=False,
        amp=False,
    )
    weights = next((root / "runs").rglob("last.pt"))
    return weights, Dataset(root=root / "train", name="toy", names=NAMES, images=records)


def test_no_model_no_findings(tmp_path: Path) -> None:
    ds = Dataset(root=tmp_path, name="t", names=NAMES, images=_make_images(tmp_path, 2))
    assert objectlab.run(AuditContext(ds)) == []


def test_real_model_scores_every_box(tiny_model: tuple[Path, Dataset]) -> None:
    weights, ds = tiny_model
    findings = objectlab.run(AuditContext(ds, model=str(weights)))
    box = [f for f in findings if f.line is not None]
    assert sorted((f.image, f.line) for f in box) == sorted((r.rel, lab.line) for r, lab in ds.boxes())
    assert all(0.0 <= f.score <= 1.0 and f.check == "objectlab" and "image_score" in f.data for f in findings)
    assert all(f.region is not None for f in findings if f.line is None)


def test_class_count_mismatch_is_a_warning_not_a_crash(tiny_model: tuple[Path, Dataset], tmp_path: Path) -> None:
    weights, ds = tiny_model
    other = Dataset(root=ds.root, name="t", names=["a", "b", "c"], images=ds.images)
    assert objectlab.run(AuditContext(other, model=str(weights))) == []
    assert any("objectlab skipped" in w for w in other.warnings)


def test_other_class_names_are_warned_about(tiny_model: tuple[Path, Dataset]) -> None:
    """Same class count, other names (a model of another dataset): scored by index, with a warning naming them."""
    weights, ds = tiny_model
    renamed = Dataset(root=ds.root, name="t", names=[NAMES[0], "zebra"], images=ds.images)
    assert objectlab.run(AuditContext(renamed, model=str(weights)))
    assert any("1: model 'blue' vs dataset 'zebra'" in w for w in renamed.warnings)
    same = Dataset(root=ds.root, name="t", names=list(NAMES), images=ds.images)
    objectlab.run(AuditContext(same, model=str(weights)))
    assert not any("class names differ" in w for w in same.warnings)


def _pred(boxes_by_class: dict[int, list[list[float]]]) -> np.ndarray:
    return objectlab._prediction_arrays(
        np.array([b[:4] for c in sorted(boxes_by_class) for b in boxes_by_class[c]], dtype=float).reshape(-1, 4),
        np.array([b[4] for c in sorted(boxes_by_class) for b in boxes_by_class[c]], dtype=float),
        np.array([c for c in sorted(boxes_by_class) for _ in boxes_by_class[c]], dtype=int),
        2,
    )


@pytest.mark.parametrize("case", ["shifted", "swapped"])
def test_worse_label_gets_worse_score(tmp_path: Path, case: str) -> None:
    """Same confident predictions; a label that disagrees with them scores higher than one that agrees."""
    recs = _make_images(tmp_path, 6, seed=1)
    ds = Dataset(root=tmp_path, name="t", names=NAMES, images=recs)
    # predictions exactly on the true squares, confident, plus a low-confidence decoy of the other class
    preds = []
    for r in recs:
        by: dict[int, list[list[float]]] = {0: [], 1: []}
        for lab in r.labels:
            x1, y1, x2, y2 = (v * 64 for v in lab.xyxy)
            by[lab.class_id].append([x1, y1, x2, y2, 0.99])
            by[1 - lab.class_id].append([x1, y1, x2, y2, 0.03])
        preds.append(_pred(by))
    target = recs[0].labels[0]
    if case == "shifted":
        bad = Label(target.class_id, min(target.cx + target.w * 0.6, 0.95), target.cy, target.w, target.h, line=1)
    else:
        bad = Label(1 - target.class_id, target.cx, target.cy, target.w, target.h, line=1)
    clean = {
        (f.image, f.line): f.score
        for f in objectlab.score(ds, recs, [objectlab._label_dict(r, (64, 64)) for r in recs], preds, threshold=0.5)
        if f.line
    }
    recs[0].labels[0] = bad
    noisy = {
        (f.image, f.line): f
        for f in objectlab.score(ds, recs, [objectlab._label_dict(r, (64, 64)) for r in recs], preds, threshold=0.5)
        if f.line
    }
    key = (recs[0].rel, 1)
    assert noisy[key].score > clean[key] + 0.2
    assert ("another class" if case == "swapped" else "badly located") in noisy[key].message


def test_missing_weights_is_a_warning(tmp_path: Path) -> None:
    ds = Dataset(root=tmp_path, name="t", names=NAMES, images=_make_images(tmp_path, 2))
    assert objectlab.run(AuditContext(ds, model=str(tmp_path / "nope.pt"))) == []
    assert any("not found" in w for w in ds.warnings)


def test_unreadable_image_is_left_out(tiny_model: tuple[Path, Dataset], tmp_path: Path) -> None:
    weights, ds = tiny_model
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    rec = ImageRecord("train", bad, "images/broken.png", None, [Label(0, 0.5, 0.5, 0.2, 0.2, line=1)])
    other = Dataset(root=ds.root, name="t", names=NAMES, images=[*ds.images[:3], rec])
    findings = objectlab.run(AuditContext(other, model=str(weights)))
    assert findings and all(f.image != "images/broken.png" for f in findings)
