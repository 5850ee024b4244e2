"""Write a dataset as a clean Ultralytics folder (copies, never links), and the rules for where a command
may write: never over, inside or around its input."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from curate.core.dataset import Dataset
from curate.io.yolo.labels import format_label_lines
from curate.io.yolo.layout import DatasetError


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

    ``images/<split>/<file name>``, with ``_1``, ``_2``… added to the stem when two images of a split share a
    stem (``a.jpg`` and ``a.png`` too): Ultralytics finds an image's label file by its stem, so two images with
    one stem would share one label file, and the labels written for one would be read for the other.
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
    """``path``, or with ``_k`` added to its stem, so that no two paths of ``used`` share a stem (``used`` holds
    the stems' paths: ``images/train/a``)."""
    candidate, k = path, 1
    while candidate.with_suffix("") in used:
        candidate = path.with_name(f"{path.stem}_{k}{path.suffix}")
        k += 1
    used.add(candidate.with_suffix(""))
    return candidate


def _copy_image(src: Path, dst: Path) -> None:
    """A copy of its own, never a hard link: a tool that edits the output's images in place (Ultralytics
    re-saves corrupt JPEGs) must not change the user's file. ``copy2`` keeps the modification time, so a
    re-written but identical output keeps the fingerprint the pipeline compares."""
    shutil.copy2(src, dst)
