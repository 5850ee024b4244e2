"""Re-run loose pick rules on ``benchmarks/loose_record.py``'s records, without the box model.

    python benchmarks/loose_replay.py /tmp/rec/loose-*.pkl [--calibration all|first] [--judge-first]

For each record (one dataset and seed: the boxes ``background_heavy`` flagged, and the calibration boxes, each
with its candidates and the held-out judge's chance of each), :func:`replay` applies the loose search's rule as
:func:`curate.audit.refine._search` does (the learnt pick of :mod:`curate.audit.loose`; with ``--judge-first`` the
rule before session 20: the judge's favourite where its ``p_right`` passes, else the learnt pick), with the
calibration boxes chosen: ``all`` the recorded ones (what this code proposes) or ``first``, the first
:data:`curate.audit.refine.CALIBRATION_BOXES` (with ``--judge-first``: the recorded run's own proposals, checked).
Prints, per record, the flagged planted boxes and the proposals made on them (right: IoU ≥ 0.75 with the box before
corruption; median IoU), and the proposals on unplanted boxes.
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curate.audit import refine  # noqa: E402
from curate.audit.loose import describe, learnt_picks  # noqa: E402
from curate.audit.members import class_sizes  # noqa: E402
from curate.core.overlap import iou_one  # noqa: E402


def _right(s: dict) -> np.ndarray:
    """Each candidate of a searched box at IoU ≥ RIGHT_IOU with its box before corruption."""
    o = tuple(s["original"])
    return np.array([iou_one(tuple(b), o) >= refine.RIGHT_IOU for b in s["boxes"]], int)


def replay(rec: dict, calibration: str = "first", judge_first: bool = False) -> dict:
    """Flagged box key → (proposed xyxy, p_right), as ``refine._search`` would propose with these calibration
    boxes (``first``: the first :data:`curate.audit.refine.CALIBRATION_BOXES`; ``all``: every recorded one);
    ``judge_first``: the rule before session 20 (the judge's favourite wherever its ``p_right`` passes)."""
    seed = rec["seed"]
    S = {k: s for k, s in rec["searched"].items() if not s["calibration"] or calibration == "all" or s["first"]}
    cal = [k for k, s in S.items() if s["calibration"]]
    if len(cal) < refine.MIN_ROWS:
        return {}
    # the judge's favourite, p_right from its margin and whether it came from the image
    picks = {}
    for k, s in S.items():
        best = int(np.argmax(s["p_ok"]))
        picks[k] = (best, [float(s["p_ok"][best] - s["p_ok"][0]), float(s["from_image"][best])])
    right = np.array([_right(S[k])[picks[k][0]] for k in cal], float)
    p_right = refine._calibration(np.array([picks[k][1] for k in cal]), right)
    chosen = {k: (b, float(p_right(np.array([f]))[0])) for k, (b, f) in picks.items()}
    # the learnt pick where the favourite does not pass
    nc = max(s["cls"] for s in rec["searched"].values()) + 1
    sizes = class_sizes(rec["boxes"], rec["classes"], nc)
    tables = {k: describe(s["boxes"], s["p_ok"], s["from_image"], rec["boxes"][s["image"]],
                          rec["classes"][s["image"]], s["exclude"], s["cls"], sizes[s["cls"]])
              for k, s in S.items()}  # fmt: skip
    labels = {k: _right(S[k]) for k in cal}
    learnt = learnt_picks(tables, cal, labels, lambda: refine._classifier(seed), refine.MIN_ROWS)
    if judge_first:  # main's rule before session 20: the favourite where its p_right passes, else the learnt pick
        chosen = {k: c if k not in learnt or c[0] > 0 and c[1] >= refine.MIN_P_RIGHT else learnt[k]
                  for k, c in chosen.items()}  # fmt: skip
    else:
        chosen.update(learnt)
    out = {}
    for k, s in S.items():
        if s["key"] is None or k not in chosen:
            continue
        i, p = chosen[k]
        if i > 0 and p >= refine.MIN_P_RIGHT:
            out[s["key"]] = (tuple(float(v) for v in s["boxes"][i]), p)
    return out


def score(rec: dict, proposed: dict) -> dict:
    """Flagged planted loose boxes, proposals on them (right, median IoU), proposals on unplanted boxes."""
    flagged = {s["key"] for s in rec["searched"].values() if s["key"] is not None}
    planted = flagged & set(rec["planted"])
    ious = [iou_one(proposed[key][0], tuple(rec["planted"][key])) for key in planted if key in proposed]
    return {"flagged": len(planted), "made": len(ious), "right": sum(i >= refine.RIGHT_IOU for i in ious),
            "iou": statistics.median(ious) if ious else None,
            "untouched": sum(key not in rec["planted"] for key in proposed)}  # fmt: skip


def line(name: str, r: dict) -> str:
    made = r["made"]
    share = f"{100 * r['right'] / made:.0f} %" if made else "—"
    iou = f"{r['iou']:.2f}" if r["iou"] is not None else "—"
    return f"| {name} | {r['flagged']} | {made} | {r['right']} ({share}) | {iou} | {r['untouched']} |"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("records", nargs="+", type=Path)
    ap.add_argument("--calibration", choices=("first", "all"), default="all")
    ap.add_argument("--judge-first", action="store_true", help="the rule before session 20")
    args = ap.parse_args(argv)
    print("| record | flagged planted | made | right | median IoU | on unplanted |\n|---|---:|---:|---:|---:|---:|")
    for path in args.records:
        rec = pickle.loads(path.read_bytes())
        proposed = replay(rec, args.calibration, args.judge_first)
        if args.calibration == "first" and args.judge_first and "result" in rec:
            same = {k: tuple(np.round(v[0], 6)) for k, v in proposed.items()} == {
                k: tuple(np.round(v[0], 6)) for k, v in rec["result"].items()
            }
            if not same:
                print(f"warning: {path.name}: the replay differs from the recorded run's proposals", file=sys.stderr)
        n_cal = sum(s["calibration"] and (args.calibration == "all" or s["first"]) for s in rec["searched"].values())
        print(line(f"{rec['name']} s{rec['seed']} ({n_cal} cal)", score(rec, proposed)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
