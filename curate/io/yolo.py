"""YOLO (Ultralytics / Roboflow) datasets: a pure label-line parser plus the file reader and writer.

Why our own reader: FiftyOne's YOLOv5 importer silently loads 0 samples from real Roboflow exports
(``../train/images`` paths, foreign absolute paths), and Ultralytics' label check drops a whole image
for one bad line. Here every malformed thing becomes a *format finding* naming the file and line, the
good lines of the same file are kept, and nothing raises.
"""

from __future__ import annotations

import fnmatch
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from curate.core import defaults
from curate.core.dataset import SPLITS, Dataset, ImageRecord, Label, upright_size
from curate.core.findings import Finding
from curate.io import image_files

#: Image suffixes Ultralytics trains on (lower case).
IMAGE_SUFFIXES = frozenset({".bmp", ".dng", ".jpeg", ".jpg", ".mpo", ".png", ".tif", ".tiff", ".webp", ".pfm", ".heic"})
#: data.yaml keys read as splits, and what they are called here.
SPLIT_KEYS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
#: Folder names that mean a split in folder layouts.
SPLIT_DIRS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
YAML_NAMES = ("data.yaml", "data.yml", "dataset.yaml", "dataset.yml")


class DatasetError(Exception):
    """A dataset that cannot be read at all (no images, unreadable data.yaml): one clear line for the user."""


@dataclass(frozen=True)
class LineProblem:
    """A malformed label line (``line`` 1-based; 0 = the file as a whole) and why."""

    line: int
    reason: str
    severity: float = 1.0  # 1.0: the line is dropped; lower: cosmetic, the labels were still read


# --------------------------------------------------------------------------------------------------
# Pure half: bytes of one label file -> labels + problems
# --------------------------------------------------------------------------------------------------


def parse_label_lines(
    data: bytes, *, nc: int | None, tolerance: float | None = None
) -> tuple[list[Label], list[LineProblem]]:
    """Parse one YOLO label file's bytes.

    Boxes are ``class cx cy w h``; segmentation lines are ``class x1 y1 … xk yk`` (k ≥ 3), kept as a
    polygon with the box derived from it. A line is read when Ultralytics' ``verify_image_label`` would
    read it: ``cx, cy`` within ``tolerance`` of [0, 1], ``w, h`` at most ``1 + tolerance`` (for a polygon,
    of its bounding box). So a box may reach past the image edge (``0 1.0 0.5 0.2 0.2`` covers x 0.9..1.1):
    the label keeps the part inside the image for the checks and its own numbers for the writer
    (:attr:`Label.raw`). Zero-size boxes and boxes wholly outside the image are problems. Blank lines are
    skipped.
    """
    tol = defaults.COORD_TOLERANCE if tolerance is None else tolerance
    labels: list[Label] = []
    problems: list[LineProblem] = []
    if data.startswith(b"\xef\xbb\xbf"):
        problems.append(LineProblem(1, "UTF-8 byte-order mark (BOM) at the start of the file", 0.2))
        data = data[3:]
    if b"\r\n" in data:
        problems.append(LineProblem(0, "CRLF (Windows) line ends", 0.1))
    for number, raw in enumerate(data.split(b"\n"), start=1):
        raw = raw.rstrip(b"\r")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            problems.append(LineProblem(number, "non-UTF-8 bytes in the line"))
            continue
        if not text.strip():
            continue
        label, reason = _parse_line(text.split(), number, nc=nc, tol=tol)
        if label is None:
            problems.append(LineProblem(number, reason))
        else:
            labels.append(label)
    polygons = [lb.line for lb in labels if lb.polygon is not None]
    if polygons and len(polygons) < len(
        labels
    ):  # Ultralytics' verify_image_label: "labels mix segment and detection rows"
        problems.append(LineProblem(polygons[0], MIXED_ROWS.format(line=polygons[0]), 0.9))
    return labels, problems


#: Ultralytics skips the whole image (not only the line) when its label file mixes the two kinds of rows.
MIXED_ROWS = (
    "the label file mixes polygon rows (the first at line {line}) with box rows: Ultralytics skips the whole image "
    "when training ('labels mix segment and detection rows'); write every row as a box, or every row as a polygon"
)


def _parse_line(fields: list[str], number: int, *, nc: int | None, tol: float) -> tuple[Label | None, str]:
    n = len(fields)
    if n != 5 and not (n >= 7 and n % 2 == 1):
        return None, f"wrong field count: {n} (expected 5 for a box, or 2k+1 with k >= 3 for a polygon)"
    try:
        cls_f = float(fields[0])
        values = list(map(float, fields[1:]))
    except ValueError:
        bad = next(v for v in fields if not _is_number(v))
        return None, f"non-numeric field {bad!r}"
    if cls_f != int(cls_f):
        return None, f"class id {fields[0]!r} is not an integer"
    cls = int(cls_f)
    if cls < 0 or (nc is not None and cls >= nc):
        return None, f"class id {cls} out of range (nc = {nc})" if nc is not None else f"negative class id {cls}"
    if not all(map(math.isfinite, values)):  # C-level: the generator it replaced was a fifth of a line's parse
        return None, "NaN or infinite coordinate"
    own = tuple(values)
    polygon = n > 5
    if polygon:
        xs, ys = own[0::2], own[1::2]
        x1, y1, x2, y2 = min(xs), min(ys), max(xs), max(ys)
        cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
    else:
        cx, cy, w, h = own
    if w <= 0 or h <= 0:
        return (
            None,
            "degenerate polygon (zero width or height)"
            if polygon
            else f"zero or negative width/height (w={w:g}, h={h:g})",
        )
    what = "polygon's box" if polygon else "box"
    # Ultralytics' verify_image_label: cx, cy, w, h <= 1 + 1 %, and >= 0 (cx, cy >= -1 % with w, h >= 0)
    if not (-tol <= cx <= 1 + tol and -tol <= cy <= 1 + tol and w <= 1 + tol and h <= 1 + tol):
        return None, (
            f"{what} outside the image: cx {cx:g}, cy {cy:g}, w {w:g}, h {h:g} (each expected within [0, 1]; "
            "Ultralytics skips the image)"
        )
    label = _clipped(cls, own, polygon=polygon, line=number)
    if label is None:
        return (
            None,
            f"{what} wholly outside the image: "
            f"x {cx - w / 2:.3f}..{cx + w / 2:.3f}, y {cy - h / 2:.3f}..{cy + h / 2:.3f}",
        )
    return label, ""


def _clipped(cls: int, own: tuple[float, ...], *, polygon: bool, line: int) -> Label | None:
    """A line's label as the checks see it: the box (or the polygon's points) clipped to the image; None
    when nothing of it is inside.

    ``raw`` keeps the line's own numbers when clipping changed them, so that the writer puts the line back
    as it was: Ultralytics reads it as written.
    """
    if polygon:
        pts: tuple[float, ...] | None = tuple(min(max(v, 0.0), 1.0) for v in own)
        x1, y1, x2, y2 = min(pts[0::2]), min(pts[1::2]), max(pts[0::2]), max(pts[1::2])
        outside = pts != own
    else:
        pts = None
        cx, cy, w, h = own
        x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
        outside = min(x1, y1) < 0 or max(x2, y2) > 1
        x1, y1, x2, y2 = max(x1, 0.0), max(y1, 0.0), min(x2, 1.0), min(y2, 1.0)
    if x2 - x1 <= 0 or y2 - y1 <= 0:
        return None
    return Label(cls, (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, line, polygon=pts, raw=own if outside else None)


def line_values(label: Label) -> tuple[float, ...]:
    """The numbers a label's line holds: the line's own (``raw``) while the label's geometry is still what
    the reader made of them, else its box or polygon as it is now (moved in review, by a benchmark…)."""
    if label.raw is None:
        return label.values
    again = _clipped(label.class_id, label.raw, polygon=label.polygon is not None, line=label.line)
    if (
        again is not None
        and len(again.values) == len(label.values)
        and all(abs(a - b) <= 1e-9 for a, b in zip(again.values, label.values))
    ):
        return label.raw
    return label.values


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def format_label(label: Label) -> str:
    """One label as a YOLO line (polygon lines for segmentation labels); a label the reader clipped to the
    image is written with its line's own numbers while its box has not moved (:func:`line_values`)."""
    return " ".join([str(label.class_id), *(f"{v:.6g}" for v in line_values(label))])


def format_label_lines(labels: list[Label]) -> str:
    return "".join(format_label(lb) + "\n" for lb in labels)


# --------------------------------------------------------------------------------------------------
# Finding where the splits are
# --------------------------------------------------------------------------------------------------


@dataclass
class _Source:
    """One split's image source: a folder, or a .txt list of images, or a list of those."""

    split: str
    entries: list[Path]


def _find_yaml(folder: Path) -> Path | None:
    for name in YAML_NAMES:
        if (folder / name).is_file():
            return folder / name
    return None


def _resolve_entry(entry: str, *, root: Path, yaml_dir: Path, warnings: list[str], key: str) -> Path | None:
    """Where a data.yaml split entry really is here.

    Tried in order: relative to ``path:``, relative to the yaml's folder, Roboflow's ``../train/images``
    read as ``train/images`` next to the yaml, and for foreign absolute paths (another machine's) the
    same trailing folders next to the yaml — with a warning, since that is a guess.
    """
    p = Path(entry)
    candidates: list[Path] = [p] if p.is_absolute() else [root / p, yaml_dir / p]
    if not p.is_absolute() and entry.startswith("../"):
        candidates.append(yaml_dir / entry[3:])
    for c in candidates:
        if c.exists():
            return c.resolve()
    parts = p.parts
    for k in (2, 1, 3):
        if len(parts) > k:
            c = yaml_dir.joinpath(*parts[-k:])
            if c.exists():
                warnings.append(f"data.yaml {key}: {entry} does not exist here; using {c} next to data.yaml")
                return c.resolve()
    warnings.append(f"data.yaml {key}: {entry} not found; split skipped")
    return None


def _sources_from_yaml(cfg: dict, yaml_path: Path, warnings: list[str]) -> tuple[Path, list[_Source]]:
    yaml_dir = yaml_path.parent.resolve()
    root = yaml_dir
    if cfg.get("path"):
        p = Path(str(cfg["path"]))
        p = p if p.is_absolute() else (yaml_dir / p)
        if p.exists():
            root = p.resolve()
        else:
            warnings.append(f"data.yaml path: {cfg['path']} does not exist here; using the yaml's folder")
    sources: list[_Source] = []
    for key, split in SPLIT_KEYS.items():
        value = cfg.get(key)
        if not value:
            continue
        items = value if isinstance(value, list) else [value]
        entries = [
            r
            for item in items
            if (r := _resolve_entry(str(item), root=root, yaml_dir=yaml_dir, warnings=warnings, key=key))
        ]
        if entries:
            sources.append(_Source(split, entries))
    return root, sources


def _sources_from_layout(folder: Path) -> list[_Source]:
    """Folder layouts without a yaml: Ultralytics ``images/<split>``, Roboflow ``<split>/images``, flat ``images/``."""
    sources: list[_Source] = []
    images = folder / "images"
    if images.is_dir():
        subs = [d for d in sorted(images.iterdir()) if d.is_dir() and d.name.lower() in SPLIT_DIRS]
        if subs:
            return [_Source(SPLIT_DIRS[d.name.lower()], [d]) for d in subs]
        return [_Source("train", [images])]
    for d in sorted(folder.iterdir()):
        if d.is_dir() and d.name.lower() in SPLIT_DIRS and (d / "images").is_dir():
            sources.append(_Source(SPLIT_DIRS[d.name.lower()], [d / "images"]))
    return sources


def _unlisted_folders(folder: Path, sources: list[_Source]) -> list[str]:
    """One warning per split folder of the usual layouts beside data.yaml that holds images but that data.yaml
    does not list (a Roboflow export's ``test/`` left out of its yaml): curate reads what the yaml lists, as
    Ultralytics does, and a user should know what that leaves out."""
    listed = {e.resolve() for src in sources for e in src.entries}
    out = []
    for src in _sources_from_layout(folder):
        for entry in src.entries:
            if entry.resolve() in listed:
                continue
            n = len(_image_files(entry))
            if n:
                rel = entry.relative_to(folder).as_posix()
                out.append(
                    f"{rel} holds {n} images that data.yaml does not list: "
                    f"not read (add `{src.split}: {rel}` to audit them)"
                )
    return out


def _names_from(cfg: dict, warnings: list[str]) -> list[str] | None:
    names = cfg.get("names")
    nc = cfg.get("nc")
    if isinstance(names, dict):
        try:
            keyed = {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError):
            raise DatasetError("data.yaml names: keys must be class ids (0, 1, …)") from None
        size = max(keyed) + 1 if keyed else 0
        out = [keyed.get(i, str(i)) for i in range(size)]
    elif isinstance(names, list):
        out = [str(n) for n in names]
    elif names is None:
        out = [str(i) for i in range(int(nc))] if nc is not None else None
    else:
        raise DatasetError(f"data.yaml names: expected a list or a mapping, got {type(names).__name__}")
    if out is not None and nc is not None and int(nc) != len(out):
        warnings.append(f"data.yaml nc: {nc} but {len(out)} names; using the {len(out)} names")
    if out is not None:
        warnings.extend(_shared_names(out))
    return out


def _shared_names(names: list[str]) -> list[str]:
    """One warning per name given to several class ids.

    Why: Ultralytics accepts it, but everything that picks classes by name (``rebalance --keep-classes``,
    ``--merge``) cannot tell those ids apart, and ``rebalance`` writes them as one class.
    """
    ids: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        ids.setdefault(n, []).append(i)
    return [
        f"data.yaml names: {n!r} names classes {', '.join(map(str, k))}; rebalance writes them as one class"
        for n, k in ids.items()
        if len(k) > 1
    ]


# --------------------------------------------------------------------------------------------------
# File half: load a whole dataset
# --------------------------------------------------------------------------------------------------


def load_yolo(source: str | Path) -> Dataset:
    """Read a YOLO dataset from a folder or a data.yaml. Never raises for bad labels: they become findings.

    Raises :class:`DatasetError` (one line) only when there is nothing to read at all.
    """
    source = Path(source).expanduser()
    if not source.exists():
        raise DatasetError(f"{source}: no such file or folder")
    warnings: list[str] = []
    cfg: dict = {}
    yaml_path: Path | None = None
    if source.is_file():
        if source.suffix.lower() not in (".yaml", ".yml"):
            raise DatasetError(f"{source}: expected a dataset folder or a data.yaml")
        yaml_path = source
    else:
        yaml_path = _find_yaml(source)
    if yaml_path is not None:
        try:
            loaded = yaml.safe_load(yaml_path.read_text(encoding="utf-8-sig"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise DatasetError(f"{yaml_path}: unreadable YAML ({str(exc).splitlines()[0]})") from None
        cfg = loaded if isinstance(loaded, dict) else {}
        root, sources = _sources_from_yaml(cfg, yaml_path, warnings)
        if not sources and source.is_dir():
            sources = _sources_from_layout(source)
        else:
            warnings += _unlisted_folders(yaml_path.parent, sources)
    else:
        root = source.resolve()
        sources = _sources_from_layout(root)
    if not sources:
        raise DatasetError(
            f"{source}: no images found (expected images/<split>/, <split>/images/, images/ or a data.yaml)"
        )
    names = _names_from(cfg, warnings)
    if names is None:
        names = _names_from_classes_txt(root)
    nc = len(names) if names is not None else None
    name = (yaml_path.parent if yaml_path else root).resolve().name
    ds = Dataset(root=root, name=name, names=names or [], yaml_path=yaml_path, warnings=warnings)
    label_dirs: dict[str, _LabelDir] = {}
    for src in sources:
        images = _list_images(src, root, ds)
        if not images:  # said, as a split whose folder is missing is (_resolve_entry)
            folders = ", ".join(_rel(e, root) for e in src.entries)
            warnings.append(f"{src.split} split: {folders} holds no images; split skipped")
        for image in images:
            label_file = _label_file(str(image))
            record = _read_record(image, label_file, src.split, root, nc, ds)
            folder, name = os.path.split(label_file)
            label_dir = label_dirs.setdefault(folder, _LabelDir())
            if record.label_path is not None:
                label_dir.read.add(name)
                label_dir.split = label_dir.split if label_dir.split is not None else record.split
            ds.images.append(record)
    if names is None:  # no names anywhere: number the classes seen
        top = max((lb.class_id for _, lb in ds.boxes()), default=-1)
        ds.names = [str(i) for i in range(top + 1)]
        warnings.append("no class names (no data.yaml names or classes.txt): classes are numbered")
    _orphan_labels(label_dirs, root, ds)
    _duplicate_stems(ds)
    if not ds.images:
        raise DatasetError(f"{source}: the dataset's split folders hold no images")
    return ds


def _names_from_classes_txt(root: Path) -> list[str] | None:
    p = root / "classes.txt"
    if p.is_file():
        return [ln.strip() for ln in p.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    return None


def _list_images(src: _Source, root: Path, ds: Dataset) -> list[Path]:
    images: list[Path] = []
    for entry in src.entries:
        if entry.is_dir():
            images.extend(_image_files(entry))
        elif entry.suffix.lower() == ".txt":
            for number, line in enumerate(entry.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
                line = line.strip()
                if not line:
                    continue
                p = Path(line)
                p = p if p.is_absolute() else (entry.parent / p)
                if p.is_file():
                    images.append(p.resolve())
                else:
                    ds.findings.append(
                        Finding(
                            src.split, _rel(entry, root), "format", 1.0, f"listed image not found: {line}", line=number
                        )
                    )
        elif entry.suffix.lower() in IMAGE_SUFFIXES:
            images.append(entry)
    return sorted(set(images))


def _image_files(folder: Path) -> list[Path]:
    """The files under ``folder`` (any depth) with an image suffix: what
    ``[p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]`` found, in another order.

    Why: pathlib made a Path object and a ``stat`` call for every file (15 µs a file); ``os.scandir``
    knows each entry's type without a ``stat``. It walks as ``rglob`` does: folders linked to are listed
    but not entered, a folder it may not read (PermissionError) is skipped; the suffix is pathlib's (the
    name's last dot, unless it is the name's first or last character); links to files count as files.
    """
    found: list[Path] = []
    todo = [folder]
    while todo:
        here = todo.pop()
        try:
            with os.scandir(here) as listing:
                entries = list(listing)
        except PermissionError:
            continue
        for entry in entries:
            name = entry.name
            dot = name.rfind(".")
            if 0 < dot < len(name) - 1 and name[dot:].lower() in IMAGE_SUFFIXES and entry.is_file():
                found.append(here / name)
            elif entry.is_dir() and not entry.is_symlink():
                todo.append(here / name)
    return found


def _label_file(image: str) -> str:
    """Ultralytics' rule: the last ``/images/`` in the path becomes ``/labels/``, suffix ``.txt``.

    On the string of a pathlib path, with no Path objects: building and parsing them three times an image
    was a tenth of reading a dataset. The string is pathlib's (no ``.`` parts, no doubled or trailing
    separator), so its folders are its ``parts``, and the suffix rule is pathlib's ``with_suffix``: the
    name's last dot, unless it is the name's first or last character.
    """
    folder, name = os.path.split(image)
    k = f"{os.sep}{folder}{os.sep}".rfind(f"{os.sep}images{os.sep}")
    if k >= 0:
        folder = f"{folder[:k]}labels{folder[k + 6 :]}"
    dot = name.rfind(".")
    stem = name[:dot] if 0 < dot < len(name) - 1 else name
    return os.path.join(folder, f"{stem}.txt")


def _rel(path: Path | str, root: Path) -> str:
    """``path`` relative to ``root`` with ``/``: ``os.path.relpath``'s result is already normalised (no
    ``.`` parts, no doubled separators), so only Windows' separators need turning."""
    rel = os.path.relpath(path, root)
    return rel if os.sep == "/" else rel.replace(os.sep, "/")


def _read_record(image: Path, label_file: str, split: str, root: Path, nc: int | None, ds: Dataset) -> ImageRecord:
    """One image's record: its header checked, its label file (``label_file``, :func:`_label_file`) read."""
    rel = _rel(image, root)
    label_path = Path(label_file)
    record = ImageRecord(split=split, path=image, rel=rel, label_path=label_path if label_path.is_file() else None)
    _check_image_header(record, ds)
    if record.label_path is None:
        return record  # a background image: legitimate, counted by `info`
    try:
        with open(label_file, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        ds.findings.append(
            Finding(
                split,
                rel,
                "format",
                1.0,
                f"label file unreadable: {exc.strerror}",
                data={"label_file": _rel(label_path, root)},
            )
        )
        return record
    record.labels, problems = parse_label_lines(data, nc=nc)
    for p in problems:
        ds.findings.append(
            Finding(
                split,
                rel,
                "format",
                p.severity,
                p.reason,
                line=p.line or None,
                data={"label_file": _rel(label_path, root)},
            )
        )
    return record


def _check_image_header(record: ImageRecord, ds: Dataset) -> None:
    """Cheap header and tail read (no pixel decode): zero-byte, unidentifiable, truncated and oversized files,
    upright size cached for later.

    A plain JPEG's size is read from its first bytes (:func:`plain_jpeg_size`): PIL's ``Image.open`` cost
    70 µs an image, a fifth of reading a dataset. Anything else, or any doubt, goes to PIL as before. The
    file's last few KB are read in the same open and checked for its format's end by the audit's own rule
    (:func:`curate.io.image_files.cut_short`).
    """
    from PIL import Image, UnidentifiedImageError

    head, tail, length = _ends(record.path)
    try:
        if not head and record.path.stat().st_size == 0:
            ds.findings.append(Finding(record.split, record.rel, "format", 1.0, "image file is empty (0 bytes)"))
            return
        why = image_files.cut_short(head, tail, length)
        if why is not None:
            ds.findings.append(Finding(record.split, record.rel, "format", 0.9, why))
        size = plain_jpeg_size(head)
        if size is None:
            image_files.quiet_pil()
            with Image.open(record.path) as im:
                size = upright_size(im)
        record._size = size
        large = image_files.too_large(*size)
        if large is not None:
            ds.findings.append(Finding(record.split, record.rel, "format", large[0], large[1]))
    except Image.DecompressionBombError as exc:
        why = f"image too large: {exc} PIL refuses to open it, and Ultralytics skips it"
        ds.findings.append(Finding(record.split, record.rel, "format", 1.0, why))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        ds.findings.append(Finding(record.split, record.rel, "format", 1.0, f"unreadable image: {exc}"))
    except Exception as exc:  # noqa: BLE001 — a PIL plugin (Ultralytics registers HEIF) may raise anything
        ds.findings.append(
            Finding(record.split, record.rel, "format", 1.0, f"unreadable image: {type(exc).__name__}: {exc}")
        )


#: How much of an image :func:`plain_jpeg_size` looks at: a JPEG's segments before its first scan without
#: EXIF or ICC blocks (which go to PIL anyway) take a few hundred bytes.
JPEG_HEAD_BYTES = 4096


def _ends(path: Path) -> tuple[bytes, bytes, int]:
    """The first :data:`JPEG_HEAD_BYTES` of a file, its last :data:`curate.io.image_files.TAIL_BYTES` and its
    size; empty when it is empty or can't be read (the caller then asks ``stat`` and PIL, which report why
    as before). Read first: a file with bytes needs no ``stat``."""
    try:
        return image_files.read_ends(os.fspath(path), JPEG_HEAD_BYTES)
    except OSError:
        return b"", b"", 0


def plain_jpeg_size(head: bytes) -> tuple[int, int] | None:
    """``(width, height)`` of a plain JPEG from its first bytes; None whenever PIL has to decide.

    "Plain": every segment before the first scan is one PIL's JPEG reader reads without a doubt (start of
    frame 0-2 with 8-bit samples and 1, 3 or 4 components, quantization and Huffman tables, restart
    interval, comments, application blocks) and none is EXIF (whose orientation turns the size), an ICC
    profile, a multi-picture or a Photoshop block (which PIL parses further). For such a file
    ``Image.open`` gives exactly this size and no EXIF, so :func:`upright_size` is this size. Anything
    else — another format, a marker out of place, a segment past ``head``, a bad table — returns None and
    the caller asks PIL, so that what is read and every error message stay PIL's. Tested against PIL on
    generated variants, truncations and corrupted bytes.
    """
    if not head.startswith(b"\xff\xd8\xff"):
        return None
    size: tuple[int, int] | None = None
    pos, end = 2, len(head)
    while pos + 4 <= end:
        if head[pos] != 0xFF:
            return None
        marker = head[pos + 1]
        seg_end = pos + 2 + ((head[pos + 2] << 8) | head[pos + 3])
        if seg_end < pos + 4 or seg_end > end:
            return None
        body = head[pos + 4 : seg_end]
        if marker == 0xDA:  # start of scan: PIL's header read ends here
            return size
        if 0xE0 <= marker <= 0xEF:
            if not _plain_app(marker, body):
                return None
        elif marker in (0xC0, 0xC1, 0xC2):
            if len(body) < 6 or body[0] != 8 or body[5] not in (1, 3, 4):
                return None
            width, height = (body[3] << 8) | body[4], (body[1] << 8) | body[2]
            if width == 0 or height == 0:
                return None
            size = (width, height)
        elif marker == 0xDB:
            if not _plain_dqt(body):
                return None
        elif marker not in (0xC4, 0xDD, 0xFE):  # Huffman tables, restart interval, comment
            return None
        pos = seg_end
    return None


def _plain_app(marker: int, body: bytes) -> bool:
    """An application block PIL stores without parsing it further (or parses without a possible error)."""
    if marker == 0xE0 and body.startswith(b"JFIF") or marker == 0xEE and body.startswith(b"Adobe"):
        return len(body) >= 7  # PIL reads a 16-bit version at offset 5
    if marker == 0xE1:
        return not body.startswith(b"Exif\0\0")
    if marker == 0xE2:
        return not body.startswith((b"ICC_PROFILE\0", b"MPF\0"))
    if marker == 0xED:
        return not body.startswith(b"Photoshop 3.0\0")
    return True


def _plain_dqt(body: bytes) -> bool:
    """Quantization tables PIL reads without its "bad quantization table marker" error: each one whole."""
    pos = 0
    while pos < len(body):
        pos += 1 + (64 if body[pos] < 16 else 128)
        if pos > len(body):
            return False
    return True


@dataclass
class _LabelDir:
    """A folder the images' label files are looked for in: the names of those read, and the split of the first."""

    read: set[str] = field(default_factory=set)
    split: str | None = None


def _orphan_labels(label_dirs: dict[str, _LabelDir], root: Path, ds: Dataset) -> None:
    """A finding for each ``*.txt`` in a label folder that no image's label path names (but ``classes.txt``).

    Folders in path order, files by name, as ``sorted(Path.glob("*.txt"))`` listed them; the names are
    compared as strings with those read (no Path object a file). The split is that of the first image
    whose label file in the folder was read.
    """
    for folder in sorted(label_dirs, key=Path):
        d = Path(folder)
        if not d.is_dir():
            continue
        split = label_dirs[folder].split or ""
        read = label_dirs[folder].read
        for name in sorted(_glob_names(d, "*.txt")):
            if name not in read and name != "classes.txt":
                ds.findings.append(Finding(split, _rel(d / name, root), "format", 1.0, "label file without an image"))


def _glob_names(folder: Path, pattern: str) -> list[str]:
    """Names of the entries of ``folder`` that ``folder.glob(pattern)`` yields, for a pattern without ``/``:
    fnmatch's rule (case-sensitive on POSIX, as pathlib's), files and folders alike, none when unreadable."""
    try:
        with os.scandir(folder) as entries:
            return fnmatch.filter([e.name for e in entries], pattern)
    except PermissionError:
        return []


def _duplicate_stems(ds: Dataset) -> None:
    """Different image files that map to one label file (``a.jpg`` and ``a.png``): Ultralytics gives both its boxes.

    One file listed under several splits (``train: images`` and ``val: images``) shares its label file
    with itself: that is leakage, which the near-duplicate check reports, not a stem clash.
    """
    by_label: dict[str, list[ImageRecord]] = {}
    for r in ds.images:
        by_label.setdefault(_label_file(str(r.path)), []).append(r)
    for label, records in by_label.items():
        files = list(dict.fromkeys(r.path for r in records))
        if len(files) > 1:
            names = ", ".join(f.name for f in files)
            for r in records:
                ds.findings.append(
                    Finding(r.split, r.rel, "format", 1.0, f"images with the same stem share one label file: {names}")
                )


# --------------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------------


class WriteError(DatasetError):
    """Refused to write (over the input, into a non-empty folder)."""


def _inside(a: Path, b: Path) -> bool:
    try:
        a.relative_to(b)
        return True
    except ValueError:
        return False


def check_output_dir(out: Path, inputs: list[Path], *, overwrite: bool = False) -> Path:
    """Refuse to write into or over an input; refuse a non-empty folder unless ``overwrite``."""
    out = check_outside_inputs(out, inputs)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise WriteError(f"refusing to write {out}: folder exists and is not empty (use a new folder)")
        shutil.rmtree(out)
    return out


def check_outside_inputs(out: Path, inputs: list[Path], *, may_contain: bool = False) -> Path:
    """``out`` resolved; refused (:class:`WriteError`) when it is an input or inside one, and, unless
    ``may_contain``, when it contains one (a command that clears folders in its output could delete it).

    Why every command checks, including the default ``reports/`` folder: ``cd DS && curate audit .``
    would otherwise write reports into the user's dataset.
    """
    out = Path(out).expanduser().resolve()
    for src in inputs:
        src = Path(src).resolve()
        if out == src or _inside(out, src):
            raise WriteError(f"refusing to write {out}: it is inside the input {src}")
        if not may_contain and _inside(src, out):
            raise WriteError(f"refusing to write {out}: it contains the input {src}")
    return out


def save_yolo(dataset: Dataset, out: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``dataset`` to a NEW folder in the Ultralytics layout (``images/<split>``, ``labels/<split>``).

    Unedited label files are copied byte for byte; edited ones are rewritten; background images get an
    empty label file; images are copied (:func:`_copy_image`). data.yaml uses relative paths (no ``path:``
    key, so Ultralytics resolves them next to the yaml). Writes straight into ``out``: commands wrap it in
    :func:`curate.io.outputs.atomic_output` so that a killed run leaves no half-written folder.
    """
    out = check_output_dir(Path(out), [dataset.root], overwrite=overwrite)
    out.mkdir(parents=True, exist_ok=True)
    for record, image_rel in zip(dataset.images, output_image_paths(dataset)):
        image_dst = out / image_rel
        label_dst = out / "labels" / record.split / (image_dst.stem + ".txt")
        image_dst.parent.mkdir(parents=True, exist_ok=True)
        label_dst.parent.mkdir(parents=True, exist_ok=True)
        _copy_image(record.path, image_dst)
        if record.edited or record.label_path is None:
            label_dst.write_text(format_label_lines(record.labels), encoding="utf-8", newline="\n")
        else:
            shutil.copyfile(record.label_path, label_dst)
    write_data_yaml(out, dataset.names, [s for s in dataset.splits])
    return out


def output_image_paths(dataset: Dataset) -> list[Path]:
    """Where :func:`save_yolo` puts each image (relative to the output folder), in ``dataset.images`` order.

    ``images/<split>/<file name>``, with ``_1``, ``_2``… added when two images of a split share a name.
    """
    used: set[Path] = set()
    return [_unique(Path("images") / r.split / r.path.name, used) for r in dataset.images]


def write_data_yaml(out: Path, names: list[str], splits: list[str]) -> Path:
    cfg: dict = {s: f"images/{s}" for s in splits}
    cfg["nc"] = len(names)
    cfg["names"] = {i: n for i, n in enumerate(names)}
    path = out / "data.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def _unique(path: Path, used: set[Path]) -> Path:
    candidate, k = path, 1
    while candidate in used:
        candidate = path.with_name(f"{path.stem}_{k}{path.suffix}")
        k += 1
    used.add(candidate)
    return candidate


def _copy_image(src: Path, dst: Path) -> None:
    """A copy of its own, never a hard link: a tool that edits the output's images in place (Ultralytics
    re-saves corrupt JPEGs) must not change the user's file. ``copy2`` keeps the modification time, so a
    re-written but identical output keeps the fingerprint the pipeline compares."""
    shutil.copy2(src, dst)


__all__ = [
    "DatasetError",
    "WriteError",
    "LineProblem",
    "parse_label_lines",
    "format_label",
    "format_label_lines",
    "load_yolo",
    "save_yolo",
    "check_output_dir",
    "check_outside_inputs",
    "write_data_yaml",
    "output_image_paths",
    "SPLITS",
]
