"""Does curation help? A controlled experiment with real data and real training (issue #24).

Three versions of one dataset's train split, trained with the same model, seed and settings, scored on the
same clean test set:

- **(a) clean**: the dataset as it is;
- **(b) noisy**: label errors of every kind planted into train (:mod:`planted_noise`, ``--rate`` of the
  train boxes per kind, seven kinds);
- **(c) cleaned**: (b) after ``curate audit`` and ``curate export --accept-proposals --min-confidence X``,
  the real commands, no human in the loop. Before the export, in FiftyOne, :func:`drop_flagged` deletes the
  flagged train boxes that :class:`Policy` says to delete when no proposal at or above X fixes them
  (``--policy drop-flagged``, the default: every flagged box; ``repair``: copies and grouped boxes only), and
  rejects the proposals outside train. The policy and X (0.5) were chosen on labels
  (``benchmarks/uplift_policies.py``).

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
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from curate.core.dataset import Dataset, Label

VERSIONS = ("clean", "noisy", "cleaned")


def cli(*args: str) -> None:
    """One real ``curate`` command (the installed code), failing loudly."""
    cmd = [sys.executable, "-m", "curate.app.cli", *args]
    print("$ curate " + " ".join(args), flush=True)
    res = subprocess.run(cmd, check=False)
    if res.returncode:
        raise SystemExit(f"curate {args[0]} failed (exit {res.returncode})")


def prepare(dataset: Path, out: Path, *, rate: float, seed: int, limit: int | None, policy: Policy) -> dict:
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
        if not (out / "audit" / "findings.json").exists():  # written last, after FiftyOne's tags and proposals
            cli("audit", str(out / "noisy"), "--out", str(out / "audit"))
        dropped = drop_flagged(out / "noisy", out / "audit" / "findings.json", policy)
        cli(
            "export",
            str(out / "noisy"),
            "--accept-proposals",
            "--min-confidence",
            str(policy.min_confidence),
            "--out",
            str(out / "cleaned"),
        )
    clean = load_yolo(out / "clean")
    return {
        "policy": policy.name,
        "dropped_in_fiftyone": dropped,
        "planted": truth.counts,
        "train_boxes": sum(len(r.labels) for r in ds.split("train")),
        "agreement": {v: label_agreement(clean, load_yolo(out / v)) for v in ("noisy", "cleaned")},
    }


#: The checks whose fix is deleting the flagged box: the later of two copies (duplicate), a copy with another
#: class (ambiguous), a box around several objects (grouped: no proposal draws its members, and the objects
#: it covers keep no right box either way). A batch cleaner deletes these when no proposal is confident.
DELETE_FIX = frozenset({"duplicate", "ambiguous", "grouped"})


@dataclass(frozen=True)
class Policy:
    """How (c) is cleaned with no human in the loop.

    Every proposal on a train label at or above ``min_confidence`` is applied (delete, relabel, resize, add);
    a flagged train box without one is deleted when its check is in ``drop`` (``None``: every error check),
    and kept as it is otherwise. The default, drop-flagged at 0.5, is the policy whose cleaned train labels
    came closest to the clean ones (F1 over IoU 0.5–0.95, ``benchmarks/uplift_policies.py`` on bccd with 5 %
    planted per kind; benchmarks/README.md, Uplift): at 0.9 no resize proposal applied (the search's
    confidences reach 0.69) and every loose or shifted box kept was a wrong box."""

    min_confidence: float = 0.5
    drop: frozenset[str] | None = None

    @property
    def name(self) -> str:
        if self.drop is None:
            deletes = "drop-flagged"
        elif self.drop == DELETE_FIX:
            deletes = "repair"
        else:
            deletes = "drop " + ("+".join(sorted(self.drop)) or "none")
        return f"{deletes} @{self.min_confidence:g}"


#: uplift.py's policies by name (``--policy``).
POLICIES = {"repair": DELETE_FIX, "drop-flagged": None}


def to_drop(findings: list[dict], policy: Policy) -> dict[str, set[int]]:
    """Image → the train label lines ``policy`` deletes: flagged by an error check (not a note), in
    ``policy.drop``, and with no proposal on that line at or above ``policy.min_confidence``."""
    from curate.core.findings import NOTE_CHECKS

    confident = {
        (f["image"], f["line"])
        for f in findings
        if f["line"] is not None and f["data"].get("proposal", {}).get("confidence", 0.0) >= policy.min_confidence
    }
    drop: dict[str, set[int]] = {}
    for f in findings:
        if f["split"] != "train" or f["line"] is None or f["check"] in NOTE_CHECKS:
            continue
        if (policy.drop is None or f["check"] in policy.drop) and (f["image"], f["line"]) not in confident:
            drop.setdefault(f["image"], set()).add(f["line"])
    return drop


def drop_flagged(noisy_root: Path, findings_json: Path, policy: Policy) -> int:
    """The batch reviewer, in FiftyOne: deletes the train boxes :func:`to_drop` names, as a person would in
    the App, and rejects every proposal outside train (the experiment cleans train; val, which picks the best
    epoch, stays the same for all three versions); the export then applies the train proposals at or above
    ``policy.min_confidence``. Returns how many boxes were deleted."""
    from fiftyone import ViewField as F

    from curate.fiftyone.identity import find_fiftyone
    from curate.fiftyone.proposals import PROPOSALS_FIELD, REJECT_TAG
    from curate.io.yolo import load_yolo

    drop = to_drop(json.loads(findings_json.read_text(encoding="utf-8"))["findings"], policy)
    fo_dataset = find_fiftyone(load_yolo(noisy_root))
    if fo_dataset.has_sample_field(PROPOSALS_FIELD):
        fo_dataset.match(F("split") != "train").tag_labels(REJECT_TAG, label_fields=PROPOSALS_FIELD)
    n = 0
    for sample in fo_dataset.match(F("curate_rel").is_in(sorted(drop))):
        lines = drop[sample.curate_rel]
        kept = [d for d in sample.ground_truth.detections if d["line"] not in lines]
        n += len(sample.ground_truth.detections) - len(kept)
        sample.ground_truth.detections = kept
        sample.save()
    return n


def cleaned_labels(noisy: Dataset, findings: list[dict], policy: Policy) -> Dataset:
    """What ``policy`` makes of ``noisy``'s train labels, without FiftyOne: the same edits as
    :func:`drop_flagged` followed by ``curate export --accept-proposals`` (one proposal per line, the most
    confident; an added box appended), so that policies can be compared on labels in seconds. The real run
    goes through FiftyOne and the export (:func:`prepare`), which this mirrors."""
    drop = to_drop(findings, policy)
    proposals: dict[str, list[dict]] = {}
    for f in findings:
        p = f["data"].get("proposal")
        if f["split"] == "train" and p and p["confidence"] >= policy.min_confidence:
            proposals.setdefault(f["image"], []).append({**p, "line": f["line"]})
    images = []
    for r in noisy.images:
        if r.split != "train" or (r.rel not in drop and r.rel not in proposals):
            images.append(r)
            continue
        by_line: dict[int, dict] = {}
        added = []
        for p in sorted(proposals.get(r.rel, []), key=lambda p: -p["confidence"]):
            if p["line"] is None:
                added.append(p)
            else:
                by_line.setdefault(p["line"], p)
        labels = []
        for lab in r.labels:
            p = by_line.get(lab.line)
            if lab.line in drop.get(r.rel, ()) or (p and p["action"] == "delete"):
                continue
            if p and p["action"] == "relabel":
                lab = replace(lab, class_id=p["class_id"])
            elif p and p["action"] == "resize":
                cx, cy, w, h = p["box"]
                lab = replace(lab, cx=cx, cy=cy, w=w, h=h)
            labels.append(lab)
        for k, p in enumerate(added):
            cx, cy, w, h = p["box"]
            labels.append(Label(p["class_id"], cx, cy, w, h, len(r.labels) + k + 1))
        images.append(replace(r, labels=labels, edited=True))
    return replace(noisy, images=images)


#: The IoU thresholds of :func:`label_agreement`'s F1 (COCO's, as mAP50-95 averages over them).
IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)


def label_agreement(clean: Dataset, other: Dataset) -> dict:
    """How close a version's train labels are to the clean ones, box for box (one to one, greedy by IoU, same
    class): the clean boxes matched at IoU ≥ 0.5 (``matched``, ``matched_share``), the boxes that match none
    (``extra``), the mean IoU of the matched pairs, and F1 at IoU 0.5 and averaged over 0.5–0.95 (the label
    counterpart of mAP50 and mAP50-95: a wrong box costs precision, a lost one recall, a loose one the high
    thresholds)."""
    from curate.core.overlap import pairwise_iou, xyxy_array

    by_name = {Path(r.rel).name: r for r in other.split("train")}
    total = theirs_total = 0
    matched = np.zeros(len(IOU_THRESHOLDS), int)
    ious: list[float] = []
    for r in clean.split("train"):
        o = by_name.get(Path(r.rel).name)
        ours, theirs = r.labels, (o.labels if o else [])
        total += len(ours)
        theirs_total += len(theirs)
        same = np.array(
            [[clean.class_name(a.class_id) == other.class_name(b.class_id) for b in theirs] for a in ours], bool
        ).reshape(len(ours), len(theirs))
        iou = np.where(same, pairwise_iou(xyxy_array(ours), xyxy_array(theirs)), 0.0)
        pairs = sorted(np.argwhere(iou >= IOU_THRESHOLDS[0]).tolist(), key=lambda ij: -iou[ij[0], ij[1]])
        for k, t in enumerate(IOU_THRESHOLDS):
            taken_ours: set[int] = set()
            taken_theirs: set[int] = set()
            for i, j in pairs:
                if iou[i, j] >= t and i not in taken_ours and j not in taken_theirs:
                    taken_ours.add(i)
                    taken_theirs.add(j)
                    if k == 0:
                        ious.append(float(iou[i, j]))
            matched[k] += len(taken_ours)
    f1 = 2 * matched / max(total + theirs_total, 1)
    return {
        "clean_boxes": total,
        "boxes": theirs_total,
        "matched": int(matched[0]),
        "matched_share": matched[0] / max(total, 1),
        "extra": theirs_total - int(matched[0]),
        "mean_iou": float(np.mean(ious)) if ious else 0.0,
        "f1_50": float(f1[0]),
        "f1_50_95": float(f1.mean()),
    }


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
            f"Cleaning policy: {result['planted'].get('policy', 'drop-flagged @0.9')}.",
            "",
            "| train labels | clean boxes matched (same class, IoU ≥ 0.5) | boxes matching none | F1 @0.5–0.95 |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| {k} | {a['matched_share']:.1%} | {a['extra']:,} | {a.get('f1_50_95', float('nan')):.3f} |"
            for k, a in agree.items()
        ]
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
    ap.add_argument("--min-confidence", type=float, default=0.5, help="the bar for applying a proposal")
    ap.add_argument(
        "--policy",
        choices=sorted(POLICIES),
        default="drop-flagged",
        help="drop-flagged: delete every flagged train box without a proposal at --min-confidence; repair: delete "
        "only those whose fix is deletion (duplicate, ambiguous, grouped), keep the rest",
    )
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
            args.dataset,
            out,
            rate=args.rate,
            seed=args.seed,
            limit=args.limit,
            policy=Policy(args.min_confidence, POLICIES[args.policy]),
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
