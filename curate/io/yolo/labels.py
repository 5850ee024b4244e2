"""The pure half: the lines of one label file → labels and line problems, and labels back to lines.

A malformed line becomes a problem naming its line; the good lines of the same file are kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from curate.core import defaults
from curate.core.dataset import Label


@dataclass(frozen=True)
class LineProblem:
    """A malformed label line (``line`` 1-based; 0 = the file as a whole) and why."""

    line: int
    reason: str
    severity: float = 1.0  # 1.0: the line is dropped; lower: cosmetic, the labels were still read


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


#: Said of a dropped line that Ultralytics' ``verify_image_label`` refuses: it then drops the whole image, every
#: good box of the file with it, not only the line (checked on Ultralytics 8.4: a 6th column, a 4-field line, a
#: word, a class 1.5, 9 of 2 or -1, a NaN; a zero-width box it keeps).
SKIPS = "; Ultralytics skips the whole image for it"


def _parse_line(fields: list[str], number: int, *, nc: int | None, tol: float) -> tuple[Label | None, str]:
    n = len(fields)
    if n != 5 and not (n >= 7 and n % 2 == 1):
        return None, f"wrong field count: {n} (expected 5 for a box, or 2k+1 with k >= 3 for a polygon){SKIPS}"
    try:
        cls_f = float(fields[0])
        values = list(map(float, fields[1:]))
    except ValueError:
        bad = next(v for v in fields if not _is_number(v))
        return None, f"non-numeric field {bad!r}{SKIPS}"
    if cls_f != int(cls_f):
        return None, f"class id {fields[0]!r} is not an integer{SKIPS}"
    cls = int(cls_f)
    if cls < 0 or (nc is not None and cls >= nc):
        return None, (
            f"class id {cls} out of range (nc = {nc})" if nc is not None else f"negative class id {cls}"
        ) + SKIPS
    if not all(map(math.isfinite, values)):  # C-level: the generator it replaced was a fifth of a line's parse
        return None, f"NaN or infinite coordinate{SKIPS}"
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
