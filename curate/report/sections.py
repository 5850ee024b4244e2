"""What the audit report shows for each check: its count, its verdict line and its worst findings drawn.

A section is built only from findings and the dataset (never by re-running checks): what findings.csv lists
is what the page shows. The numbers on the summary cards are here too, beside the verdicts they go with.
"""

from __future__ import annotations

import shlex
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from curate.core import defaults
from curate.core.dataset import Dataset, LabelLookup
from curate.core.findings import NOTE_CHECKS, Finding
from curate.report.display import (
    CALIBRATED_CHECKS,
    CHECK_COLOURS,
    CHECK_ORDER,
    PAIR_CHECKS,
    PIXEL_CHECKS,
    TABLE_CHECKS,
)
from curate.report.ranking import rank_sections
from curate.report.thumbs import MaskFn, Thumb, finding_thumb, pair_thumb
from curate.runtime.env import workers


@dataclass
class CheckSection:
    """Everything the page shows for one check."""

    name: str
    colour: str
    kind: str  # box | region | image | pair | format | dataset
    count: int
    verdict: str
    threshold: float | None
    review_cmd: str
    view_name: str
    first: bool = False
    unit: str = ""  # what ``count`` counts: "boxes", "pairs", "notes" …
    thumbs: list[Thumb] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)  # table checks
    shown: int = 0
    mask_note: str = ""
    expected: float = 0.0  # calibrated checks: how many of the flagged boxes are expected to be real errors


# ---------------------------------------------------------------------------------------------------------
# numbers and verdicts
# ---------------------------------------------------------------------------------------------------------


def summary_numbers(dataset: Dataset, findings: Iterable[Finding] = ()) -> dict[str, Any]:
    """The numbers on the summary cards. ``background_unlabelled``: background images (no box) in which
    ``missing`` found objects without a box, so they may not be backgrounds at all (an empty label file on a
    photo of a lemon)."""
    per_split = {s: len(dataset.split(s)) for s in dataset.splits}
    background = sum(r.is_background for r in dataset.images)
    backgrounds = {r.rel for r in dataset.images if r.is_background}
    unlabelled = {f.image for f in findings if f.check == "missing" and f.image in backgrounds}
    n = len(dataset.images)
    lo, hi = defaults.BACKGROUND_SHARE_ADVICE
    share = background / n if n else 0.0
    return {
        "images": n,
        "per_split": per_split,
        "boxes": dataset.num_boxes,
        "classes": len(dataset.names),
        "background": background,
        "background_unlabelled": len(unlabelled),
        "background_share": share,
        "background_ok": lo <= share <= hi,
        "background_advice": f"{lo:.0%}–{hi:.0%}",
    }


#: How a check without findings is counted (with findings, the findings themselves tell).
EMPTY_KINDS = {"missing": "region", "corrupt_image": "image", "exif_rotated": "image"} | dict.fromkeys(
    ("dark", "overexposed", "blurry", "low_information", "odd_size"), "image"
)


#: Singular and plural of what a section of each kind counts.
UNITS = {
    "box": ("box", "boxes"),
    "region": ("region", "regions"),
    "image": ("image", "images"),
    "pair": ("pair", "pairs"),
    "format": ("label problem", "label problems"),
    "dataset": ("note", "notes"),
}


def check_kind(check: str, flagged: list[Finding]) -> str:
    """How a check's findings are counted and shown: box, region, image, pair, format or dataset."""
    if check in TABLE_CHECKS:
        return check
    if check in PAIR_CHECKS or any("partner" in f.data for f in flagged):
        return "pair"
    if not flagged:
        return EMPTY_KINDS.get(check, "box")
    if all(f.line is not None for f in flagged):
        return "box"
    if all(f.region is not None for f in flagged):
        return "region"
    return "image"


def unique_pairs(flagged: list[Finding]) -> list[Finding]:
    """One finding per unordered pair (checks may report a pair from both sides), worst first."""
    seen: set[frozenset[str]] = set()
    out = []
    for f in sorted(flagged, key=lambda f: -f.score):
        key = frozenset((f.image, str(f.data.get("partner", ""))))
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def _pct(x: float) -> str:
    if x == 0:
        return "0%"
    return "<0.1%" if x < 0.001 else f"{100 * x:.1f}%"


def verdict(check: str, kind: str, flagged: list[Finding], dataset: Dataset) -> str:
    """A line a person can act on: how many, of what, and the share of the dataset it touches."""
    if not flagged:
        return "no problem found"
    n_images = max(len(dataset.images), 1)
    images = {f.image for f in flagged}
    if kind == "box":
        n = len({(f.image, f.line) for f in flagged})
        if check in NOTE_CHECKS:
            share = _pct(n / max(dataset.num_boxes, 1))
            return f"{n:,} {_plural(n, 'box', 'boxes')} noted, not errors ({share} of boxes)"
        said = f"{n:,} {_plural(n, 'box', 'boxes')} flagged ({_pct(n / max(dataset.num_boxes, 1))} of boxes)"
        if check in CALIBRATED_CHECKS:
            expected = round(expected_errors(flagged))
            said += f", about {expected:,} expected to be {_plural(expected, 'a real error', 'real errors')}"
        return said
    if kind == "region":
        return (
            f"{len(flagged):,} unlabelled {_plural(len(flagged), 'region', 'regions')} in {len(images):,} "
            f"{_plural(len(images), 'image', 'images')} ({_pct(len(images) / n_images)} of images)"
        )
    if kind == "pair":
        pairs = unique_pairs(flagged)
        both = images | {str(f.data["partner"]) for f in flagged if "partner" in f.data}
        return (
            f"{len(pairs):,} {_plural(len(pairs), 'pair', 'pairs')} "
            f"({len(both):,} images, {_pct(len(both) / n_images)} of images)"
        )
    if kind == "format":
        return (
            f"{len(flagged):,} label {_plural(len(flagged), 'problem', 'problems')} "
            f"in {len(images):,} {_plural(len(images), 'file', 'files')}"
        )
    if kind == "dataset":
        return f"{len(flagged):,} dataset {_plural(len(flagged), 'note', 'notes')}"
    return (
        f"{len(images):,} {_plural(len(images), 'image', 'images')} flagged ({_pct(len(images) / n_images)} of images)"
    )


def expected_errors(flagged: list[Finding]) -> float:
    """How many flagged boxes are expected to be real errors, for a check whose score is the probability of a
    real error: the sum of each box's best score."""
    best: dict[tuple[str, int | None], float] = {}
    for f in flagged:
        best[(f.image, f.line)] = max(best.get((f.image, f.line), 0.0), f.score)
    return sum(best.values())


def _plural(n: int, one: str, many: str) -> str:
    return one if n == 1 else many


def _source(dataset: Dataset) -> Path:
    return dataset.yaml_path or dataset.root


def ordered_checks(findings: Iterable[Finding], summary: dict, thresholds: dict[str, float] | None) -> list[str]:
    """Checks to report: those that ran (``summary["checks"]``, else ``thresholds``) plus any with findings."""
    ran = set(summary.get("checks") or (thresholds or {}).keys())
    names = ran | {f.check for f in findings}
    rank = {c: i for i, c in enumerate(CHECK_ORDER)}
    return sorted(names, key=lambda c: (rank.get(c, len(rank)), c))


# ---------------------------------------------------------------------------------------------------------
# sections
# ---------------------------------------------------------------------------------------------------------


def build_sections(
    dataset: Dataset,
    findings: list[Finding],
    lookup: LabelLookup,
    *,
    summary: dict,
    thresholds: dict[str, float] | None,
    masks: MaskFn | None,
    worst_n: int = defaults.REPORT_WORST_N,
) -> list[CheckSection]:
    """One section per check, worst first (:func:`curate.report.ranking.rank_sections`), with its worst findings
    drawn."""
    from rich.progress import Progress

    by_check: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        by_check[f.check].append(f)
    views = summary.get("fiftyone_views") or {}
    source = shlex.quote(str(_source(dataset)))
    sections: list[CheckSection] = []
    checks = ordered_checks(findings, summary, thresholds)
    mask_cache: dict[str, np.ndarray | None] = {}
    # thumbnails in threads: decoding and JPEG encoding release the GIL, and at the end of an audit the
    # report is the only work left (food --fast: 0.29 s of thumbnails on one core)
    with Progress(transient=True) as progress, ThreadPoolExecutor(max_workers=workers()) as pool:
        task = progress.add_task("report: drawing findings", total=len(checks))
        for check in checks:
            flagged = sorted(by_check.get(check, []), key=lambda f: (-f.score, f.image, f.line or 0))
            kind = check_kind(check, flagged)
            sec = CheckSection(
                name=check,
                colour=CHECK_COLOURS.get(check, "#334155"),
                kind=kind,
                count=len(unique_pairs(flagged)) if kind == "pair" else len(flagged),
                verdict=verdict(check, kind, flagged, dataset),
                threshold=(thresholds or {}).get(check, defaults.THRESHOLDS.get(check)),
                review_cmd=f"curate review {source} --check {check}",
                view_name=views.get(check, defaults.REPORT_VIEW_NAME.format(check=check)),
            )
            sec.unit = UNITS[kind][0 if sec.count == 1 else 1]
            if kind == "box" and check in CALIBRATED_CHECKS:
                sec.expected = expected_errors(flagged)
            if kind in ("format", "dataset"):
                sec.rows = [
                    {"file": f.image, "line": "" if f.line is None else f.line, "reason": f.message, "score": f.score}
                    for f in flagged
                ]
                sec.shown = len(sec.rows)
            elif kind == "pair":
                sec.thumbs = list(pool.map(lambda f: pair_thumb(f, lookup), unique_pairs(flagged)[:worst_n]))
                sec.shown = len(sec.thumbs)
            else:
                use_masks = masks if check in PIXEL_CHECKS else None
                sec.thumbs = list(
                    pool.map(
                        lambda f: finding_thumb(f, lookup, masks=use_masks, mask_cache=mask_cache), flagged[:worst_n]
                    )
                )
                sec.shown = len(sec.thumbs)
                if check in PIXEL_CHECKS and sec.thumbs:
                    sec.mask_note = (
                        "dimmed: background by the foreground mask, cyan: its outline"
                        if any(t.masked for t in sec.thumbs)
                        else "no foreground mask given"
                    )
            sections.append(sec)
            progress.advance(task)
    return rank_sections(sections)


def contact_sheet(sections: list[CheckSection], *, n: int = defaults.REPORT_CONTACT_N) -> list[Thumb]:
    """The worst boxes over all box checks, taken round-robin by rank so no single check fills the sheet."""
    queues = [s.thumbs for s in sections if s.kind == "box" and s.thumbs]
    out: list[Thumb] = []
    for rank in range(max((len(q) for q in queues), default=0)):
        layer = sorted((q[rank] for q in queues if rank < len(q)), key=lambda t: -t.score)
        out.extend(layer)
        if len(out) >= n:
            break
    return out[:n]
