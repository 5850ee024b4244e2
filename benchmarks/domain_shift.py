"""Proxy domains built from a pool dataset: a transformed copy whose labels stay exactly valid.

    python benchmarks/domain_shift.py --dataset ../shared/datasets/bccd-blood-cells --transform gray \\
        --out /work/s25/domains
    # writes /work/s25/domains/bccd-blood-cells-gray/ (data.yaml, <split>/images, <split>/labels, DOMAIN.md)

Why: issue #22's targets are to hold on datasets of domains the pool does not have (grayscale X-rays and thermal
images, microscopy without stain, drone and satellite views with small objects in large images, dark CCTV frames),
and every pool dataset is an RGB photo of 416–640 px. Changing the pixels (and, for ``mosaic``, the geometry) of a
pool dataset by a known rule keeps its labels exactly right, so ``label_noise.py`` can plant and score errors on it
as on the original, and the difference is the domain's alone.

- ``gray``: each image converted to luminance and written back as 3 equal channels (X-ray, thermal, unstained
  microscopy). Same file names, label files copied byte for byte: the same seed plants the same errors.
- ``mosaic``: per split (never across splits), the images in a seeded shuffle are tiled 2 × 2 into one image of
  twice the side, and each label line is moved into its tile (a box's centre to ``(c + col) / 2``, its size halved;
  a polygon's every point). 4× the boxes an image, each half as large relative to the image (drone, aerial). Each
  image is first put upright (EXIF) and resized to the split's most common size, which keeps normalized labels
  exact; a last group of fewer than 4 is filled with plain grey tiles. ``sources.csv`` lists, for each output
  label line, the input image and line it came from.
- ``dark``: ``gain · x^gamma`` (x in [0, 1]) plus Gaussian sensor noise, written as JPEG at quality 40 (CCTV at
  night). Same file stems, label files copied byte for byte.

The input is only read; the output is a new folder (refused if it exists or lies inside the input).
"""

from __future__ import annotations

import argparse
import csv
import random
import shutil
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curate.core.dataset import Dataset, ImageRecord  # noqa: E402
from curate.io.yolo import DatasetError, load_yolo  # noqa: E402

TRANSFORMS = ("gray", "mosaic", "dark")
DARK_GAMMA = 2.2  # mid-tones fall most: a 0.5 grey becomes 0.22 before the gain
DARK_GAIN = 0.45  # a white becomes ~115/255: the frame's brightest parts look like a dim scene's
DARK_NOISE = 6.0  # Gaussian noise σ in 0–255 grey levels, added after the gain (sensor noise at high ISO)
DARK_QUALITY = 40  # JPEG quality: a low-bitrate CCTV stream's blocks
KEEP_QUALITY = 95  # gray/mosaic: re-encoded near-losslessly, so the change is the transform's alone
FILL_GREY = 114  # a missing tile's value (Ultralytics' letterbox grey)


class DomainError(Exception):
    """One-line reason the copy cannot be made (bad input, an output that would overwrite something)."""


# --- label lines -------------------------------------------------------------------------------------


def _fmt(v: float) -> str:
    return f"{v:.6f}".rstrip("0").rstrip(".") if v else "0"


def move_line(line: str, col: int, row: int) -> str:
    """A YOLO label line moved into tile (``col``, ``row``) of a 2 × 2 mosaic: a box (class cx cy w h) has its
    centre mapped to ``(c + tile) / 2`` and its size halved; a polygon (class x1 y1 x2 y2 ...) every point mapped.
    The class token is kept as written."""
    parts = line.split()
    try:
        values = [float(p) for p in parts[1:]]
    except ValueError:
        raise DomainError(f"not a YOLO label line (a non-number): {line!r}") from None
    if len(values) == 4:
        cx, cy, w, h = values
        moved = [(cx + col) / 2, (cy + row) / 2, w / 2, h / 2]
    elif len(values) >= 6 and len(values) % 2 == 0:
        moved = [(v + (col if i % 2 == 0 else row)) / 2 for i, v in enumerate(values)]
    else:
        raise DomainError(f"not a YOLO box or polygon line ({len(values)} numbers after the class): {line!r}")
    return " ".join([parts[0], *map(_fmt, moved)])


def label_lines(rec: ImageRecord) -> list[tuple[int, str]]:
    """The image's label lines as written, with their 1-based line numbers (blank lines are no labels)."""
    if rec.label_path is None or not rec.label_path.exists():
        return []
    text = rec.label_path.read_text(encoding="utf-8-sig")
    return [(i, ln.strip()) for i, ln in enumerate(text.splitlines(), 1) if ln.strip()]


# --- pixels ------------------------------------------------------------------------------------------


def upright_rgb(path: Path) -> Image.Image:
    """The image as its labels mean it: EXIF orientation applied (as Ultralytics reads it), RGB."""
    with Image.open(path) as im:
        return ImageOps.exif_transpose(im).convert("RGB")


def to_gray(im: Image.Image) -> Image.Image:
    return im.convert("L").convert("RGB")


def to_dark(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    x = np.asarray(im, dtype=np.float32) / 255.0
    y = DARK_GAIN * np.power(x, DARK_GAMMA) * 255.0 + rng.normal(0.0, DARK_NOISE, size=x.shape)
    return Image.fromarray(np.clip(np.rint(y), 0, 255).astype(np.uint8))


# --- writing -----------------------------------------------------------------------------------------


def _split_folder(split: str) -> str:
    return {"val": "valid"}.get(split, split)


def _write_yaml(out: Path, dataset: Dataset, splits: list[str], note: str) -> None:
    import yaml

    cfg: dict = {"path": "."}
    for split in splits:
        cfg[split] = f"{_split_folder(split)}/images"
    cfg["nc"] = len(dataset.names)
    cfg["names"] = list(dataset.names)
    (out / "data.yaml").write_text(f"# {note}\n" + yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))


def _prepare_out(source: Path, out_root: Path, name: str) -> Path:
    out = (out_root / name).resolve()
    src = source.resolve()
    src_dir = src.parent if src.is_file() else src
    if out == src_dir or src_dir in out.parents:
        raise DomainError(f"{out}: inside the input {src_dir}; write the copy elsewhere")
    if out.exists():
        raise DomainError(f"{out}: already exists; remove it or choose another --out")
    return out


def per_image(dataset: Dataset, out: Path, transform: str, seed: int) -> int:
    """gray/dark: each image transformed under its own name (dark: as .jpg) and its label file copied as is."""
    rng = np.random.default_rng(seed)
    n = 0
    for rec in dataset.images:
        folder = out / _split_folder(rec.split)
        (folder / "images").mkdir(parents=True, exist_ok=True)
        (folder / "labels").mkdir(parents=True, exist_ok=True)
        im = upright_rgb(rec.path)
        if transform == "gray":
            target = folder / "images" / rec.path.name
            to_gray(im).save(target, quality=KEEP_QUALITY)
        else:
            target = folder / "images" / f"{rec.path.stem}.jpg"
            if target.exists():  # a.png and a.jpg in one split would both become a.jpg, one label file lost
                raise DomainError(f"{rec.path}: another image of {rec.split} has the stem {rec.path.stem!r}")
            to_dark(im, rng).save(target, quality=DARK_QUALITY)
        if rec.label_path is not None and rec.label_path.exists():
            shutil.copyfile(rec.label_path, folder / "labels" / f"{rec.path.stem}.txt")
        n += 1
    return n


def mosaic(dataset: Dataset, out: Path, seed: int) -> int:
    """2 × 2 mosaics per split; ``sources.csv`` maps each output line back to its input image and line."""
    rows: list[list] = []
    n = 0
    for split in dataset.splits:
        recs = sorted(dataset.split(split), key=lambda r: r.rel)
        random.Random(f"{seed}-{split}").shuffle(recs)
        tw, th = Counter(r.size for r in recs).most_common(1)[0][0]
        folder = out / _split_folder(split)
        (folder / "images").mkdir(parents=True, exist_ok=True)
        (folder / "labels").mkdir(parents=True, exist_ok=True)
        for g in range(0, len(recs), 4):
            name = f"mosaic_{split}_{g // 4:05d}"
            canvas = Image.new("RGB", (2 * tw, 2 * th), (FILL_GREY,) * 3)
            lines: list[str] = []
            for k, rec in enumerate(recs[g : g + 4]):
                col, row = k % 2, k // 2
                canvas.paste(upright_rgb(rec.path).resize((tw, th), Image.BILINEAR), (col * tw, row * th))
                for line_no, text in label_lines(rec):
                    try:
                        lines.append(move_line(text, col, row))
                    except DomainError as exc:
                        raise DomainError(f"{rec.label_path}:{line_no}: {exc}") from None
                    rows.append([f"{_split_folder(split)}/images/{name}.jpg", len(lines), rec.rel, line_no, col, row])
            canvas.save(folder / "images" / f"{name}.jpg", quality=KEEP_QUALITY)
            (folder / "labels" / f"{name}.txt").write_text("".join(f"{ln}\n" for ln in lines))
            n += 1
    with (out / "sources.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", "line", "source_image", "source_line", "col", "row"])
        writer.writerows(rows)
    return n


def build(source: Path, out_root: Path, transform: str, *, seed: int = 0) -> Path:
    """Write ``<out_root>/<dataset>-<transform>/``; its path. Raises :class:`DomainError` (one line)."""
    if transform not in TRANSFORMS:
        raise DomainError(f"unknown transform {transform!r} (one of {', '.join(TRANSFORMS)})")
    try:
        dataset = load_yolo(source)
    except DatasetError as exc:
        raise DomainError(str(exc)) from None
    out = _prepare_out(source, out_root, f"{dataset.name}-{transform}")
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        n = mosaic(dataset, tmp, seed) if transform == "mosaic" else per_image(dataset, tmp, transform, seed)
        note = f"{dataset.name} as proxy domain '{transform}' (benchmarks/domain_shift.py, seed {seed})"
        _write_yaml(tmp, dataset, dataset.splits, note)
        (tmp / "DOMAIN.md").write_text(
            f"{note}: {n} images from {len(dataset.images)} of {source}.\n"
            f"dark: gamma {DARK_GAMMA}, gain {DARK_GAIN}, noise sigma {DARK_NOISE}, JPEG quality {DARK_QUALITY}.\n"
        )
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    tmp.rename(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", nargs="+", type=Path, required=True, help="dataset folder(s) or data.yaml")
    parser.add_argument("--transform", nargs="+", choices=TRANSFORMS, required=True)
    parser.add_argument("--out", type=Path, default=Path("/work/s25/domains"))
    parser.add_argument("--seed", type=int, default=0, help="mosaic's grouping and dark's noise")
    args = parser.parse_args(argv)
    for source in args.dataset:
        for transform in args.transform:
            try:
                print(build(source, args.out, transform, seed=args.seed))
            except (DomainError, OSError) as exc:
                print(f"domain_shift: {exc}", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
