"""Contact sheet of the flagged planted groups whose merged boxes a split does not recover, to judge by eye.

    python benchmarks/members_sheet.py reports/bench/s1/members-food-ingredients-seed1.pkl --out reports/sheets

Why: the replay (``members_replay.py --diagnose``) sorts an unsplit group by cause from the candidate sets alone;
only the image says whether the merged objects are visible as separate objects at all, and what the pick did
instead (too few members, wrong ones, members of the wrong size). The search of the code checked out is replayed
on the dump (``members_replay.replay``); each flagged planted group where fewer than half its merged boxes come back
is drawn: the group box red, the merged boxes before the merge green, the picked members magenta where the split is
made and orange where it is withheld, the image's other boxes grey. Captions: the cause or the recovered count,
``p_right``, members picked against merged. Writes ``<dump>-sheet.png`` and ``<dump>-sheet.csv`` (one row a group,
with a ``verdict`` column left empty to fill in by eye).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from contact_sheet import caption_below, square_view  # noqa: E402
from members_replay import load, replay  # noqa: E402

TILE = 320  # pixels a side of one thumbnail
CAPTION = 34  # pixels under it for the caption
PER_ROW = 5
CONTEXT = 1.6  # a thumbnail shows a square this many times the group box's longer side


def tile(path: str, group, others, merged, picked, made: bool, caption: list[str]) -> np.ndarray:
    """One thumbnail around the group box (normalized xyxy boxes throughout)."""
    out = np.full((TILE + CAPTION, TILE, 3), 255, np.uint8)
    img = cv2.imread(path)
    if img is not None:
        h, w = img.shape[:2]
        gx1, gy1, gx2, gy2 = group
        side = max(CONTEXT * max((gx2 - gx1) * w, (gy2 - gy1) * h), 16)
        crop, x0, y0, scale = square_view(img, (gx1 + gx2) / 2 * w, (gy1 + gy2) / 2 * h, side, TILE)

        def draw(b, colour, width):
            p1 = (int((b[0] * w - x0) * scale), int((b[1] * h - y0) * scale))
            p2 = (int((b[2] * w - x0) * scale), int((b[3] * h - y0) * scale))
            cv2.rectangle(crop, p1, p2, colour, width)

        for b in others:
            draw(b, (160, 160, 160), 1)
        draw(group, (0, 0, 255), 2)
        for b in merged:
            draw(b, (0, 200, 0), 2)
        for b in picked:
            draw(b, (255, 0, 255) if made else (0, 150, 255), 2)
        out[:TILE] = crop
    caption_below(out, caption, 44, TILE)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dump", type=Path)
    ap.add_argument("--out", type=Path, default=Path("reports/sheets"))
    ap.add_argument("--all", action="store_true", help="draw every flagged planted group, not only the failing ones")
    args = ap.parse_args(argv)
    d = load(args.dump)
    detail: list[dict] = []
    replay(d, diagnose=True, detail=detail)
    qs = d["qs"]
    failing = [g for g in detail if args.all or g["recovered"] < 0.5 * len(g["merged"])]
    tiles, rows = [], []
    for n, g in enumerate(failing):
        q = qs[g["row"]] if g["row"] is not None else None
        if q is None:
            continue
        group = tuple(float(v) for v in q.xyxy)
        others = [b for b in d["boxes"][q.image] if not np.allclose(b, group, atol=1e-6)]
        state = f"split {g['recovered']}/{len(g['merged'])}" if g["made"] else (g["cause"] or "no pick")
        p = "—" if g["p_right"] is None else f"{g['p_right']:.2f}"
        caption = [f"#{n} {state} p={p}", f"picked {len(g['picked'])} merged {len(g['merged'])} {g['key'][0][-16:]}"]
        tiles.append(tile(d["paths"][q.image], group, others, g["merged"], g["picked"], g["made"], caption))
        rows.append({"n": n, "image": g["key"][0], "line": g["key"][1], "state": state, "p_right": p,
                     "picked": len(g["picked"]), "merged": len(g["merged"]), "verdict": ""})  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"{args.dump.stem}-sheet"
    if tiles:
        blank = np.full_like(tiles[0], 255)
        tiles += [blank] * (-len(tiles) % PER_ROW)
        sheet = np.vstack([np.hstack(tiles[i : i + PER_ROW]) for i in range(0, len(tiles), PER_ROW)])
        cv2.imwrite(f"{stem}.png", sheet)
    with open(f"{stem}.csv", "w", newline="") as fh:
        fields = ["n", "image", "line", "state", "p_right", "picked", "merged", "verdict"]
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} of {len(detail)} flagged planted groups drawn: {stem}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
