"""The output folder: the dataset, the generated images and labels, backgrounds.json and the contact sheet,
whole or not at all."""

from __future__ import annotations

import json
from pathlib import Path

import cv2

from curate.core import defaults
from curate.ops.backgrounds.generate import BackgroundResult, Generated
from curate.ops.backgrounds.sources import roboflow_base


def write_backgrounds(result: BackgroundResult, out: str | Path, *, overwrite: bool = False) -> Path:
    """OUT/ = the dataset (``save_yolo``) + the generated train images and labels + contact sheet + JSON,
    whole or not at all (:func:`curate.io.outputs.atomic_output`)."""
    from curate.io.outputs import atomic_output
    from curate.io.yolo import check_output_dir

    target = check_output_dir(Path(out), [result.dataset.root], overwrite=overwrite)
    with atomic_output(target, "backgrounds") as tmp:
        _write_backgrounds(result, tmp)
    return target


def _write_backgrounds(result: BackgroundResult, out: Path) -> None:
    from curate.io.yolo import format_label_lines, save_yolo

    save_yolo(result.dataset, out)
    img_dir, lab_dir = out / "images" / "train", out / "labels" / "train"
    img_dir.mkdir(parents=True, exist_ok=True)
    lab_dir.mkdir(parents=True, exist_ok=True)
    for g in result.generated:
        cv2.imwrite(str(img_dir / g.file), g.image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        (lab_dir / (Path(g.file).stem + ".txt")).write_text(
            format_label_lines(g.labels), encoding="utf-8", newline="\n"
        )
    if result.generated:
        contact_sheet(result.generated, out / "backgrounds_contact.png")
    n = len(result.backgrounds)
    summary = {
        "requested": result.requested,
        "backgrounds": n,
        "instances": len(result.instances),
        "train_images_before": len(result.dataset.split("train")),
        "image_size": list(result.size),
        "residual_threshold": defaults.BACKGROUND_MAX_RESIDUAL,
        "residual_prob": defaults.BACKGROUND_RESIDUAL_PROB,
        "salient_share": (sum(g.residual > defaults.BACKGROUND_MAX_RESIDUAL for g in result.backgrounds) / n)
        if n
        else 0.0,
        "max_val_test_similarity": max((g.similarity for g in result.backgrounds), default=0.0),
        "rejected": result.rejected,
        "warnings": result.warnings,
        "seconds": round(result.seconds, 2),
        "generated": [g.record() for g in result.generated],
    }
    (out / "backgrounds.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def contact_sheet(items: list[Generated], path: Path, *, thumb: int = 160, cols: int = 8) -> Path:
    """A grid of thumbnails (aspect kept, on grey) with two caption lines under each: how it was made and the
    source photo's name, each cut to the thumbnail's width; instance boxes drawn in red."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    line_h = 12
    label_h = 2 * line_h + 4
    cols = max(1, min(cols, len(items)))
    rows = -(-len(items) // cols)
    sheet = Image.new("RGB", (cols * thumb, rows * (thumb + label_h)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, g in enumerate(items):
        h, w = g.image.shape[:2]
        f = thumb / max(h, w)
        tw, th = max(1, round(w * f)), max(1, round(h * f))
        im = cv2.cvtColor(cv2.resize(g.image, (tw, th), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
        x, y = (i % cols) * thumb, (i // cols) * (thumb + label_h)
        draw.rectangle([x, y, x + thumb - 1, y + thumb - 1], fill=(200, 200, 200))
        ox, oy = x + (thumb - tw) // 2, y + (thumb - th) // 2
        sheet.paste(Image.fromarray(im), (ox, oy))
        for lab in g.labels:
            x1, y1, x2, y2 = lab.xyxy
            draw.rectangle([ox + x1 * tw, oy + y1 * th, ox + x2 * tw, oy + y2 * th], outline=(255, 40, 40), width=2)
        for k, text in enumerate((f"{g.kind}: {g.method}", roboflow_base(Path(g.source).stem))):
            draw.text(
                (x + 3, y + thumb + 2 + k * line_h), fit_text(draw, text, font, thumb - 6), fill=(0, 0, 0), font=font
            )
    from PIL import Image as _I

    # 256 colours without dithering: a third of the size, thumbnails still readable (README keeps it < 1.5 MB)
    sheet.quantize(colors=256, method=_I.Quantize.MEDIANCUT, dither=_I.Dither.NONE).save(path, optimize=True)
    return path


def fit_text(draw, text: str, font, width: int) -> str:
    """``text`` cut (with an ellipsis) so that it is at most ``width`` pixels wide."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"
