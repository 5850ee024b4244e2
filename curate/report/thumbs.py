"""The thumbnails of the audit report: each finding's image zoomed on its box (or region), boxes drawn, mask dimmed.

Why a module of its own: drawing is the report's pixel work (decoding, cropping, overlay, JPEG data URIs),
independent of how sections are chosen or worded. Thumbnails are decoded at reduced resolution (OpenCV's
``IMREAD_REDUCED_*``) and re-encoded as ~256 px JPEGs, which keeps a report for a few thousand images at a few
megabytes.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from curate.core import defaults
from curate.core.dataset import ImageRecord, Label, LabelLookup
from curate.core.findings import Finding
from curate.report.display import CHECK_COLOURS

MASK_RGB = (0, 229, 255)  # cyan outline of the foreground mask: reads over food, skin, sky and grass alike

MaskFn = Callable[[ImageRecord], "np.ndarray | None"]


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

    from curate.io.decode import imread, reduction

    factor = 1
    if size is not None:
        span = max((window[2] - window[0]) * size[0], (window[3] - window[1]) * size[1])
        factor = reduction(span, side)
    img = imread(path, factor)
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


def overlay_mask(
    rgb: np.ndarray, mask: np.ndarray, window: Window, *, alpha: float = defaults.REPORT_MASK_ALPHA
) -> np.ndarray:
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
            draw.line(
                [(ax + (bx - ax) * t0, ay + (by - ay) * t0), (ax + (bx - ax) * t1, ay + (by - ay) * t1)],
                fill=colour,
                width=width,
            )


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
