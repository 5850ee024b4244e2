"""The audit report: one self-contained page a person would rather look at than read, plus a short text twin.

``report.html`` embeds every picture (plots as PNG, thumbnails as small JPEG data URIs) and its CSS, runs
no script and loads nothing from the network, so it opens from disk, from a zip or from a CI artifact.
``report.md`` is the terminal / pull-request version: counts, verdict lines and the top findings as a table.

The report is built only from findings and the dataset (never by re-running checks): what findings.csv
lists is what the page shows. Thumbnails are decoded at reduced resolution (OpenCV's ``IMREAD_REDUCED_*``)
and re-encoded as ~256 px JPEGs, which keeps a report for a few thousand images at a few megabytes.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import shlex
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from curate.core import defaults
from curate.core.dataset import SPLITS, Dataset, ImageRecord, Label, LabelLookup
from curate.app.env import workers
from curate.core.findings import NOTE_CHECKS, Finding

#: Checks whose evidence is the foreground mask: their thumbnails show it when ``masks`` gives one.
PIXEL_CHECKS = frozenset({"grouped", "background_heavy", "shifted", "missing"})
#: Checks whose findings name a partner image (``finding.data["partner"]``): shown side by side.
PAIR_CHECKS = frozenset({"leakage", "near_duplicate"})
#: Checks whose score is calibrated as the probability that the box is a real error of that kind (the box
#: model re-weights held-out corrupted boxes to an explicit 2 % prior per kind, curate/audit/boxmodel.py), so the
#: sum of the flagged boxes' scores is how many of them are expected to be real.
CALIBRATED_CHECKS = frozenset({"grouped", "background_heavy", "shifted"})
#: Checks shown as a table rather than pictures (a bad line or a dataset note has nothing to draw).
TABLE_CHECKS = frozenset({"format", "dataset"})

#: Order of sections and verdicts: what breaks training or evaluation first (unreadable files, bad lines,
#: split leakage), then the box errors our users found behind their bad mAP, then the rest. The first check
#: in this order with findings gets "look at these first".
CHECK_ORDER = (
    "corrupt_image",
    "format",
    "leakage",
    "grouped",
    "background_heavy",
    "shifted",
    "class_inconsistent",
    "duplicate",
    "ambiguous",
    "missing",
    "objectlab",
    "exif_rotated",
    "dark",
    "overexposed",
    "blurry",
    "low_information",
    "odd_size",
    "near_duplicate",
    "border_cut",
    "dataset",
)

#: One colour per check, used for its card, its verdict dot and the flagged box in its thumbnails.
CHECK_COLOURS = {
    "corrupt_image": "#b91c1c",
    "format": "#9f1239",
    "leakage": "#c2410c",
    "grouped": "#d97706",
    "background_heavy": "#ca8a04",
    "shifted": "#65a30d",
    "class_inconsistent": "#0d9488",
    "duplicate": "#0284c7",
    "ambiguous": "#4f46e5",
    "missing": "#c026d3",
    "objectlab": "#db2777",
    "exif_rotated": "#7c3aed",
    "dark": "#1e293b",
    "overexposed": "#a16207",
    "blurry": "#0891b2",
    "low_information": "#78716c",
    "odd_size": "#9333ea",
    "near_duplicate": "#ea580c",
    "border_cut": "#64748b",
    "dataset": "#475569",
}
SPLIT_COLOURS = {"train": "#2563eb", "val": "#f59e0b", "test": "#10b981"}
MASK_RGB = (0, 229, 255)  # cyan outline of the foreground mask: reads over food, skin, sky and grass alike

MaskFn = Callable[[ImageRecord], "np.ndarray | None"]


# ---------------------------------------------------------------------------------------------------------
# what the page is made of
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Thumb:
    """One picture of a finding (or of both images of a pair) with its caption."""

    check: str
    image: str
    score: float
    message: str
    uri: str
    line: int | None = None
    class_name: str = ""
    zoomed: bool = False
    masked: bool = False
    partner: str | None = None
    partner_uri: str | None = None


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


# ---------------------------------------------------------------------------------------------------------
# public entry point
# ---------------------------------------------------------------------------------------------------------


def write_report(
    dataset: Dataset,
    findings: list[Finding],
    out_dir: Path,
    *,
    summary: dict | None = None,
    thresholds: dict[str, float] | None = None,
    fiftyone_name: str | None = None,
    masks: MaskFn | None = None,
    notes: list[str] | None = None,
    plots_drawing=None,
) -> Path:
    """Write ``out_dir/report.html`` (self-contained) and ``out_dir/report.md``; return the HTML path.

    ``findings`` are those above threshold (what findings.csv lists). ``summary`` holds free-form facts
    about the run shown in a table (seconds, foreground model, ``fast`` …); its key ``checks`` (the checks
    that ran) decides which checks get a "no problem found" line — without it, the checks in ``thresholds``
    (or else only those with findings) do, so a check that did not run is never reported as clean.
    ``summary["fiftyone_views"]`` may map a check to its saved-view name (default ``audit/<check>``).
    ``masks(record)`` may return a foreground mask (any size, bool/0–1/0–255) drawn over thumbnails of
    pixel-based checks. ``notes`` are one-line remarks shown at the top (e.g. "rembg weights absent: GrabCut").
    ``plots_drawing`` is a :func:`start_dataset_plots` job started earlier (the dataset's plots drawn meanwhile).
    """
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = dict(summary or {})
    lookup = LabelLookup(dataset)
    sections = build_sections(
        dataset, findings, lookup, summary=summary, thresholds=thresholds, masks=masks
    )
    contact = contact_sheet(sections)
    stats = dataset_stats(dataset)
    plots = make_plots(dataset, findings, lookup, drawing=plots_drawing, geometry=not summary.get("fast"))
    run_rows = [(k, _fmt_value(v)) for k, v in summary.items() if k not in ("checks", "fiftyone_views")]
    context = {
        "dataset": dataset,
        "source": str(_source(dataset)),
        "stats": stats,
        "sections": sections,
        "contact": contact,
        "plots": plots,
        "notes": list(notes or []) + list(dataset.warnings),
        "run_rows": run_rows,
        "fiftyone_name": fiftyone_name,
        "total_findings": len(findings),
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "fmt": _fmt_int,
        "colours": CHECK_COLOURS,
    }
    env = Environment(
        loader=FileSystemLoader(str(Path(__file__).parent / "templates")),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    html_path = out_dir / "report.html"
    html_path.write_text(env.get_template("report.html.j2").render(**context), encoding="utf-8")
    md = render_markdown(dataset, findings, sections, stats, lookup, notes=context["notes"])
    (out_dir / "report.md").write_text(md, encoding="utf-8")
    return html_path


# ---------------------------------------------------------------------------------------------------------
# numbers and verdicts
# ---------------------------------------------------------------------------------------------------------


def dataset_stats(dataset: Dataset) -> dict[str, Any]:
    """The numbers on the summary cards."""
    per_split = {s: len(dataset.split(s)) for s in dataset.splits}
    background = sum(r.is_background for r in dataset.images)
    n = len(dataset.images)
    lo, hi = defaults.BACKGROUND_SHARE_ADVICE
    share = background / n if n else 0.0
    return {
        "images": n,
        "per_split": per_split,
        "boxes": dataset.num_boxes,
        "classes": len(dataset.names),
        "background": background,
        "background_share": share,
        "background_ok": lo <= share <= hi,
        "background_advice": f"{lo:.0%}–{hi:.0%}",
    }


#: How a check without findings is counted (with findings, the findings themselves tell).
EMPTY_KINDS = {"missing": "region", "corrupt_image": "image", "exif_rotated": "image"} | dict.fromkeys(("dark", "overexposed", "blurry", "low_information", "odd_size"), "image")


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
        if check in CALIBRATED_CHECKS:  # a score is the probability of a real error: their sum is the expected count
            best: dict[tuple[str, int | None], float] = {}
            for f in flagged:
                best[(f.image, f.line)] = max(best.get((f.image, f.line), 0.0), f.score)
            said += f", about {sum(best.values()):,.0f} expected to be real errors"
        return said
    if kind == "region":
        return (
            f"{len(flagged):,} unlabelled {_plural(len(flagged), 'region', 'regions')} in {len(images):,} "
            f"{_plural(len(images), 'image', 'images')} ({_pct(len(images) / n_images)} of images)"
        )
    if kind == "pair":
        pairs = unique_pairs(flagged)
        both = images | {str(f.data["partner"]) for f in flagged if "partner" in f.data}
        return f"{len(pairs):,} {_plural(len(pairs), 'pair', 'pairs')} ({len(both):,} images, {_pct(len(both) / n_images)} of images)"
    if kind == "format":
        return f"{len(flagged):,} label {_plural(len(flagged), 'problem', 'problems')} in {len(images):,} {_plural(len(images), 'file', 'files')}"
    if kind == "dataset":
        return f"{len(flagged):,} dataset {_plural(len(flagged), 'note', 'notes')}"
    return f"{len(images):,} {_plural(len(images), 'image', 'images')} flagged ({_pct(len(images) / n_images)} of images)"


def _plural(n: int, one: str, many: str) -> str:
    return one if n == 1 else many


def _fmt_int(n: int | float) -> str:
    return f"{n:,}" if isinstance(n, int) else f"{n:,.2f}"


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, (list, tuple)):
        return ", ".join(map(str, v))
    return str(v)


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
    """One section per check, in :data:`CHECK_ORDER`, with its worst findings drawn."""
    from rich.progress import Progress

    by_check: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        by_check[f.check].append(f)
    views = summary.get("fiftyone_views") or {}
    source = shlex.quote(str(_source(dataset)))
    sections: list[CheckSection] = []
    first_done = False
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
            if flagged and not first_done and check not in NOTE_CHECKS:
                sec.first, first_done = True, True
                sec.verdict += " — look at these first"
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
                sec.thumbs = list(pool.map(lambda f: finding_thumb(f, lookup, masks=use_masks, mask_cache=mask_cache), flagged[:worst_n]))
                sec.shown = len(sec.thumbs)
                if check in PIXEL_CHECKS and sec.thumbs:
                    sec.mask_note = (
                        "dimmed: background by the foreground mask, cyan: its outline" if any(t.masked for t in sec.thumbs) else "no foreground mask given"
                    )
            sections.append(sec)
            progress.advance(task)
    return sections


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


# ---------------------------------------------------------------------------------------------------------
# thumbnails
# ---------------------------------------------------------------------------------------------------------


Window = tuple[float, float, float, float]  # normalized x0, y0, x1, y1


def view_window(box: Window, size: tuple[int, int]) -> Window:
    """A square around the box (with context) in normalized coordinates; the whole image when that is near.

    Boxes in a 640 px photo can be 20 px wide — unreadable at 256 px — so a box finding is shown zoomed,
    but never tighter than :data:`defaults.REPORT_VIEW_MIN` of the image, so a person still sees context.
    """
    W, H = size
    x0, y0, x1, y1 = (min(max(v, 0.0), 1.0) for v in box)
    cx, cy = (x0 + x1) / 2 * W, (y0 + y1) / 2 * H
    side = max((x1 - x0) * W, (y1 - y0) * H) * defaults.REPORT_VIEW_CONTEXT
    side = max(side, defaults.REPORT_VIEW_MIN * max(W, H))
    if side >= 0.85 * max(W, H):
        return (0.0, 0.0, 1.0, 1.0)
    sw, sh = min(side, W), min(side, H)
    left = min(max(cx - sw / 2, 0.0), W - sw)
    top = min(max(cy - sh / 2, 0.0), H - sh)
    return (left / W, top / H, (left + sw) / W, (top + sh) / H)


def _box_of(finding: Finding, label: Label | None) -> Window | None:
    if label is not None:
        return label.xyxy
    if finding.region is not None:
        cx, cy, w, h = finding.region
        return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
    return None


def decode_view(path: Path, window: Window, size: tuple[int, int] | None, *, side: int) -> "np.ndarray | None":
    """RGB pixels of ``window`` scaled to at most ``side`` px, decoded at the smallest sufficient resolution."""
    import cv2

    reduce_flags = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}
    factor = 1
    if size is not None:
        span = max((window[2] - window[0]) * size[0], (window[3] - window[1]) * size[1])
        factor = max([f for f in reduce_flags if span / f >= side] or [1])
    img = cv2.imread(str(path), reduce_flags[factor])
    if img is None:  # formats OpenCV can't read (or a broken file): give PIL a chance
        try:
            from PIL import Image, ImageOps

            with Image.open(path) as im:  # turned by its EXIF orientation, as OpenCV turns what it reads
                img = cv2.cvtColor(np.asarray(ImageOps.exif_transpose(im).convert("RGB")), cv2.COLOR_RGB2BGR)
        except Exception:
            return None
    h, w = img.shape[:2]
    x0, y0 = int(window[0] * w), int(window[1] * h)
    x1, y1 = max(int(math.ceil(window[2] * w)), x0 + 1), max(int(math.ceil(window[3] * h)), y0 + 1)
    crop = img[y0:y1, x0:x1]
    ch, cw = crop.shape[:2]
    scale = side / max(ch, cw)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    crop = cv2.resize(crop, (max(1, round(cw * scale)), max(1, round(ch * scale))), interpolation=interp)
    return cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)


def overlay_mask(rgb: np.ndarray, mask: np.ndarray, window: Window, *, alpha: float = defaults.REPORT_MASK_ALPHA) -> np.ndarray:
    """Dim what the mask calls background and outline the foreground in cyan.

    Dimming (rather than tinting the object) keeps the object's own colours readable, so a person can
    still judge the box; the outline shows exactly where the mask puts the object's edge.
    """
    import cv2

    m = np.asarray(mask, dtype=np.float32)
    if m.ndim == 3:
        m = m[..., 0]
    if m.size and m.max() > 1.0:
        m = m / 255.0
    mh, mw = m.shape[:2]
    x0, y0 = int(window[0] * mw), int(window[1] * mh)
    x1, y1 = max(int(math.ceil(window[2] * mw)), x0 + 1), max(int(math.ceil(window[3] * mh)), y0 + 1)
    part = cv2.resize(m[y0:y1, x0:x1], (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
    part = np.clip(part, 0.0, 1.0)
    out = (rgb.astype(np.float32) * (1.0 - alpha * (1.0 - part))[..., None]).clip(0, 255).astype(np.uint8)
    contours, _ = cv2.findContours((part >= 0.5).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, MASK_RGB, 2, lineType=cv2.LINE_AA)
    return out


def _to_thumb_xy(box: Window, window: Window, w: int, h: int) -> tuple[float, float, float, float]:
    ww, wh = window[2] - window[0], window[3] - window[1]
    return (
        (box[0] - window[0]) / ww * w,
        (box[1] - window[1]) / wh * h,
        (box[2] - window[0]) / ww * w,
        (box[3] - window[1]) / wh * h,
    )


def _dashed_rect(draw: Any, xy: tuple[float, float, float, float], colour: str, width: int, dash: int = 7) -> None:
    x0, y0, x1, y1 = xy
    for (ax, ay), (bx, by) in (((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)), ((x1, y1), (x0, y1)), ((x0, y1), (x0, y0))):
        length = math.hypot(bx - ax, by - ay)
        steps = max(1, int(length // dash))
        for i in range(0, steps, 2):
            t0, t1 = i / steps, min((i + 1) / steps, 1.0)
            draw.line([(ax + (bx - ax) * t0, ay + (by - ay) * t0), (ax + (bx - ax) * t1, ay + (by - ay) * t1)], fill=colour, width=width)


def draw_boxes(
    rgb: np.ndarray,
    window: Window,
    record: ImageRecord | None,
    *,
    flagged: Label | None,
    region: Window | None,
    colour: str,
    partner: Label | None = None,
) -> "Any":
    """Other boxes thin and white, the flagged box thick in the check's colour, a region dashed.

    ``partner`` (the other box of a duplicate / ambiguous pair) is drawn dashed in the same colour.
    """
    from PIL import Image, ImageDraw

    im = Image.fromarray(rgb)
    draw = ImageDraw.Draw(im)
    w, h = im.size
    for lab in record.labels if record is not None else []:
        if (flagged is not None and lab.line == flagged.line) or (partner is not None and lab.line == partner.line):
            continue
        draw.rectangle(_to_thumb_xy(lab.xyxy, window, w, h), outline="#ffffff", width=1)
    if partner is not None:
        xy = _to_thumb_xy(partner.xyxy, window, w, h)
        _dashed_rect(draw, xy, "#000000", 4)
        _dashed_rect(draw, xy, colour, 2)
    if flagged is not None:
        xy = _to_thumb_xy(flagged.xyxy, window, w, h)
        draw.rectangle(xy, outline="#000000", width=5)  # dark halo: the colour reads on any background
        draw.rectangle(xy, outline=colour, width=3)
    if region is not None:
        xy = _to_thumb_xy(region, window, w, h)
        _dashed_rect(draw, xy, "#000000", 5)
        _dashed_rect(draw, xy, colour, 3)
    return im


def placeholder(text: str, *, side: int = defaults.REPORT_THUMB_SIDE) -> "Any":
    """A grey tile for an image that cannot be decoded (itself a finding, e.g. corrupt_image)."""
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (side, side * 3 // 4), "#e2e8f0")
    draw = ImageDraw.Draw(im)
    draw.text((12, side * 3 // 8 - 6), text, fill="#475569")
    return im


def jpeg_uri(im: Any, *, quality: int = defaults.REPORT_JPEG_QUALITY) -> str:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def render_view(
    record: ImageRecord | None,
    *,
    focus: Window | None,
    flagged: Label | None = None,
    region: Window | None = None,
    colour: str = "#f59e0b",
    mask: np.ndarray | None = None,
    partner: Label | None = None,
    side: int = defaults.REPORT_THUMB_SIDE,
) -> tuple[str, bool]:
    """A JPEG data URI of the record's image (zoomed on ``focus`` if given) and whether it is zoomed."""
    if record is None:
        return jpeg_uri(placeholder("image not in dataset", side=side)), False
    try:
        size = record.size
    except Exception:
        size = None
    window = view_window(focus, size) if (focus is not None and size is not None) else (0.0, 0.0, 1.0, 1.0)
    rgb = decode_view(record.path, window, size, side=side) if record.path.exists() else None
    if rgb is None:
        return jpeg_uri(placeholder("cannot decode image", side=side)), False
    if mask is not None:
        rgb = overlay_mask(rgb, mask, window)
    im = draw_boxes(rgb, window, record, flagged=flagged, region=region, colour=colour, partner=partner)
    return jpeg_uri(im), window != (0.0, 0.0, 1.0, 1.0)


def finding_thumb(
    finding: Finding,
    lookup: LabelLookup,
    *,
    masks: MaskFn | None = None,
    mask_cache: dict[str, np.ndarray | None] | None = None,
) -> Thumb:
    """The finding's image with its box (or region) drawn, zoomed on it, and the mask when given."""
    record = lookup.records.get(finding.image)
    label = lookup.label(finding)
    region = _box_of(finding, None) if label is None else None
    partner = None
    if isinstance(finding.data.get("partner_line"), int):
        partner = lookup.labels.get((finding.image, finding.data["partner_line"]))
    focus = _box_of(finding, label)
    if focus is not None and partner is not None:  # zoom on both boxes of a duplicate / ambiguous pair
        p = partner.xyxy
        focus = (min(focus[0], p[0]), min(focus[1], p[1]), max(focus[2], p[2]), max(focus[3], p[3]))
    mask = None
    if masks is not None and record is not None:
        cache = mask_cache if mask_cache is not None else {}
        if record.rel not in cache:
            try:
                cache[record.rel] = masks(record)
            except Exception:
                cache[record.rel] = None
        mask = cache[record.rel]
    uri, zoomed = render_view(
        record,
        focus=focus,
        flagged=label,
        region=region,
        colour=CHECK_COLOURS.get(finding.check, "#f59e0b"),
        mask=mask,
        partner=partner,
    )
    return Thumb(
        check=finding.check,
        image=finding.image,
        score=finding.score,
        message=finding.message,
        uri=uri,
        line=finding.line,
        class_name=lookup.class_name(finding),
        zoomed=zoomed,
        masked=mask is not None,
    )


def pair_thumb(finding: Finding, lookup: LabelLookup) -> Thumb:
    """Both images of a near-duplicate / leakage pair, whole, side by side."""
    partner = str(finding.data.get("partner", ""))
    colour = CHECK_COLOURS.get(finding.check, "#f59e0b")
    uri, _ = render_view(lookup.records.get(finding.image), focus=None, colour=colour)
    partner_uri, _ = render_view(lookup.records.get(partner), focus=None, colour=colour)
    return Thumb(
        check=finding.check,
        image=finding.image,
        score=finding.score,
        message=finding.message,
        uri=uri,
        partner=partner or None,
        partner_uri=partner_uri,
    )


# ---------------------------------------------------------------------------------------------------------
# plots
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Bar:
    """One row of an HTML bar chart: a label and its segments (check, count, colour, share of the widest row)."""

    label: str
    segments: list[tuple[str, int, str, float]]


@dataclass
class Plot:
    """A figure of the report: a PNG (``uri``) or an HTML bar chart (``bars`` and its ``legend``)."""

    key: str
    title: str
    caption: str
    uri: str = ""
    wide: bool = False
    bars: list[Bar] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)  # (check, colour)


def _png_uri(fig: Any) -> str:
    """The figure as a PNG data URI, with the margins the figure set (``tight_layout`` cost ~0.2 s a figure)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


PLOTS_VERSION = 3  # bump when a plot's drawing changes: cached plots are keyed by their inputs and this (2: two cache entries; 3: class distribution as HTML bars, geometry and correlogram in one figure)


def _cached_plots(key: str) -> list[Plot] | None:
    from curate.io import cache

    hit = cache.load_json("plots", key)
    if isinstance(hit, list) and all(isinstance(p, dict) for p in hit):
        try:
            return [_plot_from_json(p) for p in hit]
        except (TypeError, ValueError):  # a cached entry of another shape: draw again
            return None
    return None


def _plot_from_json(row: dict[str, Any]) -> Plot:
    """A :class:`Plot` read back from its JSON (bars and their segments as the dataclass and tuples they were)."""
    bars = [Bar(b["label"], [tuple(seg) for seg in b["segments"]]) for b in row.get("bars", [])]
    return Plot(**{**row, "bars": bars, "legend": [tuple(x) for x in row.get("legend", [])]})


def _save_plots(key: str, plots: list[Plot]) -> None:
    from curate.io import cache

    try:
        cache.save_json("plots", key, [asdict(p) for p in plots])
    except OSError:  # a read-only or full cache: drawn again next time
        pass


def _box_array(dataset: Dataset) -> np.ndarray:
    return np.array([(lab.cx, lab.cy, lab.w, lab.h) for _, lab in dataset.boxes()], dtype=np.float32).reshape(-1, 4)


def dataset_plots_key(dataset: Dataset) -> str:
    """Cache key of :func:`dataset_plots`: every box with its class and split, the class names and splits."""
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps([PLOTS_VERSION, defaults.REPORT_PLOT_MAX_BOXES, dataset.names, dataset.splits], sort_keys=True).encode())
    h.update(_box_array(dataset).tobytes())
    h.update(np.array([(lab.class_id, SPLITS.index(rec.split) if rec.split in SPLITS else -1) for rec, lab in dataset.boxes()], np.int64).tobytes())
    return h.hexdigest()


GEOMETRY_TITLE = "Box positions and sizes"
GEOMETRY_LEFT_OUT = (
    "Drawn by the full audit (curate audit without --fast): --fast leaves out matplotlib, ~1.5 s of a core. "
    "Once drawn it is cached, and --fast shows it too."
)


def dataset_plots(dataset: Dataset, *, geometry: bool = True) -> list[Plot]:
    """Class balance per split (HTML bars) and the boxes' geometry (one PNG, like Ultralytics' labels.jpg
    and labels_correlogram.jpg in one figure).

    They depend on the labels alone, not on the findings, so :func:`start_dataset_plots` can draw them in
    a second process while the checks run. Cached by their inputs: drawing and PNG-encoding the geometry
    is most of a re-run with nothing changed. ``geometry=False`` (``--fast``) leaves the matplotlib figure
    out unless it is cached: its import and drawing cost ~1.5 s of a core, a quarter of ``--fast``'s CPU on
    food-ingredients.
    """
    key = dataset_plots_key(dataset)
    hit = _cached_plots(key)
    if hit is not None:
        return hit
    if not geometry:  # --fast: the bars need no matplotlib; nothing cached, so a full audit draws them all
        return [plot_class_distribution(dataset), Plot("box_geometry", GEOMETRY_TITLE, GEOMETRY_LEFT_OUT)]
    boxes = _box_array(dataset)
    if len(boxes) > defaults.REPORT_PLOT_MAX_BOXES:
        rng = np.random.default_rng(defaults.SEED)
        boxes = boxes[rng.choice(len(boxes), defaults.REPORT_PLOT_MAX_BOXES, replace=False)]
    plots = [plot_class_distribution(dataset), plot_box_geometry(boxes)]
    _save_plots(key, plots)
    return plots


def start_dataset_plots(dataset: Dataset):
    """Draw :func:`dataset_plots` in a child process (:mod:`curate.app.worker`) while this one runs the checks.

    Why: they take 1.5–3 s of one core (matplotlib's import, text layout, PNG encoding), and at the end of
    an audit the report is the only work left, so the other core sat idle. None when they are cached
    already or there is one core (a second process gains nothing there).
    """
    from curate.io import cache
    from curate.app import worker

    if not worker.worth_it() or cache.has("plots", dataset_plots_key(dataset), "json"):
        return None
    return worker.try_call(worker.try_spawn("curate.report.audit"), "curate.report.audit:dataset_plots", dataset)  # None: drawn here


def make_plots(dataset: Dataset, findings: list[Finding], lookup: LabelLookup, *, drawing=None, geometry: bool = True) -> list[Plot]:
    """The dataset's plots (from ``drawing``, a :func:`start_dataset_plots` job, when it succeeded) and the
    findings per class (an HTML chart: no matplotlib in this process when the dataset's plots came from
    the child or the cache)."""
    plots = None
    if drawing is not None:
        try:
            plots = drawing.result()
        except Exception:  # noqa: BLE001 — the child failed (killed, broken install…): draw them here
            plots = None
    plots = list(plots if plots is not None else dataset_plots(dataset, geometry=geometry))
    return plots[:1] + [plot_findings_per_class(dataset, findings, lookup)] + plots[1:]  # the two bar charts side by side


def plot_class_distribution(dataset: Dataset) -> Plot:
    """Boxes per class, stacked by split, as HTML bars (label: class id, name and boxes), in class-id order.

    HTML, not a PNG: a categorical count reads best as text beside its bar, and a PNG of 36 rotated class
    names cost ~0.5 s of matplotlib per audit.
    """
    splits = dataset.splits or list(SPLITS[:1])
    nc = max(len(dataset.names), 1)
    counts = {s: np.zeros(nc, int) for s in splits}
    for rec, lab in dataset.boxes():
        if 0 <= lab.class_id < nc and rec.split in counts:
            counts[rec.split][lab.class_id] += 1
    totals = sum(counts.values())
    widest = max(int(totals.max()), 1)
    bars = [
        Bar(f"{c} {dataset.class_name(c)} ({int(totals[c]):,})", [(s, int(counts[s][c]), SPLIT_COLOURS.get(s, "#334155"), counts[s][c] / widest) for s in splits if counts[s][c]])
        for c in range(nc)
    ]
    legend = [(f"{s} ({int(counts[s].sum()):,})", SPLIT_COLOURS.get(s, "#334155")) for s in splits]
    missing = sorted({dataset.class_name(c) for c in range(len(dataset.names)) for s in splits if s != "train" and counts[s][c] == 0})
    caption = "Boxes per class, stacked by split (hover a bar for its count)."
    if missing:
        caption += f" {len(missing)} class(es) absent from val or test: " + ", ".join(missing[:8]) + ("…" if len(missing) > 8 else ".")
    return Plot("class_distribution", "Class distribution per split", caption, bars=bars, legend=legend)


def _hist_panel(ax: Any, values: np.ndarray, colour: str) -> None:
    """A 40-bin histogram on [0, 1] as one filled step patch (``ax.hist`` draws a patch per bin)."""
    counts, edges = np.histogram(values, bins=40, range=(0, 1))
    ax.stairs(counts, edges, fill=True, color=colour)
    ax.set_xlim(0, 1)
    ax.set_yticks([])


def _hist2d_panel(ax: Any, x: np.ndarray, y: np.ndarray) -> None:
    """A 40×40 2D histogram on the unit square as one image, log colour scale, empty cells blank.

    ``imshow`` of a precomputed histogram: ``hist2d``'s mesh of 1,600 cells renders several times slower.
    """
    from matplotlib.colors import LogNorm

    h, _, _ = np.histogram2d(y, x, bins=40, range=[[0, 1], [0, 1]])
    h = np.ma.masked_less(h, 1)
    if h.count():
        ax.imshow(h, origin="lower", extent=(0, 1, 0, 1), cmap="Blues", norm=LogNorm(vmin=1, vmax=max(float(h.max()), 1.0)), aspect="auto", interpolation="nearest")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)


def _shapes_panel(ax: Any, boxes: np.ndarray) -> None:
    """Up to 1,000 boxes drawn from the image's centre (Ultralytics' labels.jpg): one line collection."""
    from matplotlib.collections import LineCollection

    rng = np.random.default_rng(defaults.SEED)
    sample = boxes[rng.choice(len(boxes), min(len(boxes), 1000), replace=False)]
    alpha = float(np.clip(40 / max(len(sample), 1), 0.06, 0.5))  # lines stay readable for 10 or 1,000 boxes
    x1, x2 = 0.5 - sample[:, 2] / 2, 0.5 + sample[:, 2] / 2
    y1, y2 = 0.5 - sample[:, 3] / 2, 0.5 + sample[:, 3] / 2
    outlines = np.stack([np.stack([x1, y1], 1), np.stack([x2, y1], 1), np.stack([x2, y2], 1), np.stack([x1, y2], 1), np.stack([x1, y1], 1)], 1)
    ax.add_collection(LineCollection(outlines, linewidths=0.5, alpha=alpha, colors="#1e3a8a"))
    ax.set_xlim(0, 1)
    ax.set_ylim(1, 0)
    ax.set_aspect("equal")
    ax.set_title("box shapes (centred)", fontsize=9)
    ax.tick_params(labelsize=7)


def plot_box_geometry(boxes: np.ndarray) -> Plot:
    """Box centres and sizes: x, y, width and height against each other (Ultralytics'
    labels_correlogram.jpg, without seaborn), their histograms on the diagonal, and the box shapes drawn
    from the centre (its labels.jpg) in the free upper corner — one figure, one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ("x", "y", "width", "height")
    fig = plt.figure(figsize=(8, 8))
    grid = fig.add_gridspec(4, 4, hspace=0.12, wspace=0.12, left=0.08, right=0.98, bottom=0.07, top=0.97)
    for i in range(4):
        for j in range(i + 1):
            ax = fig.add_subplot(grid[i, j])
            if len(boxes) and i == j:
                _hist_panel(ax, boxes[:, j], "#2563eb")
            elif len(boxes):
                _hist2d_panel(ax, boxes[:, j], boxes[:, i])
            if i == 3:
                ax.set_xlabel(names[j])
            else:
                ax.set_xticklabels([])
            if j == 0 and i > 0:
                ax.set_ylabel(names[i])
            elif i != j:
                ax.set_yticklabels([])
            ax.tick_params(labelsize=7)
    if len(boxes):
        _shapes_panel(fig.add_subplot(grid[0:2, 2:4]), boxes)
    return Plot("box_geometry", GEOMETRY_TITLE, f"{len(boxes):,} boxes, normalized to the image; 2D histograms on a log colour scale.", _png_uri(fig), wide=True)


def findings_per_class(findings: list[Finding], lookup: LabelLookup) -> dict[str, Counter]:
    """check → class name → flagged boxes (box findings only)."""
    per: dict[str, Counter] = defaultdict(Counter)
    for f in findings:
        if f.line is None or f.check in TABLE_CHECKS:
            continue
        name = lookup.class_name(f)
        if name:
            per[f.check][name] += 1
    return per


def plot_findings_per_class(dataset: Dataset, findings: list[Finding], lookup: LabelLookup, *, top: int = 30) -> Plot:
    """Flagged boxes per class, stacked by check, as HTML bars (label: flagged / boxes of the class).

    HTML, not a PNG: it is the one plot that depends on the findings, so it is drawn at the very end of
    the audit, and matplotlib's import and layout cost this process ~1 s there, while the dataset's plots
    are drawn in a second process during the checks (:func:`start_dataset_plots`).
    """
    per = findings_per_class(findings, lookup)
    totals: Counter = Counter()
    for c in per.values():
        totals.update(c)
    classes = [name for name, _ in totals.most_common(top)]
    box_counts = Counter(dataset.class_name(lab.class_id) for _, lab in dataset.boxes())
    checks = sorted(per, key=lambda c: CHECK_ORDER.index(c) if c in CHECK_ORDER else 99)
    widest = max([totals[c] for c in classes], default=1)
    bars = [
        Bar(f"{c} ({totals[c]}/{box_counts.get(c, 0)})", [(k, per[k][c], CHECK_COLOURS.get(k, "#334155"), per[k][c] / widest) for k in checks if per[k][c]])
        for c in classes
    ]
    legend = [(k, CHECK_COLOURS.get(k, "#334155")) for k in checks]
    caption = f"Flagged boxes per class and check (label: flagged / boxes of the class); top {top} classes."
    if not classes:
        caption = "No box findings."
    return Plot("findings_per_class", "Findings per class", caption, bars=bars, legend=legend)


# ---------------------------------------------------------------------------------------------------------
# markdown
# ---------------------------------------------------------------------------------------------------------


def _md_cell(v: Any) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def render_markdown(
    dataset: Dataset,
    findings: list[Finding],
    sections: list[CheckSection],
    stats: dict[str, Any],
    lookup: LabelLookup,
    *,
    notes: list[str],
    top: int = defaults.REPORT_MD_TOP,
) -> str:
    """Counts, one verdict line per check, the worst findings per check, format problems, file names."""
    split_txt = " · ".join(f"{s} {n:,}" for s, n in stats["per_split"].items())
    lines = [
        f"# curate audit — {dataset.name}",
        "",
        f"**{stats['images']:,} images** ({split_txt}) · **{stats['boxes']:,} boxes** · **{stats['classes']} classes** · "
        f"**{stats['background']:,} background images** ({_pct(stats['background_share'])}, advice {stats['background_advice']}) · "
        f"**{len(findings):,} findings**",
        "",
    ]
    lines += [f"> {n}" for n in notes] + ([""] if notes else [])
    lines += ["## Verdict", ""]
    lines += [f"- **{s.name}**: {s.verdict}" for s in sections]
    lines += ["", "## Top findings", "", "| check | score | file | line | class | message |", "|---|---:|---|---:|---|---|"]
    by_check: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        by_check[f.check].append(f)
    for s in sections:
        if s.kind in TABLE_CHECKS:
            continue
        worst = sorted(by_check.get(s.name, []), key=lambda f: -f.score)
        worst = unique_pairs(worst) if s.kind == "pair" else worst
        for f in worst[:top]:
            where = f.image + (f" ↔ {f.data['partner']}" if "partner" in f.data else "")
            lines.append(
                f"| {s.name} | {f.score:.2f} | {_md_cell(where)} | {'' if f.line is None else f.line} | "
                f"{_md_cell(lookup.class_name(f))} | {_md_cell(f.message)} |"
            )
    for s in sections:
        if s.kind in TABLE_CHECKS and s.rows:
            title = "Format problems" if s.kind == "format" else "Dataset notes"
            lines += ["", f"## {title}", "", "| file | line | reason |", "|---|---:|---|"]
            lines += [f"| {_md_cell(r['file'])} | {r['line']} | {_md_cell(r['reason'])} |" for r in s.rows[:50]]
            if len(s.rows) > 50:
                lines.append(f"| … | | {len(s.rows) - 50} more in findings.csv |")
    reviewable = [s.name for s in sections if s.count and s.kind not in TABLE_CHECKS]
    first = reviewable[0] if reviewable else "<check>"
    lines += [
        "",
        "## Files",
        "",
        "- `report.html` — this report with pictures (opens from disk)",
        "- `findings.csv`, `findings.json` — every finding above threshold",
        f"- review in the FiftyOne App: `curate review {shlex.quote(str(_source(dataset)))} --check {first}`",
        "",
    ]
    return "\n".join(lines)
