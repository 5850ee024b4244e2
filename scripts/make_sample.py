"""Rebuild the bundled sample `curate/sample/food-mini` from ../shared/datasets/food-ingredients.

Not run by tests: the sample is committed. The selection is deterministic and keeps the real quirks of
the Roboflow export: its `../train/images` data.yaml paths, a polygon (segmentation) line, the one empty
label file (a background image), near-duplicate photos across splits (found by pHash), and as many
classes as fit. Usage: `python scripts/make_sample.py [SOURCE] [DEST]`.
"""

from __future__ import annotations

import shutil
import sys
from collections import Counter
from pathlib import Path

import imagehash
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SOURCE = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "datasets" / "food-ingredients"
DEST = Path(sys.argv[2]) if len(sys.argv) > 2 else REPO / "curate" / "sample" / "food-mini"
SIZES = {"train": 60, "valid": 10, "test": 10}
POLYGON_IMAGE = "WhatsApp-Image-2024-03-26-at-3-33-43-PM-5-_jpeg.rf.cde0c159ab4c2289eb5bf6002affd780"
EMPTY_LABEL_IMAGE = "IMG-20240324-WA0458_jpg.rf.9c5d0e66c786cf411c09a9fb99f73b21"
NEAR_DUPLICATE_PAIRS = 3  # cross-split pairs to keep (the closest by pHash)


def stems(split: str) -> list[str]:
    return sorted(p.stem for p in (SOURCE / split / "images").glob("*.jpg"))


def classes_of(split: str, stem: str) -> list[int]:
    text = (SOURCE / split / "labels" / f"{stem}.txt").read_text()
    return [int(line.split()[0]) for line in text.splitlines() if line.strip()]


def cross_split_pairs() -> list[tuple[int, tuple[str, str], tuple[str, str]]]:
    hashes = {
        (split, stem): imagehash.phash(Image.open(SOURCE / split / "images" / f"{stem}.jpg"))
        for split in SIZES
        for stem in stems(split)
    }
    train = [(k, h) for k, h in hashes.items() if k[0] == "train"]
    pairs = []
    for k, h in hashes.items():
        if k[0] == "train":
            continue
        best = min(train, key=lambda t: h - t[1])
        pairs.append((h - best[1], best[0], k))
    return sorted(pairs)


def select() -> dict[str, list[str]]:
    chosen: dict[str, list[str]] = {s: [] for s in SIZES}
    chosen["train"] += [POLYGON_IMAGE, EMPTY_LABEL_IMAGE]
    for _, a, b in cross_split_pairs()[:NEAR_DUPLICATE_PAIRS]:
        for split, stem in (a, b):
            if stem not in chosen[split]:
                chosen[split].append(stem)
    for split, size in SIZES.items():  # then greedily: the image adding the most unseen classes
        seen = Counter(c for stem in chosen[split] for c in classes_of(split, stem))
        pool = [s for s in stems(split) if s not in chosen[split]]
        while len(chosen[split]) < size and pool:
            best = max(
                pool,
                key=lambda s: (
                    len(set(classes_of(split, s)) - set(seen)),
                    -len(classes_of(split, s)) if len(classes_of(split, s)) > 12 else 0,
                    s,
                ),
            )
            pool.remove(best)
            chosen[split].append(best)
            seen.update(classes_of(split, best))
    return chosen


def main() -> None:
    if DEST.exists():
        shutil.rmtree(DEST)
    for split, chosen in select().items():
        for sub in ("images", "labels"):
            (DEST / split / sub).mkdir(parents=True, exist_ok=True)
        for stem in chosen:
            shutil.copyfile(SOURCE / split / "images" / f"{stem}.jpg", DEST / split / "images" / f"{stem}.jpg")
            shutil.copyfile(SOURCE / split / "labels" / f"{stem}.txt", DEST / split / "labels" / f"{stem}.txt")
    for name in ("data.yaml", "README.dataset.txt", "README.roboflow.txt"):
        shutil.copyfile(SOURCE / name, DEST / name)
    (DEST / "ATTRIBUTION.md").write_text(ATTRIBUTION, encoding="utf-8")
    print(f"wrote {DEST}")


ATTRIBUTION = """# food-mini — attribution and license

A subset (80 images: 60 train, 10 valid, 10 test) of **FOOD INGREDIENTS DETECTION v48**, a Roboflow
Universe dataset by the workspace *yaman-e*:
https://universe.roboflow.com/yaman-e/food-ingredients-detection-qfit7/dataset/48

License: **CC BY 4.0** — https://creativecommons.org/licenses/by/4.0/ . You may share and adapt it,
also commercially, if you give appropriate credit, link the license and say whether changes were made.

Changes: only a selection of images was taken (by `scripts/make_sample.py`); images, label files and
data.yaml are byte-identical to the export, quirks included (Roboflow's `../train/images` paths, a
polygon line, an empty label file).
"""

if __name__ == "__main__":
    main()
