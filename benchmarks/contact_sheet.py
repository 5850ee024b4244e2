"""Contact sheet of the top of the merged worst-first list on an UNMODIFIED dataset, to judge by eye.

    python benchmarks/contact_sheet.py --dataset ../shared/datasets/potholes-road --out reports/sheets [--fast]

Why: planted errors measure recall on errors we know how to make; only the top of the list on the data as
it is shows what a user is asked to review first (real errors, or boxes that are right). Every train box is
ranked by its best score over the error checks (notes left out, as ``audit/all``); the top ``--top`` are
drawn 5 to a row: the flagged box red, the image's other boxes green, the caption rank, check and score.
Writes ``<name>-top.png`` and ``<name>-top.csv`` (rank, image, line, class, check, score, message) to judge.
``--check`` draws one check's top instead (only it runs), ``--match`` only findings whose message holds a text
(``--check class_inconsistent --match "rare class"``: the boxes of rare classes it judged).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curate.audit.checks.base import AuditContext  # noqa: E402
from curate.core.findings import NOTE_CHECKS, Finding  # noqa: E402

TILE = 240  # pixels a side of one thumbnail
CAPTION = 34  # pixels under it for the caption
PER_ROW = 5
CONTEXT = 2.2  # a thumbnail shows a square this many times the box's longer side (as the report)


def _bench():
    spec = importlib.util.spec_from_file_location("label_noise", Path(__file__).with_name("label_noise.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def top_boxes(findings: list[Finding], n: int) -> list[Finding]:
    """The ``n`` train boxes with the highest error score (one finding per box: its best)."""
    best: dict[tuple[str, int], Finding] = {}
    for f in findings:
        if f.split != "train" or f.line is None or f.check in NOTE_CHECKS:
            continue
        key = (f.image, f.line)
        if key not in best or f.score > best[key].score:
            best[key] = f
    return sorted(best.values(), key=lambda f: (-f.score, f.image, f.line))[:n]


def tile(
    path: Path, boxes: list[tuple[float, float, float, float]], k: int, caption: list[str], min_view: float = 0.4
) -> np.ndarray:
    """One thumbnail: a square around box ``k`` (normalized cx, cy, w, h), boxes drawn, caption below."""
    out = np.full((TILE + CAPTION, TILE, 3), 255, np.uint8)
    img = cv2.imread(str(path))
    if img is not None:
        h, w = img.shape[:2]
        cx, cy, bw, bh = boxes[k]
        side = max(CONTEXT * max(bw * w, bh * h), min_view * max(w, h), 8)
        crop, x0, y0, scale = square_view(img, cx * w, cy * h, side)
        for j, (bx, by, bw2, bh2) in enumerate(boxes):
            p1 = (int(((bx - bw2 / 2) * w - x0) * scale), int(((by - bh2 / 2) * h - y0) * scale))
            p2 = (int(((bx + bw2 / 2) * w - x0) * scale), int(((by + bh2 / 2) * h - y0) * scale))
            if j != k:
                cv2.rectangle(crop, p1, p2, (0, 200, 0), 1)
        bx, by, bw2, bh2 = boxes[k]
        p1 = (int(((bx - bw2 / 2) * w - x0) * scale), int(((by - bh2 / 2) * h - y0) * scale))
        p2 = (int(((bx + bw2 / 2) * w - x0) * scale), int(((by + bh2 / 2) * h - y0) * scale))
        cv2.rectangle(crop, p1, p2, (0, 0, 255), 2)
        out[:TILE] = crop
    caption_below(out, caption, 40)
    return out


def square_view(
    img: np.ndarray, cx: float, cy: float, side: float, tile: int = TILE
) -> tuple[np.ndarray, int, int, float]:
    """The square of ``side`` px centred on (``cx``, ``cy``) in image pixels, dark where it passes the image's
    edges, resized to ``tile`` px: the crop, its top-left corner in the image, and the scale from image to tile."""
    x0, y0 = int(cx - side / 2), int(cy - side / 2)
    pad = int(side)
    big = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(40, 40, 40))
    crop = big[y0 + pad : y0 + pad + int(side), x0 + pad : x0 + pad + int(side)]
    scale = tile / max(crop.shape[:2])
    return cv2.resize(crop, (tile, tile), interpolation=cv2.INTER_AREA), x0, y0, scale


def caption_below(out: np.ndarray, caption: list[str], width: int, tile: int = TILE) -> None:
    """Writes each caption line, cut to ``width`` characters, under the ``tile``-px thumbnail in ``out``."""
    for i, text in enumerate(caption):
        at = (3, tile + 13 + 15 * i)
        cv2.putText(out, text[:width], at, cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("reports/sheets"))
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--fast", action="store_true", help="run the checks in --fast mode (no pixels)")
    parser.add_argument(
        "--min-view",
        type=float,
        default=0.4,
        help="a thumbnail shows at least this share of the image's longer side (0.1 for tiny objects)",
    )
    parser.add_argument("--check", default=None, help="draw this check's top only (and run only it)")
    parser.add_argument("--match", default=None, help="only findings whose message contains this text")
    args = parser.parse_args(argv)
    bench = _bench()
    dataset = bench.load_dataset(args.dataset)
    ctx = AuditContext(dataset, params={}, fast=args.fast, seed=0)
    findings, _, errors = bench.run_selected(ctx, {args.check} if args.check else set(bench.DEFAULT_CHECKS))
    if errors:
        print(f"checks failed: {errors}")
    if args.check:
        findings = [f for f in findings if f.check == args.check]
    if args.match:
        findings = [f for f in findings if args.match in f.message]
    records = {r.rel: r for r in dataset.images}
    top = top_boxes(findings, args.top)
    tiles, rows = [], []
    for rank, f in enumerate(top, start=1):
        rec = records[f.image]
        labels = rec.labels
        k = next(i for i, lab in enumerate(labels) if lab.line == f.line)
        name = dataset.class_name(labels[k].class_id)
        caption = [f"#{rank} {f.check} {f.score:.2f}", f"{name} L{f.line} {Path(f.image).name[:18]}"]
        tiles.append(tile(rec.path, [(lab.cx, lab.cy, lab.w, lab.h) for lab in labels], k, caption, args.min_view))
        rows.append(
            {
                "rank": rank,
                "image": f.image,
                "line": f.line,
                "class": name,
                "check": f.check,
                "score": f"{f.score:.4f}",
                "message": f.message,
            }
        )
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"{dataset.name}-top"
    if tiles:
        while len(tiles) % PER_ROW:
            tiles.append(np.full_like(tiles[0], 255))
        sheet = np.vstack([np.hstack(tiles[i : i + PER_ROW]) for i in range(0, len(tiles), PER_ROW)])
        cv2.imwrite(str(stem.with_suffix(".png")), sheet)
    with stem.with_suffix(".csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["rank", "image", "line", "class", "check", "score", "message"])
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {stem}.png and {stem}.csv ({len(top)} boxes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
