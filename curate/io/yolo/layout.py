"""Where a dataset's splits are: its data.yaml (and its spellings), or a folder layout without one; the
error for a dataset that cannot be read at all."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

#: Image suffixes Ultralytics trains on (lower case).
IMAGE_SUFFIXES = frozenset({".bmp", ".dng", ".jpeg", ".jpg", ".mpo", ".png", ".tif", ".tiff", ".webp", ".pfm", ".heic"})
#: data.yaml keys read as splits, and what they are called here.
SPLIT_KEYS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
#: Folder names that mean a split in folder layouts.
SPLIT_DIRS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
YAML_NAMES = ("data.yaml", "data.yml", "dataset.yaml", "dataset.yml")


class DatasetError(Exception):
    """A dataset that cannot be read at all (no images, unreadable data.yaml): one clear line for the user."""


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
    same trailing folders next to the yaml — with a warning, since that is a guess. Last, a path with Windows
    back-slashes (``..\\train\\images``, ``C:\\data\\ds\\train\\images``) is tried again with ``/``, also warned.
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
    if "\\" in entry and os.sep == "/":  # a data.yaml written on Windows: its separators read as folders here
        posix = entry.replace("\\", "/")
        inner: list[str] = []
        found = _resolve_entry(posix, root=root, yaml_dir=yaml_dir, warnings=inner, key=key)
        if found is not None:
            warnings.append(
                f"data.yaml {key}: {entry} read as {posix} (Windows separators; Ultralytics here would not find it)"
            )
            warnings.extend(inner)
            return found
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
    nc = _nc_from(cfg.get("nc"))
    if isinstance(names, dict):
        try:
            keyed = {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError):
            raise DatasetError("data.yaml names: keys must be class ids (0, 1, …)") from None
        if keyed and sorted(keyed) != list(range(len(keyed))):
            # Ultralytics' check_class_names refuses it too ("n-class dataset requires class indices 0-(n-1)"):
            # filling the gaps would guess names, and a key of 10**9 would build a list of 10**9 names
            raise DatasetError(
                f"data.yaml names: class ids {min(keyed)}..{max(keyed)} for {len(keyed)} names; a mapping's keys "
                f"must be 0..{len(keyed) - 1}, each once (Ultralytics refuses this data.yaml too)"
            )
        out = [keyed[i] for i in range(len(keyed))]
    elif isinstance(names, list):
        out = [str(n) for n in names]
    elif names is None:
        out = [str(i) for i in range(nc)] if nc is not None else None
    else:
        raise DatasetError(f"data.yaml names: expected a list or a mapping, got {type(names).__name__}")
    if out is not None and nc is not None and nc != len(out):
        warnings.append(f"data.yaml nc: {nc} but {len(out)} names; using the {len(out)} names")
    if out is not None:
        warnings.extend(_shared_names(out))
    return out


def _nc_from(value) -> int | None:
    """data.yaml's ``nc`` as a count of classes, read as Ultralytics' ``check_det_dataset`` reads it: an integer,
    or an integer written as ``'10'`` or ``10.0``; anything else is a one-line :class:`DatasetError`."""
    if value is None:
        return None
    try:
        nc = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        nc = math.nan
    if not (math.isfinite(nc) and nc >= 0 and nc.is_integer()):
        raise DatasetError(f"data.yaml nc: {value!r} is not a number of classes (expected an integer, 0 or more)")
    return int(nc)


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
