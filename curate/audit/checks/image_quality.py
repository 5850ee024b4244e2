"""Image quality: photos too dark, overexposed, blurry or nearly blank to teach a detector, and odd sizes.

The checks users of cleanvision (cleanlab's) and FiftyOne expect, with cleanvision's definitions and
default cut points (``cleanvision/issue_managers/image_property*.py``, version 0.3.7) so its users get
the same flags. The statistics come from the pass that already decodes every image for the perceptual
hashes (:func:`curate.vision.quality.quality_stats`, cached with the signature): cleanvision itself needs a
second decode and ran at 40–90 images/s on the pool datasets, where the whole ``audit --fast`` runs at
over 700.

- ``dark``: the brightest 1 % of pixels are dim (cleanvision ``dark``: brightness p99 < 0.32).
- ``overexposed``: even the darkest 5 % of pixels are near white (cleanvision ``light``: p5 > 0.95).
- ``blurry``: weak edges, the standard deviation of the Laplacian on the image shrunk to 64 px
  (cleanvision ``blurriness``, without its unfiltered border ring). A flat image is low-information
  rather than blurry and is listed there only (cleanvision's ``color_threshold`` does the same).
- ``low_information``: few distinct colours, the entropy of the RGB histograms (cleanvision
  ``low_information``: entropy < 3 bits).
- ``odd_size``: an aspect ratio below 0.35 (cleanvision ``odd_aspect_ratio``), a side under
  :data:`curate.core.defaults.QUALITY_TINY_SIDE` px, or an area far from the dataset's (cleanvision ``odd_size``:
  √area outside the quartiles ± 3 × IQR; here also at least 2× off the median, since in an export
  resized to one size the IQR is 0 and cleanvision would flag any other size).

Each score is :func:`falloff` of the measured value's distance from the worst value: 0.5 at the cut
point, so the default threshold 0.5 is cleanvision's; ``--config`` moves a cut point with
``checks: {dark: {cut: 0.25}}``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from curate.audit.checks.base import AuditContext, Check, Display
from curate.audit.checks.image_checks import signatures
from curate.audit.shared import ImageSignatures
from curate.core import defaults
from curate.core.findings import Finding
from curate.vision.quality import BLUR_SIDE

NAME = "dark"
NAMES = ("dark", "overexposed", "blurry", "low_information", "odd_size")


def falloff(distance: float, scale: float) -> float:
    """1 at distance 0 from the worst value, 0.5 at ``scale`` (the cut point), towards 0 beyond: 1 / (1 + (d/scale)²).

    Never clipped, so ``--all-scores`` still ranks images far from the cut point.
    """
    if scale <= 0:
        return 1.0 if distance <= 0 else 0.0
    return float(1.0 / (1.0 + (max(0.0, distance) / scale) ** 2))


def _cut(ctx: AuditContext, check: str, default: float) -> float:
    return float(ctx.param(check, "cut", default))


def run(ctx: AuditContext) -> list[Finding]:
    """A finding per decodable image for each check; undecodable ones are corrupt_image's."""
    sigs = signatures(ctx)
    dark_cut = _cut(ctx, "dark", defaults.QUALITY_DARK_P99)
    light_cut = _cut(ctx, "overexposed", defaults.QUALITY_LIGHT_P5)
    blur_cut = _cut(ctx, "blurry", defaults.QUALITY_BLUR_SHARPNESS)
    info_cut = _cut(ctx, "low_information", defaults.QUALITY_LOW_ENTROPY)
    aspect_cut = _cut(ctx, "odd_size", defaults.QUALITY_ODD_ASPECT)
    area_range = _area_range(
        [math.sqrt(s.width * s.height) for s in sigs.values() if s.quality and s.width and s.height]
    )
    out: list[Finding] = []
    for record in ctx.dataset.images:
        sig = sigs[record.rel]
        q = sig.quality
        if q is None:
            continue

        def add(check: str, score: float, msg: str, **data: Any) -> None:
            out.append(Finding(record.split, record.rel, check, score, msg, data=data))

        p99, p5 = q["brightness_p99"], q["brightness_p5"]
        s = falloff(p99, dark_cut)
        add(
            "dark",
            s,
            f"{'dark' if s >= 0.5 else 'lit'}: its brightest 1 % of pixels reach brightness {p99:.2f} "
            f"(dark below {dark_cut:.2f})",
            brightness_p99=round(p99, 4),
        )
        s = falloff(1.0 - p5, 1.0 - light_cut)
        add(
            "overexposed",
            s,
            f"{'overexposed' if s >= 0.5 else 'exposed'}: its darkest 5 % of pixels are at brightness {p5:.2f} "
            f"(overexposed above {light_cut:.2f})",
            brightness_p5=round(p5, 4),
        )
        entropy = q["entropy"]
        info = falloff(entropy, info_cut)
        add(
            "low_information",
            info,
            f"{'nearly blank' if info >= 0.5 else 'varied'}: colour entropy {entropy:.2f} bits "
            f"(low below {info_cut:.1f})",
            entropy=round(entropy, 4),
        )
        sharp = q["sharpness"]
        s = falloff(sharp, blur_cut)
        if info >= 0.5:
            msg, s = f"not scored for blur: the image is nearly blank (entropy {entropy:.2f} bits)", 0.0
        else:
            msg = (
                f"{'blurry' if s >= 0.5 else 'sharp'}: edge strength {sharp:.1f} "
                f"(Laplacian std at {BLUR_SIDE} px; blurry below {blur_cut:.0f})"
            )
        add("blurry", s, msg, sharpness=round(sharp, 3))
        add("odd_size", *_odd_size(sig.width, sig.height, aspect_cut, area_range))
    return out


def _area_range(roots: list[float]) -> tuple[float, float, float] | None:
    """(low, high, median) of √area outside which an image is an odd size; None with too few images to tell."""
    if len(roots) < defaults.QUALITY_ODD_SIZE_MIN_IMAGES:
        return None
    q1, med, q3 = np.percentile(roots, (25, 50, 75))
    k, ratio = defaults.QUALITY_ODD_SIZE_IQR, defaults.QUALITY_ODD_SIZE_RATIO
    return min(q1 - k * (q3 - q1), med / ratio), max(q3 + k * (q3 - q1), med * ratio), float(med)


def _odd_size(w: int, h: int, aspect_cut: float, area_range: tuple[float, float, float] | None) -> tuple[float, str]:
    """Score and message of the worst of: aspect ratio, tiny side, area far from the dataset's."""
    if not w or not h:
        return 0.0, "size unknown"
    aspect = min(w / h, h / w)
    tiny = defaults.QUALITY_TINY_SIDE
    scored = [
        (falloff(aspect, aspect_cut), f"aspect ratio 1:{1 / aspect:.1f} (odd below 1:{1 / aspect_cut:.1f})"),
        (falloff(min(w, h), tiny), f"{min(w, h)} px on its short side (tiny below {tiny})"),
    ]
    if area_range is not None:
        low, high, med = area_range
        root = math.sqrt(w * h)
        far, cut, word = (
            (med / root, med / low if low > 0 else math.inf, "below")
            if root < med
            else (root / med, high / med, "above")
        )
        bound = low if root < med else high  # odd below/above this √area; scored on the log of the ratio to the median
        s = 1.0 - falloff(math.log(far), math.log(cut)) if math.isfinite(cut) else 0.0
        scored.append((s, f"√area {root:.0f} px against the dataset's median {med:.0f} (odd {word} {bound:.0f})"))
    score, why = max(scored, key=lambda t: t[0])
    return score, f"{'odd size' if score >= 0.5 else 'usual size'} {w}×{h}: {why}"


class ImageQuality(Check):
    names = NAMES
    description = "photos too dark, overexposed, blurry or nearly blank to teach a detector; odd sizes"
    kind = "image"
    order = 50
    display = {
        "dark": Display(130, "#1e293b"),
        "overexposed": Display(140, "#a16207"),
        "blurry": Display(150, "#0891b2"),
        "low_information": Display(160, "#78716c"),
        "odd_size": Display(170, "#9333ea"),
    }
    options = {"cut": 0.0}  # each check's cut point; defaults.QUALITY_DARK_P99, QUALITY_LIGHT_P5, ...
    needs = (ImageSignatures,)

    def run(self, ctx: AuditContext) -> list[Finding]:
        return run(ctx)
