"""Image-level checks: files a trainer can't read as they are, and photos whose EXIF rotation lies.

``corrupt_image``: unreadable, truncated, zero-byte, or named with the wrong extension (the bytes are a
PNG, the name says .jpg) — Ultralytics skips or mis-reads these. ``exif_rotated``: an EXIF orientation
other than 1 means the pixels are stored unrotated and the file asks to be shown turned. OpenCV (so
Ultralytics, and this audit's pixel checks) and browsers apply it; annotation tools that ignore EXIF show
the stored pixels, and boxes drawn there won't match the turned image the trainer sees (checked: OpenCV
4.14 decodes a 200×100 JPEG with orientation 6 as 100 wide, 200 high). Roboflow auto-orients and strips
EXIF on export, so the tag in an export is a sign the file came from elsewhere.
"""

from __future__ import annotations

from curate.audit.checks.base import AuditContext, Check, Display
from curate.audit.shared import ImageSignatures
from curate.core.findings import Finding
from curate.vision.hashing import Signature

NAME = "corrupt_image"
NAMES = ("corrupt_image", "exif_rotated")
#: How sure each decode status is a real problem (score).
STATUS_SCORE = {"ok": 0.0, "empty": 1.0, "unreadable": 1.0, "truncated": 0.9, "wrong_extension": 0.6}
ORIENTATION_WORDS = {
    2: "mirrored",
    3: "rotated 180°",
    4: "flipped vertically",
    5: "transposed",
    6: "rotated 90° clockwise",
    7: "transversed",
    8: "rotated 90° counter-clockwise",
}


def signatures(ctx: AuditContext) -> dict[str, Signature]:
    """This audit's image signatures (:class:`curate.audit.shared.ImageSignatures`)."""
    from curate.audit.shared import ImageSignatures

    return ctx.use(ImageSignatures).get(ctx)


def run(ctx: AuditContext) -> list[Finding]:
    sigs = signatures(ctx)
    out: list[Finding] = []
    for record in ctx.dataset.images:
        sig = sigs[record.rel]
        score = STATUS_SCORE.get(sig.status, 1.0)
        out.append(
            Finding(
                record.split,
                record.rel,
                "corrupt_image",
                score,
                sig.detail or "decodes fine",
                data={"status": sig.status},
            )
        )
        rotated = sig.orientation not in (0, 1)
        words = ORIENTATION_WORDS.get(sig.orientation, f"orientation {sig.orientation}")
        msg = (
            f"EXIF orientation {sig.orientation} ({words}): Ultralytics (OpenCV) trains on the turned image; "
            "if its boxes were drawn in a tool that ignores EXIF, they won't match"
            if rotated
            else "no EXIF rotation"
        )
        out.append(
            Finding(
                record.split,
                record.rel,
                "exif_rotated",
                0.8 if rotated else 0.0,
                msg,
                data={"orientation": sig.orientation},
            )
        )
    return out


class ImageChecks(Check):
    names = NAMES
    description = "unreadable, truncated or misnamed image files; EXIF-rotated photos"
    kind = "image"
    order = 40
    display = {
        "corrupt_image": Display(10, "#b91c1c"),
        "exif_rotated": Display(120, "#7c3aed"),
    }
    needs = (ImageSignatures,)

    def run(self, ctx: AuditContext) -> list[Finding]:
        return run(ctx)
