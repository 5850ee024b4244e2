"""Which FiftyOne dataset is a curate dataset's own: its name, its owner root, and the fingerprint of its contents.

The FiftyOne dataset is *persistent* and named ``curate-<name>-<key>`` (:attr:`Dataset.slug`: the key
names the dataset's resolved root and data.yaml), so users find it in their own FiftyOne
(``fo.list_datasets()``, the App), and two folders that share a name never share a FiftyOne dataset; its
``info`` records the root it belongs to, and a command given another root refuses it.

The fingerprint tells whether the FiftyOne copy still matches the files on disk (equal hash: reuse the copy),
and names a stage's input in a pipeline's manifest.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from curate.core.dataset import Dataset
from curate.fiftyone.samples import BRIDGE_VERSION

if TYPE_CHECKING:  # fiftyone is imported lazily: its import costs seconds
    import fiftyone as fo


# --- fingerprint ------------------------------------------------------------------------------------


def fingerprint(dataset: Dataset, *, version: int = BRIDGE_VERSION) -> str:
    """A hash of everything a FiftyOne copy of ``dataset`` is built from; equal hash = reuse the copy.

    Covers, per image in order: split, rel, absolute image path, image file size and mtime (cheap
    stand-in for the pixels: a replaced image changes both), and the label file's bytes (or, for a
    record edited in memory, its labels); plus the class names and the bridge ``version`` (an older one
    tells whether a dataset built by an older curate was loaded from the files as they are now). Reading
    the label files of 2,000 images takes milliseconds; no image is decoded. (A copy of the same data in
    another folder hashes differently: :func:`curate.train.compare.data.content_fingerprint` is the one that
    says "same data anywhere".)
    """
    h = hashlib.sha256()
    h.update(f"curate-fo-v{version}\0".encode())
    h.update("\0".join(dataset.names).encode("utf-8") + b"\1")
    for r in dataset.images:
        try:
            st = r.path.stat()
            img = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            img = "missing"
        h.update(f"{r.split}\0{r.rel}\0{r.path}\0{img}\0".encode("utf-8"))
        if r.edited:
            h.update(repr(r.labels).encode("utf-8"))
        elif r.label_path is not None:
            try:
                h.update(hashlib.sha256(r.label_path.read_bytes()).digest())
            except OSError:
                h.update(b"unreadable")
        h.update(b"\1")
    return h.hexdigest()


def loaded_from_files_as_now(fo_dataset: "fo.Dataset", dataset: Dataset) -> bool:
    """Whether ``fo_dataset`` was loaded from ``dataset``'s files as they are now: its stored fingerprint, computed as
    the curate that built it computed it (its bridge version), still holds (every image's size and time, every label
    file's bytes)."""
    version = int(fo_dataset.info.get("curate_bridge_version", 1))
    return fo_dataset.info.get("curate_fingerprint") == fingerprint(dataset, version=version)


def default_name(dataset: Dataset) -> str:
    """The FiftyOne dataset name for ``dataset``: ``curate-<name>-<key>`` (:attr:`Dataset.slug`), one per
    dataset root, so two folders with the same name never share a FiftyOne dataset."""
    return f"curate-{dataset.slug}"


class IdentityError(ValueError):
    """A FiftyOne dataset that belongs to another dataset root (one line for the CLI)."""


def owner_root(fo_dataset: "fo.Dataset") -> str | None:
    """The dataset root a curate FiftyOne dataset was loaded from (``info["curate_root"]``)."""
    return fo_dataset.info.get("curate_root")


def check_owner(fo_dataset: "fo.Dataset", dataset: Dataset) -> None:
    """Refuse a FiftyOne dataset loaded from another folder: its labels are not this dataset's."""
    root = owner_root(fo_dataset)
    if root is not None and Path(root).resolve() != Path(dataset.root).resolve():
        raise IdentityError(
            f"FiftyOne dataset {fo_dataset.name!r} belongs to {root}, not to {dataset.root}: "
            "refusing to mix their labels"
        )


def find_fiftyone(dataset: Dataset, *, note: Callable[[str], None] | None = None) -> "fo.Dataset | None":
    """``dataset``'s own FiftyOne dataset (:func:`default_name`), or None when there is none yet.

    A dataset built by curate before datasets were named by root (``curate-<name>``) is adopted — renamed
    — when it was loaded from this very root, so a review made with an older curate is not orphaned.
    """
    import fiftyone as fo

    name = default_name(dataset)
    legacy = f"curate-{dataset.name}"
    if not fo.dataset_exists(name) and fo.dataset_exists(legacy):
        old = fo.load_dataset(legacy)
        root = owner_root(old)
        if root is not None and Path(root).resolve() == Path(dataset.root).resolve():
            old.name = name
            if note:
                note(f"FiftyOne dataset {legacy!r} (made by an older curate from this folder) is now {name!r}")
    if not fo.dataset_exists(name):
        return None
    fo_dataset = fo.load_dataset(name)
    check_owner(fo_dataset, dataset)
    return fo_dataset
