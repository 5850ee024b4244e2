"""Image files as the reader (`curate info`) and the audit see them: truncated, with bytes after their end,
oversized, and split folders that hold none. Real files made in tmp_path, mostly from the bundled sample."""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import pytest
from PIL import Image

from curate.audit.checks import image_checks
from curate.audit.checks.base import AuditContext
from curate.io.yolo import load_yolo

REPO = Path(__file__).resolve().parents[2]


def _dataset(root: Path, sample_dir: Path, n: int = 3) -> list[Path]:
    """``n`` real sample photos with their labels in a Roboflow layout; their image paths."""
    (root / "train" / "images").mkdir(parents=True)
    (root / "train" / "labels").mkdir(parents=True)
    shutil.copy(sample_dir / "data.yaml", root / "data.yaml")
    images = sorted((sample_dir / "train" / "images").glob("*.jpg"))[:n]
    for img in images:
        shutil.copy(img, root / "train" / "images" / img.name)
        label = sample_dir / "train" / "labels" / f"{img.stem}.txt"
        shutil.copy(label, root / "train" / "labels" / label.name)
    return [root / "train" / "images" / img.name for img in images]


def _image_findings(root: Path) -> dict[str, list[str]]:
    """The reader's findings on image files (not label lines), by image."""
    found: dict[str, list[str]] = {}
    for f in load_yolo(root).findings:
        if "label_file" not in f.data:
            found.setdefault(f.image, []).append(f.message)
    return found


def _corrupt(root: Path) -> dict[str, object]:
    return {f.image: f for f in image_checks.run(AuditContext(load_yolo(root))) if f.check == "corrupt_image"}


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The real command line in its own process (stderr as a user sees it)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), COLUMNS="200")
    env["CURATE_CACHE_DIR"] = str(cwd / "cache")
    command = [sys.executable, "-m", "curate.app.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


# --------------------------------------------------------------------------------------------------
# Truncated files: `info` says so, from the file's head and tail only
# --------------------------------------------------------------------------------------------------


def test_info_reports_a_truncated_jpeg(tmp_path: Path, sample_dir: Path) -> None:
    root = tmp_path / "ds"
    cut, whole, *_ = _dataset(root, sample_dir)
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    found = _image_findings(root)
    rel = f"train/images/{cut.name}"
    assert list(found) == [rel] and "truncated" in found[rel][0]
    r = _cli("info", str(root), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    listed = r.stdout.split("format findings (")[1]
    assert "truncated" in listed and cut.name[:20] in listed and whole.name[:20] not in listed


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "BMP"])
def test_info_reports_other_truncated_formats(tmp_path: Path, sample_dir: Path, fmt: str) -> None:
    """PNG by its IEND chunk; WebP and BMP by the size their header promises."""
    root = tmp_path / "ds"
    photo = _dataset(root, sample_dir, n=1)[0]
    buf = io.BytesIO()
    Image.open(photo).save(buf, fmt)
    data = buf.getvalue()
    name = f"cut.{fmt.lower()}"
    (root / "train" / "images" / name).write_bytes(data[: len(data) - 2000])
    (root / "train" / "images" / f"whole.{fmt.lower()}").write_bytes(data)
    found = _image_findings(root)
    assert list(found) == [f"train/images/{name}"] and "truncated" in found[f"train/images/{name}"][0]


# --------------------------------------------------------------------------------------------------
# Bytes after the end marker: legal, not truncated, one rule for `info` and the audit
# --------------------------------------------------------------------------------------------------


def _variants(data: bytes) -> dict[str, tuple[bytes, bool]]:
    """Name: (bytes, truncated?) for one real JPEG."""
    return {
        "whole": (data, False),
        "camera_trailer": (data + b"\x00\x00SEFH maker data\x00" * 8, False),
        "zero_padding": (data + b"\x00" * 3000, False),
        "second_jpeg_after": (data + data[:200] + b"\xff\xd9", False),
        "one_byte_short": (data[:-1], True),
        "two_bytes_short": (data[:-2], True),
        "half": (data[: len(data) // 2], True),
    }


def test_bytes_after_the_end_marker_are_not_truncation(tmp_path: Path, sample_dir: Path) -> None:
    root = tmp_path / "ds"
    photo = _dataset(root, sample_dir, n=1)[0]
    data = photo.read_bytes()
    photo.unlink()
    (root / "train" / "labels" / f"{photo.stem}.txt").unlink()
    variants = _variants(data)
    for name, (content, _) in variants.items():
        (root / "train" / "images" / f"{name}.jpg").write_bytes(content)
    reader = _image_findings(root)
    audit = _corrupt(root)
    for name, (_, truncated) in variants.items():
        rel = f"train/images/{name}.jpg"
        assert (audit[rel].score > 0) is truncated, (name, audit[rel].message)
        assert (rel in reader) is truncated, (name, reader.get(rel))  # the reader's rule is the audit's
        if truncated:
            assert reader[rel] == [audit[rel].message]


def test_an_end_marker_before_the_last_scan_is_not_the_end(tmp_path: Path, sample_dir: Path) -> None:
    """A small JPEG holds its EXIF thumbnail's end marker in its last KB: cut inside its own scan, it is truncated."""
    root = tmp_path / "ds"
    _dataset(root, sample_dir, n=1)
    buf = io.BytesIO()
    Image.new("RGB", (40, 40), (200, 30, 30)).save(buf, "JPEG")
    data = buf.getvalue()
    thumbnail = b"\xff\xd8\xff\xdb" + b"\x01" * 40 + b"\xff\xd9"
    app = b"\xff\xe1" + struct.pack(">H", len(thumbnail) + 2) + thumbnail
    data = data[:2] + app + data[2:]
    (root / "train" / "images" / "small.jpg").write_bytes(data)
    (root / "train" / "images" / "small_cut.jpg").write_bytes(data[:-20])
    reader, audit = _image_findings(root), _corrupt(root)
    assert "train/images/small.jpg" not in reader and audit["train/images/small.jpg"].score == 0.0
    assert "truncated" in reader["train/images/small_cut.jpg"][0] and audit["train/images/small_cut.jpg"].score > 0


# --------------------------------------------------------------------------------------------------
# Split folders that hold no images
# --------------------------------------------------------------------------------------------------


def test_an_empty_split_folder_is_a_warning(tmp_path: Path, sample_dir: Path) -> None:
    root = tmp_path / "ds"
    _dataset(root, sample_dir)
    (root / "test" / "images").mkdir(parents=True)
    (root / "valid" / "images").mkdir(parents=True)
    (root / "valid" / "images" / "notes.txt").write_text("not an image")
    ds = load_yolo(root)  # data.yaml lists train, val and test
    assert ds.splits == ["train"]
    empty = [w for w in ds.warnings if "holds no images" in w]
    assert any("test/images" in w for w in empty) and any("valid/images" in w for w in empty)
    (root / "data.yaml").rename(tmp_path / "data.yaml")
    ds = load_yolo(root)  # the folder layout alone
    assert any("test/images" in w and "holds no images" in w for w in ds.warnings)
    r = _cli("info", str(root), cwd=tmp_path)
    assert r.returncode == 0 and "test/images holds no images" in r.stderr


# --------------------------------------------------------------------------------------------------
# Images above PIL's decompression-bomb limit
# --------------------------------------------------------------------------------------------------


def _png_header_says(path: Path, width: int, height: int) -> None:
    """A small real PNG whose header claims ``width × height`` (no pixels held in memory: the reader reads
    headers only)."""
    buf = io.BytesIO()
    Image.new("1", (8, 8)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))


def test_an_oversized_image_is_a_finding_not_a_pil_warning(tmp_path: Path, sample_dir: Path) -> None:
    root = tmp_path / "ds"
    photo = _dataset(root, sample_dir, n=1)[0]
    Image.new("1", (12000, 9000)).save(root / "train" / "images" / "large.png")  # 13.5 MB in memory
    _png_header_says(root / "train" / "images" / "refused.png", 20000, 10000)
    jpeg = bytearray(photo.read_bytes())  # a plain JPEG (size read without PIL) whose frame says 12000×9000
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5 : sof + 9] = struct.pack(">HH", 9000, 12000)
    (root / "train" / "images" / "large_jpeg.jpg").write_bytes(bytes(jpeg))
    found = _image_findings(root)
    assert "12,000×9,000" in found["train/images/large.png"][0] and "PIL warns" in found["train/images/large.png"][0]
    assert "12,000×9,000" in found["train/images/large_jpeg.jpg"][0]
    assert "refuses" in found["train/images/refused.png"][0]
    r = _cli("info", str(root), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "large.png" in r.stdout and "12,000×9,000" in r.stdout
    assert "DecompressionBomb" not in r.stderr and "warnings.warn" not in r.stderr


def test_the_audit_checks_an_oversized_image_quietly(tmp_path: Path, sample_dir: Path) -> None:
    root = tmp_path / "ds"
    _dataset(root, sample_dir, n=1)
    Image.new("1", (12000, 9000)).save(root / "train" / "images" / "large.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # every warning shown once, as outside pytest
        found = _corrupt(root)
    assert found["train/images/large.png"].score == 0.0  # decoded and hashed as any other image
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


def test_a_split_folder_data_yaml_does_not_list_is_a_warning(make_yolo_tree, tmp_path: Path) -> None:
    """potholes-road: data.yaml lists train and val, the export has test/ with 67 images: read silently as nothing."""
    root = make_yolo_tree(
        tmp_path / "holes", {"train/a.jpg": ["0 0.5 0.5 0.2 0.2"], "test/b.jpg": ["0 0.5 0.5 0.2 0.2"]}
    )
    (root / "data.yaml").write_text("train: train/images\nnames: [a, b]\n")
    ds = load_yolo(root)
    assert [r.split for r in ds.images] == ["train"]
    assert any("test/images holds 1 images that data.yaml does not list" in w for w in ds.warnings), ds.warnings
