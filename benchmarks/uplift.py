"""Does curation help? A controlled experiment with real data and real training (issue #24).

Three versions of one dataset's train split, trained with the same model, seed and settings, scored on the
same clean test set:

- **(a) clean**: the dataset as it is;
- **(b) noisy**: label errors of every kind planted into train (:mod:`planted_noise`, ``--rate`` of the
  train boxes per kind, seven kinds);
- **(c) cleaned**: (b) after ``curate audit`` and ``curate export --accept-proposals --min-confidence X``,
  the real commands, no human in the loop; where a flagged train box has no proposal at or above X, it is
  deleted in FiftyOne before the export (:func:`drop_flagged`: what a reviewer in a hurry would do).

It reports mAP50 and mAP50-95 of each, and the paired-bootstrap 95 % intervals (over test images) of
(c) − (b), (a) − (c) and (a) − (b); the target is that (c) recovers at least half of what (b) lost against
(a), with the interval of (c) − (b) above 0. It writes ``uplift.json``, ``uplift.md`` (the table) and
``uplift_curves.png`` (mAP50-95 on Ultralytics' val split over epochs, one line per version).

    python benchmarks/uplift.py --dataset ../shared/datasets/bccd-blood-cells --out reports/bench/uplift
    python benchmarks/uplift.py --dataset ... --epochs 1 --imgsz 64 --limit 40 --out /tmp/uplift  # smoke

Every step is reused when its folder is complete (the plant, the audit, the export, each training), so a
killed run goes on where it stopped. ``benchmarks/uplift_gpu.sh`` runs the same at real scale on a GPU.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

VERSIONS = ("clean", "noisy", "cleaned")


def cli(*args: str) -> None:
    """One real ``curate`` command (the installed code), failing loudly."""
    cmd = [sys.executable, "-m", "curate.app.cli", *args]
    print("$ curate " + " ".join(args), flush=True)
    res = subprocess.run(cmd, check=False)
    if res.returncode:
        raise SystemExit(f"curate {args[0]} failed (exit {res.returncode})")


def prepare(dataset: Path, out: Path, *, rate: float, seed: int, limit: int | None, min_confidence: float) -> dict:
    """The three datasets on disk: clean and noisy copies (train + test), then the cleaned export."""
    from curate.io.outputs import atomic_output, is_complete
    from curate.io.yolo import load_yolo, save_yolo
    from planted_noise import plant_errors

    ds = load_yolo(dataset)
    if not ds.split("train") or not ds.split("test"):
        raise SystemExit(f"{dataset} needs a train and a test split")
    if limit:  # smoke runs: the first ``limit`` train images, the test split whole
        train = ds.split("train")[:limit]
        ds = replace(ds, images=train + [r for r in ds.images if r.split != "train"])
    noisy, truth = plant_errors(ds, rate=rate, seed=seed)
    for name, d in (("clean", ds), ("noisy", noisy)):
        if not is_complete(out / name):
            with atomic_output(out / name, "uplift") as tmp:
                save_yolo(d, tmp)
    dropped = None
    if not is_complete(out / "cleaned"):
        cli("audit", str(out / "noisy"), "--out", str(out / "audit"))
        dropped = drop_flagged(out / "noisy", out / "audit" / "findings.json", min_confidence)
        cli(
            "export",
            str(out / "noisy"),
            "--accept-proposals",
            "--min-confidence",
            str(min_confidence),
            "--out",
            str(out / "cleaned"),
        )
    return {
        "dropped_in_fiftyone": dropped,
        "planted": truth.counts,
        "train_boxes": sum(len(r.labels) for r in ds.split("train")),
        "agreement": {v: label_agreement(out / "clean", out / v) for v in ("noisy", "cleaned")},
    }


def drop_flagged(noisy_root: Path, findings_json: Path, min_confidence: float) -> int:
    """The batch reviewer, in FiftyOne: every train box the audit flagged (an error check, not a note) whose
    proposal, if any, is under ``min_confidence`` is deleted from the review, as a person would delete it in
    the App; the export then applies the proposals at or above it. Returns how many boxes were deleted.

    Why delete: no proposal moves or tightens a box (``curate.audit.proposals``), and a box flagged as
    grouped, loose, shifted or a copy teaches the model a wrong box, which costs more than no box."""
    from fiftyone import ViewField as F

    from curate.core.findings import NOTE_CHECKS
    from curate.fiftyone.identity import find_fiftyone
    from curate.io.yolo import load_yolo

    findings = json.loads(findings_json.read_text(encoding="utf-8"))["findings"]
    confident = {
        (f["image"], f["line"])
        for f in findings
        if f["data"].get("proposal", {}).get("confidence", 0.0) >= min_confidence and f["line"] is not None
    }
    drop: dict[str, set[int]] = {}
    for f in findings:
        key = (f["image"], f["line"])
        if f["split"] == "train" and f["line"] is not None and f["check"] not in NOTE_CHECKS and key not in confident:
            drop.setdefault(f["image"], set()).add(f["line"])
    fo_dataset = find_fiftyone(load_yolo(noisy_root))
    n = 0
    for sample in fo_dataset.match(F("curate_rel").is_in(sorted(drop))):
        lines = drop[sample.curate_rel]
        kept = [d for d in sample.ground_truth.detections if d["line"] not in lines]
        n += len(sample.ground_truth.detections) - len(kept)
        sample.ground_truth.detections = kept
        sample.save()
    return n


def label_agreement(clean_root: Path, other_root: Path) -> dict:
    """How close a version's train labels are to the clean ones: the share of clean boxes matched by a box of
    the same class at IoU ≥ 0.5 (one to one, greedy by IoU), and the boxes left over that match none."""
    from curate.core.overlap import pairwise_iou, xyxy_array
    from curate.io.yolo import load_yolo

    clean, other = load_yolo(clean_root), load_yolo(other_root)
    by_name = {Path(r.rel).name: r for r in other.split("train")}
    matched = total = extra = 0
    for r in clean.split("train"):
        o = by_name.get(Path(r.rel).name)
        ours, theirs = r.labels, (o.labels if o else [])
        total += len(ours)
        same = np.array(
            [[clean.class_name(a.class_id) == other.class_name(b.class_id) for b in theirs] for a in ours], bool
        ).reshape(len(ours), len(theirs))
        iou = np.where(same, pairwise_iou(xyxy_array(ours), xyxy_array(theirs)), 0.0)
        taken_ours: set[int] = set()
        taken_theirs: set[int] = set()
        for i, j in sorted(np.argwhere(iou >= 0.5).tolist(), key=lambda ij: -iou[ij[0], ij[1]]):
            if i not in taken_ours and j not in taken_theirs:
                taken_ours.add(i)
                taken_theirs.add(j)
        matched += len(taken_ours)
        extra += len(theirs) - len(taken_theirs)
    return {"clean_boxes": total, "matched": matched, "matched_share": matched / max(total, 1), "extra": extra}


def train_and_score(out: Path, settings, *, test_root: Path) -> dict:
    """Train each version (reused when done), evaluate on the clean test split, bootstrap the differences."""
    from curate.io.yolo import load_yolo
    from curate.train.bootstrap import paired_bootstrap
    from curate.train.compare.data import test_folder, training_folder, with_val
    from curate.train.compare.evaluation import evaluate, remap_stats
    from curate.train.compare.training import read_results, train_one

    test = load_yolo(test_root)
    test_recs = test.split("test")
    result: dict = {"versions": {}, "curves": {}}
    stats = {}
    for v in VERSIONS:
        ds, _ = with_val(load_yolo(out / v), seed=settings.seed)
        data_yaml = training_folder(ds, out / "data" / v)
        test_yaml, dropped = test_folder(test_recs, test.names, ds.names, out / "data" / f"test-{v}", root=test.root)
        t0 = time.time()
        run = train_one(data_yaml, out / "runs" / v, settings, side=v, seed=settings.seed, model=settings.model)
        metrics, per_image = evaluate(run.best, test_yaml, out / "eval" / v, settings, segment=False)
        stats[v] = remap_stats(per_image, ds.names, test.names)
        rows = read_results(run.run_dir / "results.csv")
        result["curves"][v] = [r.get("metrics/mAP50-95(B)", float("nan")) for r in rows]
        result["versions"][v] = {
            "mAP50": metrics["box"]["mAP50"],
            "mAP50-95": metrics["box"]["mAP50-95"],
            "train_boxes": sum(len(r.labels) for r in ds.split("train")),
            "seconds": round(run.seconds or time.time() - t0, 1),
            "notes": run.notes,
            "dropped_test_boxes": dropped,
        }
    classes = np.arange(len(test.names))
    for a, b in (("cleaned", "noisy"), ("clean", "cleaned"), ("clean", "noisy")):
        boot = paired_bootstrap([(stats[b], stats[a])], classes, resamples=settings.resamples, seed=settings.seed)
        result[f"{a} - {b}"] = {"delta": boot.delta, "ci95": boot.ci95, "verdict": boot.verdicts}
    lost = result["clean - noisy"]["delta"]["mAP50-95"]
    won = result["cleaned - noisy"]["delta"]["mAP50-95"]
    result["recovered_share"] = won / lost if lost > 0 else None
    result["target_met"] = bool(lost > 0 and won >= 0.5 * lost and result["cleaned - noisy"]["ci95"]["mAP50-95"][0] > 0)
    return result


def table(result: dict) -> str:
    """The Markdown table of uplift.md."""
    v = result["versions"]
    lines = [
        "| version | train boxes | mAP50 | mAP50-95 | training s |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {k} | {v[k]['train_boxes']:,} | {v[k]['mAP50']:.3f} | {v[k]['mAP50-95']:.3f} | {v[k]['seconds']:.0f} |"
        for k in VERSIONS
    ]
    lines += ["", "| difference | Δ mAP50 [95 % CI] | Δ mAP50-95 [95 % CI] | verdict (mAP50-95) |", "|---|---|---|---|"]
    for key in ("cleaned - noisy", "clean - cleaned", "clean - noisy"):
        d, ci = result[key]["delta"], result[key]["ci95"]
        lines.append(
            f"| ({key}) | {d['mAP50']:+.3f} [{ci['mAP50'][0]:+.3f}, {ci['mAP50'][1]:+.3f}] | "
            f"{d['mAP50-95']:+.3f} [{ci['mAP50-95'][0]:+.3f}, {ci['mAP50-95'][1]:+.3f}] | "
            f"{result[key]['verdict']['mAP50-95']} |"
        )
    agree = result.get("planted", {}).get("agreement", {})
    if agree:
        lines += [
            "",
            "| train labels | clean boxes matched (same class, IoU ≥ 0.5) | boxes matching none |",
            "|---|---:|---:|",
        ]
        lines += [f"| {k} | {a['matched_share']:.1%} | {a['extra']:,} |" for k, a in agree.items()]
    share = result["recovered_share"]
    lines += [
        "",
        f"(c) recovered {'n/a' if share is None else f'{share:.0%}'} of the mAP50-95 that (b) lost against (a); "
        f"target (≥ 50 %, interval of (c) − (b) above 0) {'met' if result['target_met'] else 'NOT met'}.",
    ]
    return "\n".join(lines) + "\n"


def plot_curves(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=110)
    for v in VERSIONS:
        ys = result["curves"][v]
        ax.plot(range(1, len(ys) + 1), ys, label=v)
    ax.set_xlabel("epoch")
    ax.set_ylabel("mAP50-95 (val)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    from curate.runtime import env
    from curate.train.options import TrainOptions

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", type=Path, help="the clean dataset (not needed with --stage train)")
    ap.add_argument("--out", type=Path, default=Path("reports/bench/uplift"))
    ap.add_argument("--rate", type=float, default=0.025, help="planted errors per kind, share of train boxes")
    ap.add_argument("--min-confidence", type=float, default=0.9)
    ap.add_argument("--model", default="yolov8n.yaml")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="only the first N train images (smoke runs)")
    ap.add_argument(
        "--stage",
        choices=("all", "prepare", "train"),
        default="all",
        help="prepare = the three datasets only (needs FiftyOne: the audit and the export); train = the "
        "trainings on datasets prepared before (a GPU machine without FiftyOne)",
    )
    args = ap.parse_args()
    env.configure()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if args.stage != "train":
        if args.dataset is None:
            ap.error("--dataset is needed to prepare the three datasets")
        planted = prepare(
            args.dataset, out, rate=args.rate, seed=args.seed, limit=args.limit, min_confidence=args.min_confidence
        )
        (out / "planted.json").write_text(json.dumps(planted, indent=2) + "\n", encoding="utf-8")
    if args.stage == "prepare":
        return
    planted = json.loads((out / "planted.json").read_text(encoding="utf-8"))
    settings = TrainOptions(
        model=args.model,
        epochs=args.epochs,
        imgsz=args.imgsz,
        batch=args.batch,
        seed=args.seed,
        device=args.device,
        workers=args.workers,
    )
    result = train_and_score(out, settings, test_root=out / "clean")
    result.update(planted=planted, settings=vars(args) | {"dataset": str(args.dataset), "out": str(out)})
    result["seconds"] = round(time.time() - t0, 1)
    (out / "uplift.json").write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    md = table(result)
    (out / "uplift.md").write_text(md, encoding="utf-8")
    plot_curves(result, out / "uplift_curves.png")
    print(md)


if __name__ == "__main__":
    main()
