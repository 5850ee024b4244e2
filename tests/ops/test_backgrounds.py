"""curate backgrounds: real U²-Net-p weights on the bundled sample, real files, the real CLI."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from curate.app.cli import app
from curate.core import defaults
from curate.io.yolo import load_yolo
from curate.ops import backgrounds as bg
from curate.ops.backgrounds.writer import fit_text
from curate.runtime import env

pytestmark = pytest.mark.skipif(env.u2netp_path() is None, reason="U²-Net-p weights not fetched (make models)")


def tree_hash(root: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def written(sample_dir: Path, tmp_path_factory) -> tuple[Path, str, str]:
    """One CLI run on the sample (fraction 0.05 of 60 train images = 3, plus 3 instances)."""
    before = tree_hash(sample_dir)
    out = tmp_path_factory.mktemp("bg") / "out"
    res = CliRunner().invoke(
        app,
        ["backgrounds", str(sample_dir), "--fraction", "0.05", "--instances", "3", "--out", str(out), "--seed", "1"],
    )
    assert res.exit_code == 0, res.output
    return out, before, tree_hash(sample_dir)


def test_count_labels_and_layout(written, sample_dir):
    out, _, _ = written
    ds_in = load_yolo(sample_dir)
    ds_out = load_yolo(out)
    n_train = len(ds_in.split("train"))
    info = json.loads((out / "backgrounds.json").read_text())
    bgs = [g for g in info["generated"] if g["kind"] == "background"]
    assert len(bgs) == round(0.05 * n_train) == 3
    assert len(ds_out.split("train")) == n_train + 3 + 3
    for split in ("val", "test"):  # other splits untouched
        assert len(ds_out.split(split)) == len(ds_in.split(split))
    for g in bgs:
        assert g["file"].startswith("bg_") and g["file"].endswith(".jpg")
        label = out / "labels" / "train" / (Path(g["file"]).stem + ".txt")
        assert label.read_text() == ""  # a background: empty label file
        img = cv2.imread(str(out / "images" / "train" / g["file"]))
        assert img.shape[:2] == (640, 640)  # the dataset's typical size
    assert (out / "backgrounds_contact.png").stat().st_size > 1000


def test_sources_are_train_only(written):
    out, _, _ = written
    info = json.loads((out / "backgrounds.json").read_text())
    for g in info["generated"]:
        assert g["source"].startswith("train/"), g
        assert g["similarity"] < 0.90


def test_residual_below_threshold_on_written_files(written):
    """Re-run the foreground model on the JPEGs as written: no salient object left."""
    out, _, _ = written
    info = json.loads((out / "backgrounds.json").read_text())
    for g in info["generated"]:
        if g["kind"] != "background":
            continue
        assert g["residual"] <= defaults.BACKGROUND_MAX_RESIDUAL
        img = cv2.imread(str(out / "images" / "train" / g["file"]))
        assert bg.residual_score(img) <= 2 * defaults.BACKGROUND_MAX_RESIDUAL


def test_input_unchanged(written):
    _, before, after = written
    assert before == after


def test_residual_direction():
    """An object on a plain table scores higher than the plain table alone."""
    table = np.full((320, 320, 3), (120, 150, 170), np.uint8)
    table += np.random.default_rng(0).integers(0, 12, table.shape, dtype=np.uint8)
    with_object = table.copy()
    cv2.circle(with_object, (160, 170), 70, (30, 40, 220), -1)
    assert bg.residual_score(with_object) > bg.residual_score(table) + 0.05


def test_instance_boxes_on_pasted_object(sample_dir):
    ds = load_yolo(sample_dir)
    items, _ = bg.make_instances(ds, 3, seed=0, canvases=None, progress=False)  # plain canvases only
    assert len(items) == 3
    for g in items:
        (lab,) = g.labels
        x1, y1, x2, y2 = lab.xyxy
        assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1
        img = g.image.astype(int)
        h, w = img.shape[:2]
        X1, Y1, X2, Y2 = round(x1 * w), round(y1 * h), round(x2 * w), round(y2 * h)
        canvas = img[0, 0] if not (X1 == 0 and Y1 == 0) else img[-1, -1]
        differs = np.abs(img - canvas).sum(axis=2) > 30
        outside = differs.copy()
        outside[Y1:Y2, X1:X2] = False
        assert outside.sum() == 0  # nothing pasted outside the box
        inside = differs[Y1:Y2, X1:X2]  # the object touches all four sides of its box
        assert inside[:2].any() and inside[-2:].any() and inside[:, :2].any() and inside[:, -2:].any()
        assert inside.mean() > defaults.INSTANCE_MIN_FILL * 0.5


def test_warning_above_ten_percent(sample_dir):
    ds = load_yolo(sample_dir)
    small = replace(ds, images=ds.split("train")[:8] + ds.split("val"))
    result = bg.backgrounds(small, bg.BackgroundsOptions(fraction=0.25), progress=False)
    assert any("0–10 %" in w for w in result.warnings)
    assert bg.backgrounds(small, bg.BackgroundsOptions(fraction=0.0), progress=False).warnings == []


def test_warning_when_train_is_mostly_background(sample_dir):
    """The tour's 6-class rebalance leaves 72 % of the images without a box: one line says the share."""
    ds = load_yolo(sample_dir)
    train = [r for r in ds.split("train") if r.labels][:10]
    emptied = [replace(r, labels=[]) if i < 6 else r for i, r in enumerate(train)]  # 6 of 10: 60 %
    result = bg.backgrounds(
        replace(ds, images=emptied + ds.split("val")), bg.BackgroundsOptions(fraction=0.0), progress=False
    )
    assert result.warnings == [
        "train is already 60 % background images (6 of 10 have no box): more backgrounds rarely help and can lower "
        "recall"
    ]
    half = [replace(r, labels=[]) if i < 5 else r for i, r in enumerate(train)]  # 50 %: not "mostly"
    assert (
        bg.backgrounds(
            replace(ds, images=half + ds.split("val")), bg.BackgroundsOptions(fraction=0.0), progress=False
        ).warnings
        == []
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fraction", "1.5"], "--fraction: Input should be less than or equal to 1 (got 1.5)"),
        (["--instances", "-2"], "--instances: Input should be greater than or equal to 0 (got -2)"),
    ],
)
def test_bad_options_one_line(sample_dir, tmp_path, args, message):
    res = CliRunner().invoke(app, ["backgrounds", str(sample_dir), "--out", str(tmp_path / "o"), *args])
    assert res.exit_code == 1
    assert message in res.output and "Traceback" not in res.output


@pytest.mark.parametrize("inside", ["train", "."])
def test_refuses_to_write_over_input(sample_dir, inside):
    before = tree_hash(sample_dir)
    res = CliRunner().invoke(app, ["backgrounds", str(sample_dir), "--out", str(sample_dir / inside / "bg_out")])
    assert res.exit_code == 1 and "refusing to write" in res.output
    assert tree_hash(sample_dir) == before


def test_held_out_thumbnails_of_images_under_4_px(tmp_path: Path) -> None:
    """A 1×1 val image (legal) made `curate backgrounds` raise cv2.error in OpenCV's 1/4 reduced decode."""
    from curate.core.dataset import ImageRecord

    records = []
    for name, (w, h) in (("one.png", (1, 1)), ("two.png", (3, 2)), ("big.png", (64, 48))):
        cv2.imwrite(str(tmp_path / name), np.full((h, w, 3), 120, np.uint8))
        records.append(ImageRecord("val", tmp_path / name, name))
    held = bg.HeldOut(records)
    assert held.matrix.shape == (3, 32 * 32)


def test_contact_sheet_is_a_grid_with_whole_captions(written):
    """6 images on one row of 6, not a 10-column strip with cut captions; each caption fits its thumbnail."""
    from PIL import Image

    out, _, _ = written
    sheet = Image.open(out / "backgrounds_contact.png")
    assert sheet.size[0] == 6 * 160 and sheet.size[1] >= 160 + 24
    long = "WhatsApp-Image-2024-03-26-at-3-33-43-PM-5-_jpeg"
    from PIL import ImageDraw, ImageFont

    draw = ImageDraw.Draw(Image.new("RGB", (10, 10)))
    font = ImageFont.load_default()
    cut = fit_text(draw, long, font, 154)
    assert cut.endswith("…") and draw.textlength(cut, font=font) <= 154


@pytest.mark.parametrize(
    ("patch", "is_blank"),
    [
        (np.full((64, 64, 3), 250, np.uint8), True),  # white wall
        (np.full((64, 64, 3), 10, np.uint8), True),  # black
        (np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8), False),  # texture
    ],
)
def test_blank_crops_are_not_backgrounds(patch: np.ndarray, is_blank: bool) -> None:
    assert bg.blank(patch) is is_blank
