"""The whole command: surgery → groups → split → cap/oversample in train; its summary and its writer."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

from curate.core import defaults
from curate.core.dataset import Dataset, ImageRecord
from curate.ops.options import RebalanceOptions
from curate.ops.rebalance.classes import Surgery, apply_class_surgery
from curate.ops.rebalance.groups import Grouping, build_groups
from curate.ops.rebalance.options import RebalanceError, split_names
from curate.ops.rebalance.sampling import cap_instances, copy_name, oversample
from curate.ops.rebalance.split import assign_splits, plan_split

NearDuplicates = Callable[[Dataset], Sequence[Sequence[str]]]


@dataclass
class RebalanceResult:
    dataset: Dataset  # the output: records carry their new split; copies have their new file name
    copies: dict[str, Path]  # output record rel of an oversampled copy → the source image it repeats
    surgery: Surgery
    grouping: Grouping
    summary: dict  # what rebalance.json holds


def hashing_near_duplicates(dataset: Dataset) -> list[list[str]]:
    """Near-duplicate clusters from :mod:`curate.vision.hashing` (the audit's cached image signatures)."""
    from curate.vision.hashing import image_signatures, near_duplicate_groups

    sigs = image_signatures(dataset, progress=True)
    return [list(g) for g in near_duplicate_groups(dataset, sigs)]


def one_record_per_file(dataset: Dataset) -> tuple[Dataset, int]:
    """``dataset`` with each image file once (its first record), and how many repeats were dropped.

    Why: a data.yaml may list one folder under several splits (``train: images``, ``val: images``). A
    re-split places every image anew, so the repeats would only be written as extra copies (``a_1.jpg``).
    """
    first: dict[Path, ImageRecord] = {}
    for r in dataset.images:
        first.setdefault(r.path, r)
    repeated = len(dataset.images) - len(first)
    return (replace(dataset, images=list(first.values())), repeated) if repeated else (dataset, 0)


def rebalance(
    dataset: Dataset, options: RebalanceOptions, *, near_duplicates: NearDuplicates | None = None
) -> RebalanceResult:
    """Class surgery, a group-aware stratified split, then ``cap``/``oversample`` in train. Pure: writes nothing.

    ``near_duplicates`` returns clusters of image rels (default: :func:`hashing_near_duplicates` when
    ``options.near_duplicates``); tests pass a stand-in.
    """
    dataset, repeated = one_record_per_file(dataset)
    surgered, surgery = apply_class_surgery(
        dataset,
        keep=options.keep,
        drop=list(options.drop_class),
        merge=options.merges,
        min_instances=options.min_instances,
        empty_images=options.empty_images,
    )
    if not surgered.images:
        raise RebalanceError("no images left after class surgery")
    if dataset.names and not surgered.names:  # nc: 0 is no detection dataset: Ultralytics cannot train on it
        gone = ", ".join(surgery.dropped_classes)
        raise RebalanceError(f"no classes left after class surgery (dropped: {gone})")
    clusters: Sequence[Sequence[str]] = ()
    if options.near_duplicates:
        clusters = (near_duplicates or hashing_near_duplicates)(surgered)
    grouping = build_groups(surgered, near_duplicates=clusters, pattern=options.group_by)
    plan = plan_split(grouping.groups, options.ratios, seed=options.seed)
    split = assign_splits(surgered, grouping, plan)
    split_images = Counter(r.split for r in split.images)
    nc = len(surgered.names)
    train = split.split("train")
    others = [r for r in split.images if r.split != "train"]
    capped: list[str] = []
    if options.cap is not None:
        train, capped = cap_instances(train, options.cap, nc=nc, seed=options.seed)
    copies: dict[str, Path] = {}
    copy_records: list[ImageRecord] = []
    target = None
    if options.oversample is not None:
        picks, target = oversample(
            train, nc=nc, target=None if options.oversample == "median" else int(options.oversample)
        )
        for source, k in picks:
            name = copy_name(source, k)
            rel = f"images/train/{name}"  # where the writer puts it
            copy_records.append(replace(source, path=source.path.with_name(name), rel=rel))
            copies[rel] = source.path
    out = replace(split, images=train + copy_records + others)
    summary = _summary(dataset, out, options, surgery, grouping, split_images, capped, copies, target)
    summary["counts_split"] = _per_class(split)  # after surgery and the split, before cap/oversample
    if repeated:
        summary["notes"].append(f"{repeated} image(s) listed under several splits in the input were written once")
    return RebalanceResult(out, copies, surgery, grouping, summary)


def _per_class(ds: Dataset) -> dict[str, dict[str, int]]:
    counts = {s: ds.instance_counts(s, by_name=True) for s in ds.splits}
    return {n: {s: counts[s][n] for s in ds.splits} for n in ds.names}


def _shares(counter: Mapping[str, int]) -> dict[str, float]:
    total = sum(counter.values()) or 1
    return {s: round(n / total, 4) for s, n in counter.items()}


def _summary(
    before: Dataset,
    after: Dataset,
    options: RebalanceOptions,
    surgery: Surgery,
    grouping: Grouping,
    split_images: Counter,
    capped: list[str],
    copies: dict[str, Path],
    target: int | None,
) -> dict:
    names = split_names(options.ratios)
    sizes = sorted(grouping.groups, key=lambda g: -g.images)
    largest = sizes[0] if sizes else None
    return {
        "input": str(before.root),
        "seed": options.seed,
        "target_ratios": dict(zip(names, options.ratios)),
        "achieved_image_ratios": _shares({s: split_images.get(s, 0) for s in names}),
        "final_image_ratios": _shares(Counter(r.split for r in after.images)),
        "images": {
            "before": dict(Counter(r.split for r in before.images)),
            "after": {s: sum(1 for r in after.images if r.split == s) for s in after.splits},
            "background_after": {
                s: sum(1 for r in after.images if r.split == s and r.is_background) for s in after.splits
            },
        },
        "classes": {"before": list(before.names), "after": list(after.names)},
        "merged": surgery.merged,
        "dropped_classes": surgery.dropped_classes,
        "dropped_rare_classes": surgery.rare_classes,
        "dropped_boxes": surgery.dropped_boxes,
        "edited_label_files": surgery.edited_images,
        "emptied_images": len(surgery.emptied_images),
        "dropped_empty_images": surgery.dropped_images,
        "groups": {
            "count": len(grouping.groups),
            "multi_image": sum(1 for g in grouping.groups if g.images > 1),
            "largest": largest.images if largest else 0,
            "largest_members": list(largest.members[:20]) if largest else [],
            "images_joined_by": grouping.joined_by,
            "group_by": options.group_by,
        },
        "cap": {"cap": options.cap, "dropped_images": capped} if options.cap is not None else None,
        "oversample": {"target": target, "copies": [{"copy": rel, "source": str(src)} for rel, src in copies.items()]}
        if options.oversample is not None
        else None,
        "notes": _notes(after, surgery, options),
        "counts_before": _per_class(before),
        "counts_after": _per_class(after),
    }


def _notes(after: Dataset, surgery: Surgery, options: RebalanceOptions) -> list[str]:
    """One-line remarks for the user: what they may not have expected."""
    notes = []
    background = sum(1 for r in after.images if r.is_background)
    lo, hi = defaults.BACKGROUND_SHARE_ADVICE
    if surgery.emptied_images and options.empty_images == "keep" and background > hi * len(after.images):
        notes.append(
            f"{len(surgery.emptied_images)} images lost all their boxes and were kept as background: {background} of "
            f"{len(after.images)} images ({100 * background / len(after.images):.0f} %) are background, "
            f"above the advised {100 * hi:.0f} %; --empty-images drop removes them"
        )
    for name in surgery.rare_classes:
        notes.append(f"class {name!r} dropped: fewer than {options.min_instances} instances (--min-instances)")
    return notes


def write_rebalanced(result: RebalanceResult, out: str | Path, *, overwrite: bool = False) -> Path:
    """Write the new YOLO folder (``save_yolo``) plus ``rebalance.json``, whole or not at all
    (:func:`curate.io.outputs.atomic_output`). The input is never written to.

    Oversampled copies need their own file names, and ``save_yolo`` names files after ``record.path``,
    so each copy's source image is hard-linked (else copied) under its new name in a staging folder
    next to ``out`` for the duration of the write (named as a temporary output, so a killed run's is
    removed by the next); ``save_yolo`` copies from there.
    """
    from curate.io.outputs import atomic_output
    from curate.io.yolo import check_output_dir, save_yolo

    out = check_output_dir(Path(out), [result.dataset.root], overwrite=overwrite)
    with atomic_output(out, "rebalance") as tmp:
        staging = tmp.parent / f".{out.name}-staging.curate-tmp-{os.getpid()}"
        try:
            images = []
            for i, r in enumerate(result.dataset.images):
                if r.rel in result.copies:
                    dst = staging / str(i) / r.path.name
                    dst.parent.mkdir(parents=True)
                    try:
                        dst.hardlink_to(result.copies[r.rel])
                    except OSError:
                        shutil.copy2(result.copies[r.rel], dst)
                    r = replace(r, path=dst)
                images.append(r)
            save_yolo(replace(result.dataset, images=images), tmp)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        summary = json.dumps(result.summary, indent=2, ensure_ascii=False) + "\n"
        (tmp / "rebalance.json").write_text(summary, encoding="utf-8")
    return out
