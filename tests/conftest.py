"""Test isolation: FiftyOne, the cache and Ultralytics point at temporary folders BEFORE anything imports them.

The real parts are used (a real FiftyOne database in a temp folder, real weights); only where they keep
state is changed.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

_TMP = Path(tempfile.mkdtemp(prefix="curate-tests-"))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)
os.environ.setdefault("FIFTYONE_DATABASE_DIR", str(_TMP / "fiftyone-db"))
os.environ.setdefault("FIFTYONE_DEFAULT_DATASET_DIR", str(_TMP / "fiftyone-data"))
os.environ["FIFTYONE_DO_NOT_TRACK"] = "true"
os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
os.environ["CURATE_CACHE_DIR"] = str(_TMP / "cache")
os.environ["YOLO_OFFLINE"] = "1"
os.environ["MPLBACKEND"] = "Agg"

from curate.runtime import env  # noqa: E402

env.configure()

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "curate" / "sample" / "food-mini"
SHARED = REPO.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The bundled sample (80 real images of food-ingredients, Roboflow layout). Read-only: copy before changing."""
    return SAMPLE


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """../shared/datasets (the full real exports); tests that need it skip when it is absent."""
    if not (SHARED / "food-ingredients").is_dir():
        pytest.skip("../shared/datasets is not beside this checkout")
    return SHARED


_COLOURS = [(220, 40, 40), (40, 160, 60), (40, 80, 220), (230, 200, 30), (160, 60, 200), (30, 190, 200)]


def _write_yolo_tree(
    root: Path,
    images: dict[str, list[str]],
    *,
    names: list[str] | None = None,
    layout: str = "roboflow",
    size: tuple[int, int] = (64, 64),
    background: tuple[int, int, int] = (235, 235, 235),
) -> Path:
    """Write a small YOLO dataset with real JPEGs and return its root (the folder holding data.yaml).

    ``images`` maps ``"<split>/<file>.jpg"`` to its label lines, written verbatim (so malformed lines can be
    tested); an empty list writes an empty label file, ``None`` writes no label file. Each parseable box line
    is drawn as a solid rectangle in its class colour on a plain ``background``, so pixel checks see real
    objects. ``layout`` is "roboflow" (``train/images``, data.yaml with ``../train/images``; split "val" is
    written as "valid") or "ultralytics" (``images/train``, data.yaml with ``path: .``).
    """
    from PIL import Image, ImageDraw

    names = list(names or ["a", "b"])
    root.mkdir(parents=True, exist_ok=True)
    splits: list[str] = []
    for rel, lines in images.items():
        split, _, file = rel.partition("/")
        folder = "valid" if (layout == "roboflow" and split == "val") else split
        if folder not in splits:
            splits.append(folder)
        img_dir, lbl_dir = (
            (root / folder / "images", root / folder / "labels")
            if layout == "roboflow"
            else (root / "images" / folder, root / "labels" / folder)
        )
        img_dir.mkdir(parents=True, exist_ok=True)
        lbl_dir.mkdir(parents=True, exist_ok=True)
        im = Image.new("RGB", size, background)
        draw = ImageDraw.Draw(im)
        for line in lines or []:
            parts = line.split()
            try:
                cls, cx, cy, w, h = int(parts[0]), *map(float, parts[1:5])
            except (ValueError, IndexError):
                continue
            x0, y0 = (cx - w / 2) * size[0], (cy - h / 2) * size[1]
            draw.rectangle([x0, y0, x0 + w * size[0] - 1, y0 + h * size[1] - 1], fill=_COLOURS[cls % len(_COLOURS)])
        im.save(img_dir / file, quality=95)
        if lines is not None:
            text = "".join(f"{line}\n" for line in lines)
            (lbl_dir / f"{Path(file).stem}.txt").write_text(text)
    key = {"train": "train", "val": "val", "valid": "val", "test": "test"}
    yaml_lines = [] if layout == "roboflow" else ["path: .\n"]
    for folder in splits:
        where = f"../{folder}/images" if layout == "roboflow" else f"images/{folder}"
        yaml_lines.append(f"{key.get(folder, folder)}: {where}\n")
    yaml_lines.append(f"nc: {len(names)}\nnames: {names!r}\n")
    (root / "data.yaml").write_text("".join(yaml_lines))
    return root


@pytest.fixture
def make_yolo_tree():
    """Factory: ``make_yolo_tree(root, images={"train/a.jpg": ["0 0.5 0.5 0.2 0.2"], "val/b.jpg": []},
    names=["a", "b"], layout="roboflow"|"ultralytics", size=(64, 64)) -> root``; see ``_write_yolo_tree``."""
    return _write_yolo_tree


@pytest.fixture
def tiny_training():
    """``tiny_training(before, after, out, epochs=1)``: the arguments of the smallest `curate train-and-compare`
    the tests run (64 px, batch 8, no worker processes, 100 bootstrap resamples, no plots)."""

    def args(before: Path, after: Path, out: Path, *, epochs: int = 1) -> list[str]:
        return ["train-and-compare", str(before), str(after), "--out", str(out), "--epochs", str(epochs),
                "--imgsz", "64", "--batch", "8", "--workers", "0", "--resamples", "100", "plots=False"]  # fmt: skip

    return args
