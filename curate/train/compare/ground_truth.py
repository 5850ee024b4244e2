"""How far the test set's own labels can be trusted: the audit's ``--fast`` checks on them, and a reviewed copy
of them (``--test-labels``) matched image by image.

Why: both models are scored against the test labels, so a wrong test label makes a right prediction count as a
miss and a wrong one as a hit. Real labels are far from clean (RECD 2025: at least 18 % missing or inaccurate),
and a model trained on cleaned data is hurt most where it learned to disagree with such errors. Saying how many
test labels look wrong, and scoring both models on the corrected labels too, shows how much of a difference
(or of its absence) is the test set's.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from curate.core.dataset import Dataset, ImageRecord
from curate.train.compare.settings import CompareError


def audit_labels(dataset: Dataset, records: list[ImageRecord], out: Path) -> dict:
    """The ``curate audit --fast`` checks (geometry, hashes; no pixel model, no FiftyOne, no report) on the
    dataset the test images ``records`` come from, counted on those images; the audit's findings.csv/json and
    the test images' ``test-findings.csv`` written to ``out``.

    The whole dataset rather than the test images alone: the box model learns what a right box of this dataset
    looks like from all of its boxes, and from a test split's few it misses most planted errors (bccd-blood-cells:
    64 of 144 planted test errors flagged from the test split alone, 89 with its train split, in 1.2 s and 3.2 s;
    benchmarks/README.md, *Uplift*).

    Returns what compare.json keeps: labels, suspect labels (those with at least one error finding at its check's
    threshold; a note such as ``border_cut`` is a fact, not an error), their share, suspect labels per check (most
    first), the checks not run and the findings file.
    """
    from curate.audit.runner import run_audit
    from curate.core.findings import is_note, write_csv

    result = run_audit(dataset, out_dir=out, fast=True, fiftyone=False, report=False)
    keep = {r.rel for r in records}
    on_test = [f for f in result.findings if f.image in keep]
    flagged = [f for f in on_test if f.line is not None and not is_note(f)]  # a box cut by the border is no error
    suspect = {(f.image, f.line) for f in flagged}
    kinds = Counter(check for check, _, _ in {(f.check, f.image, f.line) for f in flagged})
    labels = sum(len(r.labels) for r in records)
    return {
        "labels": labels,
        "suspect": len(suspect),
        "share": len(suspect) / labels if labels else 0.0,
        "kinds": dict(kinds.most_common()),
        "not_run": dict(result.skipped),
        "findings": str(write_csv(on_test, out / "test-findings.csv")),
    }


def suspect_line(audit: dict) -> str:
    """One sentence: ``3 of 28 test labels (11 %) look wrong to the audit's --fast checks (duplicate 2, …)``."""
    kinds = ", ".join(f"{k} {n}" for k, n in list(audit["kinds"].items())[:3])
    return (
        f"{audit['suspect']} of {audit['labels']} test labels ({audit['share']:.0%}) look wrong to the audit's "
        f"--fast checks" + (f" ({kinds})" if kinds else "") + f": {audit['findings']}"
    )


@dataclass
class Corrected:
    """The test images with the labels of a reviewed copy, and what the review changed."""

    dataset: Dataset  # the reviewed copy (its class names are the labels' names)
    images: list[ImageRecord]  # the test images (their paths) with the reviewed labels (of ``dataset.names``)
    removed: int  # test labels the review deleted or changed (class or box)
    added: int  # labels the review added or changed into


def corrected_labels(test: list[ImageRecord], test_names: list[str], reviewed: Dataset) -> Corrected:
    """Each test image's labels from ``reviewed``, its image found there by content, else by file name.

    Content first: ``curate export`` copies the images as they are, and a file name may repeat across splits;
    the name is the way back when the copy re-encoded its images. A test image with no match is one line
    naming it: scoring on a mix of reviewed and unreviewed labels would be neither.
    """
    from curate.io.cache import file_hash

    by_hash: dict[str, ImageRecord] = {}
    by_name: dict[str, ImageRecord] = {}
    for r in reviewed.images:
        by_hash.setdefault(file_hash(r.path), r)
        by_name.setdefault(Path(r.rel).name, r)
    images, missing = [], []
    removed = added = 0
    for r in test:
        match = by_hash.get(file_hash(r.path)) or by_name.get(Path(r.rel).name)
        if match is None:
            missing.append(r.rel)
            continue
        images.append(replace(r, labels=list(match.labels), edited=True))
        old = Counter(_label_key(test_names, l) for l in r.labels)
        new = Counter(_label_key(reviewed.names, l) for l in match.labels)
        removed += sum((old - new).values())
        added += sum((new - old).values())
    if missing:
        raise CompareError(
            f"--test-labels {reviewed.root}: {len(missing)} of {len(test)} test images are not in it (by content "
            f"or file name), e.g. {missing[0]}"
        )
    return Corrected(reviewed, images, removed, added)


def _label_key(names: list[str], label) -> tuple:
    name = names[label.class_id] if 0 <= label.class_id < len(names) else str(label.class_id)
    return (name, round(label.cx, 4), round(label.cy, 4), round(label.w, 4), round(label.h, 4))
