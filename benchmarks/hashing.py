"""Hashing and loading speed (issue #4): signatures cold and warm vs plain decode rates; FiftyOne loading.

Run by hand (`make bench` or `python benchmarks/hashing.py [DATASET] [--fiftyone]`); prints a table.
Targets: the cold hashing pass at >= 50 % of the full-decode rate; `to_fiftyone` no slower than
FiftyOne's own `add_dir`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def rate(fn, items, workers: int = 2) -> float:
    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(fn, items, chunksize=16))
    return len(items) / (time.perf_counter() - t)


def scaled_signatures(sigs: dict, n: int) -> dict:
    """``n`` thumbnails with photo statistics: a random blend of two of the dataset's, half of them mirrored
    (the pair search's cost grows with n², so a 20,000-image export is where it shows)."""
    import numpy as np

    from curate.vision.hashing import THUMB, Signature

    mat = np.stack([s.thumb for s in sigs.values() if s.thumb is not None])
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, len(mat), n), rng.integers(0, len(mat), n)
    w = rng.uniform(0.5, 1.0, (n, 1)).astype(np.float32)
    m = w * mat[a] + (1 - w) * mat[b]
    flip = rng.random(n) < 0.5
    m[flip] = m[flip].reshape(-1, THUMB, THUMB)[:, :, ::-1].reshape(-1, THUMB * THUMB)
    m -= m.mean(axis=1, keepdims=True)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    return {f"s{k}": Signature(f"s{k}", f"s{k}", "ok", "", 1, 1, 1, m[k].astype(np.float32)) for k in range(n)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("dataset", nargs="?", default=str(REPO.parent / "shared" / "datasets" / "food-ingredients"))
    ap.add_argument("--fiftyone", action="store_true", help="also time to_fiftyone vs FiftyOne's add_dir")
    ap.add_argument(
        "--scale", type=int, default=20000, help="also time the pair search on this many thumbnails (0: skip)"
    )
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="curate-bench-"))
    os.environ["CURATE_CACHE_DIR"] = str(tmp / "cache")
    os.environ.setdefault("FIFTYONE_DATABASE_DIR", str(tmp / "fo"))
    import cv2

    from curate.io.yolo import load_yolo
    from curate.vision.hashing import image_signatures, near_duplicate_pairs

    t = time.perf_counter()
    ds = load_yolo(args.dataset)
    load_s = time.perf_counter() - t
    paths = [str(r.path) for r in ds.images]
    n = len(paths)
    full = rate(lambda p: cv2.imread(p, cv2.IMREAD_COLOR), paths)
    reduced = rate(lambda p: cv2.imread(p, cv2.IMREAD_REDUCED_GRAYSCALE_4), paths)
    t = time.perf_counter()
    sigs = image_signatures(ds, progress=False)
    cold = n / (time.perf_counter() - t)
    t = time.perf_counter()
    sigs = image_signatures(ds, progress=False)
    warm = n / (time.perf_counter() - t)
    t = time.perf_counter()
    pairs = near_duplicate_pairs(sigs)
    search_s = time.perf_counter() - t
    split = {r.rel: r.split for r in ds.images}
    cross = sum(split[p.a] != split[p.b] for p in pairs)
    rows = [
        ("load_yolo (labels + image headers)", f"{load_s:.2f} s", f"{n / load_s:.0f}"),
        ("cv2.imread full decode, 2 threads", "", f"{full:.0f}"),
        ("cv2.imread reduced ÷4 grey, 2 threads", "", f"{reduced:.0f}"),
        ("image_signatures, cold cache", f"{n / cold:.2f} s", f"{cold:.0f} ({cold / full:.0%} of full decode)"),
        ("image_signatures, warm cache", f"{n / warm:.2f} s", f"{warm:.0f}"),
        (f"near-duplicate search ({len(pairs)} pairs, {cross} across splits)", f"{search_s:.2f} s", ""),
    ]
    if args.scale:
        big = scaled_signatures(sigs, args.scale)
        t = time.perf_counter()
        found = near_duplicate_pairs(big)
        rows.append(
            (
                f"near-duplicate search at {args.scale:,} thumbnails ({len(found):,} pairs)",
                f"{time.perf_counter() - t:.2f} s",
                "",
            )
        )
    if args.fiftyone:
        import fiftyone as fo

        from curate.fiftyone.load import to_fiftyone

        fo.Dataset("warmup").delete()  # start the database outside the timing
        t = time.perf_counter()
        to_fiftyone(ds, name="bench-curate", overwrite=True)
        ours = n / (time.perf_counter() - t)
        images = sorted({str(r.path.parent) for r in ds.images})
        t = time.perf_counter()
        d = fo.Dataset("bench-add-dir")
        for folder in images:
            d.add_dir(folder, dataset_type=fo.types.ImageDirectory, progress=False)
        theirs = len(d) / (time.perf_counter() - t)
        rows += [
            ("curate to_fiftyone (labels, lines, metadata)", "", f"{ours:.0f}"),
            ("FiftyOne add_dir (images only)", "", f"{theirs:.0f}"),
        ]
    print(f"{ds.name}: {n} images, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    print("| pass | time | images/s |\n|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    shutil.rmtree(tmp / "cache", ignore_errors=True)  # the FiftyOne database folder goes with its mongod at exit


if __name__ == "__main__":
    main()
