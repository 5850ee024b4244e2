"""Image-level checks: files a trainer cannot read as the labeller saw them."""

from __future__ import annotations

from curate.checks.base import AuditContext
from curate.findings import Finding

NAME = "corrupt_image"
NAMES = ("corrupt_image", "exif_rotated")

_STATUS = {
    "zero_bytes": (1.0, "zero-byte file: nothing to train on"),
    "unreadable": (1.0, "unreadable image: no decoder accepts it"),
    "truncated": (0.9, "truncated/corrupt image (no end marker): the bottom is missing; Ultralytics re-saves such JPEGs in place"),
}


def _signatures(ctx: AuditContext):
    from curate.hashing import image_signatures

    if "signatures" not in ctx.shared:
        ctx.shared["signatures"] = image_signatures(ctx.dataset)
    return ctx.shared["signatures"]


def run(ctx: AuditContext) -> list[Finding]:
    sigs = _signatures(ctx)
    out: list[Finding] = []
    for r in ctx.dataset.images:
        s = sigs[r.rel]
        score, msg = _STATUS.get(s.status, (0.0, "image reads cleanly"))
        if score == 0.0 and not s.ext_ok:
            score, msg = 0.6, f"extension {r.path.suffix!r} but the bytes are {s.format.upper()}: some tools trust the name"
        out.append(Finding(r.split, r.rel, "corrupt_image", score, f"{r.rel}: {msg}", data={"status": s.status}))
        rot = s.orientation not in (0, 1)
        out.append(Finding(r.split, r.rel, "exif_rotated", 0.9 if rot else 0.0,
                           f"{r.rel}: EXIF orientation {s.orientation}: boxes drawn on the rotated view won't match "
                           "what a trainer sees" if rot else f"{r.rel}: no EXIF rotation",
                           data={"orientation": s.orientation}))
    return out
