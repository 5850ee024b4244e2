"""Findings: the one record every check, the reader and the report share.

A finding is written once (findings.csv / findings.json) and everything downstream — the report,
FiftyOne tags, review views — is built only from findings, never by re-running checks.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

#: Exactly the columns of findings.csv, in order (issue #3).
CSV_COLUMNS = ("split", "image", "line", "check", "score", "message", "x", "y", "w", "h")


@dataclass
class Finding:
    """One thing that is probably wrong.

    ``image`` is relative to the dataset root with ``/`` (for a label file without an image, the label
    file's path). ``line`` is the 1-based line in that image's label file, ``None`` for image-level,
    dataset-level or region findings. ``score`` is in [0, 1], higher = more likely a real problem.
    ``region`` is a normalized YOLO-style ``(cx, cy, w, h)`` for region findings (e.g. a missing box).
    ``data`` holds extra columns (class name, partner image, per-signal scores) for JSON and the report.
    """

    split: str
    image: str
    check: str
    score: float
    message: str
    line: int | None = None
    region: tuple[float, float, float, float] | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.score) <= 1.0:
            raise ValueError(f"score must be in [0, 1], but got {self.score!r} for check {self.check!r}")
        self.score = float(self.score)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: a shallow copy (``dataclasses.asdict`` deep-copies ``data``, 5 s for 34k findings)."""
        return {
            "split": self.split,
            "image": self.image,
            "check": self.check,
            "score": self.score,
            "message": self.message,
            "line": self.line,
            "region": list(self.region) if self.region is not None else None,
            "data": self.data,
        }

    def to_row(self) -> list[Any]:
        """The compact JSON form the audit's cache stores: the fields in declaration order, no keys.

        Why: JSON-encoding 34,000 dicts (food-ingredients' scores) cost ~0.2 s of a cold audit; rows
        without the repeated keys encode in about two thirds of that. :meth:`from_row` reads it back.
        """
        return [self.split, self.image, self.check, self.score, self.message, self.line, self.region, self.data]

    @classmethod
    def from_row(cls, row: list[Any]) -> "Finding":
        """A finding from :meth:`to_row`'s form after a JSON round trip (the region comes back a list)."""
        split, image, check, score, message, line, region, data = row
        return cls(split, image, check, score, message, line, tuple(region) if region else None, data)

    def csv_row(self) -> dict[str, str]:
        x, y, w, h = self.region if self.region is not None else ("", "", "", "")
        fmt = lambda v: "" if v == "" else f"{float(v):.6f}"  # noqa: E731
        return {
            "split": self.split,
            "image": self.image,
            "line": "" if self.line is None else str(self.line),
            "check": self.check,
            "score": f"{self.score:.4f}",
            "message": self.message,
            "x": fmt(x),
            "y": fmt(y),
            "w": fmt(w),
            "h": fmt(h),
        }


#: Checks whose findings are facts about the data, not errors (a box cut by the border, class balance): they
#: stay in findings.csv and the report, after every error, and are no part of the worst-first error list.
NOTE_CHECKS = frozenset({"dataset", "border_cut"})


def is_note(finding: Finding) -> bool:
    return finding.check in NOTE_CHECKS


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Worst first across checks (a score is the probability that the label is a real error of that kind, so
    scores of different checks compare), notes after every error; ties by check, file and line, so the order
    is deterministic. The user reads findings.csv from the top: grouping by check put every ``ambiguous``
    above every ``grouped`` box whatever their scores."""
    return sorted(findings, key=lambda f: (is_note(f), -f.score, f.check, f.split, f.image, f.line or 0))


def write_csv(findings: Iterable[Finding], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(CSV_COLUMNS))
        writer.writeheader()
        for f in findings:
            writer.writerow(f.csv_row())
    return path


def write_json(findings: Iterable[Finding], path: Path, **meta: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {**meta, "findings": [f.to_dict() for f in findings]}
    path.write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")
    return path
