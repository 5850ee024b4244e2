"""The planted errors a label-noise dump ranks lowest, drawn beside the box they replaced, to judge them by eye.

    python benchmarks/limits_sheet.py sheet --dumps /work/s23/pool-s0/construction-ppe-seed0.pkl \\
        --datasets ../shared/datasets --kinds grouped loose shifted swapped --top 15 --out reports/limits
    python benchmarks/limits_sheet.py sizes --dumps /work/s23/pool-s{0,1,2} --datasets ../shared/datasets

Why: where the merged list stays far below a target, the question is whether the planted errors it ranks low are
errors a person would see at all, or changes within how the dataset's right boxes vary (a 3-px hat moved 1 px, two
touching potholes in one box). Only the planted box and the box it replaced answer that, and the dump keeps only
the noisy copy. The same dataset, seed and rate plant the same errors (:func:`planted_noise.plant_errors`), so the
dataset is planted again with every label traced to its original line, the re-plant is checked box by box against
the dump, and each planted box is drawn with its original(s).

``sheet``: per dump and kind, ``<dump>-<kind>-low.png``, the ``--top`` planted boxes the merged list ranks lowest
(the original green, the planted red; the caption its rank in the merged list, its merged score, the original's
shorter side in image pixels and the class), ``<dump>-<kind>-outrank.png``, the untouched boxes whose merged score
is above the kind's median planted one, best first (drawn on the noisy copy the checks saw: the box red, the
image's other boxes green; the caption the check that scores it), and ``<dump>-<kind>.csv`` listing both with an
empty ``verdict`` column to fill in. ``tally`` counts the filled-in verdicts per dataset and kind.

``sizes``: per dataset and kind, the merged AP (mean over the dumps, i.e. the seeds) with the planted boxes split
by the original box's shorter side in image pixels (``--bins``; a grouped box by its members' mean shorter side),
each stratum ranked against every untouched box: what the AP would be if only errors of that size were planted.
A reading of the dumps only: the benchmark's headline figures are the unsplit ones.

``adds``: a ``proposals.py --dump`` adds pickle drawn the same way: each add's proposed box (red) over the deleted box
it found (green), lowest IoU first, and the deleted boxes nothing found, largest first (issue #23's ``missing`` adds).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import label_noise as ln  # noqa: E402
import rerank  # noqa: E402

from curate.core.dataset import Dataset, ImageRecord, Label  # noqa: E402
from curate.core.overlap import iou_one  # noqa: E402
from planted_noise import PlantedTruth, plant_errors  # noqa: E402

Key = tuple[str, int]
RATE = 0.03  # label_noise.py's default, which every pool dump was made with
VERDICTS = ("visible", "not visible", "unsure", "real", "not", "")
FIELDS = ["part", "n", "image", "line", "class", "original class", "rank", "score", "side px", "check", "verdict"]
GREEN, RED = (0, 200, 0), (0, 0, 255)


@dataclass(frozen=True)
class _Traced(Label):
    """A label that remembers its index in the clean record: ``plant_errors`` builds every planted box with
    ``dataclasses.replace`` from the box it changes (the first member, for a group), which keeps this field."""

    origin: int = -1


@dataclass
class Replant:
    """The noisy copy, its truth, and each planted box's original label(s) of the clean dataset."""

    noisy: Dataset
    truth: PlantedTruth
    originals: dict[Key, list[Label]]
    records: dict[str, ImageRecord]  # rel → the noisy copy's record


def replant(clean: Dataset, seed: int, rate: float = RATE) -> Replant:
    """Plant ``clean`` again as label_noise.py did, and map each planted box to the label(s) it replaced.

    A group's other members are deleted by the planting: they are the record's labels whose trace is neither in
    the noisy copy nor among the deleted (``missing``) ones, each given to the group box that encloses it."""
    traced = [
        replace(rec, labels=[_Traced(**vars(lab), origin=i) for i, lab in enumerate(rec.labels)])
        for rec in clean.images
    ]
    noisy, truth = plant_errors(replace(clean, images=traced), rate=rate, seed=seed)
    clean_of = {rec.rel: rec for rec in clean.images}
    originals: dict[Key, list[Label]] = {}
    for rec in noisy.split("train"):
        planted = [lab for lab in rec.labels if truth.truth(rec.rel, lab.line) not in (None, "source")]
        if not planted:
            continue
        labels = clean_of[rec.rel].labels
        kept = {lab.origin for lab in rec.labels}
        deleted = {lab.origin for rel, lab in truth.missing if rel == rec.rel}
        groups = [lab for lab in planted if truth.truth(rec.rel, lab.line) == "grouped"]
        members = _members(groups, [labels[i] for i in sorted(set(range(len(labels))) - kept - deleted)], labels)
        for lab in planted:
            kind = truth.truth(rec.rel, lab.line)
            if kind in ("duplicate", "ambiguous"):  # a copy: its origin is the source box it was jittered from
                originals[(rec.rel, lab.line)] = [labels[lab.origin]]
            else:
                originals[(rec.rel, lab.line)] = [labels[lab.origin], *members.get(lab.line, [])]
    return Replant(noisy, truth, originals, {rec.rel: rec for rec in noisy.images})


def _members(groups: list[_Traced], lost: list[Label], labels: list[Label]) -> dict[int, list[Label]]:
    """Group line → its members but the first: each lost label goes to a group box that encloses it, and where
    two groups overlap, the assignment under which every group is the union of its members (first ones kept)."""
    options = [[g for g in groups if _encloses(g.xyxy, lab.xyxy)] or [None] for lab in lost]
    best: dict[int, list[Label]] = {}
    for choice in itertools.product(*options):
        members: dict[int, list[Label]] = defaultdict(list)
        for lab, g in zip(lost, choice):
            members[g.line if g is not None else -1].append(lab)
        if all(_union([labels[g.origin], *members[g.line]], g.xyxy) for g in groups):
            return members
        best = best or members
    return best


def _union(boxes: list[Label], xyxy: tuple, atol: float = 1e-6) -> bool:
    xy = np.array([b.xyxy for b in boxes])
    return len(boxes) > 1 and np.allclose(np.clip([*xy[:, :2].min(0), *xy[:, 2:].max(0)], 0.0, 1.0), xyxy, atol=atol)


def _encloses(outer: tuple, inner: tuple, eps: float = 1e-6) -> bool:
    return (
        outer[0] <= inner[0] + eps
        and outer[1] <= inner[1] + eps
        and outer[2] + eps >= inner[2]
        and (outer[3] + eps >= inner[3])
    )


def check_matches(dump: rerank.Dump, plant: Replant, name: str = "") -> None:
    """SystemExit unless the re-plant holds the dump's boxes exactly (keys, classes, corners, planted kinds), and
    every group's members enclose to its box: else the dump came from another dataset, seed, rate or planter."""
    boxes = {
        (rec.rel, lab.line): (lab.class_id, lab.xyxy, plant.truth.truth(rec.rel, lab.line))
        for rec in plant.noisy.split("train")
        for lab in rec.labels
    }
    if set(boxes) != set(dump.boxes):
        raise SystemExit(f"{name}: the re-plant holds other boxes than the dump ({len(boxes)} vs {len(dump.boxes)})")
    for key, (cls, xyxy, kind) in dump.boxes.items():
        got = boxes[key]
        if got[0] != cls or got[2] != kind or not np.allclose(got[1], xyxy, atol=1e-9):
            raise SystemExit(f"{name}: the re-plant differs from the dump at {key[0]}:{key[1]} ({got} vs {cls, kind})")
    for key, orig in plant.originals.items():
        if plant.truth.truth(*key) == "grouped" and not _union(orig, dump.boxes[key][1]):
            raise SystemExit(f"{name}: the group at {key[0]}:{key[1]} is not the union of its members")


def side_px(rec: ImageRecord, labels: list[Label]) -> float:
    """The labels' mean shorter side in the image's own pixels (one label: its shorter side)."""
    w, h = rec.size
    return float(np.mean([min(lab.w * w, lab.h * h) for lab in labels]))


def planted_rows(dump: rerank.Dump, plant: Replant, kind: str) -> list[dict]:
    """Every planted box of ``kind``, lowest merged score first, with its rank in the merged worst-first list (1 +
    the train boxes scored strictly above it), its originals and their shorter side in pixels."""
    merged = ln.merged_scores(ln.box_scores(dump.findings))
    scores = np.array([merged.get(k, 0.0) for k in dump.keys])
    rows = []
    for key, (_, _, t) in dump.boxes.items():
        if t != kind:
            continue
        s = merged.get(key, 0.0)
        rec = plant.records[key[0]]
        orig = plant.originals[key]
        rows.append({"key": key, "score": s, "rank": int((scores > s).sum()) + 1, "originals": orig,
                     "side": side_px(rec, orig)})  # fmt: skip
    return sorted(rows, key=lambda r: (r["score"], r["key"]))


def outranking_median(dump: rerank.Dump, kind: str) -> list[tuple]:
    """:func:`rerank.outranking` cut at the kind's median planted merged score: (score, check, key, message)."""
    merged = ln.merged_scores(ln.box_scores(dump.findings))
    planted = [merged.get(k, 0.0) for k, (_, _, t) in dump.boxes.items() if t == kind]
    median = float(np.median(planted)) if planted else 1.0
    return [r for r in rerank.outranking(dump, dump.findings, kind) if r[0] > median]


def _grid(tiles: list[np.ndarray], path: Path) -> None:
    import contact_sheet as cs
    import cv2

    if not tiles:
        return
    tiles = tiles + [np.full_like(tiles[0], 255)] * (-len(tiles) % cs.PER_ROW)
    cv2.imwrite(str(path), np.vstack([np.hstack(tiles[i : i + cs.PER_ROW]) for i in range(0, len(tiles), cs.PER_ROW)]))


def sheet(name: str, dump: rerank.Dump, plant: Replant, kind: str, out: Path, top: int, min_view: float) -> Path:
    """``<name>-<kind>-low.png``, ``-outrank.png`` and ``.csv`` (see the module's docstring); returns the CSV."""
    import contact_sheet as cs

    names = plant.noisy.class_name
    tiles, rows = [], []
    for n, row in enumerate(planted_rows(dump, plant, kind)[:top], start=1):
        rel, line = row["key"]
        rec = plant.records[rel]
        lab = next(lb for lb in rec.labels if lb.line == line)
        orig = row["originals"]
        cls = (
            names(lab.class_id)
            if lab.class_id == orig[0].class_id
            else f"{names(orig[0].class_id)}>{names(lab.class_id)}"
        )
        boxes = [(o.cx, o.cy, o.w, o.h) for o in orig] + [(lab.cx, lab.cy, lab.w, lab.h)]
        caption = [f"L{n} #{row['rank']} s{row['score']:.3f} {row['side']:.0f}px", cls]
        tiles.append(cs.tile(rec.path, boxes, len(boxes) - 1, caption, min_view=min_view))
        rows.append({"part": "low", "n": n, "image": rel, "line": line, "class": names(lab.class_id),
                     "original class": names(orig[0].class_id), "rank": row["rank"], "score": f"{row['score']:.4f}",
                     "side px": f"{row['side']:.1f}", "check": ln.TYPE_TO_CHECK[kind], "verdict": ""})  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    _grid(tiles, out / f"{name}-{kind}-low.png")
    merged = ln.merged_scores(ln.box_scores(dump.findings))
    scores = np.array([merged.get(k, 0.0) for k in dump.keys])
    tiles = []
    for n, (score, check, (rel, line), _) in enumerate(outranking_median(dump, kind)[:top], start=1):
        rec = plant.records[rel]
        k = next(i for i, lb in enumerate(rec.labels) if lb.line == line)
        lab = rec.labels[k]
        rank = int((scores > score).sum()) + 1
        side = side_px(rec, [lab])
        caption = [f"U{n} #{rank} {check[:14]} {score:.3f}", f"{names(lab.class_id)[:24]} {side:.0f}px"]
        tiles.append(cs.tile(rec.path, [(o.cx, o.cy, o.w, o.h) for o in rec.labels], k, caption, min_view=min_view))
        rows.append({"part": "outrank", "n": n, "image": rel, "line": line, "class": names(lab.class_id),
                     "original class": "", "rank": rank, "score": f"{score:.4f}", "side px": f"{side:.1f}",
                     "check": check, "verdict": ""})  # fmt: skip
    _grid(tiles, out / f"{name}-{kind}-outrank.png")
    path = out / f"{name}-{kind}.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def load(dump_path: Path, datasets: Path, cache: dict[str, Dataset] | None = None) -> tuple[rerank.Dump, Replant]:
    """A dump and its checked re-plant (the dataset named by the dump's file name, seed by its ``-seedN``)."""
    name, seed = dump_path.stem.rsplit("-seed", 1)
    cache = {} if cache is None else cache
    if name not in cache:
        cache[name] = ln.load_dataset(datasets / name)
    dump = rerank.load_dump(dump_path)
    plant = replant(cache[name], int(seed))
    check_matches(dump, plant, dump_path.stem)
    return dump, plant


def size_aps(
    dump: rerank.Dump, plant: Replant, kind: str, bins: list[float], against: str = "stratum"
) -> list[tuple[float, int]]:
    """(merged AP, planted boxes) per size stratum (``bins`` are the edges in px): the kind's planted boxes whose
    original shorter side is in the stratum are the positives; the negatives are the untouched boxes of the same
    stratum (``against="stratum"``: the share of errors stays about the benchmark's, so the APs of the strata
    compare with each other and with the unsplit one), or every untouched box (``"all"``: what the AP would be if
    only errors of that size were planted; a stratum holding fewer errors reads lower for that alone)."""
    merged = ln.merged_scores(ln.box_scores(dump.findings))
    side = {r["key"]: r["side"] for r in planted_rows(dump, plant, kind)}
    for key, (_, xyxy, t) in dump.boxes.items():
        if t is None:
            w, h = plant.records[key[0]].size
            side[key] = min((xyxy[2] - xyxy[0]) * w, (xyxy[3] - xyxy[1]) * h)
    edges = [0.0, *bins, np.inf]
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = {k for k, v in side.items() if lo <= v < hi}
        n = sum(dump.boxes[k][2] == kind for k in inside)
        keys = [k for k in dump.keys if k in inside or (against == "all" and dump.boxes[k][2] is None)]
        out.append((ln.rank_metrics(keys, dump.truth, kind, merged)["ap"] if n else float("nan"), n))
    return out


def sizes_table(
    paths: list[Path], datasets: Path, kinds: list[str], bins: list[float], against: str = "stratum"
) -> str:
    """Markdown: per dataset and kind, the unsplit merged AP and each stratum's, means over the dumps (seeds),
    the planted boxes counted over all of them (a stratum's mean leaves out the seeds that planted none in it)."""
    labels = [f"< {bins[0]:g}"] + [f"{a:g}–{b:g}" for a, b in zip(bins[:-1], bins[1:])] + [f"≥ {bins[-1]:g}"]
    cells: dict[tuple[str, str], list[list[tuple[float, int]]]] = defaultdict(list)
    whole: dict[tuple[str, str], list[float]] = defaultdict(list)
    cache: dict[str, Dataset] = {}
    for path in paths:
        dump, plant = load(path, datasets, cache)
        name = path.stem.rsplit("-seed", 1)[0]
        merged = ln.merged_scores(ln.box_scores(dump.findings))
        for kind in kinds:
            if not dump.truth.counts.get(kind):
                continue
            whole[(name, kind)].append(ln.rank_metrics(dump.keys, dump.truth, kind, merged)["ap"])
            cells[(name, kind)].append(size_aps(dump, plant, kind, bins, against))
    head = "| dataset | kind | all | " + " | ".join(f"{lab} px (n)" for lab in labels) + " |"
    lines = [head, "|---" * (len(labels) + 3) + "|"]
    for (name, kind), per_seed in sorted(cells.items()):
        row = [f"{np.mean(whole[(name, kind)]):.2f}"]
        for j in range(len(labels)):
            aps = [s[j][0] for s in per_seed if s[j][1]]
            n = sum(s[j][1] for s in per_seed)
            row.append(f"{np.mean(aps):.2f} ({n})" if aps else f"— ({n})")
        lines.append(f"| {name} | {kind} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def tally(paths: list[Path]) -> str:
    """Markdown: per sheet CSV (dataset, seed, kind), the verdicts counted for the low planted boxes and for the
    untouched ones above the median; then per dataset and kind over its seeds. A row left blank counts as unjudged."""
    per: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for path in paths:
        name, kind = path.stem.rsplit("-", 1)
        dataset = name.rsplit("-seed", 1)[0]
        for row in csv.DictReader(path.open(encoding="utf-8")):
            verdict = row["verdict"].strip()
            if verdict not in VERDICTS:
                raise SystemExit(f"{path.name}: verdict {verdict!r} is not one of {VERDICTS}")
            per[(dataset, kind)][(row["part"], verdict or "unjudged")] += 1
    head = "| dataset | kind | planted: visible / not visible / unsure | untouched above median: real / not / unsure |"
    lines = [head, "|---|---|---|---|"]
    for (dataset, kind), c in sorted(per.items()):
        low = " / ".join(str(c[("low", v)]) for v in ("visible", "not visible", "unsure"))
        up = " / ".join(str(c[("outrank", v)]) for v in ("real", "not", "unsure"))
        lines.append(f"| {dataset} | {kind} | {low} | {up} |")
    return "\n".join(lines)


def aside_aps(dump: rerank.Dump, rows: list[dict], kind: str) -> tuple[float, float, float]:
    """The kind's merged AP as it is, with the planted boxes judged "not visible" set aside, and with those judged
    "not visible" or "unsure" set aside (untouched boxes judged "real" set aside in both): how much of the gap to a
    target is errors no one could see, and how much is visible errors the checks rank low."""
    merged = ln.merged_scores(ln.box_scores(dump.findings))
    real = {(r["image"], int(r["line"])) for r in rows if r["part"] == "outrank" and r["verdict"] == "real"}
    out = [ln.rank_metrics(dump.keys, dump.truth, kind, merged)["ap"]]
    for hidden in (("not visible",), ("not visible", "unsure")):
        drop = real | {(r["image"], int(r["line"])) for r in rows if r["part"] == "low" and r["verdict"] in hidden}
        out.append(ln.rank_metrics([k for k in dump.keys if k not in drop], dump.truth, kind, merged)["ap"])
    return out[0], out[1], out[2]


def aside_table(paths: list[Path], dumps: list[Path]) -> str:
    """Markdown: :func:`aside_aps` per dataset and kind, means over the judged sheets (seeds) of each."""
    by_stem = {p.stem: p for p in dumps}
    cells: dict[tuple[str, str], list[tuple[float, float, float]]] = defaultdict(list)
    for path in paths:
        name, kind = path.stem.rsplit("-", 1)
        if name not in by_stem:
            raise SystemExit(f"{path.name}: no dump {name}.pkl among --dumps")
        rows = list(csv.DictReader(path.open(encoding="utf-8")))
        cells[(name.rsplit("-seed", 1)[0], kind)].append(aside_aps(rerank.load_dump(by_stem[name]), rows, kind))
    lines = [
        "| dataset | kind | merged AP | not visible set aside | not visible and unsure set aside |",
        "|---" * 5 + "|",
    ]
    for (dataset, kind), aps in sorted(cells.items()):
        lines.append(f"| {dataset} | {kind} | " + " | ".join(f"{v:.2f}" for v in np.mean(aps, axis=0)) + " |")
    return "\n".join(lines)


def add_rows(adds: dict, found_iou: float = 0.3) -> tuple[list[dict], list[tuple]]:
    """From a ``proposals.py --dump`` adds pickle: each add (a listed ``missing`` region with a class guess) that
    found a deleted box, its proposed box or its region at IoU ≥ ``found_iou`` with it (proposals.py judges the
    proposed box, label_noise.py's recall the region), with the proposed box's IoU with that deleted box, worst
    first; and the deleted boxes no listed region or add found, as (image, xyxy, class)."""
    deleted: dict[str, list[tuple]] = defaultdict(list)
    for rel, xyxy, cls in adds["deleted"]:
        deleted[rel].append((xyxy, cls))
    rows, hit = [], set()
    for rel, region, score, data in adds["regions"]:
        is_add = isinstance(data.get("class_id"), int) and data["class_id"] >= 0
        boxes = [_corners(region)]
        if is_add:
            boxes.insert(0, _corners(data["add_box"] if data.get("add_box") is not None else region))
        for box in boxes:
            found = max(deleted.get(rel, []), key=lambda d: iou_one(d[0], box), default=None)
            if found is not None and iou_one(found[0], box) >= found_iou:
                break
        else:
            continue
        hit.add((rel, found[0]))
        if is_add:
            rows.append({"image": rel, "deleted": found[0], "class": found[1], "box": boxes[0], "score": score,
                         "guess": data["class_id"], "iou": iou_one(found[0], boxes[0])})  # fmt: skip
    missed = [(rel, xyxy, cls) for rel, ds in deleted.items() for xyxy, cls in ds if (rel, xyxy) not in hit]
    return sorted(rows, key=lambda r: r["iou"]), missed


def _corners(box: tuple) -> tuple[float, float, float, float]:
    cx, cy, w, h = box
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def _cxcywh(xyxy: tuple) -> tuple[float, float, float, float]:
    return ((xyxy[0] + xyxy[2]) / 2, (xyxy[1] + xyxy[3]) / 2, xyxy[2] - xyxy[0], xyxy[3] - xyxy[1])


def adds_sheet(path: Path, clean: Dataset, out: Path, top: int, min_view: float) -> Path:
    """``<pickle>-adds.png``: each add that found a deleted box, its proposed box red over the deleted box green,
    lowest IoU first; ``<pickle>-missed.png``: the deleted boxes no listed region found (red; the image's other
    clean boxes green), largest first; and ``<pickle>-adds.csv`` listing both with a blank verdict."""
    import pickle

    import contact_sheet as cs

    rows, missed = add_rows(pickle.loads(path.read_bytes()))
    records = {rec.rel: rec for rec in clean.images}
    names = clean.class_name
    out.mkdir(parents=True, exist_ok=True)
    tiles, table = [], []
    for n, r in enumerate(rows[:top], start=1):
        rec = records[r["image"]]
        w, h = rec.size
        side = min((r["deleted"][2] - r["deleted"][0]) * w, (r["deleted"][3] - r["deleted"][1]) * h)
        caption = [
            f"A{n} IoU {r['iou']:.2f} s{r['score']:.2f} {side:.0f}px",
            f"{names(r['class'])} guess {names(r['guess'])}",
        ]
        tiles.append(cs.tile(rec.path, [_cxcywh(r["deleted"]), _cxcywh(r["box"])], 1, caption, min_view=min_view))
        row = {"part": "add", "n": n, "image": r["image"], "class": names(r["class"]), "score": f"{r['score']:.4f}"}
        table.append({**row, "iou": f"{r['iou']:.3f}", "side px": f"{side:.1f}", "verdict": ""})
    _grid(tiles, out / f"{path.stem}-adds.png")
    tiles = []
    sized = []
    for rel, xyxy, cls in missed:
        w, h = records[rel].size
        sized.append((min((xyxy[2] - xyxy[0]) * w, (xyxy[3] - xyxy[1]) * h), rel, xyxy, cls))
    for n, (side, rel, xyxy, cls) in enumerate(sorted(sized, reverse=True)[:top], start=1):
        rec = records[rel]
        others = [(o.cx, o.cy, o.w, o.h) for o in rec.labels if not np.allclose(o.xyxy, xyxy, atol=1e-9)]
        caption = [f"M{n} {side:.0f}px", names(cls)]
        tiles.append(cs.tile(rec.path, [*others, _cxcywh(xyxy)], len(others), caption, min_view=min_view))
        table.append({"part": "missed", "n": n, "image": rel, "class": names(cls), "score": "", "iou": "",
                      "side px": f"{side:.1f}", "verdict": ""})  # fmt: skip
    _grid(tiles, out / f"{path.stem}-missed.png")
    csv_path = out / f"{path.stem}-adds.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["part", "n", "image", "class", "score", "iou", "side px", "verdict"])
        writer.writeheader()
        writer.writerows(table)
    return csv_path


def _dumps(paths: list[Path]) -> list[Path]:
    out = []
    for p in paths:
        out += sorted(p.glob("*-seed*.pkl")) if p.is_dir() else [p]
    missing = [str(p) for p in out if not p.is_file()]
    if missing or not out:
        raise SystemExit(f"no label_noise.py --dump pickle at {', '.join(missing or map(str, paths))}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    for cmd in ("sheet", "sizes"):
        p = sub.add_parser(cmd)
        p.add_argument("--dumps", nargs="+", type=Path, required=True, help="dumps or folders of *-seed*.pkl")
        p.add_argument("--datasets", type=Path, required=True, help="folder of the unmodified datasets")
        p.add_argument("--kinds", nargs="+", default=["grouped", "loose", "shifted", "swapped"], choices=ln.BOX_TYPES)
    s = sub.choices["sheet"]
    s.add_argument("--top", type=int, default=15)
    s.add_argument("--out", type=Path, default=Path("reports/limits"))
    s.add_argument("--min-view", type=float, default=0.08, help="a crop shows at least this share of the image")
    z = sub.choices["sizes"]
    z.add_argument("--bins", nargs="+", type=float, default=[16.0, 48.0], help="edges in px")
    z.add_argument("--against", choices=["stratum", "all"], default="stratum", help="negatives: same size or all")
    a = sub.add_parser("adds")
    a.add_argument("--adds", nargs="+", type=Path, required=True, help="proposals.py --dump adds-<name>-seed<N>.pkl")
    a.add_argument("--datasets", type=Path, required=True, help="folder of the unmodified datasets")
    a.add_argument("--top", type=int, default=15)
    a.add_argument("--out", type=Path, default=Path("reports/limits"))
    a.add_argument("--min-view", type=float, default=0.08, help="a crop shows at least this share of the image")
    t = sub.add_parser("tally")
    t.add_argument("csvs", nargs="+", type=Path, help="sheet CSVs with the verdict column filled in")
    t.add_argument("--dumps", nargs="+", type=Path, default=None, help="their dumps: the AP with the unseen set aside")
    args = parser.parse_args(argv)
    if args.cmd == "adds":
        cache: dict[str, Dataset] = {}
        for path in args.adds:
            name = path.stem.removeprefix("adds-").rsplit("-seed", 1)[0]
            if not path.is_file():
                raise SystemExit(f"no proposals.py --dump adds pickle at {path}")
            clean = cache.setdefault(name, ln.load_dataset(args.datasets / name))
            print(f"wrote {adds_sheet(path, clean, args.out, args.top, args.min_view)}")
    elif args.cmd == "tally":
        print(tally(args.csvs))
        if args.dumps:
            print("\n" + aside_table(args.csvs, _dumps(args.dumps)))
    elif args.cmd == "sizes":
        print(sizes_table(_dumps(args.dumps), args.datasets, args.kinds, sorted(args.bins), args.against))
    else:
        cache: dict[str, Dataset] = {}
        for path in _dumps(args.dumps):
            dump, plant = load(path, args.datasets, cache)
            for kind in args.kinds:
                if dump.truth.counts.get(kind):
                    print(f"wrote {sheet(path.stem, dump, plant, kind, args.out, args.top, args.min_view)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
