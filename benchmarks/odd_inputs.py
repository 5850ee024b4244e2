"""Odd-but-real inputs through every command: never a traceback, never a lost label (run by hand).

Each case is a small dataset (a few images copied from the bundled sample ``curate/sample/food-mini`` or from
``../shared/datasets``, which are read, never written) with ONE oddity that real Roboflow/Ultralytics exports
have. Every command runs on it as a subprocess, as a user would run it:

- ``info``: ``curate info DS``
- ``audit``: ``curate audit DS --no-fiftyone`` (every check)
- ``fast``: ``curate audit DS --fast`` (FiftyOne on: it builds the FiftyOne dataset that ``export`` reads)
- ``export``: ``curate export DS --out OUT`` (nothing reviewed: the dataset as it is)
- ``rebalance``: ``curate rebalance DS --out OUT --split 80/10/10``
- ``backgrounds``: ``curate backgrounds DS --out OUT --fraction 0.2``
- ``accept``: ``curate audit DS`` (with FiftyOne; ``--review-audit fast`` makes it ``--fast``), proposals of every
  action planted on the first three labelled images (:func:`plant_proposals`: a few images give the audit little
  to propose), then ``curate export DS --accept-proposals --min-confidence 0`` and ``… 0.9``
- ``edited``: the same audit and proposals, then a reviewer's work through FiftyOne's Python API on the dataset
  curate built (:func:`review_in_fiftyone`: proposals tagged ``accept``/``reject``, a box moved, one deleted,
  one relabelled, one added), then ``curate export DS --out OUT``
- ``tagged``: a fresh audit and the same proposals, then the reviewer's own tags (:func:`tag_in_fiftyone`:
  ``exclude`` on samples, ``ok`` on boxes and a sample, a box deleted, moved and added, a split accepted, the
  planted ``add`` accepted on every image not excluded), ``curate export DS --out OUT``; then reviewed label files
  changed on disk (a line appended to one, a line inserted above the split accepted in another, a box drawn by hand
  over an accepted add's object, a line edited by hand beside another accepted add), ``curate audit DS --fast``
  (which keeps the review under a dated name) and ``curate export DS --from-fiftyone NAME --out OUT2``, checked
  against the files as they are now; each output is also checked by :func:`check_tags` (excluded images absent,
  ``ok`` marks on the right written lines, the sample ``ok`` as an image mark, each read back by a later audit) and
  :func:`check_adds` (each accepted add written once; in OUT2 the add over the hand-drawn box not written, the
  hand-drawn box written once, a warning naming the image, the hand edit kept)

and records per case and command: the exit code, whether stderr holds a Python traceback, the last stderr line
of a failed command (the one-line error), and for the commands that write a dataset whether every label line
of the input is in the output: the lines of every image's label file (Ultralytics' rule: the last
``/images/`` of the image's path becomes ``/labels/``, suffix ``.txt``), each as ``(class name, numbers
rounded to 4 decimals)``, counted as a multiset, the class name taken from each side's data.yaml. A line
of the input not in the output is *lost*; when the per-class totals differ too, the classes were *mixed*.

The outputs of ``accept`` and ``edited`` are checked line by line against their changes.csv
(:func:`check_review`): every input line is in the output unchanged or named by exactly one row that says what
became of it, no other line is there, per-class totals agree, images pair up with their copies, an image without a
row keeps its label file byte for byte, and each edit made (or proposal accepted above the bar) is there. Each
kind of problem found is added to the cell as ``+kind N``.

Cells: ``ok``, ``error: <line>`` (exit code ≠ 0 with a one-line message), ``TRACEBACK: <last line>``,
``timeout``, and ``+lost N`` / ``+mixed`` after a writing command's status. A FiftyOne database and curate's cache
live in the temporary folder (``--keep DIR`` keeps everything there). ``CURATE_DEBUG=1`` is set, so an
unexpected exception that curate would word as one line (its catch-all) shows as the traceback it is.

    python benchmarks/odd_inputs.py                          # every case, every command
    python benchmarks/odd_inputs.py --cases polygons,dict-names --commands info,audit
    python benchmarks/odd_inputs.py --list                   # the cases
    python benchmarks/odd_inputs.py --cases polygons --commands accept,edited --review-audit fast
    python benchmarks/odd_inputs.py --cases same-stem,subfolders --commands tagged --review-audit fast
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import yaml

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "curate" / "sample" / "food-mini"
SHARED = REPO.parent / "shared" / "datasets"
if not SHARED.is_dir():
    SHARED = Path("/work/shared/datasets")
SUFFIXES = {".bmp", ".dng", ".jpeg", ".jpg", ".mpo", ".png", ".tif", ".tiff", ".webp", ".pfm", ".heic"}
COMMANDS = ("info", "audit", "fast", "export", "rebalance", "backgrounds", "accept", "edited", "tagged")
WRITERS = ("export", "rebalance", "backgrounds")
#: Commands that change labels as a reviewer would (after a full audit with FiftyOne): their outputs are checked
#: line by line against changes.csv (:func:`check_review`).
REVIEWERS = ("accept", "edited", "tagged")


# ---------------------------------------------------------------- building blocks


def _sample_names() -> list[str]:
    return list(yaml.safe_load((SAMPLE / "data.yaml").read_text())["names"])


def base(root: Path, *, train: int = 6, val: int = 2, test: int = 2, source: Path = SAMPLE) -> Path:
    """A Roboflow-layout copy of the first images of ``source``'s splits (``train/images``, ``../train/images``
    in data.yaml), labelled images first; returns ``root``."""
    names = _names_of(source)
    counts = {"train": train, "valid": val, "test": test}
    for folder, n in counts.items():
        images = _source_images(source, folder)[:n]
        (root / folder / "images").mkdir(parents=True, exist_ok=True)
        (root / folder / "labels").mkdir(parents=True, exist_ok=True)
        for image in images:
            shutil.copyfile(image, root / folder / "images" / image.name)
            label = _label_of(image)
            if label.is_file():
                shutil.copyfile(label, root / folder / "labels" / (image.stem + ".txt"))
    cfg = {k: f"../{k}/images" for k, n in counts.items() if n}
    cfg = {("val" if k == "valid" else k): v for k, v in cfg.items()}
    cfg.update(nc=len(names), names=names)
    (root / "data.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))
    return root


def _names_of(source: Path) -> list[str]:
    names = yaml.safe_load((source / "data.yaml").read_text())["names"]
    return [names[k] for k in sorted(names)] if isinstance(names, dict) else list(names)


def _source_images(source: Path, folder: str) -> list[Path]:
    """Images of one split of a source dataset, labelled ones with boxes first, by name."""
    aliases = {"valid": ("valid", "val", "validation"), "train": ("train",), "test": ("test",)}[folder]
    found: list[Path] = []
    for p in sorted(source.rglob("*")):
        if p.suffix.lower() in SUFFIXES and p.is_file() and any(a in p.parts for a in aliases):
            if "images" in p.parts:
                found.append(p)
    return sorted(found, key=lambda p: (not _has_boxes(p), p.name))


def _label_of(image: Path) -> Path:
    parts = list(image.parts)
    k = len(parts) - 1 - parts[::-1].index("images") if "images" in parts else -1
    if k >= 0:
        parts[k] = "labels"
    return Path(*parts).with_suffix(".txt")


def _has_boxes(image: Path) -> bool:
    label = _label_of(image)
    return label.is_file() and bool(label.read_text(errors="replace").strip())


def _images(root: Path, folder: str = "train") -> list[Path]:
    return sorted((root / folder / "images").iterdir())


def _label(image: Path) -> Path:
    return _label_of(image)


def _edit_lines(label: Path, fn: Callable[[list[str]], list[str]]) -> None:
    lines = label.read_text().splitlines()
    label.write_text("".join(x + "\n" for x in fn(lines)))


def _set_yaml(root: Path, **changes) -> None:
    cfg = yaml.safe_load((root / "data.yaml").read_text())
    for k, v in changes.items():
        if v is None:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    (root / "data.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))


def _convert(image: Path, *, suffix: str | None = None, mode: str | None = None, **save) -> Path:
    """Re-save ``image`` (its label follows its new name) in another format or mode."""
    from PIL import Image

    target = image.with_suffix(suffix) if suffix else image
    with Image.open(image) as im:
        im.load()
        out = im.convert(mode) if mode else im.copy()
    if target != image:
        image.unlink()
    out.save(target, **save)
    return target


def _rename(image: Path, new_name: str) -> Path:
    label = _label(image)
    target = image.with_name(new_name)
    image.rename(target)
    if label.is_file():
        label.rename(_label(target))
    return target


# ---------------------------------------------------------------- the cases


def case_plain(root: Path) -> None:
    """No oddity: the control."""
    base(root)


def case_polygons(root: Path) -> None:
    """Every line of two train files a polygon (Roboflow's segmentation export: an outline, here the box with its
    corners cut, an octagon of the same bounding box), one file mixing both."""
    base(root)
    images = _images(root)

    def to_polygons(lines: list[str]) -> list[str]:
        out = []
        for line in lines:
            c, cx, cy, w, h = line.split()[:5]
            cx, cy, w, h = map(float, (cx, cy, w, h))
            x1, y1, x2, y2, qw, qh = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, w / 4, h / 4
            pts = [x1 + qw, y1, x2 - qw, y1, x2, y1 + qh, x2, y2 - qh]
            pts += [x2 - qw, y2, x1 + qw, y2, x1, y2 - qh, x1, y1 + qh]
            out.append(" ".join([c, *(f"{v:.6f}" for v in pts)]))
        return out

    for image in images[:2]:
        _edit_lines(_label(image), to_polygons)
    _edit_lines(_label(images[2]), lambda ls: to_polygons(ls[:1]) + ls[1:])


def case_sixth_column(root: Path) -> None:
    """A confidence column after the box (a model's predictions saved as labels)."""
    base(root)
    _edit_lines(_label(_images(root)[0]), lambda ls: [x + " 0.87" for x in ls])


def case_empty_labels(root: Path) -> None:
    """Three train label files empty (background images)."""
    base(root)
    for image in _images(root)[:3]:
        _label(image).write_text("")


def case_missing_labels(root: Path) -> None:
    """Three train images without a label file."""
    base(root)
    for image in _images(root)[:3]:
        _label(image).unlink()


def case_whitespace(root: Path) -> None:
    """Blank lines, CRLF line ends, a UTF-8 BOM, trailing spaces and tabs."""
    base(root)
    images = _images(root)
    lab = _label(images[0])
    lab.write_bytes(b"\xef\xbb\xbf" + lab.read_bytes().replace(b"\n", b"\r\n"))
    _edit_lines(_label(images[1]), lambda ls: ["", *(x + "   " for x in ls), "", ""])
    _edit_lines(_label(images[2]), lambda ls: [x.replace(" ", "\t") for x in ls])


def case_class_out_of_range(root: Path) -> None:
    """A class id equal to nc (36 of 36 names)."""
    base(root)
    _edit_lines(_label(_images(root)[0]), lambda ls: ["36" + ls[0][ls[0].index(" ") :], *ls[1:]])


def case_out_of_image(root: Path) -> None:
    """Negative and > 1 coordinates: a box reaching past the edge, one wholly outside, one with w > 1."""
    base(root)
    _edit_lines(
        _label(_images(root)[0]),
        lambda ls: [*ls, "0 -0.005 0.5 0.2 0.2", "0 1.005 0.5 0.2 0.2", "0 1.5 0.5 0.2 0.2", "0 0.5 0.5 1.3 0.2"],
    )


def case_zero_width(root: Path) -> None:
    """A box of width 0 and one of height 0."""
    base(root)
    _edit_lines(_label(_images(root)[0]), lambda ls: [*ls, "0 0.5 0.5 0 0.2", "0 0.4 0.4 0.1 0"])


def case_duplicate_lines(root: Path) -> None:
    """Every line of one file written twice."""
    base(root)
    _edit_lines(_label(_images(root)[0]), lambda ls: ls + ls)


def case_names_dict(root: Path) -> None:
    """``names`` as a mapping ``{0: banana, ...}`` and no ``nc``."""
    base(root)
    _set_yaml(root, names=dict(enumerate(_sample_names())), nc=None)


def case_names_dict_gaps(root: Path) -> None:
    """``names`` as a mapping with string keys and a gap (Ultralytics' ``check_det_dataset`` accepts it)."""
    base(root)
    names = {str(i): n for i, n in enumerate(_sample_names()) if i != 3}
    _set_yaml(root, names=names, nc=None)


def case_nc_more(root: Path) -> None:
    """``nc: 40`` with 36 names."""
    base(root)
    _set_yaml(root, nc=40)


def case_nc_fewer(root: Path) -> None:
    """``nc: 10`` with 36 names."""
    base(root)
    _set_yaml(root, nc=10)


def case_nc_only(root: Path) -> None:
    """No names, only ``nc``."""
    base(root)
    _set_yaml(root, names=None, nc=36)


def case_no_yaml(root: Path) -> None:
    """No data.yaml at all (a folder layout; classes numbered)."""
    base(root)
    (root / "data.yaml").unlink()


def case_path_absolute(root: Path) -> None:
    """Ultralytics layout, ``path:`` absolute, splits relative to it."""
    base(root)
    for folder, split in (("train", "train"), ("valid", "val"), ("test", "test")):
        for kind in ("images", "labels"):
            (root / kind).mkdir(exist_ok=True)
            (root / folder / kind).rename(root / kind / split)
        (root / folder).rmdir()
    _set_yaml(root, path=str(root.resolve()), train="images/train", val="images/val", test="images/test")


def case_path_relative(root: Path) -> None:
    """data.yaml in a sub-folder, ``path: ..``."""
    case_path_absolute(root)
    (root / "cfg").mkdir()
    (root / "data.yaml").rename(root / "cfg" / "data.yaml")
    _set_yaml(root / "cfg", path="..")


def case_only_train(root: Path) -> None:
    """Only a train split."""
    base(root, val=0, test=0)


def case_empty_split(root: Path) -> None:
    """``valid/images`` exists and is empty."""
    base(root)
    for p in _images(root, "valid"):
        p.unlink()
    for p in (root / "valid" / "labels").iterdir():
        p.unlink()


def case_subfolders(root: Path) -> None:
    """Images (and labels) in sub-folders of the split's folder, two of them with one name."""
    base(root)
    images = _images(root)
    for i, image in enumerate(images[:4]):
        sub = f"cam{i % 2}"
        (root / "train" / "images" / sub).mkdir(exist_ok=True)
        (root / "train" / "labels" / sub).mkdir(exist_ok=True)
        new_name = "same.jpg" if i in (0, 1) else image.name
        target = root / "train" / "images" / sub / new_name
        image.rename(target)
        _label(image).rename(_label(target))


def case_upper_ext(root: Path) -> None:
    """``.JPG`` and ``.PNG`` file names."""
    base(root)
    images = _images(root)
    _rename(images[0], images[0].stem + ".JPG")
    _convert(images[1], suffix=".PNG")


def case_formats(root: Path) -> None:
    """.webp, .bmp, .tif, .jpeg."""
    base(root)
    images = _images(root)
    _convert(images[0], suffix=".webp")
    _convert(images[1], suffix=".bmp")
    _convert(images[2], suffix=".tif")
    _rename(images[3], images[3].stem + ".jpeg")


def case_modes(root: Path) -> None:
    """Grayscale JPEG, 16-bit PNG, RGBA PNG, palette PNG, CMYK JPEG, 1-bit PNG."""
    import numpy as np
    from PIL import Image

    base(root)
    images = _images(root)
    _convert(images[0], mode="L")
    src = images[1]
    with Image.open(src) as im:
        gray = np.asarray(im.convert("L"), dtype=np.uint16) * 257
    src.unlink()
    Image.fromarray(gray).save(src.with_suffix(".png"))  # I;16
    _convert(images[2], suffix=".png", mode="RGBA")
    _convert(images[3], suffix=".png", mode="P")
    _convert(images[4], mode="CMYK")
    _convert(images[5], suffix=".png", mode="1")


def case_exif_rotated(root: Path) -> None:
    """JPEGs stored sideways with EXIF orientation 6 and 8 (labels drawn on the upright picture)."""
    from PIL import Image

    base(root)
    for image, orientation, turn in ((_images(root)[0], 6, Image.Transpose.ROTATE_90), (_images(root)[1], 8, None)):
        with Image.open(image) as im:
            stored = im.transpose(turn) if turn else im.transpose(Image.Transpose.ROTATE_270)
            exif = Image.Exif()
            exif[0x0112] = orientation
            stored.save(image, exif=exif)


def case_truncated(root: Path) -> None:
    """A JPEG cut at half its bytes."""
    base(root)
    image = _images(root)[0]
    data = image.read_bytes()
    image.write_bytes(data[: len(data) // 2])


def case_zero_byte(root: Path) -> None:
    """A 0-byte .jpg."""
    base(root)
    _images(root)[0].write_bytes(b"")


def case_not_an_image(root: Path) -> None:
    """A .jpg that is an HTML error page (a failed download)."""
    base(root)
    _images(root)[0].write_bytes(b"<html><body>403 Forbidden</body></html>\n")


def case_tiny(root: Path) -> None:
    """1x1 and 2x3 images (their labels kept)."""
    from PIL import Image

    base(root)
    images = _images(root)
    Image.new("RGB", (1, 1), (120, 30, 30)).save(images[0])
    Image.new("RGB", (2, 3), (30, 120, 30)).save(images[1])


def case_huge(root: Path) -> None:
    """A 6000x4000 photo."""
    from PIL import Image

    base(root)
    image = _images(root)[0]
    with Image.open(image) as im:
        im.convert("RGB").resize((6000, 4000)).save(image, quality=85)


def case_odd_names(root: Path) -> None:
    """File names with spaces, non-ASCII letters, brackets, a leading dash and several dots."""
    base(root)
    images = _images(root)
    for image, name in zip(
        images, ["my photo 1.jpg", "çiğ köfte ü.jpg", "写真 [2].jpg", "-dash.jpg", "a.b.c.jpg", "emoji 🍅.jpg"]
    ):
        _rename(image, name)


def case_orphans(root: Path) -> None:
    """An image without a label file and a label file without an image, in one split."""
    base(root)
    images = _images(root)
    _label(images[0]).unlink()
    images[1].unlink()


def case_same_stem(root: Path) -> None:
    """``a.jpg`` and ``a.png``: two images, one label file."""
    base(root)
    image = _images(root)[0]
    from PIL import Image

    with Image.open(image) as im:
        im.save(image.with_suffix(".png"))


def case_one_image(root: Path) -> None:
    """One image in the whole dataset."""
    base(root, train=1, val=0, test=0)


def case_all_background(root: Path) -> None:
    """Every label file empty: no box at all."""
    base(root)
    for lab in root.rglob("labels/*.txt"):
        lab.write_text("")


def case_dense_one_class(root: Path) -> None:
    """One class, 60 boxes an image (a jittered grid, like apples on a tree)."""
    base(root)
    rng = random.Random(0)
    for lab in root.rglob("labels/*.txt"):
        lines = []
        for i in range(60):
            cx, cy = (i % 10 + 0.5) / 10 + rng.uniform(-0.01, 0.01), (i // 10 + 0.5) / 6 + rng.uniform(-0.01, 0.01)
            lines.append(f"0 {cx:.5f} {cy:.5f} {0.08 + rng.uniform(0, 0.01):.5f} {0.13 + rng.uniform(0, 0.01):.5f}")
        lab.write_text("\n".join(lines) + "\n")
    _set_yaml(root, names=["apple"], nc=1)


def case_many_classes(root: Path) -> None:
    """150 classes, most with one box or none."""
    base(root)
    k = 0
    for lab in sorted(root.rglob("labels/*.txt")):
        out = []
        for line in lab.read_text().splitlines():
            parts = line.split()
            parts[0] = str((k * 7) % 150)
            k += 1
            out.append(" ".join(parts))
        lab.write_text("".join(x + "\n" for x in out))
    _set_yaml(root, names=[f"class {i}" for i in range(150)], nc=150)


def case_single_box_class(root: Path) -> None:
    """A class with one box in the whole dataset."""
    base(root)
    names = [*_sample_names(), "rare"]
    _edit_lines(_label(_images(root)[0]), lambda ls: [f"{len(names) - 1}" + ls[0][ls[0].index(" ") :], *ls[1:]])
    _set_yaml(root, names=names, nc=len(names))


def case_list_file(root: Path) -> None:
    """Splits given as .txt lists of image paths (relative, absolute, and one that does not exist)."""
    base(root)
    lines = [f"./train/images/{p.name}" for p in _images(root)[:3]] + [str(p) for p in _images(root)[3:]]
    (root / "train.txt").write_text("\n".join([*lines, "./train/images/gone.jpg"]) + "\n")
    _set_yaml(root, train="train.txt")


def case_read_only(root: Path) -> None:
    """The whole dataset read-only (a shared mount)."""
    base(root)
    for p in sorted(root.rglob("*"), reverse=True):
        p.chmod(0o555 if p.is_dir() else 0o444)
    root.chmod(0o555)


def case_non_utf8_label(root: Path) -> None:
    """A label file in UTF-16 (a Windows editor) and a line with a Latin-1 byte."""
    base(root)
    images = _images(root)
    lab = _label(images[0])
    lab.write_bytes(lab.read_text().encode("utf-16"))
    lab = _label(images[1])
    lab.write_bytes(lab.read_bytes() + b"0 0.5 0.5 0.1 0.1 \xe9\n")


def case_comma_separated(root: Path) -> None:
    """Commas between the numbers (a CSV tool's output)."""
    base(root)
    _edit_lines(_label(_images(root)[0]), lambda ls: [",".join(x.split()) for x in ls])


def case_yaml_odd(root: Path) -> None:
    """data.yaml with Windows back-slashes, a BOM and names with odd characters."""
    base(root)
    names = _sample_names()
    names[0] = "ba: nana"
    names[1] = "ñame/ñ"
    names[2] = ""
    _set_yaml(root, names=names, train="..\\train\\images")
    data = (root / "data.yaml").read_bytes()
    (root / "data.yaml").write_bytes(b"\xef\xbb\xbf" + data)


def case_names_string(root: Path) -> None:
    """``names`` a path to a text file (older YOLOv5 exports) and ``nc`` a string."""
    base(root)
    _set_yaml(root, names="classes.txt", nc="36")


def case_nc_not_a_number(root: Path) -> None:
    """``nc: abc`` (a template's placeholder left in)."""
    base(root)
    _set_yaml(root, nc="abc")


def case_bracket_names(root: Path) -> None:
    """Class names and file names with square brackets (``[person]``, ``[/x]``, ``img [b].jpg``)."""
    base(root)
    names = _sample_names()
    names[:2] = ["[/x]", "[person]"]
    _set_yaml(root, names=names)
    _rename(_images(root)[0], "img [b].jpg")


def _pool_case(name: str) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        base(root, train=5, val=2, test=2, source=SHARED / name)

    build.__doc__ = f"5 train, 2 val, 2 test images of {name} (no oddity: a real export's own layout and quirks)."
    return build


CASES: dict[str, Callable[[Path], None]] = {
    "plain": case_plain,
    "polygons": case_polygons,
    "sixth-column": case_sixth_column,
    "empty-labels": case_empty_labels,
    "missing-labels": case_missing_labels,
    "whitespace": case_whitespace,
    "class-out-of-range": case_class_out_of_range,
    "out-of-image": case_out_of_image,
    "zero-width": case_zero_width,
    "duplicate-lines": case_duplicate_lines,
    "names-dict": case_names_dict,
    "names-dict-gaps": case_names_dict_gaps,
    "nc-more": case_nc_more,
    "nc-fewer": case_nc_fewer,
    "nc-only": case_nc_only,
    "no-yaml": case_no_yaml,
    "path-absolute": case_path_absolute,
    "path-relative": case_path_relative,
    "only-train": case_only_train,
    "empty-split": case_empty_split,
    "subfolders": case_subfolders,
    "upper-ext": case_upper_ext,
    "formats": case_formats,
    "modes": case_modes,
    "exif-rotated": case_exif_rotated,
    "truncated": case_truncated,
    "zero-byte": case_zero_byte,
    "not-an-image": case_not_an_image,
    "tiny": case_tiny,
    "huge": case_huge,
    "odd-names": case_odd_names,
    "orphans": case_orphans,
    "same-stem": case_same_stem,
    "one-image": case_one_image,
    "all-background": case_all_background,
    "dense-one-class": case_dense_one_class,
    "many-classes": case_many_classes,
    "single-box-class": case_single_box_class,
    "list-file": case_list_file,
    "read-only": case_read_only,
    "non-utf8-label": case_non_utf8_label,
    "comma-separated": case_comma_separated,
    "yaml-odd": case_yaml_odd,
    "names-string": case_names_string,
    "nc-not-a-number": case_nc_not_a_number,
    "bracket-names": case_bracket_names,
}
for _name in sorted(p.name for p in SHARED.iterdir() if p.is_dir()) if SHARED.is_dir() else []:
    CASES[f"pool-{_name}"] = _pool_case(_name)


# ---------------------------------------------------------------- label lines in and out


def _yaml_of(folder: Path) -> Path | None:
    for name in ("data.yaml", "data.yml", "dataset.yaml", "dataset.yml"):
        if (folder / name).is_file():
            return folder / name
    found = sorted(folder.glob("*/data.yaml"))
    return found[0] if found else None


def _names_map(folder: Path) -> dict[int, str]:
    path = _yaml_of(folder)
    if path is None:
        return {}
    try:
        names = (yaml.safe_load(path.read_text(encoding="utf-8-sig")) or {}).get("names")
    except yaml.YAMLError:
        return {}
    if isinstance(names, dict):
        return {int(k): str(v) for k, v in names.items() if str(k).lstrip("-").isdigit()}
    if isinstance(names, list):
        return {i: str(n) for i, n in enumerate(names)}
    return {}


def label_lines(folder: Path) -> Counter:
    """Every image's label lines under ``folder`` as ``(class name, numbers rounded to 4 decimals)``; lines that
    are not numbers are kept as their text."""
    names = _names_map(folder)
    out: Counter = Counter()
    for image in folder.rglob("*"):
        if image.suffix.lower() not in SUFFIXES or not image.is_file():
            continue
        label = _label_of(image)
        if not label.is_file():
            continue
        data = label.read_bytes()
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        for raw in data.decode("utf-8", errors="replace").splitlines():
            fields = raw.split()
            if not fields:
                continue
            try:
                cls = int(float(fields[0]))
                values = tuple(round(float(v), 4) for v in fields[1:])
            except ValueError:
                out[("?", raw.strip())] += 1
                continue
            out[(names.get(cls, str(cls)), values)] += 1
    return out


def compare_lines(before: Counter, after: Counter) -> str:
    """``""`` when every line of ``before`` is in ``after``; else ``+lost N`` (``+mixed`` when per-class
    totals differ by more than the lost lines explain)."""
    lost = sum((before - after).values())
    if not lost:
        return ""
    per_class_before = Counter({k[0]: 0 for k in before})
    per_class_after = Counter()
    for (c, _), n in before.items():
        per_class_before[c] += n
    for (c, _), n in after.items():
        per_class_after[c] += n
    mixed = any(per_class_after[c] > per_class_before[c] for c in per_class_after if c in per_class_before)
    return f" +lost {lost}" + (" +mixed" if mixed else "")


# ---------------------------------------------------------------- review: labels changed as a reviewer would

#: Tolerance when an output line is matched to an input line or to a changes.csv row (the writer prints 6
#: significant digits, changes.csv 6 decimals).
MATCH_TOL = 2e-4


#: The proposals :func:`plant_proposals` adds to each of the first labelled images: (action, line, confidence).
#: The two on line 1: the more confident one (resize) is the one applied. Confidences straddle the 0.9 bar.
PLANTED = (("resize", 1, 0.95), ("relabel", 1, 0.6), ("split", 2, 0.92), ("relabel", 3, 0.5), ("delete", 4, 0.91))


def plant_proposals(ds_arg: Path, out_json: Path, images: int = 3) -> None:
    """Proposals of every action on the first ``images`` labelled images, as the audit writes them (the FiftyOne
    field ``proposals``: label, box, ``confidence``, ``line``, ``check``, ``action``, ``class_id``), added to those
    the audit made: on a few images a full audit proposes little or nothing, and the export path is what is
    checked here. Lines are picked in dataset order, so the odd files (first in train: polygons, CRLF, a line
    past the edge…) get them. Writes what was planted to ``out_json``."""
    import fiftyone as fo

    from curate.fiftyone.database import connect_database
    from curate.fiftyone.identity import find_fiftyone
    from curate.fiftyone.samples import to_fo_box
    from curate.io.yolo import load_yolo

    ds = load_yolo(ds_arg)
    connect_database()
    fod = find_fiftyone(ds)
    if fod is None:
        raise SystemExit("no FiftyOne dataset: run the full audit first")
    if not fod.has_sample_field("proposals"):
        fod.add_sample_field("proposals", fo.EmbeddedDocumentField, embedded_doc_type=fo.Detections)
    ids = dict(zip(zip(*fod.values(["split", "curate_rel"])), fod.values("id")))
    names = list(ds.names)
    planted = []
    for record in [r for r in ds.images if r.labels and (r.split, r.rel) in ids][:images]:
        sample = fod[ids[(record.split, record.rel)]]
        dets = list(sample["proposals"].detections) if sample["proposals"] is not None else []
        for d in dets:  # the audit's own: one on a planted line may be the more confident, the one applied
            planted.append([record.split, record.rel, d["line"], d["action"], d.label, [list(d.bounding_box)],
                            d["confidence"] or 0.0])  # fmt: skip
        by_line = {lab.line: lab for lab in record.labels}
        lines = sorted(by_line)
        for action, k, conf in PLANTED:
            if k > len(lines):
                continue
            lab = by_line[lines[k - 1]]
            x, y, w, h = to_fo_box(lab)
            cls = lab.class_id
            if action == "relabel":
                cls = (cls + 1) % len(names)
            boxes = [[x, y, w, h]]
            if action == "resize":
                boxes = [[x + w * 0.05, y + h * 0.05, w * 0.9, h * 0.9]]
            elif action == "split":
                boxes = [[x, y, w / 2, h], [x + w / 2, y, w / 2, h]]
            for box in boxes:
                dets.append(fo.Detection(label=names[cls], bounding_box=box, confidence=conf, line=lab.line,
                                         check="planted", action=action, class_id=cls))  # fmt: skip
            planted.append([record.split, record.rel, lab.line, action, names[cls], boxes, conf])
        box = [0.6, 0.6, 0.1, 0.1]
        dets.append(fo.Detection(label=names[0], bounding_box=box, confidence=0.3, line=None, check="planted",
                                 action="add", class_id=0))  # fmt: skip
        planted.append([record.split, record.rel, None, "add", names[0], [box], 0.3])
        sample["proposals"] = fo.Detections(detections=dets)
        sample.save()
    out_json.write_text(json.dumps(planted, indent=1, ensure_ascii=False))


def review_in_fiftyone(ds_arg: Path, out_json: Path) -> None:
    """What a reviewer does in the App, done through FiftyOne's Python API on the dataset ``curate audit`` built
    (the App edits the same documents): a few proposals tagged ``accept`` and a few ``reject``, and on other
    labels one box moved, one deleted, one relabelled, and one box added. Writes what was done to ``out_json``
    for :func:`check_review`. Labels are picked in dataset order, so the odd files (first in train) come first."""
    import fiftyone as fo

    from curate.fiftyone.database import connect_database
    from curate.fiftyone.identity import find_fiftyone
    from curate.fiftyone.samples import from_fo_box
    from curate.io.yolo import load_yolo

    ds = load_yolo(ds_arg)
    connect_database()
    fod = find_fiftyone(ds)
    if fod is None:
        raise SystemExit("no FiftyOne dataset: run the full audit first")
    done: dict[str, list] = {"accept": [], "reject": [], "moved": [], "deleted": [], "relabeled": [], "added": []}
    samples = {(s["split"], s["curate_rel"]): s for s in fod.select_fields(["split", "curate_rel"]).iter_samples()}
    order = [(r.split, r.rel) for r in ds.images if (r.split, r.rel) in samples]
    touched: set[tuple[str, str, int]] = set()  # (split, rel, line) a proposal was tagged on: edits go elsewhere
    has_props = fod.has_sample_field("proposals")
    # proposals: the first two (in dataset order) accepted, the next two rejected (a split: its first member)
    for key in order:
        if not has_props:
            break
        sample = fod[samples[key].id]
        props = sample["proposals"].detections if sample["proposals"] is not None else []
        seen_lines: set = set()
        for det in props:
            group = (det["line"], det["action"])
            if group in seen_lines and det["action"] == "split":
                continue
            seen_lines.add(group)
            tag = "accept" if len(done["accept"]) < 2 else "reject" if len(done["reject"]) < 2 else None
            if tag is None:
                break
            det.tags.append(tag)
            done[tag].append([key[0], key[1], det["line"], det["action"], det.label, list(det.bounding_box)])
            touched.add((key[0], key[1], det["line"]))
        sample.save()
    names = list(ds.names)
    wanted = ["moved", "relabeled", "deleted"]
    for key in order:
        if not wanted:
            break
        sample = fod[samples[key].id]
        dets = sample.ground_truth.detections if sample.ground_truth is not None else []
        for i, det in enumerate(dets):
            if not wanted:
                break
            if det["line"] is None or (key[0], key[1], det["line"]) in touched:
                continue
            what = wanted.pop(0)
            cx, cy, w, h = from_fo_box(det.bounding_box)
            if what == "moved":
                x, y, bw, bh = det.bounding_box
                x = x + 0.02 if x + 0.02 + bw <= 1 else max(x - 0.02, 0.0)  # a box at the right edge moves left
                det.bounding_box = [x, y, bw, bh]
                cx, cy, w, h = from_fo_box(det.bounding_box)
                done["moved"].append([*key, det["line"], det.label, [cx, cy, w, h]])
            elif what == "relabeled":
                new = names[(names.index(det.label) + 1) % len(names)] if det.label in names else names[0]
                det.label = new
                done["relabeled"].append([*key, det["line"], new, [cx, cy, w, h]])
            else:
                done["deleted"].append([*key, det["line"], det.label, [cx, cy, w, h]])
                del dets[i]
            touched.add((key[0], key[1], det["line"]))
            sample.save()
            break  # one edit per image: the next edit goes to the next image
    # one box added to the first image that has labels and was not edited above (else the first image)
    edited = {(s, r) for kind in ("moved", "relabeled", "deleted") for s, r, *_ in done[kind]}
    target = next((k for k in order if k not in edited and ds.images), order[0] if order else None)
    if target is not None and names:
        sample = fod[samples[target].id]
        if sample.ground_truth is None:
            sample.ground_truth = fo.Detections(detections=[])
        sample.ground_truth.detections.append(fo.Detection(label=names[0], bounding_box=[0.05, 0.05, 0.1, 0.08]))
        sample.save()
        done["added"].append([*target, None, names[0], list(from_fo_box([0.05, 0.05, 0.1, 0.08]))])
    out_json.write_text(json.dumps(done, indent=1, ensure_ascii=False))


def tag_in_fiftyone(ds_arg: Path, out_json: Path) -> None:
    """The reviewer's own tags, set through FiftyOne's Python API on the dataset ``curate audit`` built: one
    labelled image and the last image tagged ``exclude`` (the first also with a box tagged ``ok``, which must not
    reach the export), one image tagged ``ok`` (a sample tag: an image mark in curate_ok.json), and ``ok`` on boxes
    of three other images — A: its first box deleted, so the file is renumbered, and the split planted on line 2
    accepted (a polygon file: the member is a new object); B: its first box moved and a box added (a file that mixes
    polygon and box rows gets one); C: its first box. Images whose stem another image of their split shares
    (``a.jpg`` + ``a.png``, ``cam0/same.jpg`` + ``cam1/same.jpg``) are picked for A, B, C first, the others for
    ``exclude``. Writes what was done to ``out_json`` (:func:`check_tags`)."""
    import fiftyone as fo

    from curate.fiftyone.database import connect_database
    from curate.fiftyone.identity import find_fiftyone
    from curate.fiftyone.samples import EXCLUDE_TAG, OK_TAG, from_fo_box
    from curate.io.yolo import load_yolo

    ds = load_yolo(ds_arg)
    connect_database()
    fod = find_fiftyone(ds)
    if fod is None:
        raise SystemExit("no FiftyOne dataset: run the audit first")
    done: dict[str, list] = {k: [] for k in ("excluded", "ok", "ok_dropped", "ok_sample", "moved", "deleted",
                                             "added", "accept", "relabeled", "reject")}  # fmt: skip
    ids = {(s, r): i for i, s, r in zip(*fod.values(["id", "split", "curate_rel"]))}
    records = [r for r in ds.images if (r.split, r.rel) in ids]
    stems = Counter((r.split, r.path.stem) for r in records)
    shared = lambda r: stems[(r.split, r.path.stem)] > 1  # noqa: E731
    labelled = [r for r in records if r.labels]
    picked = [r for r in labelled if shared(r)] + [r for r in labelled if not shared(r)]
    # an image is excluded only where another is left (an export of nothing is not a review to check)
    excluded = [r for r in labelled if not shared(r)][:1] if len(labelled) > 1 else []
    excluded += [r for r in records[-1:] if r not in picked[:3] and r not in excluded and len(records) > 1]
    abc = [r for r in picked if r not in excluded][:3]

    def box_of(det) -> list[float]:
        return list(from_fo_box(det.bounding_box))

    for r in excluded:
        sample = fod[ids[(r.split, r.rel)]]
        sample.tags.append(EXCLUDE_TAG)
        dets = sample.ground_truth.detections if sample.ground_truth is not None else []
        if dets:
            dets[-1].tags.append(OK_TAG)
            done["ok_dropped"].append([r.split, r.rel, dets[-1]["line"]])
        sample.save()
        done["excluded"].append([r.split, r.rel])
    rest = [r for r in labelled if r not in excluded and r not in abc]
    if rest:
        sample = fod[ids[(rest[-1].split, rest[-1].rel)]]
        sample.tags.append(OK_TAG)
        sample.save()
        done["ok_sample"].append([rest[-1].split, rest[-1].rel])
    names = list(ds.names)
    for role, r in zip("ABC", abc):
        key = [r.split, r.rel]
        sample = fod[ids[(r.split, r.rel)]]
        dets = sample.ground_truth.detections
        ok = dets[-1] if role in "AB" else dets[0]
        ok.tags.append(OK_TAG)
        if role == "A" and len(dets) >= 2:
            done["deleted"].append([*key, dets[0]["line"], dets[0].label, box_of(dets[0])])
            del dets[0]
        if role == "B" and len(dets) >= 2:
            x, y, bw, bh = dets[0].bounding_box
            x = x + 0.02 if x + 0.02 + bw <= 1 else max(x - 0.02, 0.0)  # a box at the right edge moves left
            dets[0].bounding_box = [x, y, bw, bh]
            done["moved"].append([*key, dets[0]["line"], dets[0].label, box_of(dets[0])])
        if role == "B" and names:
            dets.append(fo.Detection(label=names[0], bounding_box=[0.05, 0.05, 0.1, 0.08]))
            done["added"].append([*key, None, names[0], list(from_fo_box([0.05, 0.05, 0.1, 0.08]))])
        done["ok"].append([*key, ok["line"], ok.label, box_of(ok)])
        if role == "A" and sample.has_field("proposals") and sample["proposals"] is not None:
            members = [d for d in sample["proposals"].detections if d["action"] == "split" and d["line"] != ok["line"]
                       and any(g["line"] == d["line"] for g in dets)]  # fmt: skip
            if members:
                members[0].tags.append("accept")
                d = members[0]
                done["accept"].append([*key, d["line"], "split", d.label, list(d.bounding_box)])
                done["split"] = [[*key, d["line"], [list(from_fo_box(m.bounding_box)) for m in members
                                                    if m["line"] == d["line"]]]]  # fmt: skip
        sample.save()
    _accept_adds(fod, ids, [r for r in records if r not in excluded], done)
    out_json.write_text(json.dumps(done, indent=1, ensure_ascii=False))


def _accept_adds(fod, ids: dict, records: list, done: dict) -> None:
    """The planted ``add`` proposal (:func:`plant_proposals`) tagged ``accept`` on every image not excluded that has
    one: the export must write it once, as a new line; ``done["accept"]`` gets ``[split, rel, None, "add", label,
    box]`` (FiftyOne's box)."""
    for r in records:
        sample = fod[ids[(r.split, r.rel)]]
        if not sample.has_field("proposals") or sample["proposals"] is None:
            continue
        adds = [d for d in sample["proposals"].detections if d["action"] == "add" and d["check"] == "planted"]
        for d in adds[:1]:
            d.tags.append("accept")
            done["accept"].append([r.split, r.rel, None, "add", d.label, list(d.bounding_box)])
        sample.save()


def change_on_disk(ds_arg: Path, tags_json: Path) -> None:
    """After the review: a line appended on disk to the label file of image C of :func:`tag_in_fiftyone` (or of
    another reviewed image where there is no C), so the next audit keeps the review whole under a dated name
    (``--from-fiftyone``). The line is of the file's own form (a polygon in a file of polygons); a read-only
    file is made writable for it."""
    from curate.io.yolo import load_yolo

    done = json.loads(tags_json.read_text())
    ds = load_yolo(ds_arg)
    # image C; on a dataset too small for it, another reviewed image (one with a label file)
    targets = [x[:2] for x in [*done["ok"][::-1], *done["ok_sample"], *done["excluded"]]]
    records = {(r.split, r.rel): r for r in ds.images if r.label_path is not None}
    record = next((records[tuple(t)] for t in targets if tuple(t) in records), None)
    if record is None:
        raise SystemExit("no reviewed label file to change")
    line = "0 0.88 0.88 0.92 0.88 0.92 0.92 0.88 0.92" if _all_polygons(record) else "0 0.9 0.9 0.04 0.04"
    _rewrite(
        record.label_path,
        lambda data: data + (b"" if not data or data.endswith(b"\n") else b"\n") + line.encode() + b"\n",
    )
    done["on_disk"] = [record.split, record.rel, line]
    above = _insert_above_proposal(ds, done)
    if above is not None:
        done["on_disk_above"] = above
    done.update(_beside_accepted_adds(load_yolo(ds_arg), done))
    tags_json.write_text(json.dumps(done, indent=1, ensure_ascii=False))


def _insert_above_proposal(ds, done: dict) -> list | None:
    """A line inserted on disk at the top of image A's label file, above the split accepted on its line 2: the
    kept review's export must apply the split to the group box where it now is (line 3), not to line 2 (the
    proposal was made on the file as loaded). Returns ``[split, rel, line text, 1]`` (None where nothing was
    accepted)."""
    if not done.get("split"):
        return None
    split, rel = done["split"][0][:2]
    record = next((r for r in ds.images if (r.split, r.rel) == (split, rel) and r.label_path is not None), None)
    if record is None:
        return None
    line = "0 0.1 0.86 0.14 0.86 0.14 0.9 0.1 0.9" if _all_polygons(record) else "0 0.12 0.88 0.04 0.04"

    def above(data: bytes) -> bytes:  # the new first line goes after a UTF-8 BOM, not before it
        bom = len(b"\xef\xbb\xbf") if data.startswith(b"\xef\xbb\xbf") else 0
        return data[:bom] + line.encode() + b"\n" + data[bom:]

    _rewrite(record.label_path, above)
    return [split, rel, line, 1]


def _beside_accepted_adds(ds, done: dict) -> dict:
    """On disk, after the review, beside the accepted adds (:func:`_accept_adds`): on the first image with one, a box
    of the add's class drawn by hand over the add's object (the kept review's export must not write the add too: two
    boxes on one object; a warning names the line); on the second, a line the reviewer did not touch edited by hand
    (the add is written and the hand edit kept). Returns ``{"on_disk_add": [split, rel, line text, add box],
    "on_disk_edit": [split, rel, line number, line text]}`` for what was done."""
    from curate.fiftyone.samples import from_fo_box

    records = {(r.split, r.rel): r for r in ds.images if r.label_path is not None}
    adds = [a for a in done.get("accept", []) if a[3] == "add" and (a[0], a[1]) in records]
    out: dict = {}
    for split, rel, _line, _action, label, box in adds[:1]:
        record = records[(split, rel)]
        cx, cy, w, h = from_fo_box(box)
        cx += w * 0.05  # a hand-drawn box is never the proposal's to the digit: IoU ~0.9
        cls = ds.names.index(label) if label in ds.names else 0
        x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
        text = (
            f"{cls} {x1:.4f} {y1:.4f} {x2:.4f} {y1:.4f} {x2:.4f} {y2:.4f} {x1:.4f} {y2:.4f}"
            if _all_polygons(record)
            else f"{cls} {cx:.4f} {cy:.4f} {w:.4f} {h:.4f}"
        )
        _rewrite(record.label_path, lambda data: data + (b"" if not data or data.endswith(b"\n") else b"\n") +
                 text.encode() + b"\n")  # fmt: skip
        out["on_disk_add"] = [split, rel, text, list(from_fo_box(box))]
    touched = {(e[0], e[1], e[2]) for k in ("ok", "ok_dropped", "moved", "deleted", "accept") for e in done.get(k, [])}
    touched |= {(e[0], e[1], e[2]) for e in done.get("split", [])}
    # not a file changed above already (the add's; C's, whose new last line is checked; A's, renumbered), nor the
    # same file under another listing
    changed = [(a[0], a[1]) for a in adds[:1]] + [tuple(done[k][:2]) for k in ("on_disk", "on_disk_above") if k in done]
    shared = {records[key].label_path for key in changed if key in records}
    for split, rel, *_ in adds[1:]:
        record = records[(split, rel)]
        if record.label_path in shared:
            continue
        raw = _raw_lines(record.label_path.read_bytes())
        free = [n for n, t in enumerate(raw, start=1) if (split, rel, n) not in touched and _parse(t, len(ds.names))]
        if not free:
            continue
        n = free[-1]
        fields = raw[n - 1].split()
        fields[1] = f"{min(float(fields[1]) + 0.01, 1.0):.4f}"  # x (a box's centre, a polygon's first point) moved
        text = " ".join(fields)

        def edit(data: bytes, n: int = n, text: str = text) -> bytes:
            lines = data.split(b"\n")
            end = b"\r" if lines[n - 1].endswith(b"\r") else b""
            bom = b"\xef\xbb\xbf" if n == 1 and lines[0].startswith(b"\xef\xbb\xbf") else b""
            lines[n - 1] = bom + text.encode() + end
            return b"\n".join(lines)

        _rewrite(record.label_path, edit)
        out["on_disk_edit"] = [split, rel, n, text]
        break
    return out


def _all_polygons(record) -> bool:
    """True when the image's label file is all polygon rows: a line added to it is a polygon too."""
    return bool(record.labels) and all(lab.polygon is not None for lab in record.labels)


def _rewrite(path: Path, edit) -> None:
    """``path``'s bytes replaced by ``edit(bytes)``; a read-only file (or folder) is made writable for it, then
    restored."""
    modes = [(p, p.stat().st_mode) for p in (path, path.parent)]
    for p, mode in modes:
        p.chmod(mode | 0o200)
    path.write_bytes(edit(path.read_bytes()))
    for p, mode in modes:
        p.chmod(mode)


def shifted_for_disk(ds_arg: Path, done: dict) -> dict:
    """``done`` with the lines of every image whose label file got :func:`_insert_above_proposal`'s line moved
    down by one (each listing sharing that file: ``a.jpg`` + ``a.png``), so the kept review's export is checked
    against the files as they are now."""
    if not done.get("on_disk_above"):
        return done
    from curate.io.yolo import load_yolo

    split, rel, _line, at = done["on_disk_above"]
    paths = {(r.split, r.rel): r.label_path for r in load_yolo(ds_arg).images}
    changed = paths.get((split, rel))
    out: dict = {}
    for kind, entries in done.items():
        if kind in ("on_disk", "on_disk_above", "on_disk_add", "on_disk_edit"):
            out[kind] = entries
            continue
        out[kind] = []
        for e in entries:
            if len(e) >= 3 and isinstance(e[2], int) and e[2] >= at and paths.get((e[0], e[1])) == changed:
                e = [*e[:2], e[2] + 1, *e[3:]]
            out[kind].append(e)
    return out


def reset_fiftyone(ds_arg: Path) -> None:
    """Delete the dataset's FiftyOne dataset (``edited`` ran on it before): ``tagged`` starts from a fresh audit."""
    from curate.fiftyone.database import connect_database
    from curate.fiftyone.identity import find_fiftyone
    from curate.io.yolo import load_yolo

    connect_database()
    fod = find_fiftyone(load_yolo(ds_arg))
    if fod is not None:
        fod.delete()


class _Problems:
    """What an output check found wrong: a count per kind, and the first few lines to read (called as ``bad(kind,
    text)``, ``n`` problems at once where one line stands for several)."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.details: list[str] = []

    def __call__(self, kind: str, text: str, n: int = 1) -> None:
        self.counts[kind] += n
        if len(self.details) < 12:
            self.details.append(f"{kind}: {text}")


def check_tags(ds_arg: Path, out: Path, done: dict, findings_csv: Path | None) -> dict:
    """The reviewer's tags in an export: every image tagged ``exclude`` absent with its label file (and no label
    file without its image), each ``ok`` mark in curate_ok.json on the line of the written file that holds the box
    it was given for (after the file was renumbered, under the image's new name), none for an excluded image, each
    read back by the audit's own :func:`curate.audit.runner.load_ok_marks` on the export, and (``findings_csv``: a
    ``--fast`` audit of the export) no finding on a marked line; the image tagged ``ok`` (a sample tag) marked under
    its new name, read back, and none of its image-level findings there; the split accepted in a file of polygons
    written as each member's rectangle."""
    import csv

    from curate.audit.runner import load_ok_marks
    from curate.io.yolo import load_yolo

    ds = load_yolo(ds_arg)
    names_out = _names_map(out)
    nc_out = len(names_out) or len(ds.names)
    bad = _Problems()

    paired, _ = _pair_outputs(ds.images, out)
    index = {(r.split, r.rel): i for i, r in enumerate(ds.images)}
    for split, rel in done.get("excluded", []):
        if index.get((split, rel)) in paired:
            bad("excluded-written", f"{rel}: tagged exclude, its image is in the output")
    images = {p.relative_to(out / "images").with_suffix("") for p in (out / "images").rglob("*") if p.is_file()}
    for label in sorted((out / "labels").rglob("*.txt")):
        if label.relative_to(out / "labels").with_suffix("") not in images:
            bad("orphan-label", f"{label.relative_to(out)}: a label file without its image")
    marks_path = out / "curate_ok.json"
    every_mark = json.loads(marks_path.read_text()) if marks_path.is_file() else []
    marks = [m for m in every_mark if m.get("line") is not None]  # a label's; an image's (a sample tag) has none
    image_marks = [m for m in every_mark if m.get("line") is None]

    def written(image: str, line: int) -> tuple[str, tuple[float, ...]] | None:
        lines = _raw_lines(_label_bytes(_label_of(out / image)))
        p = _parse(lines[line - 1], nc_out) if 0 < line <= len(lines) else None
        return (names_out.get(p[0], str(p[0])), _box(p[1])) if p else None

    for m in marks:
        got, own = written(m["image"], int(m["line"])), _row_label(m["label"])
        if got is None:
            bad("ok-dangling", f"{m['image']} line {m['line']}: the marked line is not in the output")
        elif own is None or not _close(_box(own[1]), got[1]):
            bad("ok-mixed", f"{m['image']} line {m['line']}: the mark's label {m['label']!r} is not the line {got}")
    matched: set[int] = set()
    for split, rel, line, name, box in done.get("ok", []):
        i = index.get((split, rel))
        if i not in paired:
            bad("ok-image-missing", f"{rel}: the image with an ok box has no copy in the output")
            continue
        image = paired[i].relative_to(out).as_posix()
        hits = [
            k
            for k, m in enumerate(marks)
            if m["image"] == image
            and written(image, int(m["line"]))
            and written(image, int(m["line"]))[0] == name
            and _close(written(image, int(m["line"]))[1], box)
        ]
        if hits:
            matched.add(hits[0])
            continue
        mine = [(m["line"], m["label"]) for m in marks if m["image"] == image]
        bad("ok-mixed" if mine else "ok-lost", f"{rel} line {line}: ok on {name} {[round(v, 4) for v in box]} is "
            f"not marked at its line in {image} (marks there: {mine})")  # fmt: skip
    for k, m in enumerate(marks):
        if k not in matched:  # e.g. the ok box of an excluded image, addressed to another image's file
            bad("ok-extra", f"{m['image']} line {m['line']}: a mark no kept ok box was given for: {m['label']!r}")
    wanted = set()
    for split, rel in done.get("ok_sample", []):
        i = index.get((split, rel))
        if i not in paired:
            continue  # no copy (excluded): no mark
        image = paired[i].relative_to(out).as_posix()
        wanted.add(image)
        if not any(m["image"] == image for m in image_marks):
            bad("ok-sample-lost", f"{rel}: tagged ok (a sample tag), no image mark for {image}")
    for m in image_marks:
        if m["image"] not in wanted:
            bad("ok-extra", f"{m['image']}: an image mark no sample tag was given for")
    read = load_ok_marks(load_yolo(out)) if every_mark else set()
    for m in every_mark:
        if (m["image"], m["line"] if m["line"] is None else int(m["line"])) not in read:
            bad("ok-not-read", f"{m['image']} line {m['line']}: a later audit does not read the mark")
    if findings_csv is not None and findings_csv.is_file():
        with findings_csv.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                if row["line"] and (row["image"], int(row["line"])) in read:
                    bad("ok-flagged-again", f"{row['image']} line {row['line']}: {row['check']} despite the ok mark")
                image_level = not row["line"] and not row["x"] and row["check"] != "format"
                if image_level and (row["image"], None) in read:
                    bad("ok-flagged-again", f"{row['image']}: {row['check']} despite the image's ok mark")
    for split, rel, line, boxes in done.get("split", []):
        record = ds.images[index[(split, rel)]] if (split, rel) in index else None
        if record is None or index[(split, rel)] not in paired or not record.labels:
            continue
        if not all(lab.polygon is not None for lab in record.labels):
            continue
        rows_out = [_parse(t, nc_out) for t in _raw_lines(_label_bytes(_label_of(paired[index[(split, rel)]])))]
        for box in boxes:
            hit = [p for p in rows_out if p and _close(_box(p[1]), tuple(box))]
            if not hit:
                bad("split-member-missing", f"{rel} line {line}: member {box} not written")
            elif len(hit[0][1]) != 8:
                bad("split-member-outline", f"{rel} line {line}: member {[round(v, 4) for v in box]} written with "
                                            f"{len(hit[0][1]) // 2} points, not its rectangle")  # fmt: skip
    return {"problems": dict(bad.counts), "details": bad.details, "marks": len(every_mark), "read": len(read)}


def _label_bytes(label: Path | None) -> bytes | None:
    return label.read_bytes() if label is not None and label.is_file() else None


def _raw_lines(data: bytes | None) -> list[str]:
    """A label file's lines as curate and Ultralytics number them (split on ``\\n``, ``\\r`` and a BOM dropped)."""
    if not data:
        return []
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return [raw.rstrip(b"\r").decode("utf-8", errors="replace") for raw in data.split(b"\n")]


def _parse(text: str, nc: int) -> tuple[int, tuple[float, ...]] | None:
    """``(class id, numbers)`` of a box or polygon line Ultralytics would train on, else None (a malformed line)."""
    fields = text.split()
    if len(fields) != 5 and not (len(fields) >= 7 and len(fields) % 2 == 1):
        return None
    try:
        cls_f, values = float(fields[0]), tuple(float(v) for v in fields[1:])
    except ValueError:
        return None
    if cls_f != int(cls_f) or not 0 <= cls_f < max(nc, 1) or any(v != v for v in values):
        return None
    x1, y1, x2, y2 = _bbox(values)
    if x2 - x1 <= 0 or y2 - y1 <= 0:
        return None
    return int(cls_f), values


def _bbox(values: tuple[float, ...]) -> tuple[float, float, float, float]:
    if len(values) == 4:
        cx, cy, w, h = values
        return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
    xs, ys = values[0::2], values[1::2]
    return min(xs), min(ys), max(xs), max(ys)


def _box(values: tuple[float, ...]) -> tuple[float, float, float, float]:
    """``cx, cy, w, h`` of a box or polygon line (Ultralytics reads a polygon as its bounding box)."""
    x1, y1, x2, y2 = _bbox(values)
    return (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1


def _close(a, b, tol: float = MATCH_TOL) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b))


def _clip_box(values: tuple[float, ...]) -> tuple[float, float, float, float]:
    """The box clipped to the image, as curate reads a line past the edge (its ``before`` text says that box)."""
    x1, y1, x2, y2 = _bbox(values)
    x1, y1, x2, y2 = max(x1, 0.0), max(y1, 0.0), min(x2, 1.0), min(y2, 1.0)
    return (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1


def _row_label(text: str) -> tuple[int, tuple[float, ...]] | None:
    fields = text.split()
    try:
        return int(fields[0]), tuple(float(v) for v in fields[1:])
    except (ValueError, IndexError):
        return None


def _pair_outputs(records, out: Path) -> tuple[dict[int, Path], list[Path]]:
    """Each input listing (its index) → the output image that is its copy: same split folder, same bytes, and its
    name or the name with ``_k`` added; output images that are no listing's copy."""
    pool: dict[str, list[Path]] = {}
    for p in sorted((out / "images").rglob("*")):
        if p.is_file():
            pool.setdefault(p.parent.relative_to(out / "images").as_posix(), []).append(p)
    claimed: set[Path] = set()
    paired: dict[int, Path] = {}
    for i, r in enumerate(records):
        data = r.path.read_bytes() if r.path.is_file() else None
        name = re.compile(re.escape(r.path.stem) + r"(_\d+)?" + re.escape(r.path.suffix) + "$")
        for p in pool.get(r.split, []):
            if p not in claimed and name.match(p.name) and data is not None and p.read_bytes() == data:
                paired[i] = p
                claimed.add(p)
                break
    extra = [p for ps in pool.values() for p in ps if p not in claimed]
    return paired, extra


def check_on_disk_kept(ds_arg: Path, out: Path, done: dict) -> list[str]:
    """The line :func:`change_on_disk` appended after the review is in the kept review's export: the review is
    merged into the label file as it is now, not written over it. Returns what is wrong (nothing: [])."""
    from curate.io.yolo import load_yolo

    records = load_yolo(ds_arg).images
    paired, _ = _pair_outputs(records, out)
    lost = []
    excluded = {tuple(x) for x in done.get("excluded", [])}
    for split, rel, line, *_ in [done["on_disk"], *([done["on_disk_above"]] if done.get("on_disk_above") else [])]:
        if (split, rel) in excluded:  # a dataset with no other reviewed label file (all-background): not exported
            continue
        i = next((i for i, r in enumerate(records) if (r.split, r.rel) == (split, rel)), None)
        if i is None or i not in paired:
            lost.append(f"on-disk-line-lost: {split} {rel}: no output image")
            continue
        text = (_label_bytes(_label_of(paired[i])) or b"").decode("utf-8", "replace")
        if line not in text.splitlines():
            lost.append(f"on-disk-line-lost: {split} {rel}: {line!r} not in its output")
    return lost


def check_adds(ds_arg: Path, out: Path, done: dict, said: str, *, kept: bool) -> dict:
    """The accepted adds (:func:`_accept_adds`) in an export: each written once, as a line of its class at its box.
    In the kept review's export (``kept``, after :func:`_beside_accepted_adds`): the add whose object was boxed by
    hand since is not written (the hand-drawn line is, once), and a warning naming that image says so; the line
    edited by hand beside another add is there as edited. Returns the problems and their first few lines."""
    from curate.fiftyone.samples import from_fo_box
    from curate.io.yolo import load_yolo

    loaded = load_yolo(ds_arg)
    records, ds_names = loaded.images, list(loaded.names)
    paired, _ = _pair_outputs(records, out)
    index = {(r.split, r.rel): i for i, r in enumerate(records)}
    names_out = _names_map(out)
    nc_out = len(names_out) or len(_names_map(ds_arg if ds_arg.is_dir() else ds_arg.parent))
    bad = _Problems()

    def boxes_in(key: tuple[str, str]) -> list[tuple[str, tuple[float, ...]]] | None:
        i = index.get(key)
        if i not in paired:
            return None
        rows = [_parse(t, nc_out) for t in _raw_lines(_label_bytes(_label_of(paired[i])))]
        return [(names_out.get(p[0], str(p[0])), _box(p[1])) for p in rows if p]

    def count(key: tuple[str, str], name: str, box, tol: float = 1e-3) -> int | None:
        got = boxes_in(key)
        return None if got is None else sum(1 for n, b in got if n == name and _close(b, tuple(box), tol))

    def boxed_in_input(key: tuple[str, str], name: str, box) -> bool:
        """A line of the add's class in the input file boxes its object (curate's ADD_SAME_IOU, 0.5)."""
        from curate.core.overlap import iou_one
        from curate.fiftyone.diff import ADD_SAME_IOU

        x, y, w, h = box
        record = records[index[key]]
        return any(
            ds_names[lab.class_id] == name and iou_one((x, y, x + w, y + h), lab.xyxy) >= ADD_SAME_IOU
            for lab in record.labels
            if 0 <= lab.class_id < len(ds_names)
        )

    excluded = {tuple(x) for x in done.get("excluded", [])}
    hand = done.get("on_disk_add") if kept else None
    label_files = {(r.split, r.rel): r.label_path for r in records}
    # every listing of the file the box was drawn in (``a.jpg`` + ``a.png`` share one): its add is boxed there too
    hand_file = label_files.get(tuple(hand[:2])) if hand is not None else None
    for split, rel, _line, action, label, box in done.get("accept", []):
        if action != "add" or (split, rel) in excluded:
            continue
        want = list(from_fo_box(box))
        n = count((split, rel), label, want)
        if hand is not None and label_files.get((split, rel)) == hand_file:
            if n:
                bad("add-doubled", f"{rel}: the add was written though a box of its object was drawn on disk since")
            _line_text = hand[2].split()
            drawn = _box(tuple(float(v) for v in _line_text[1:]))
            if count((split, rel), label, drawn) != 1:
                bad("hand-box-lost", f"{rel}: the box drawn on disk over the add's object is not written once")
            if "already boxes it" not in said or Path(rel).name not in said:
                bad("add-warning-missing", f"{rel}: no warning that the add was not applied")
            continue
        if n is not None and boxed_in_input((split, rel), label, box):  # a label there already: rightly not added
            if n:
                bad("add-doubled", f"{rel}: the add was written though a line of its class boxes its object")
            if "already boxes it" not in said or Path(rel).name not in said:
                bad("add-warning-missing", f"{rel}: no warning that the add was not applied")
            continue
        if n is None:
            bad("add-image-missing", f"{rel}: no copy of the image with an accepted add")
        elif n != 1:
            bad("add-missing" if n == 0 else "add-doubled", f"{rel}: the accepted add written {n} times")
    edit = done.get("on_disk_edit") if kept else None
    if edit is not None and tuple(edit[:2]) not in excluded:
        split, rel, _n, text = edit
        p = _parse(text, nc_out)
        got = boxes_in((split, rel))
        if p is None or got is None or not any(b == _box(p[1]) or _close(b, _box(p[1])) for _, b in got):
            bad("hand-edit-lost", f"{rel}: the line edited on disk since the review ({text!r}) is not in the output")
    return {"problems": dict(bad.counts), "details": bad.details}


def check_review(
    ds_arg: Path, out: Path, edits: dict | None = None, planted: list | None = None, bar: float | None = None
) -> dict:
    """Check a reviewed export ``out`` of ``ds_arg`` line by line against its changes.csv.

    Every listing's image has its copy in ``out`` (same split, same bytes); an image with no changes.csv row
    has its label file byte for byte (an empty one where it had none); in an image with rows, every input line
    is in the output unchanged or is named by exactly one row (``before`` = the line's box) that says what became
    of it (deleted; edited/relabeled: a line with ``after``'s class and box), an ``added`` row's line is there,
    and no other line is; per-class totals agree with changes.csv; and (``edits``: what
    :func:`review_in_fiftyone` did) every edit made is in changes.csv and the file, and no rejected proposal is.
    Returns counts of each kind of problem and the first few described."""
    import csv

    from curate.io.yolo import load_yolo

    ds = load_yolo(ds_arg)
    names_in = list(ds.names)
    names_out = _names_map(out)
    nc = len(names_in)
    with (out / "changes.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    by_key: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        by_key.setdefault((row["split"], row["image"]), []).append(row)
    bad = _Problems()

    def name_in(c: int) -> str:
        return names_in[c] if 0 <= c < nc else str(c)

    paired, extra = _pair_outputs(ds.images, out)
    for p in extra:
        bad("extra-image", str(p.relative_to(out)))
    totals_in: Counter = Counter()
    totals_out: Counter = Counter()
    delta: Counter = Counter()
    known = {(r.split, r.rel) for r in ds.images}
    for key in by_key:
        if key not in known:
            bad("row-of-no-image", f"{key}")
    for i, record in enumerate(ds.images):
        key = (record.split, record.rel)
        rows_here = by_key.get(key, [])
        excluded = any(r["kind"] == "excluded" for r in rows_here)
        in_bytes = _label_bytes(_label_of(record.path))
        in_lines = _raw_lines(in_bytes)
        parsed_in = {n: _parse(t, nc) for n, t in enumerate(in_lines, start=1) if t.strip()}
        for c, _ in filter(None, parsed_in.values()):
            totals_in[name_in(c)] += 1
        if i not in paired:
            if not excluded:
                bad("unpaired", f"{record.split} {record.rel}: no copy of the image in the output")
            for c, _ in filter(None, parsed_in.values()):  # the excluded row accounts for the image's lines
                delta[name_in(c)] -= 1
            continue
        out_bytes = _label_bytes(_label_of(paired[i]))
        out_lines = [t for t in _raw_lines(out_bytes) if t.strip()]
        parsed_out = [_parse(t, len(names_out) or nc) for t in out_lines]
        for p in filter(None, parsed_out):
            totals_out[names_out.get(p[0], str(p[0]))] += 1
        if not rows_here:
            if (in_bytes or b"") != (out_bytes or b""):
                bad("unreviewed-changed", f"{record.rel}: label file differs but changes.csv has no row for it")
            continue
        # an image with rows: every input line accounted for
        named: dict[int, dict] = {}
        expected_new: list[tuple[str, tuple[float, ...], str]] = []  # (class name, box, why)

        def expect_after(row: dict, why: str, missing: str) -> None:
            """The row's ``after`` label is expected in the output (and in the per-class totals)."""
            after = _row_label(row["after"])
            if after is None:
                bad("bad-row", missing)
                return
            expected_new.append((name_in(after[0]), after[1], why))
            delta[name_in(after[0])] += 1

        for row in rows_here:
            kind = row["kind"]
            if kind == "added":
                expect_after(row, f"added line {row['line']}", f"{record.rel}: added row without a label: {row}")
                continue
            if kind not in ("edited", "relabeled", "deleted", "dropped"):
                continue
            n = int(row["line"]) if row["line"] else 0
            if n in named:
                bad("double-row", f"{record.rel} line {n}: two rows")
                continue
            named[n] = row
            if kind == "dropped":  # a line the reader could not read, left out of the rewritten file: its text
                if not 0 < n <= len(in_lines) or row["before"].split() != in_lines[n - 1].split():
                    if "\ufffd" not in (in_lines[n - 1] if 0 < n <= len(in_lines) else ""):
                        bad("mixed", f"{record.rel} line {n}: dropped row's text {row['before']!r} is not the line's")
                if parsed_in.get(n) is not None:
                    delta[name_in(parsed_in[n][0])] -= 1
                continue
            lab_in = parsed_in.get(n)
            before = _row_label(row["before"])
            if lab_in is None or before is None:
                bad("mixed", f"{record.rel} line {n}: a {kind} row names a line that is not a label: {row['before']}")
                continue
            if before[0] != lab_in[0] or not _close(before[1], _clip_box(lab_in[1])):
                bad(
                    "mixed",
                    f"{record.rel} line {n}: row's before {row['before']!r} is not the line {in_lines[n - 1]!r}",
                )
            delta[name_in(lab_in[0])] -= 1
            if kind != "deleted":
                expect_after(row, f"{kind} line {n}", f"{record.rel} line {n}: {kind} row without an after")
        # match the output's lines: unchanged input lines by their numbers, new ones by their box
        left = [(names_out.get(p[0], str(p[0])), p[1]) if p else ("?", (t,)) for p, t in zip(parsed_out, out_lines)]
        for n, lab in parsed_in.items():
            if n in named:
                continue
            if lab is None:
                bad("dropped-malformed", f"{record.rel} line {n}: {in_lines[n - 1]!r} is not in the rewritten file")
                continue
            want = (name_in(lab[0]), lab[1])
            hit = next((j for j, got in enumerate(left) if got[0] == want[0] and _close(got[1], want[1])), None)
            if hit is None:
                bad("lost", f"{record.rel} line {n}: {in_lines[n - 1]!r} is not in the output")
            else:
                del left[hit]
        for cls_name, box, why in expected_new:
            hit = next(
                (
                    j
                    for j, got in enumerate(left)  # a line past the edge: changes.csv says its clipped box
                    if got[0] == cls_name
                    and got[0] != "?"
                    and (_close(_box(got[1]), box) or _close(_clip_box(got[1]), box))
                ),
                None,
            )
            if hit is None:
                bad("edit-not-written", f"{record.rel}: {why} ({cls_name} {box}) is not in the output")
            else:
                del left[hit]
        for got in left:
            bad("unexplained-line", f"{record.rel}: output line {got} is in no row")
        kinds_out = {len(p[1]) == 4 for p in parsed_out if p}
        kinds_in = {len(p[1]) == 4 for p in parsed_in.values() if p}
        if len(kinds_out) > 1 and len(kinds_in) == 1:
            bad("mixes-rows", f"{record.rel}: the rewritten file mixes polygon and box rows (Ultralytics skips it)")
    for cls_name in set(totals_in) | set(totals_out) | set(delta):
        if totals_in[cls_name] + delta[cls_name] != totals_out[cls_name]:
            bad(
                "class-totals",
                f"{cls_name}: {totals_in[cls_name]} in + {delta[cls_name]} by changes.csv "
                f"!= {totals_out[cls_name]} out",
            )
    if nc < 2:  # one class: a relabel to "the next class" is the same class, no change to find
        edits = edits and {k: v for k, v in edits.items() if k != "relabeled"}
        planted = planted and [p for p in planted if p[3] != "relabel"]
    if edits:
        _check_edits(edits, rows, bad)
    if planted and bar is not None:
        _check_planted(planted, bar, rows, bad)
    return {"problems": dict(bad.counts), "details": bad.details, "rows": len(rows)}


def _check_edits(edits: dict, rows: list[dict], bad: Callable[..., None]) -> None:
    """Every edit :func:`review_in_fiftyone` made is a changes.csv row of its kind; no rejected proposal is."""
    want = {"moved": "edited", "relabeled": "relabeled", "deleted": "deleted"}
    for what, kind in want.items():
        for split, rel, line, _label, _box in edits.get(what, []):
            if not any(r["split"] == split and r["image"] == rel and r["line"] == str(line) and r["kind"] == kind
                       for r in rows):  # fmt: skip
                bad("edit-missing", f"{rel} line {line}: the reviewer's {what} has no {kind} row")
    for split, rel, _line, _label, box in edits.get("added", []):
        if not any(r["split"] == split and r["image"] == rel and r["kind"] == "added" and _row_label(r["after"])
                   and _close(_row_label(r["after"])[1], box) for r in rows):  # fmt: skip
            bad("edit-missing", f"{rel}: the reviewer's added box has no added row")
    for split, rel, line, action, _label, _box in edits.get("accept", []):
        if action != "add" and not any(r["split"] == split and r["image"] == rel and r["line"] == str(line)
                                       and r["source"] == "proposed" for r in rows):  # fmt: skip
            bad("accept-missing", f"{rel} line {line}: the accepted {action} proposal has no proposed row")
    kinds = {"resize": "edited", "split": "edited", "relabel": "relabeled", "delete": "deleted"}
    for split, rel, line, action, _label, _box in edits.get("reject", []):
        if action != "add" and any(r["split"] == split and r["image"] == rel and r["line"] == str(line)
                                   and r["source"] == "proposed" and r["kind"] == kinds.get(action)
                                   for r in rows):  # fmt: skip
            bad("reject-applied", f"{rel} line {line}: the rejected {action} proposal was applied")


def _check_planted(planted: list, bar: float, rows: list[dict], bad: Callable[..., None]) -> None:
    """``--accept-proposals --min-confidence bar``: the most confident planted proposal of each line at or above the
    bar is a ``proposed`` row of its kind on that line; none below it is; each add at or above it is an added row."""
    kinds = {"resize": "edited", "split": "edited", "relabel": "relabeled", "delete": "deleted"}
    best: dict[tuple, list] = {}
    for p in planted:
        split, rel, line, action, _label, _boxes, conf = p
        if line is not None and conf >= bar and conf > best.get((split, rel, line), [0] * 7)[6]:
            best[(split, rel, line)] = p
    for split, rel, line, action, _label, boxes, conf in planted:
        here = [r for r in rows if r["split"] == split and r["image"] == rel and r["source"] == "proposed"]
        if line is None:
            if conf >= bar and not any(r["kind"] == "added" for r in here):
                bad("proposal-not-applied", f"{rel}: the planted add ({conf}) has no proposed added row")
            continue
        on_line = [r for r in here if r["line"] == str(line) and r["kind"] != "added"]
        if best.get((split, rel, line), [None] * 4)[3] == action:
            if not any(r["kind"] == kinds[action] for r in on_line):
                bad("proposal-not-applied", f"{rel} line {line}: the planted {action} ({conf}) has no proposed row")
            if action == "split" and sum(r["kind"] == "added" for r in here) < len(boxes) - 1:
                bad("proposal-not-applied", f"{rel} line {line}: the split's other members are not added rows")
        elif conf < bar and any(r["kind"] == kinds[action] for r in on_line):
            bad("proposal-below-bar", f"{rel} line {line}: the planted {action} ({conf} < {bar}) was applied")


def run_review(command: str, ds: Path, work: Path, env: dict, timeout: float) -> dict:
    """``accept``: export with every proposal (``--min-confidence 0``) and with the default bar (0.9);
    ``edited``: :func:`review_in_fiftyone`, then a plain export. Both after one full audit with FiftyOne per case.
    The cell: the worst command's status, then the problems :func:`check_review` found."""
    steps: list[tuple[str, list[str], Path | None]] = []
    if not (work / "audited").exists():
        fast = ["--fast"] if env.get("ODD_REVIEW_AUDIT") == "fast" else []
        steps.append(("audit", ["audit", str(ds), *fast, "--out", str(work / "report-review")], None))
        steps.append(("plant", [], None))
    if command == "accept":
        for bar in ("0", "0.9"):
            out = work / f"out-accept-{bar}"
            args = ["export", str(ds), "--out", str(out), "--accept-proposals", "--min-confidence", bar]
            steps.append((f"export@{bar}", args, out))
    else:
        steps.append(("review", [], None))
        steps.append(("export", ["export", str(ds), "--out", str(work / "out-edited")], work / "out-edited"))
    result: dict = {"steps": {}, "seconds": 0.0}
    problems: Counter = Counter()
    details: list[str] = []
    status, cell = "ok", "ok"
    for name, args, out in steps:
        if name in ("review", "plant"):
            target = work / ("edits.json" if name == "review" else "planted.json")
            cmd = [sys.executable, str(Path(__file__).resolve()), f"--{name}", str(ds), str(target)]
        else:
            cmd = _curate() + args
        failed = _run_step(name, cmd, work, env, timeout, result)
        if failed:
            return failed
        if name == "audit":
            (work / "audited").touch()
        if out is not None and out.is_dir():
            edits = json.loads((work / "edits.json").read_text()) if command == "edited" else None
            planted = json.loads((work / "planted.json").read_text()) if (work / "planted.json").exists() else None
            bar = float(name.split("@")[1]) if "@" in name else None
            try:
                found = check_review(ds, out, edits, planted, bar)
            except Exception as exc:  # noqa: BLE001 — a checker failure is reported, not fatal
                found = {"problems": {"checker-failed": 1}, "details": [repr(exc)]}
            result["steps"][name]["check"] = found
            problems.update(found["problems"])
            details += [f"{name}: {d}" for d in found["details"]]
    if problems:
        cell += "".join(f" +{k} {n}" for k, n in sorted(problems.items()))
    result.update(status=status, cell=cell, details=details)
    return result


def run_tagged(ds: Path, work: Path, env: dict, timeout: float) -> dict:
    """``tagged``: a fresh audit with FiftyOne (the FiftyOne dataset deleted first when ``edited`` ran on it) and the
    planted proposals, :func:`tag_in_fiftyone`, ``curate export DS --out OUT``; then :func:`change_on_disk` and
    ``curate audit DS --fast``, which keeps the review under a dated name, and ``curate export DS --from-fiftyone
    NAME --out OUT2``. Each output is checked by :func:`check_review` and :func:`check_tags`, after a ``--fast``
    audit of it (``--no-fiftyone``: its findings.csv must not flag a marked line)."""
    fast = ["--fast"] if env.get("ODD_REVIEW_AUDIT") == "fast" else []
    me = [sys.executable, str(Path(__file__).resolve())]
    tags = work / "tags.json"
    steps: list[tuple[str, list[str]]] = []
    if (work / "audited").exists():  # `edited` changed this FiftyOne dataset: start from a fresh one
        steps.append(("reset", [*me, "--reset", str(ds)]))
        (work / "audited").unlink()
    steps += [
        ("audit", _curate() + ["audit", str(ds), *fast, "--out", str(work / "report-tagged")]),
        ("plant", [*me, "--plant", str(ds), str(work / "planted.json")]),
        ("tag", [*me, "--tag", str(ds), str(tags)]),
        ("export", _curate() + ["export", str(ds), "--out", str(work / "out-tagged")]),
        ("ondisk", [*me, "--ondisk", str(ds), str(tags)]),
        ("re-audit", _curate() + ["audit", str(ds), "--fast", "--out", str(work / "report-tagged-2")]),
        ("export-kept", []),  # its command needs the name the re-audit printed
    ]
    result: dict = {"steps": {}, "seconds": 0.0}
    problems: Counter = Counter()
    details: list[str] = []
    said = ""
    for name, cmd in steps:
        out = None
        if name == "export-kept":
            kept = re.search(r"--from-fiftyone (\S+)", said)
            if kept is None:
                problems["review-not-kept"] += 1
                details.append(f"{name}: the re-audit after a reviewed label file changed printed no --from-fiftyone")
                break
            out = work / "out-tagged-kept"
            cmd = _curate() + ["export", str(ds), "--from-fiftyone", kept.group(1), "--out", str(out)]
        elif name == "export":
            out = work / "out-tagged"
        failed = _run_step(name, cmd, work, env, timeout, result)
        if failed:
            return failed
        said = result["steps"][name]["stdout"] + result["steps"][name]["stderr"]
        if name == "audit":
            (work / "audited").touch()
        if out is None:
            continue
        report = work / f"report-{out.name}"
        failed = _run_step(f"audit {out.name}", _curate() + ["audit", str(out), "--fast", "--no-fiftyone", "--out",
                                                             str(report)], work, env, timeout, result)  # fmt: skip
        if failed:
            return failed
        done = json.loads(tags.read_text())
        if name == "export-kept":  # the lines of a file changed above a proposal since the review, as they are now
            done = shifted_for_disk(ds, done)
        try:
            found = check_review(ds, out, done)
            more = check_tags(ds, out, done, report / "findings.csv")
            lost = check_on_disk_kept(ds, out, done) if name == "export-kept" else []
            if lost:
                more["problems"]["on-disk-line-lost"] = len(lost)
                more["details"] += lost
            adds = check_adds(ds, out, done, said, kept=name == "export-kept")
            for kind, n in adds["problems"].items():
                more["problems"][kind] = more["problems"].get(kind, 0) + n
            more["details"] += adds["details"]
        except Exception as exc:  # noqa: BLE001 — a checker failure is reported, not fatal
            found, more = {"problems": {"checker-failed": 1}, "details": [repr(exc)]}, {"problems": {}, "details": []}
        result["steps"][name]["check"] = [found, more]
        for f in (found, more):
            problems.update(f["problems"])
            details += [f"{name}: {d}" for d in f["details"]]
    cell = "ok" + "".join(f" +{k} {n}" for k, n in sorted(problems.items()))
    result.update(status="ok", cell=cell, details=details)
    return result


def _run_step(name: str, cmd: list[str], work: Path, env: dict, timeout: float, result: dict) -> dict | None:
    """Run one step of a review command into ``result``; the cell's result when it failed (else None)."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=timeout, errors="replace")
    except subprocess.TimeoutExpired:
        return {**result, "status": "timeout", "cell": f"timeout ({name})", "seconds": timeout}
    result["seconds"] = round(result["seconds"] + time.perf_counter() - start, 1)
    err = proc.stderr
    last = next((x.strip() for x in reversed(err.splitlines()) if x.strip()), "").removeprefix("error: ")
    result["steps"][name] = {"rc": proc.returncode, "stderr": err[-4000:], "stdout": proc.stdout[-4000:]}
    if "Traceback (most recent call last)" in err:
        return {**result, "status": "traceback", "cell": f"TRACEBACK ({name}): {last[:160]}"}
    if proc.returncode != 0:
        return {**result, "status": "error", "cell": f"error ({name}): {last[:160]}"}
    return None


# ---------------------------------------------------------------- running


def _curate() -> list[str]:
    exe = Path(sys.executable).with_name("curate")
    return [str(exe)] if exe.is_file() else [sys.executable, "-c", "from curate.app.cli import entry; entry()"]


def run_command(command: str, ds: Path, work: Path, env: dict, timeout: float) -> dict:
    if command == "tagged":
        return run_tagged(ds, work, env, timeout)
    if command in REVIEWERS:
        return run_review(command, ds, work, env, timeout)
    out = work / f"out-{command}"
    args = {
        "info": ["info", str(ds)],
        "audit": ["audit", str(ds), "--no-fiftyone", "--out", str(work / "report-full")],
        "fast": ["audit", str(ds), "--fast", "--out", str(work / "report-fast")],
        "export": ["export", str(ds), "--out", str(out)],
        "rebalance": ["rebalance", str(ds), "--out", str(out), "--split", "80/10/10"],
        "backgrounds": ["backgrounds", str(ds), "--out", str(out), "--fraction", "0.2"],
    }[command]
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            _curate() + args, cwd=work, env=env, capture_output=True, text=True, timeout=timeout, errors="replace"
        )
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "cell": "timeout", "seconds": timeout}
    seconds = time.perf_counter() - start
    err = proc.stderr
    tb = "Traceback (most recent call last)" in err
    last = next((x.strip() for x in reversed(err.splitlines()) if x.strip()), "").removeprefix("error: ")
    if tb:
        status, cell = "traceback", f"TRACEBACK: {last[:160]}"
    elif proc.returncode != 0:
        status, cell = "error", f"error: {last[:160]}"
    else:
        status, cell = "ok", "ok"
    result = {
        "status": status,
        "cell": cell,
        "rc": proc.returncode,
        "seconds": round(seconds, 1),
        "stderr": err[-4000:],
    }
    if command in WRITERS and proc.returncode == 0 and out.is_dir():
        lost = compare_lines(label_lines(ds if ds.is_dir() else ds.parent), label_lines(out))
        result["lines"] = lost
        result["cell"] += lost
    return result


def dataset_arg(root: Path) -> Path:
    """What the user would pass: the folder, or the data.yaml when it is not at the top."""
    if _yaml_of(root) is not None and _yaml_of(root).parent != root:
        return _yaml_of(root)
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    ap.add_argument("--commands", default=",".join(COMMANDS))
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per command")
    ap.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it")
    ap.add_argument("--json", type=Path, default=None, help="write every result here")
    ap.add_argument("--list", action="store_true")
    ap.add_argument(
        "--review-audit",
        choices=("full", "fast"),
        default="full",
        help="the audit `accept`/`edited` run first (full: every check and the proposals; fast: `--fast`, quicker; "
        "the planted proposals are the same)",
    )
    ap.add_argument("--review", nargs=2, type=Path, metavar=("DATASET", "EDITS_JSON"), help=argparse.SUPPRESS)
    ap.add_argument("--plant", nargs=2, type=Path, metavar=("DATASET", "PLANTED_JSON"), help=argparse.SUPPRESS)
    ap.add_argument("--tag", nargs=2, type=Path, metavar=("DATASET", "TAGS_JSON"), help=argparse.SUPPRESS)
    ap.add_argument("--ondisk", nargs=2, type=Path, metavar=("DATASET", "TAGS_JSON"), help=argparse.SUPPRESS)
    ap.add_argument("--reset", type=Path, metavar="DATASET", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.review:  # the reviewer's step of `edited`, run in its own process as the App's edits are
        review_in_fiftyone(*args.review)
        return
    if args.plant:
        plant_proposals(*args.plant)
        return
    if args.tag:
        tag_in_fiftyone(*args.tag)
        return
    if args.ondisk:
        change_on_disk(*args.ondisk)
        return
    if args.reset:
        reset_fiftyone(args.reset)
        return
    if args.list:
        for name, fn in CASES.items():
            print(f"{name:22s} {(fn.__doc__ or '').strip().splitlines()[0] if fn.__doc__ else ''}")
        return
    cases = [c for c in args.cases.split(",") if c] or list(CASES)
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        sys.exit(f"unknown case(s): {', '.join(unknown)} (see --list)")
    commands = [c for c in args.commands.split(",") if c]
    if any(c not in COMMANDS for c in commands):
        sys.exit(f"unknown command(s): {', '.join(c for c in commands if c not in COMMANDS)}")
    commands.sort(key=COMMANDS.index)  # `tagged` last: it changes a label file on disk
    top = args.keep or Path(tempfile.mkdtemp(prefix="curate-odd-"))
    top.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        CURATE_CACHE_DIR=str(top / "cache"),
        FIFTYONE_DATABASE_DIR=str(top / "fiftyone-db"),
        FIFTYONE_DEFAULT_DATASET_DIR=str(top / "fiftyone-data"),
        PYTHONPATH=str(REPO),
        ODD_REVIEW_AUDIT=args.review_audit,
        CURATE_DEBUG="1",  # an unexpected exception (caught and worded by the CLI, or a check's) shows its traceback
        COLUMNS="1000",  # the console's lines unwrapped: a one-line error stays one line
    )
    results: dict[str, dict[str, dict]] = {}
    signal.signal(signal.SIGTERM, _stop)  # a round stopped with `kill PID` still writes its table and --json
    keeper = _database_keeper(env) if set(commands) & set(REVIEWERS) else None
    try:
        for case in cases:
            work = top / case
            if work.exists():
                _make_writable(work)
                shutil.rmtree(work)
            work.mkdir(parents=True)
            ds_root = work / "ds"
            try:
                CASES[case](ds_root)
            except Exception as exc:  # noqa: BLE001 — a case that can't be built is reported, not fatal
                results[case] = {"build": {"status": "build-failed", "cell": f"build failed: {exc!r}"}}
                print(f"{case}: build failed: {exc!r}", flush=True)
                continue
            ds = dataset_arg(ds_root)
            results[case] = {}
            for command in commands:
                results[case][command] = run_command(command, ds, work, env, args.timeout)
                r = results[case][command]
                print(f"{case:22s} {command:12s} {r.get('seconds', '')!s:>6} {r['cell']}", flush=True)
    finally:
        if keeper is not None:
            keeper.terminate()
            keeper.wait(timeout=60)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False))
        print()
        print(table(results, commands))
        if args.keep is None:
            _make_writable(top)
            shutil.rmtree(top, ignore_errors=True)


def _stop(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _database_keeper(env: dict) -> subprocess.Popen:
    """A process that holds a connection to the harness's FiftyOne database while the review commands run:
    FiftyOne stops its mongod when its last client exits, and `accept`/`edited` start six processes a case
    that would each wait for a new one."""
    ready = Path(env["FIFTYONE_DATABASE_DIR"]).parent / "keeper-ready"
    ready.unlink(missing_ok=True)
    code = (
        "from curate.fiftyone.database import connect_database as c; c(); import pathlib, sys, time; "
        "pathlib.Path(sys.argv[1]).touch(); time.sleep(10**7)"
    )
    keeper = subprocess.Popen(
        [sys.executable, "-c", code, str(ready)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    # the database started before any command: FiftyOne's database service, a child of the process that starts
    # it, holds that process's stdout open, and `subprocess.run` of a command that started it waited for it
    while not ready.exists() and keeper.poll() is None:
        time.sleep(0.5)
    return keeper


def _make_writable(folder: Path) -> None:
    for p in [folder, *folder.rglob("*")]:
        if not p.is_symlink():
            try:
                p.chmod(p.stat().st_mode | 0o700)
            except OSError:
                pass


def table(results: dict[str, dict[str, dict]], commands: list[str]) -> str:
    """A Markdown table of cases × commands: short cells, with the distinct messages listed under it."""
    rows = ["| case | " + " | ".join(commands) + " |", "|---|" + "---|" * len(commands)]
    notes: dict[str, int] = {}
    for case, per in results.items():
        cells = []
        for c in commands:
            r = per.get(c) or per.get("build")
            if r is None:
                cells.append("")
                continue
            cell = r["cell"]
            short = re.sub(r"^(error|TRACEBACK|build failed): .*?((?: \+lost \d+)?(?: \+mixed)?)$", r"\1\2", cell)
            if short != cell:
                k = notes.setdefault(cell, len(notes) + 1)
                short = f"{short} [{k}]"
            cells.append(short)
        rows.append(f"| {case} | " + " | ".join(cells) + " |")
    rows.append("")
    rows += [f"[{k}] {cell}" for cell, k in notes.items()]
    return "\n".join(rows)


if __name__ == "__main__":
    main()
