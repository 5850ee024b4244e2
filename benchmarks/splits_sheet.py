"""Contact sheet of the group boxes whose split proposal differs between two audits of the same UNMODIFIED dataset.

    python benchmarks/splits_sheet.py DATASET BEFORE/proposals.csv AFTER/proposals.csv OUT.png

Why: the planted benchmark (``proposals.py``) says how often a split recovers merged boxes; only the data as it is
shows what a change to the member search proposes for the export's own group boxes (piles, crowds). Each pair of
tiles: the group box red, BEFORE's members cyan (left), AFTER's magenta (right), the image's other boxes grey;
caption image:line, the split's confidence and member count ("none": no split). At most 30 groups.
"""

import csv
import sys
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

root, before, after, out = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]


def splits(p):
    d = defaultdict(list)
    for r in csv.DictReader(open(p)):
        if r["action"] == "split":
            d[(r["image"], int(r["line"]))].append(
                (tuple(float(r[k]) for k in ("x", "y", "w", "h")), float(r["confidence"]))
            )
    return d


B, A = splits(before), splits(after)
keys = sorted(set(B) | set(A), key=lambda k: (k not in A, k))
changed = [k for k in keys if sorted(b for b, _ in B.get(k, [])) != sorted(b for b, _ in A.get(k, []))]
print(f"splits before {len(B)}, after {len(A)}, changed {len(changed)}")
T = 300
tiles = []
for img_rel, line in changed[:30]:
    path = root / img_rel
    img = cv2.imread(str(path))
    lab = path.parent.parent / "labels" / (path.stem + ".txt")
    rows = [l.split() for l in open(lab).read().splitlines() if l.strip()]
    h, w = img.shape[:2]

    def xyxy(cx, cy, bw, bh):
        return int((cx - bw / 2) * w), int((cy - bh / 2) * h), int((cx + bw / 2) * w), int((cy + bh / 2) * h)

    g = [float(v) for v in rows[line - 1][1:5]]
    gx1, gy1, gx2, gy2 = xyxy(*g)
    s = int(max(gx2 - gx1, gy2 - gy1) * 1.6) + 10
    cx, cy = (gx1 + gx2) // 2, (gy1 + gy2) // 2
    x0, y0 = max(0, cx - s // 2), max(0, cy - s // 2)
    pair = []
    for members, colour in ((B.get((img_rel, line), []), (255, 255, 0)), (A.get((img_rel, line), []), (255, 0, 255))):
        im = img.copy()
        for k, r in enumerate(rows):
            if k != line - 1 and len(r) == 5:
                cv2.rectangle(im, xyxy(*map(float, r[1:5]))[:2], xyxy(*map(float, r[1:5]))[2:], (160, 160, 160), 1)
        cv2.rectangle(im, (gx1, gy1), (gx2, gy2), (0, 0, 255), 2)
        for b, _ in members:
            p = xyxy(*b)
            cv2.rectangle(im, p[:2], p[2:], colour, 2)
        crop = im[y0 : y0 + s, x0 : x0 + s]
        crop = cv2.resize(crop, (T, T))
        conf = f"{members[0][1]:.2f} n={len(members)}" if members else "none"
        cap = np.full((30, T, 3), 255, np.uint8)
        cv2.putText(
            cap, f"{Path(img_rel).name[:22]}:{line} {conf}", (3, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1
        )
        pair.append(np.vstack([crop, cap]))
    tiles.append(np.hstack([pair[0], np.full((T + 30, 6, 3), 0, np.uint8), pair[1]]))
rows_img = []
for i in range(0, len(tiles), 3):
    row = tiles[i : i + 3]
    while len(row) < 3:
        row.append(np.full_like(tiles[0], 255))
    rows_img.append(np.hstack([np.hstack([t, np.full((T + 30, 12, 3), 255, np.uint8)]) for t in row]))
cv2.imwrite(out, np.vstack(rows_img) if rows_img else np.full((10, 10, 3), 255, np.uint8))
