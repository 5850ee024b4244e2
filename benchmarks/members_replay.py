"""Replay the grouped member search offline, on the searches ``benchmarks/proposals.py --dump`` pickled.

    python benchmarks/members_replay.py reports/bench/s1/members-*.pkl [--diagnose] [--merges 150 300 600]

Each pickle holds what :func:`curate.audit.refine._search_members` was given in one benchmark run (the described
boxes, their features, the searched groups' candidate sets), the member judges it fitted, and the flagged planted
groups' merged boxes. The replay runs the search of the code checked out now (with the pickled judges: the same
fit without its cost; then the set table, the learnt pick, ``p_right`` ≥ refine's ``MIN_P_RIGHT``) and scores it
as ``proposals.py`` does: flagged planted groups with a split, splits right, merged boxes recovered (one to one
at IoU ≥ 0.5) over the split groups and over all flagged ones, splits on untouched boxes; then the mean and the
worst dataset. ``--diagnose`` also sorts each unsplit planted group by cause: *no
layout* (no right set among the candidates), *pick wrong*, *margin* (the pick's members look less real than the
group box), *p < 0.5* (a right pick whose ``p_right`` stayed below the bar).
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curate.audit import refine  # noqa: E402
from curate.audit.boxmodel.corruptions import Query  # noqa: E402
from curate.audit.members import CALIBRATION_MERGES, SET_FEATURES, is_right, matched  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proposals import calibration_only  # noqa: E402


def load(path: Path) -> dict:
    d = pickle.loads(path.read_bytes())
    d["qs"] = [Query(i, np.asarray(xyxy, float), c, kind, exclude, line) for i, xyxy, c, kind, exclude, line in d["qs"]]
    # a dump from before the slid members: no slid rows a group
    d["groups"] = {k: (*g, []) if len(g) == 3 else g for k, g in d["groups"].items()}
    return d


def replay(d: dict, diagnose: bool = False, merges: int | None = None, detail: list | None = None) -> dict:
    """The search of the current code on one dump, scored against its flagged planted groups; ``merges``: with that
    many calibration merges (the dump must hold their draw: ``proposals.py --dump-merges``), else
    ``members.CALIBRATION_MERGES``; ``detail``: a list that gets one record per flagged planted group (its key,
    row, merged boxes, picked set, whether a split was made, ``p_right``, the cause where none, the recovered
    count), for ``members_sheet.py``. Also counts the calibration merges searched, the candidate rows the search
    described for them (what the member search's cost grows with) and the replay's seconds (the first replay of a
    dump judges every dumped group's candidates, the later ones only pick)."""
    qs, targets = d["qs"], d["targets"]
    merges = CALIBRATION_MERGES if merges is None else merges
    if merges > d.get("merges", 150):
        raise SystemExit(f"error: the dump holds the draws of at most {d.get('merges', 150)} calibration merges")
    groups = calibration_only(qs, d["groups"], merges, d["seed"])
    t0 = time.perf_counter()
    if "tables" not in d:  # a group's table depends on its own candidates only: every dumped group's, once
        fit = refine._judges
        if d.get("judges") is not None:  # the judges the benchmark fitted (the same fit, without its cost)
            refine._judges = lambda *args: d["judges"]
        try:
            d["tables"] = refine._member_tables(qs, d["X"], d["fold_of_row"], d["groups"], d["seed"])
        finally:
            refine._judges = fit
    tables = {k: t for k, t in d["tables"].items() if k in groups}
    picks = refine._member_picks(qs, d["boxes"], tables, targets, d["seed"])
    margin = SET_FEATURES.index("margin")
    cal = [k for k in groups if qs[k].kind == "grouped"]
    out = {"flagged": 0, "split": 0, "right": 0, "merged": 0, "merged_flagged": 0, "recovered": 0, "members": 0,
           "on_untouched": 0, "no layout": 0, "pick wrong": 0, "margin": 0, "p < 0.5": 0, "calibration": len(cal),
           "candidate rows": sum(len({r for s in [*groups[k][0], groups[k][3]] for r in s}) for k in cal),
           "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
    for key, merged in d["truth"].items():
        k = targets.get(key)
        pick = picks.get(key)
        made = pick is not None and tables[k][0][pick[0], margin] > 0 and pick[1] >= refine.MIN_P_RIGHT
        if merged is None:
            out["on_untouched"] += int(made)
            continue
        out["flagged"] += 1
        out["merged_flagged"] += len(merged)
        cause = None
        if made:
            boxes = tables[k][1][pick[0]]
            out["split"] += 1
            out["right"] += int(is_right(boxes, merged))
            out["merged"] += len(merged)
            out["members"] += len(boxes)
            out["recovered"] += matched(boxes, merged)
        elif diagnose and k in tables:
            if not any(is_right(m, merged) for m in tables[k][1]):
                cause = "no layout"
            elif pick is None or not is_right(tables[k][1][pick[0]], merged):
                cause = "pick wrong"
            elif tables[k][0][pick[0], margin] <= 0:
                cause = "margin"
            else:
                cause = "p < 0.5"
            out[cause] += 1
        if detail is not None:
            picked = tables[k][1][pick[0]] if pick is not None and k in tables else []
            detail.append({"key": key, "row": k, "merged": merged, "picked": picked, "made": made,
                           "p_right": None if pick is None else pick[1], "cause": cause,
                           "recovered": matched(picked, merged) if made else 0})  # fmt: skip
    return out


def table(results: dict[str, dict], diagnose: bool) -> list[str]:
    causes = ("no layout", "pick wrong", "margin", "p < 0.5") if diagnose else ()
    lines = ["| dump | flagged groups with a split | splits right | recovered where made | over all flagged "
             "| members per split | on untouched |" + "".join(f" {c} |" for c in causes),
             "|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(causes)]  # fmt: skip
    rec_all, right = [], []
    for name, g in results.items():
        if not g["flagged"]:
            lines.append(f"| {name} | none flagged | | | | | {g['on_untouched']} |" + " |" * len(causes))
            continue
        rec_all.append(g["recovered"] / g["merged_flagged"])
        if g["split"]:
            right.append(g["right"] / g["split"])
        where = f"{g['recovered'] / g['merged']:.0%}" if g["split"] else "—"
        lines.append(f"| {name} | {g['split']} of {g['flagged']} | "
                     + (f"{g['right'] / g['split']:.0%}" if g["split"] else "—")
                     + f" | {where} | {rec_all[-1]:.0%} ({g['recovered']} of {g['merged_flagged']}) | "
                     + (f"{g['members'] / g['split']:.1f}" if g["split"] else "—")
                     + f" | {g['on_untouched']} |" + "".join(f" {g[c]} |" for c in causes))  # fmt: skip
    for label, f in (("mean", statistics.mean), ("worst", min)):
        lines.append(f"| **{label}** | | {f(right):.0%} | | {f(rec_all):.0%} | | |" + " |" * len(causes)
                     if rec_all and right else f"| **{label}** | | | | | | |" + " |" * len(causes))  # fmt: skip
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dumps", nargs="+", type=Path)
    ap.add_argument("--diagnose", action="store_true", help="sort the unsplit planted groups by cause")
    ap.add_argument("--merges", nargs="+", type=int, default=[CALIBRATION_MERGES], metavar="N",
                    help="calibration merges to replay with, one table each (the dump must hold their draw: "
                         "proposals.py --dump-merges)")  # fmt: skip
    args = ap.parse_args(argv)
    dumps = {path.stem.removeprefix("members-"): load(path) for path in args.dumps}
    for n in args.merges:
        results = {}
        for name, d in dumps.items():
            results[name] = replay(d, args.diagnose, n)
            print(name, n, results[name], file=sys.stderr, flush=True)
        print(f"\n### {n} calibration merges\n")
        print("\n".join(table(results, args.diagnose)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
