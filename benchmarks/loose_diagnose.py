"""Loose-box search diagnosis (issue #23): every planted loose box searched, every candidate's judged chance kept.

    python benchmarks/loose_diagnose.py record --dataset ../shared/datasets/bccd-blood-cells --out /tmp/loose
    python benchmarks/loose_diagnose.py replay --out /tmp/loose [--dumps /work/s18/pool-s0]

``record`` plants errors as the benchmarks do (:func:`planted_noise.plant_errors`, 3 %, the seed), runs
:func:`curate.audit.refine.refine` with *every* planted loose box of train as a flagged ``background_heavy`` box,
and, in place of the loose search, pickles what it would judge: for each searched box (the planted ones and the
calibration sample of the box model's loose corruptions) its candidates, their chance of a real box under the
held-out judge, which came from the image, their box-model features, and the box before corruption. The judges and
the calibration sample do not depend on which boxes are flagged, so a replay on any subset (e.g. the boxes the
check flagged, from ``label_noise.py --dump`` pickles) is what the audit would propose for it.

``replay`` prints, per dataset: the calibration picks right; the share of boxes a candidate could undo (one at
IoU ≥ 0.75 with the original); on the planted boxes the same, the pick right, its median IoU (the box left alone
where no candidate beats it), and what ``refine``'s rule would propose (``p_right`` ≥ 0.5): made (right).
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from curate.core.overlap import iou_one  # noqa: E402

RIGHT_IOU = 0.75


def searched_entry(qs, X, judge, k: int, mine: list[int], from_image, key, orig) -> dict:
    """The record of one searched box ``k`` (its candidate rows ``mine``, row 0 the box): what a replay needs of it
    without the box model (its candidates, the held-out ``judge``'s chance of each, which came from the image,
    their box-model features ``X``, the box before corruption ``orig``); ``key``: (image rel, line) of a flagged
    box, else None."""
    q = qs[k]
    return {
        "calibration": q.kind == "loose",
        "key": key,
        "image": q.image,
        "cls": q.cls,
        "exclude": q.exclude,
        "boxes": np.array([qs[r].xyxy for r in mine], float),
        "p_ok": judge.predict_proba(X[mine])[:, 1],
        "from_image": np.array([r in from_image for r in mine]),
        "X": np.asarray(X[mine], np.float32),
        "original": None if orig is None else np.asarray(orig, float),
    }


def record(source: Path, out: Path, seed: int, rate: float) -> Path:
    from label_noise import load_dataset
    from proposals import _original

    from curate.audit import refine as refine_module
    from planted_noise import plant_errors

    dataset = load_dataset(source)
    noisy, truth = plant_errors(dataset, rate=rate, seed=seed)
    clean = {r.rel: r.labels for r in dataset.split("train")}
    noisy_labels = {r.rel: r.labels for r in noisy.split("train")}
    planted, original = [], {}
    for rec in noisy.split("train"):
        for lab in rec.labels:
            if truth.truth(rec.rel, lab.line) == "loose":
                orig = _original(clean, noisy_labels, rec.rel, lab, same_class=True)
                if orig is not None:
                    planted.append((rec.rel, lab.line, "background_heavy"))
                    original[(rec.rel, lab.line)] = tuple(orig.xyxy)
    searched: dict = {}

    def recorder(kind, qs, boxes, classes, X, fold_of_row, targets, candidates, from_image, seed):
        if kind != "loose":
            return {}
        judges = refine_module._judges(qs, X, fold_of_row, ("loose", "shifted"), seed)
        key_of = {k: key for key, k in targets.items()}
        for k, mine in candidates.items():
            f = int(fold_of_row[k])
            if f not in judges:
                continue
            q = qs[k]
            target = key_of.get(k)
            orig = boxes[q.image][q.exclude[0]] if q.kind == "loose" else original.get(target[:2]) if target else None
            searched[k] = searched_entry(qs, X, judges[f], k, mine, from_image, target[:2] if target else None, orig)
        return {}

    refine_module._search = recorder
    refine_module.refine(noisy, planted, seed=seed)
    image_boxes = [np.array([lab.xyxy for lab in r.labels], float).reshape(-1, 4) for r in noisy.images]
    image_classes = [np.array([lab.class_id for lab in r.labels], int) for r in noisy.images]
    path = out / f"{dataset.name}-seed{seed}.pkl"
    out.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({"name": dataset.name, "searched": searched, "boxes": image_boxes,
                                   "classes": image_classes, "nc": len(dataset.names),
                                   "rels": [r.rel for r in noisy.images]}))  # fmt: skip
    print(f"{dataset.name}: {len(planted)} planted loose boxes, {len(searched)} searched -> {path}", flush=True)
    return path


def flagged_keys(dumps: Path | None, name: str, seed: int) -> set | None:
    """The planted loose boxes ``background_heavy`` flagged at its threshold in a ``label_noise.py --dump``."""
    if dumps is None or not (dumps / f"{name}-seed{seed}.pkl").exists():
        return None
    d = pickle.loads((dumps / f"{name}-seed{seed}.pkl").read_bytes())
    rows = d["findings"]
    out = set()
    for _split, image, check, score, _message, line, _region, _data in rows:
        if check == "background_heavy" and float(score) >= 0.5:
            key = (image, int(line))
            if d["boxes"].get(key, (None, None, None))[2] == "loose":
                out.add(key)
    return out


def main_rule(rec: dict):
    """refine's rule: the judge's argmax; ``p_right`` from the margin and whether the pick came from the image."""
    from curate.audit.refine import _calibration

    picks = {}
    for k, s in rec["searched"].items():
        best = int(np.argmax(s["p_ok"]))
        picks[k] = (best, [float(s["p_ok"][best] - s["p_ok"][0]), float(s["from_image"][best])])
    cal = [k for k, s in rec["searched"].items() if s["calibration"]]
    right = np.array([_iou(rec["searched"][k], picks[k][0]) >= RIGHT_IOU for k in cal], float)
    p_right = _calibration(np.array([picks[k][1] for k in cal]), right)
    return {k: (b, float(p_right(np.array([f]))[0]) if b > 0 else 0.0) for k, (b, f) in picks.items()}


def learnt_rule(rec: dict):
    """The learnt pick (:mod:`curate.audit.loose`) on the recorded searches."""
    from curate.audit.loose import describe, learnt_picks
    from curate.audit.members import class_sizes
    from curate.audit.refine import MIN_ROWS, _classifier

    sizes = class_sizes(rec["boxes"], rec["classes"], rec["nc"])
    S = rec["searched"]
    tables = {k: describe(s["boxes"], s["p_ok"], s["from_image"], rec["boxes"][s["image"]], rec["classes"][s["image"]],
                          s["exclude"], s["cls"], sizes[s["cls"]]) for k, s in S.items()}  # fmt: skip
    cal = [k for k, s in S.items() if s["calibration"]]
    right = {k: np.array([_iou(S[k], i) >= RIGHT_IOU for i in range(len(S[k]["boxes"]))], int) for k in cal}
    return learnt_picks(tables, cal, right, lambda: _classifier(0), MIN_ROWS)


def kept_rule(rec: dict):
    """refine's rule since session 19: the judge's favourite where its ``p_right`` passes, else the learnt pick."""
    from curate.audit.refine import MIN_P_RIGHT

    first, learnt = main_rule(rec), learnt_rule(rec)
    return {k: c if k not in learnt or c[0] > 0 and c[1] >= MIN_P_RIGHT else learnt[k] for k, c in first.items()}


RULES = {"main": main_rule, "learnt": learnt_rule, "kept": kept_rule}


def _iou(s: dict, i: int) -> float:
    return iou_one(tuple(s["boxes"][i]), tuple(s["original"]))


def report(rec: dict, rule, flagged: set | None) -> str:
    picks = rule(rec)
    S = rec["searched"]
    cal = [k for k, s in S.items() if s["calibration"]]
    planted = [k for k, s in S.items() if not s["calibration"] and s["original"] is not None]
    if flagged is not None:
        planted = [k for k in planted if S[k]["key"] in flagged]

    def undoable(k):
        return max(_iou(S[k], i) for i in range(1, len(S[k]["boxes"]))) >= RIGHT_IOU

    cal_right = np.mean([_iou(S[k], picks[k][0]) >= RIGHT_IOU for k in cal])
    cal_undo = np.mean([undoable(k) for k in cal])
    ious = [_iou(S[k], picks[k][0]) for k in planted]
    made = [k for k in planted if picks[k][1] >= 0.5 and picks[k][0] > 0]
    made_ious = [_iou(S[k], picks[k][0]) for k in made]
    cells = [
        rec["name"], f"{100 * cal_right:.0f} %", f"{100 * cal_undo:.0f} %", str(len(planted)),
        f"{100 * np.mean([undoable(k) for k in planted]):.0f} %",
        f"{100 * np.mean([v >= RIGHT_IOU for v in ious]):.0f} %", f"{statistics.median(ious):.2f}",
        f"{statistics.median([picks[k][1] for k in planted]):.2f}",
        f"{len(made)} ({100 * np.mean([v >= RIGHT_IOU for v in made_ious]):.0f} %, {statistics.median(made_ious):.2f})"
        if made else "0",
    ]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


HEADER = (
    "| dataset | calibration: pick right | … a candidate could undo | planted searched | a candidate at IoU ≥ 0.75 "
    "| pick right | median IoU | median p_right | made (right, median IoU) |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---|"
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=("record", "replay"))
    ap.add_argument("--dataset", nargs="+", type=Path, default=[])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rate", type=float, default=0.03)
    ap.add_argument("--rule", choices=sorted(RULES), nargs="+", default=["main"])
    ap.add_argument("--dumps", type=Path, help="label_noise.py --dump folder: replay the flagged boxes only")
    args = ap.parse_args(argv)
    if args.mode == "record":
        for source in args.dataset:
            record(source, args.out, args.seed, args.rate)
        return 0
    recs = [pickle.loads(p.read_bytes()) for p in sorted(args.out.glob(f"*-seed{args.seed}.pkl"))]
    for rule in args.rule:
        print(f"\nrule: {rule}\n\n{HEADER}")
        for rec in recs:
            print(report(rec, RULES[rule], flagged_keys(args.dumps, rec["name"], args.seed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
