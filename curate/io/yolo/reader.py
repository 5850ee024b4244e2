"""The file half: load a whole dataset (images, label files, class names), every malformed thing a format
finding naming its file and line, nothing raised for one bad file."""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from curate.core.dataset import Dataset, ImageRecord, upright_size
from curate.core.findings import Finding
from curate.io import image_files
from curate.io.yolo.labels import parse_label_lines
from curate.io.yolo.layout import (
    IMAGE_SUFFIXES,
    DatasetError,
    _find_yaml,
    _image_files,
    _names_from,
    _Source,
    _sources_from_layout,
    _sources_from_yaml,
    _unlisted_folders,
)


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
        if cfg.get("kpt_shape") is not None:
            # a pose dataset: a line is class, box, then keypoints, and a 2k+1-field line would read as a polygon
            # (a wrong box); read as boxes, an edited line would be written back without its keypoints
            raise DatasetError(
                f"{yaml_path}: a pose dataset (kpt_shape {cfg['kpt_shape']}); curate audits detection labels "
                "(a class and a box a line) and would drop the keypoints of a line it rewrites"
            )
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
