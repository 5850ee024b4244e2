"""The near-duplicate pair searches of one audit (issue #25): four searches against one search and three filters.

`python benchmarks/pair_search.py DATASET [--scale N]`: the dataset's signatures (a fresh cache folder, so they
are computed: minutes at 30,000 images), then CPU seconds of what an audit asked before (near_duplicate at 0.80;
the box model's scenes, missing's duplicate regions and the search's scenes at 0.85, each its own search) and now
(one search at 0.80, filtered to 0.85 three times, :func:`curate.vision.hashing.at_least`), side by side, and
whether the filtered pairs equal the search at 0.85. ``--scale N`` also runs both on N blended thumbnails
(``benchmarks/hashing.py``'s ``scaled_signatures``).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

LOW, SCENE = 0.80, 0.85  # near_duplicate's listing floor; SAME_SCENE_SIMILARITY


def cpu() -> float:
    """CPU seconds of this process, every thread (BLAS included)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def compare(sigs: dict, label: str) -> None:
    from curate.vision.hashing import at_least, near_duplicate_pairs

    t = cpu()
    before = [near_duplicate_pairs(sigs, threshold=LOW)]
    calls = [cpu() - t]
    for _ in range(3):
        t = cpu()
        before.append(near_duplicate_pairs(sigs, threshold=SCENE))
        calls.append(cpu() - t)
    t = cpu()
    one = near_duplicate_pairs(sigs, threshold=LOW)
    filtered = [at_least(one, SCENE) for _ in range(3)]
    after = cpu() - t
    same = one == before[0] and all(f == before[1] for f in filtered)
    print(
        f"{label}: {len(sigs):,} thumbnails, {len(one):,} pairs at {LOW}, {len(before[1]):,} at {SCENE}; "
        f"before {sum(calls):.1f} CPU-s (searches {', '.join(f'{c:.1f}' for c in calls)}), "
        f"after {after:.1f} CPU-s (one search, three filters); filtered == searched: {same}; "
        f"load {os.getloadavg()[0]:.1f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("dataset")
    ap.add_argument("--scale", type=int, default=0, help="also on this many blended thumbnails")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="curate-pairs-"))
    os.environ["CURATE_CACHE_DIR"] = str(tmp / "cache")
    try:
        from curate.io.yolo import load_yolo
        from curate.vision.hashing import image_signatures

        t = time.perf_counter()
        sigs = image_signatures(load_yolo(args.dataset), progress=False)
        print(f"signatures of {args.dataset}: {time.perf_counter() - t:.0f} s")
        compare(sigs, Path(args.dataset).name)
        if args.scale:
            from hashing import scaled_signatures

            compare(scaled_signatures(sigs, args.scale), f"blends ×{args.scale:,}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
