"""Image-quality checks on real datasets: flags per check at the default cut points, and a contact sheet.

Run by hand: ``python benchmarks/image_quality.py /work/shared/datasets/* --out /tmp/iq``. For each dataset
it prints the images flagged per check (score >= 0.5) and writes ``<out>/<dataset>.png``: every flagged
image (at most ``--per-check`` per check), then the ``--near`` highest-scoring unflagged ones per check, so
what sits just below a cut point can be judged by eye too. ``<out>/<dataset>.csv`` holds every image's
statistics. ``--cleanvision DIR`` compares with cleanvision's ``issues`` tables saved there as
``<dataset>.csv`` (index = image path).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TILE = 200


def sheet(rows: list[tuple[str, str, float, str]], path: Path, title: str) -> None:
    """A grid of tiles: the image, then its check, score and whether it is flagged under it."""
    from PIL import Image, ImageDraw, ImageOps

    cols = 6
    n = max(1, len(rows))
    img = Image.new("RGB", (cols * TILE, 24 + ((n + cols - 1) // cols) * (TILE + 30)), "white")
    draw = ImageDraw.Draw(img)
    draw.text((4, 4), title, fill="black")
    for k, (file, check, score, tag) in enumerate(rows):
        x, y = (k % cols) * TILE, 24 + (k // cols) * (TILE + 30)
        with Image.open(file) as im:
            tile = ImageOps.exif_transpose(im).convert("RGB")
        tile.thumbnail((TILE - 4, TILE - 4))
        img.paste(tile, (x + 2, y + 2))
        draw.text((x + 4, y + TILE), f"{check} {score:.2f} {tag}", fill="red" if tag == "FLAG" else "black")
        draw.text((x + 4, y + TILE + 12), Path(file).name[:34], fill="gray")
    img.save(path)


def _badness(f) -> float:
    """Lower = worse, among images of equal score (most score 0): the measured statistic itself."""
    d = f.data
    return {
        "dark": d.get("brightness_p99", 0),
        "overexposed": -d.get("brightness_p5", 0),
        "blurry": d.get("sharpness", 0),
        "low_information": d.get("entropy", 0),
    }.get(f.check, 0.0)


def main() -> None:
    from curate.audit.checks import image_quality
    from curate.audit.checks.base import AuditContext
    from curate.io.yolo import load_yolo

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("datasets", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--per-check", type=int, default=24)
    ap.add_argument("--near", type=int, default=6)
    ap.add_argument("--cleanvision", type=Path, default=None)
    ap.add_argument(
        "--planted", type=int, default=0, help="also degrade this many images per dataset and count them flagged"
    )
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.planted:
        planted(args.datasets, args.planted)
        return
    print("| dataset | images | " + " | ".join(image_quality.NAMES) + " |")
    for root in args.datasets:
        ds = load_yolo(root)
        found = image_quality.run(AuditContext(ds))
        by_check = {
            c: sorted((f for f in found if f.check == c), key=lambda f: (-f.score, _badness(f)))
            for c in image_quality.NAMES
        }
        flagged = {c: [f for f in fs if f.score >= 0.5] for c, fs in by_check.items()}
        print(
            f"| {root.name} | {len(ds.images)} | "
            + " | ".join(str(len(flagged[c])) for c in image_quality.NAMES)
            + " |",
            flush=True,
        )
        rows = []
        for c, fs in by_check.items():
            rows += [(str(ds.root / f.image), c, f.score, "FLAG") for f in flagged[c][: args.per_check]]
            rows += [(str(ds.root / f.image), c, f.score, "near") for f in fs[len(flagged[c]) :][: args.near]]
        sheet(
            rows,
            args.out / f"{root.name}.png",
            f"{root.name}: flagged (red) and the highest unflagged (black) per check",
        )
        with open(args.out / f"{root.name}.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["image", "check", "score", "message"])
            for f in found:
                w.writerow([f.image, f.check, round(f.score, 4), f.message])
        for f in (f for c in image_quality.NAMES for f in flagged[c]):
            print(f"    {f.check:16s} {f.score:.2f} {f.image}: {f.message}")
        if args.cleanvision and (args.cleanvision / f"{root.name}.csv").exists():
            compare(args.cleanvision / f"{root.name}.csv", ds, flagged)


#: Degraded copies: (name, check that should flag it, how).
DEGRADE = {
    "dark ×0.25": ("dark", lambda im: (im * 0.25).astype("uint8")),
    "overexposed (248 + 3 %)": ("overexposed", lambda im: (248 + im * 7 / 255).astype("uint8")),
    "blur σ=3 px": ("blurry", lambda im: _blur(im, 3)),
    "blur σ=6 px": ("blurry", lambda im: _blur(im, 6)),
    "blur σ=10 px": ("blurry", lambda im: _blur(im, 10)),
}


def _blur(im, sigma: float):
    import cv2

    return cv2.GaussianBlur(im, (0, 0), sigma)


def planted(roots: list[Path], n: int) -> None:
    """Share of ``n`` random images per dataset flagged once degraded (each copy hashed like a dataset image)."""
    import random

    import cv2

    from curate.audit.checks import image_quality
    from curate.io.yolo import load_yolo
    from curate.vision.hashing import _thumb

    print("| dataset | " + " | ".join(DEGRADE) + " |")
    for root in roots:
        ds = load_yolo(root)
        recs = random.Random(0).sample(ds.images, min(n, len(ds.images)))
        hits = {k: 0 for k in DEGRADE}
        for rec in recs:
            img = cv2.imread(str(rec.path))
            for name, (check, how) in DEGRADE.items():
                ok, enc = cv2.imencode(
                    ".jpg",
                    how(img.astype("float32")).astype("uint8") if check != "blurry" else how(img),
                    [cv2.IMWRITE_JPEG_QUALITY, 90],
                )
                _, _, q = _thumb(enc.tobytes(), full_size=None)
                score = _score(image_quality, check, q)
                hits[name] += score >= 0.5
        print(f"| {root.name} | " + " | ".join(f"{hits[k]}/{len(recs)}" for k in DEGRADE) + " |", flush=True)


def _score(iq, check: str, q: dict) -> float:
    from curate.core import defaults

    if check == "dark":
        return iq.falloff(q["brightness_p99"], defaults.QUALITY_DARK_P99)
    if check == "overexposed":
        return iq.falloff(1 - q["brightness_p5"], 1 - defaults.QUALITY_LIGHT_P5)
    return iq.falloff(q["sharpness"], defaults.QUALITY_BLUR_SHARPNESS)


def compare(path: Path, ds, flagged: dict) -> None:
    """Images cleanvision flags for each of its issues, next to ours (same images, by path)."""
    ours_name = {
        "dark": "dark",
        "light": "overexposed",
        "blurry": "blurry",
        "low_information": "low_information",
        "odd_size": "odd_size",
        "odd_aspect_ratio": "odd_size",
    }
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    for issue, ours in ours_name.items():
        theirs = {
            str(Path(r[""]).resolve().relative_to(Path(ds.root).resolve()))
            for r in rows
            if r.get(f"is_{issue}_issue") == "True"
        }
        mine = {f.image for f in flagged[ours]}
        print(f"    cleanvision {issue}: {len(theirs)} flagged, {len(theirs & mine)} of them also by {ours}")


if __name__ == "__main__":
    main()
