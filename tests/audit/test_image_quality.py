"""Image-quality checks (dark, overexposed, blurry, low_information, odd_size): direction tests on real photos
of the bundled sample changed one way, and the sample itself left unflagged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from curate.audit.checks import image_quality
from curate.audit.checks.base import AuditContext
from curate.io.yolo import load_yolo
from curate.vision.hashing import image_signatures
from curate.vision.quality import QUALITY_STATS

SAMPLE_PHOTO = "train/images"


def _photo(sample_dir: Path, k: int = 0) -> Image.Image:
    """A real photo of the bundled sample (640×640 food)."""
    files = sorted((sample_dir / SAMPLE_PHOTO).glob("*.jpg"))
    return Image.open(files[k]).convert("RGB")


def _scores(tmp_path: Path, images: dict[str, Image.Image]) -> dict[tuple[str, str], object]:
    """(stem, check) → finding, for a dataset of these images."""
    root = tmp_path / "ds"
    (root / "train/images").mkdir(parents=True)
    (root / "train/labels").mkdir(parents=True)
    (root / "data.yaml").write_text("train: train/images\nval: train/images\nnames: [thing]\n")
    for stem, img in images.items():
        img.save(root / f"train/images/{stem}.jpg", quality=92)
        (root / f"train/labels/{stem}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    found = image_quality.run(AuditContext(load_yolo(root)))
    return {(Path(f.image).stem, f.check): f for f in found}


def test_a_darker_copy_scores_worse_and_a_very_dark_one_is_flagged(tmp_path: Path, sample_dir: Path) -> None:
    photo = np.asarray(_photo(sample_dir), np.float32)
    images = {
        name: Image.fromarray((photo * f).astype(np.uint8)) for name, f in (("orig", 1.0), ("dim", 0.5), ("night", 0.2))
    }
    s = _scores(tmp_path, images)
    assert s["orig", "dark"].score < s["dim", "dark"].score < s["night", "dark"].score
    assert s["orig", "dark"].score < 0.5 <= s["night", "dark"].score
    assert "brightest 1 % of pixels" in s["night", "dark"].message


def test_a_washed_out_copy_is_overexposed(tmp_path: Path, sample_dir: Path) -> None:
    photo = np.asarray(_photo(sample_dir), np.float32)
    washed = Image.fromarray((245 + photo * 10 / 255).astype(np.uint8))  # every pixel near white
    s = _scores(tmp_path, {"orig": _photo(sample_dir), "washed": washed})
    assert s["orig", "overexposed"].score < 0.5 <= s["washed", "overexposed"].score
    assert s["washed", "dark"].score < s["orig", "dark"].score


def test_a_blurred_copy_scores_worse_than_the_sharp_one(tmp_path: Path, sample_dir: Path) -> None:
    photo = _photo(sample_dir, 3)
    images = {
        "sharp": photo,
        "soft": photo.filter(ImageFilter.GaussianBlur(3)),
        "smeared": photo.filter(ImageFilter.GaussianBlur(12)),
    }
    s = _scores(tmp_path, images)
    assert s["sharp", "blurry"].score < s["soft", "blurry"].score < s["smeared", "blurry"].score
    assert s["sharp", "blurry"].score < 0.5 <= s["smeared", "blurry"].score
    assert s["smeared", "low_information"].score < 0.5  # blurred, not blank: it is listed as blurry only


def test_a_flat_image_is_low_information_not_blurry(tmp_path: Path, sample_dir: Path) -> None:
    flat = Image.new("RGB", (640, 640), (128, 120, 110))
    s = _scores(tmp_path, {"orig": _photo(sample_dir), "flat": flat})
    assert s["orig", "low_information"].score < 0.5 <= s["flat", "low_information"].score
    assert s["flat", "blurry"].score == 0.0 and "nearly blank" in s["flat", "blurry"].message


def test_odd_aspect_ratio_tiny_and_outlying_sizes(tmp_path: Path, sample_dir: Path) -> None:
    photo = _photo(sample_dir)
    images = {f"n{k}": _photo(sample_dir, k) for k in range(24)}  # the dataset's usual size: 640×640
    images |= {
        "strip": photo.resize((640, 120)),
        "tiny": photo.resize((24, 24)),
        "small": photo.resize((200, 200)),
        "half": photo.resize((480, 480)),
    }
    s = _scores(tmp_path, images)
    assert s["strip", "odd_size"].score >= 0.5 and "aspect ratio 1:5.3" in s["strip", "odd_size"].message
    assert s["tiny", "odd_size"].score >= 0.5
    assert s["small", "odd_size"].score >= 0.5  # √area 200 against 640: over 2× off the median
    assert s["half", "odd_size"].score < 0.5  # 480 px: a usual resize, not odd
    assert all(s[f"n{k}", "odd_size"].score < 0.5 for k in range(24))


def test_the_bundled_sample_is_not_flagged(sample_dir: Path) -> None:
    found = image_quality.run(AuditContext(load_yolo(sample_dir)))
    assert {f.check for f in found} == set(image_quality.NAMES)
    assert len(found) == 5 * 80
    flagged = [f"{f.check} {f.image}: {f.message}" for f in found if f.score >= 0.5]
    assert flagged == []


def test_quality_statistics_come_back_from_the_cache(tmp_path: Path, sample_dir: Path, monkeypatch) -> None:
    """Every signature of the sample is read back, none decoded again: one of its 80 thumbnails' first byte is
    ``{``, which once read as the JSON form and missed the cache every time."""
    from curate.vision import hashing

    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path / "cache"))
    ds = load_yolo(sample_dir)
    first = image_signatures(ds, progress=False)
    monkeypatch.setattr(hashing, "_thumb", lambda *a, **k: (_ for _ in ()).throw(AssertionError("decoded again")))
    again = image_signatures(ds, progress=False)
    for rel, sig in first.items():
        assert set(sig.quality) == set(QUALITY_STATS)
        assert again[rel].quality == sig.quality
