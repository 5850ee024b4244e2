"""Why `missing` misses: per dataset, the planted (deleted) boxes' size at missing's decode, whether any
candidate window covers them before scoring, whether the shortlist keeps one, and where the best one ranks.

    python benchmarks/missing_diagnose.py --dataset ../shared/datasets/football-players [--seed 0]

Plants like label_noise.py (3 % missing, train). Columns: px = the deleted box's median w × h in decoded
pixels; cand = share with an uncovered candidate window at IoU ≥ 0.3; short = share with one among the
image's shortlisted (scored) windows; kept = after NMS (≤ the image's cap, model.image_cap); rank = median rank of the
matching window among all kept objectness regions (the budget's 0.5 sits at rank `limit`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from label_noise import load_dataset  # noqa: E402

from curate.audit.checks.missing import settings as S  # noqa: E402
from curate.audit.checks.missing.model import (  # noqa: E402
    _boxes,
    _nms,
    decode_side,
    image_cap,
    objectness_regions,
    small_image,
)
from curate.audit.checks.missing.windows import dataset_sizes, image_sizes, sliding_windows, uncovered  # noqa: E402
from curate.core.overlap import pairwise_iou  # noqa: E402
from planted_noise import plant_errors  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", nargs="+", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(
        "| dataset | side | deleted | px median w×h | < MIN_WINDOW_PX | cand | short | kept | recall@budget | "
        "median rank / limit | regions | s | cpu s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for src in args.dataset:
        ds = load_dataset(src)
        noisy, truth = plant_errors(ds, rate=0.03, types=("missing",), seed=args.seed)
        idx = {r.rel: i for i, r in enumerate(noisy.images)}
        boxes = [_boxes(r)[0] for r in noisy.images]
        common = dataset_sizes(boxes, S.SIZE_CLUSTERS)
        side = decode_side(noisy.images, boxes)
        t, cpu = time.perf_counter(), time.process_time()
        regs = objectness_regions(noisy, seed=args.seed)
        secs, cpu = time.perf_counter() - t, time.process_time() - cpu
        caps = {i: image_cap(noisy.images[i], len(noisy.images[i].labels)) for i in regs}
        kept = {i: (s[k], w[k]) for i, (s, w) in regs.items() for k in [_nms(s, w, caps[i])]}
        allk = np.sort(np.concatenate([s for s, _ in kept.values()]))[::-1] if kept else np.zeros(0)
        limit = int(np.ceil(S.BUDGET_PER_100 * noisy.num_boxes / 100))
        px, cand_hit, short_hit, kept_hit, ranks = [], [], [], [], []
        for rel, lab in truth.missing:
            i = idx[rel]
            img = small_image(noisy.images[i].path, side)
            h, w = img.shape[:2]
            g = np.array([lab.xyxy], float)
            px.append(((g[0, 2] - g[0, 0]) * w, (g[0, 3] - g[0, 1]) * h))
            b = boxes[i]
            c = sliding_windows(image_sizes(b, common), S.MIN_WINDOW_PX / w, S.MIN_WINDOW_PX / h)
            c = c[uncovered(c, b)]
            cand_hit.append(bool(len(c)) and pairwise_iou(g, c).max() >= 0.3)
            s, wins = regs.get(i, (np.zeros(0), np.zeros((0, 4))))
            short_hit.append(bool(len(wins)) and pairwise_iou(g, wins).max() >= 0.3)
            ks, kw = kept.get(i, (np.zeros(0), np.zeros((0, 4))))
            m = pairwise_iou(g, kw)[0] >= 0.3 if len(kw) else np.zeros(0, bool)
            kept_hit.append(bool(m.any()))
            if m.any():
                best = ks[m].max()
                ranks.append(int((allk > best).sum()))
        px = np.array(px)
        ranks = np.array(ranks)
        rec = float((ranks < limit).sum() / max(len(truth.missing), 1)) if len(ranks) else 0.0
        print(
            f"| {noisy.name} | {side} | {len(truth.missing)} | {np.median(px[:, 0]):.1f}×{np.median(px[:, 1]):.1f} | "
            f"{np.mean(px.min(axis=1) < S.MIN_WINDOW_PX):.2f} | {np.mean(cand_hit):.2f} | {np.mean(short_hit):.2f} | "
            f"{np.mean(kept_hit):.2f} | {rec:.2f} | {np.median(ranks) if len(ranks) else float('nan'):.0f} / {limit} | "
            f"{len(allk)} | {secs:.0f} | {cpu:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
