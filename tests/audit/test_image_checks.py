"""Image-level findings on generated images: one test per kind, plus direction tests for pairing."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from curate.audit.checks import dataset_stats, image_checks, near_duplicate
from curate.audit.checks.base import AuditContext
from curate.audit.shared import ImageSignatures
from curate.io.yolo import load_yolo
from curate.vision.hashing import image_signatures, near_duplicate_groups, near_duplicate_pairs


def _photo(seed: int, size: int = 320) -> Image.Image:
    """A 'photo': smooth random blobs, different for every seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    img = np.zeros((size, size, 3))
    for _ in range(6):
        cx, cy, r = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0.05, 0.3)
        img += np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / r**2)[..., None] * rng.uniform(0, 255, 3)
    return Image.fromarray(np.clip(img / img.max() * 255, 0, 255).astype(np.uint8))


def _save(img: Image.Image, path: Path, fmt: str = "JPEG", **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, fmt, **kw)
    label = path.parent.parent / "labels" / (path.stem + ".txt")
    label.parent.mkdir(parents=True, exist_ok=True)
    label.write_text("0 0.5 0.5 0.2 0.2\n")
    return path


def _dataset(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "data.yaml").write_text("train: train/images\nval: valid/images\nnames: [thing]\n")
    return root


def _ctx(root: Path) -> AuditContext:
    return AuditContext(load_yolo(root))


def _by(findings, check: str) -> dict[str, object]:
    return {f.image: f for f in findings if f.check == check}


def test_corrupt_kinds(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "ds")
    _save(_photo(1), root / "train/images/ok.jpg")
    buf = io.BytesIO()
    _photo(2).save(buf, "JPEG")
    (root / "train/images/trunc.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    _save(_photo(3), root / "train/images/png_named.jpg", fmt="PNG")
    (root / "train/images/empty.jpg").write_bytes(b"")
    (root / "valid/images").mkdir(parents=True)
    _save(_photo(4), root / "valid/images/v.jpg")
    found = _by(image_checks.run(_ctx(root)), "corrupt_image")
    assert found["train/images/ok.jpg"].score == 0.0
    assert found["train/images/trunc.jpg"].score >= 0.5 and "truncated" in found["train/images/trunc.jpg"].message
    assert found["train/images/png_named.jpg"].score >= 0.5 and "PNG" in found["train/images/png_named.jpg"].message
    assert found["train/images/empty.jpg"].score == 1.0 and "zero-byte" in found["train/images/empty.jpg"].message


def test_same_bytes_under_a_right_and_a_wrong_name(tmp_path: Path) -> None:
    """The signature cache is keyed by content: a PNG named .png must not inherit its .jpg twin's status."""
    root = _dataset(tmp_path / "ds")
    _save(_photo(5), root / "train/images/a.png", fmt="PNG")
    (root / "train/images/b.jpg").write_bytes((root / "train/images/a.png").read_bytes())
    (root / "train/labels/b.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    _save(_photo(6), root / "valid/images/v.jpg")
    for _ in range(2):  # cold, then from the cache in both orders of lookup
        found = _by(image_checks.run(_ctx(root)), "corrupt_image")
        assert found["train/images/a.png"].score == 0.0
        assert found["train/images/b.jpg"].score >= 0.5 and "named .jpg" in found["train/images/b.jpg"].message


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp"])
def test_exif_rotated(tmp_path: Path, suffix: str) -> None:
    """OpenCV and Ultralytics turn JPEG, PNG and WebP photos by their EXIF orientation; PNG and WebP
    name their EXIF block differently from JPEG (``eXIf``, ``EXIF``)."""
    root = _dataset(tmp_path / "ds")
    exif = Image.Exif()
    exif[0x0112] = 6
    _save(
        _photo(1),
        root / f"train/images/rotated{suffix}",
        {".jpg": "JPEG", ".png": "PNG", ".webp": "WEBP"}[suffix],
        exif=exif,
    )
    _save(_photo(2), root / "valid/images/plain.jpg")
    found = _by(image_checks.run(_ctx(root)), "exif_rotated")
    assert (
        found[f"train/images/rotated{suffix}"].score >= 0.5 and "90°" in found[f"train/images/rotated{suffix}"].message
    )
    assert found["valid/images/plain.jpg"].score == 0.0


def test_recompressed_cropped_brightened_copy_in_another_split_is_leakage(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "ds")
    src = _photo(7, 400)
    _save(src, root / "train/images/original.jpg", quality=95)
    w, h = src.size
    copy = src.crop((int(0.03 * w), int(0.02 * h), int(0.97 * w), int(0.98 * h))).resize((300, 300))
    copy = Image.fromarray(np.clip(np.asarray(copy, dtype=np.float32) * 1.15 + 12, 0, 255).astype(np.uint8))
    _save(copy, root / "valid/images/copy.jpg", quality=40)
    for seed in (11, 12, 13):  # unrelated photos: never paired
        _save(_photo(seed, 400), root / f"train/images/other{seed}.jpg")
    findings = near_duplicate.run(_ctx(root))
    leaks = [f for f in findings if f.check == "leakage" and f.score >= 0.5]
    assert len(leaks) == 1
    (leak,) = leaks
    assert leak.image == "valid/images/copy.jpg" and leak.data["partner"] == "train/images/original.jpg"
    assert (
        "original.jpg" in leak.message
        and "copy.jpg" in leak.message
        and "train" in leak.message
        and "val" in leak.message
    )
    flagged = {f.image for f in findings if f.score >= 0.5}
    assert not any("other" in img for img in flagged)


@pytest.mark.parametrize("first, second", [("train", "val"), ("train", "test"), ("val", "test")])
def test_leakage_message_names_the_pair_s_splits(tmp_path: Path, first: str, second: str) -> None:
    """The pair's message said "the test score is inflated" for a train/val pair too."""
    root = tmp_path / "ds"
    root.mkdir()
    (root / "data.yaml").write_text("train: train/images\nval: valid/images\ntest: test/images\nnames: [thing]\n")
    folder = {"train": "train", "val": "valid", "test": "test"}
    _save(_photo(3), root / folder[first] / "images/a.jpg")
    _save(_photo(3).resize((300, 300)), root / folder[second] / "images/b.jpg", quality=60)
    (leak,) = [f for f in near_duplicate.run(_ctx(root)) if f.check == "leakage"]
    assert (leak.split, leak.data["partner_split"]) == (second, first)
    assert leak.message.startswith(f"same photo in {first} and {second}: ")
    assert leak.message.endswith(f"the {second} score is inflated")


def test_exact_copy_in_one_split_is_near_duplicate_and_grouped(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "ds")
    _save(_photo(5), root / "train/images/a.jpg")
    (root / "train/images/b.jpg").write_bytes((root / "train/images/a.jpg").read_bytes())
    (root / "train/labels/b.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    _save(_photo(6), root / "valid/images/c.jpg")
    ds = load_yolo(root)
    f = [x for x in near_duplicate.run(AuditContext(ds)) if x.score >= 0.5]
    assert [(x.check, x.image, x.score, x.data["exact"]) for x in f] == [
        ("near_duplicate", "train/images/b.jpg", 1.0, True)
    ]
    assert near_duplicate_groups(ds, image_signatures(ds, progress=False)) == [
        ["train/images/a.jpg", "train/images/b.jpg"]
    ]


def test_similarity_direction() -> None:
    """The more a copy is changed, the lower its similarity; an unrelated photo is lowest."""
    from curate.core.dataset import ImageRecord
    from curate.vision.hashing import compute_signature

    def sig(img: Image.Image, tmp: Path, name: str):
        p = tmp / f"{name}.jpg"
        img.save(p, "JPEG", quality=90)
        return compute_signature(ImageRecord("train", p, name))

    import tempfile

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        base = _photo(21, 400)
        s0 = sig(base, tmp, "base")
        mild = sig(base.crop((8, 8, 392, 392)), tmp, "mild")
        strong = sig(base.crop((60, 60, 340, 340)), tmp, "strong")
        other = sig(_photo(22, 400), tmp, "other")
        sims = [float(s0.thumb @ s.thumb) for s in (mild, strong, other)]
        assert sims[0] > sims[1] > sims[2]


@pytest.mark.parametrize("threshold", [0.9, 0.5])
def test_bounded_pair_search_finds_every_pair_a_brute_force_finds(threshold: float) -> None:
    """The low-frequency bound must never drop a pair: white-noise thumbnails keep ~94 % of their energy
    outside the 64 low DCT frequencies, so a bound without the rest's term would miss every planted pair.
    Several blocks, so pairs across blocks count too."""
    from curate.vision.hashing import THUMB, Signature

    rng = np.random.default_rng(5)
    n, dim = 600, THUMB * THUMB
    mat = rng.normal(size=(n, dim)).astype(np.float32)
    for a, b in rng.integers(0, n, size=(80, 2)):  # near-copies: correlation 0.85–0.99
        mat[b] = mat[a] + rng.uniform(0.1, 0.6) * rng.normal(size=dim).astype(np.float32)
    mat -= mat.mean(axis=1, keepdims=True)
    mat /= np.linalg.norm(mat, axis=1, keepdims=True)
    mat[7] = 0.0  # a flat image: a zero thumbnail pairs with nothing
    sigs = {f"i{k:04d}": Signature(f"i{k:04d}", f"c{k}", "ok", "", 1, 1, 1, mat[k]) for k in range(n)}
    sim = mat @ mat.T
    brute = {(f"i{i:04d}", f"i{j:04d}") for i, j in zip(*np.nonzero(np.triu(sim, 1) >= threshold))}
    found = near_duplicate_pairs(sigs, threshold=threshold, block=128)
    assert len(brute) > 40
    assert {(p.a, p.b) for p in found} == brute
    assert all(abs(p.similarity - sim[int(p.a[1:]), int(p.b[1:])]) < 1e-5 for p in found)


def test_dataset_notes(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    (root / "data.yaml").parent.mkdir(parents=True)
    (root / "data.yaml").write_text("train: train/images\nval: valid/images\nnames: [common, rare, valonly]\n")
    for i in range(12):
        _save(_photo(100 + i, 64), root / f"train/images/t{i}.jpg")
        (root / f"train/labels/t{i}.txt").write_text(
            "0 0.5 0.5 0.2 0.2\n" * 3 + ("1 0.2 0.2 0.1 0.1\n" if i == 0 else "")
        )
    _save(_photo(200, 64), root / "valid/images/v.jpg")
    (root / "valid/labels/v.txt").write_text("0 0.5 0.5 0.2 0.2\n2 0.3 0.3 0.1 0.1\n")
    _save(_photo(201, 256), root / "train/images/big.jpg")  # a size outlier
    (root / "train/labels/big.txt").write_text("")  # and a background image
    found = dataset_stats.run(AuditContext(load_yolo(root)))
    msgs = [(f.split, f.image, round(f.score, 2), f.message) for f in found if f.score >= 0.5]
    assert any("imbalance 36:1" in m for *_, m in msgs)
    assert any("'rare' has only 1 instance(s) in train" in m for *_, m in msgs)
    assert any("'rare' is absent from val" in m for *_, m in msgs)
    assert any("'valonly' has no train instances" in m for *_, m in msgs)
    assert any(img == "train/images/big.jpg" and "256×256" in m for _, img, _, m in msgs)
    share = [f for f in found if f.data.get("kind") == "background_share" and f.split == "train"]
    assert share and share[0].score == 0.0  # 1 of 13 = 7.7 %: within the advice


def test_real_sample_has_its_planted_cross_split_pairs(sample_dir: Path) -> None:
    """The bundled sample keeps near-duplicate photos across splits (scripts/make_sample.py)."""
    ds = load_yolo(sample_dir)
    leaks = [f for f in near_duplicate.run(AuditContext(ds)) if f.check == "leakage" and f.score >= 0.5]
    assert len(leaks) >= 3
    pairs = near_duplicate_pairs(image_signatures(ds, progress=False))
    assert all(0.0 < p.similarity <= 1.0 for p in pairs)


def test_one_file_listed_in_two_splits_is_leakage(make_yolo_tree, tmp_path: Path) -> None:
    """A file listed under train and val is one signature (keyed by path), so it never paired with itself
    and the leak went unreported."""
    root = make_yolo_tree(
        tmp_path / "ds",
        {"train/a.jpg": ["0 0.5 0.5 0.2 0.2"], "train/b.jpg": ["1 0.3 0.3 0.2 0.2"]},
        layout="ultralytics",
    )
    (root / "data.yaml").write_text("train: images/train\nval: images/train\nnames: [a, b]\n")
    leaks = [f for f in near_duplicate.run(AuditContext(load_yolo(root))) if f.check == "leakage"]
    assert sorted((f.split, f.image, f.score) for f in leaks) == [
        ("val", "images/train/a.jpg", 1.0),
        ("val", "images/train/b.jpg", 1.0),
    ]
    assert all("listed in train and val" in f.message and f.data["partner_split"] == "train" for f in leaks)


def test_images_smaller_than_the_reduced_decode_are_read(tmp_path: Path, monkeypatch) -> None:
    """A 1×1 or 2×3 PNG is a legal image: OpenCV's 1/4 decode of it raised cv2.error (a traceback in audit,
    rebalance and backgrounds) instead of returning None."""
    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path / "cache"))
    root = _dataset(tmp_path / "ds")
    for name, size in (("one.png", (1, 1)), ("two.png", (2, 3))):
        _save(_photo(4, size=8).resize(size), root / "train/images" / name, fmt="PNG")
    sigs = image_signatures(load_yolo(root), progress=False)
    assert {(s.rel, s.status, s.width, s.height) for s in sigs.values()} == {
        ("train/images/one.png", "ok", 1, 1),
        ("train/images/two.png", "ok", 2, 3),
    }
    assert all(s.thumb is not None and np.isfinite(s.thumb).all() for s in sigs.values())


def test_signatures_come_back_from_the_cache_store_as_computed(tmp_path: Path, monkeypatch) -> None:
    """Sound and truncated images alike: the second pass decodes nothing and returns the same signatures;
    a damaged store file is a miss (recomputed), never a traceback."""
    from curate.vision import hashing

    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path / "cache"))
    root = _dataset(tmp_path / "ds")
    for seed in range(3):
        _save(_photo(seed), root / f"train/images/p{seed}.jpg")
    whole = (root / "train/images/p0.jpg").read_bytes()
    (root / "train/images/cut.jpg").write_bytes(whole[:-2])  # no end marker
    (root / "train/images/half.jpg").write_bytes(whole[: len(whole) // 2])  # truncated, not decodable
    (root / "train/labels/half.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (root / "train/labels/cut.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    first = image_signatures(load_yolo(root), progress=False)
    assert first["train/images/cut.jpg"].status == first["train/images/half.jpg"].status == "truncated"
    decoded = []
    monkeypatch.setattr(hashing, "_thumb", lambda *a, **k: decoded.append(1) or (None, (0, 0)))
    again = image_signatures(load_yolo(root), progress=False)
    assert decoded == []
    for rel, s in first.items():
        t = again[rel]
        assert (t.status, t.detail, t.width, t.height, t.orientation, t.content) == (
            s.status,
            s.detail,
            s.width,
            s.height,
            s.orientation,
            s.content,
        )
        assert (t.thumb is None) == (s.thumb is None)
        if s.thumb is not None:
            np.testing.assert_array_equal(t.thumb, s.thumb)
    monkeypatch.undo()
    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path / "cache2"))
    (tmp_path / "cache2").mkdir()
    (tmp_path / "cache2" / "signatures.sqlite").write_bytes(b"this is not a database" * 100)
    third = image_signatures(load_yolo(root), progress=False)
    assert {r: s.status for r, s in third.items()} == {r: s.status for r, s in first.items()}


def test_signatures_hashed_in_the_background_equal_those_hashed_here(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path / "cache"))
    root = _dataset(tmp_path / "ds")
    for k in range(6):
        _save(_photo(k), root / f"train/images/p{k}.jpg")
    (root / "train/images/trunc.jpg").write_bytes((root / "train/images/p0.jpg").read_bytes()[:500])
    ds = load_yolo(root)
    ctx = AuditContext(ds)
    shared = ctx.use(ImageSignatures)
    shared.start(ctx)
    assert shared._job is not None
    got = image_checks.signatures(ctx)
    assert shared._job is None and image_checks.signatures(ctx) is got  # collected once
    here = image_signatures(ds, progress=False)
    assert sorted(got) == sorted(here)
    assert all(
        got[r].content == here[r].content
        and got[r].status == here[r].status
        and np.array_equal(got[r].thumb, here[r].thumb)
        for r in here
        if here[r].thumb is not None
    )


def test_label_only_checks_run_before_the_images_are_needed() -> None:
    """The audit hashes in the background while these run (:attr:`Check.order`); they need no image."""
    from curate.audit.checks import registered

    order = [c.module for c in registered()]
    first = order.index("image_checks")
    assert {"dataset_stats", "duplicate", "ambiguous"} <= set(order[:first])
    assert not {"near_duplicate", "missing", "grouped"} & set(order[:first])
    assert not any(c.needs for c in registered()[:first])
