"""Re-rank label-noise dumps offline with some checks' findings replaced: the merged list without re-running the rest.

    python benchmarks/label_noise.py --dataset D ... --seeds 0 --dump --out reports/full        # every check
    python benchmarks/label_noise.py --dataset D ... --seeds 0 --checks duplicate ambiguous \\
        --dump --out reports/one                                                               # the changed ones
    python benchmarks/rerank.py --full reports/full --new reports/one --checks duplicate ambiguous \\
        --kinds duplicate ambiguous --known benchmarks/known --datasets ../shared/datasets --show duplicate

Why: a change to one check moves the merged worst-first list (its scores push other kinds' planted boxes down
or up), but a full run of every check on the seven pool datasets takes 30–50 minutes, while the changed checks
re-run in seconds. The same seed plants the same errors (``planted_noise.plant_errors``), so the rows of
``--checks`` from ``--new`` replace theirs in ``--full``'s dump, every other check's rows are kept, and both are
scored with label_noise.py's own functions (:func:`label_noise.rank_metrics`, :func:`label_noise.box_scores`,
the same merge as :func:`label_noise.score_seed`), so the numbers equal a full run's for the same findings.

``--full`` and ``--new`` are both one dump or both a folder of ``*-seed*.pkl`` dumps (paired by file name).
Prints per dump and kind the merged AP before → after, the re-run checks alone for their own kinds, false flags
per 100 untouched boxes, and the mean and the worst dump. ``--baseline`` adds the naive baseline; ``--known``
(``benchmarks/known/<dataset>.csv``) adds the merged and baseline AP with the dataset's own real errors set
aside; ``--show`` lists the untouched boxes that outrank a kind's planted ones after the swap, with how many of
them each check scores above the kind's median planted box; ``--sheet DIR`` draws those untouched boxes on the
UNMODIFIED dataset (``--datasets``), to judge by eye whether they are the dataset's own errors. Without ``--new``
it scores ``--full`` as it is (the diagnosis of a full run).
"""

from __future__ import annotations

import argparse
import csv
import pickle
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import label_noise as ln  # noqa: E402

from curate.core.findings import NOTE_CHECKS, Finding  # noqa: E402
from planted_noise import PlantedTruth  # noqa: E402

Key = tuple[str, int]
FALSE_FLAGS = "false flags /100"
KNOWN_ASIDE = ", known aside"


@dataclass
class Dump:
    """A ``label_noise.py --dump`` pickle: each train box's (class, xyxy, planted type), its findings, the baseline."""

    boxes: dict[Key, tuple[int, tuple, str | None]]
    findings: list[Finding]
    baseline: dict[Key, float]

    @property
    def keys(self) -> list[Key]:
        return list(self.boxes)

    @property
    def truth(self) -> PlantedTruth:
        truth = PlantedTruth(boxes={k: t for k, (_, _, t) in self.boxes.items() if t is not None})
        truth.counts = {t: sum(v == t for v in truth.boxes.values()) for t in set(truth.boxes.values())}
        return truth


def load_dump(path: Path) -> Dump:
    dump = pickle.loads(Path(path).read_bytes())
    return Dump(dump["boxes"], [Finding.from_row(r) for r in dump["findings"]], dump["baseline"])


def replace_checks(full: Dump, new: Dump, checks: set[str], name: str = "") -> list[Finding]:
    """``full``'s findings with the rows of ``checks`` swapped for ``new``'s: only valid for the same planted boxes."""
    if set(new.boxes) != set(full.boxes):
        raise SystemExit(f"{name}: the two dumps hold different boxes (not the same dataset, seed and rate)")
    return [f for f in full.findings if f.check not in checks] + [f for f in new.findings if f.check in checks]


def known_in_dump(dataset_dir: Path, csv: Path, dump: Dump) -> set[Key]:
    """The dump's keys of the known real errors of any kind (``--known`` CSV of the unmodified dataset), matched on
    image, class and coordinates as :func:`label_noise.known_keys` does (a planted box may renumber a file's lines);
    every kind is scored with all of them set aside, as label_noise.py's merged ``any_known`` is."""
    known = set().union(*ln.load_known(csv).values())
    where = {(rel, cls, tuple(np.round(xyxy, 9))): (rel, line) for (rel, line), (cls, xyxy, _) in dump.boxes.items()}
    out = set()
    for rec in ln.load_dataset(dataset_dir).split("train"):
        for lab in rec.labels:
            if (rec.rel, lab.line) in known:
                hit = where.get((rec.rel, lab.class_id, tuple(np.round(lab.xyxy, 9))))
                if hit is not None:
                    out.add(hit)
    return out


def measure(dump: Dump, findings: list[Finding], known: set[Key] | None = None) -> dict[str, float]:
    """Per planted kind ``merged``, ``alone`` (its own check) and ``baseline`` AP (``, known aside`` with ``known``
    set aside), and ``false flags /100`` (merged ≥ 0.5 on untouched boxes)."""
    keys, truth = dump.keys, dump.truth
    per_check = ln.box_scores(findings)
    merged = ln.merged_scores(per_check)
    out: dict[str, float] = {}
    for kind in ln.BOX_TYPES:
        if not truth.counts.get(kind):
            continue
        out[f"merged {kind}"] = ln.rank_metrics(keys, truth, kind, merged)["ap"]
        out[f"alone {kind}"] = ln.rank_metrics(keys, truth, kind, per_check.get(ln.TYPE_TO_CHECK[kind], {}))["ap"]
        out[f"baseline {kind}"] = ln.rank_metrics(keys, truth, kind, dump.baseline)["ap"]
        if known:
            aside = f"{kind}{KNOWN_ASIDE}"
            out[f"merged {aside}"] = ln.rank_metrics(keys, truth, kind, merged, exclude=known)["ap"]
            out[f"baseline {aside}"] = ln.rank_metrics(keys, truth, kind, dump.baseline, exclude=known)["ap"]
    untouched = [k for k in keys if truth.truth(*k) is None]
    out[FALSE_FLAGS] = 100.0 * sum(merged.get(k, 0.0) >= ln.FLAG_SCORE for k in untouched) / len(untouched)
    return out


def columns(kinds: list[str], alone: list[str], baseline: bool, known: bool) -> list[str]:
    """The table's columns: merged per kind, the re-run checks alone for their kinds, then what was asked for."""
    cols = [f"merged {k}" for k in kinds] + [f"alone {k}" for k in kinds if k in alone]
    if baseline:
        cols += [f"baseline {k}" for k in kinds]
    if known:
        cols += [f"merged {k}{KNOWN_ASIDE}" for k in kinds] + [f"baseline {k}{KNOWN_ASIDE}" for k in kinds] * baseline
    return cols + [FALSE_FLAGS]


def table(
    before: dict[str, dict[str, float]],
    after: dict[str, dict[str, float]] | None,
    cols: list[str],
    digits: int = 2,
) -> str:
    """Markdown: one row per dump, ``before → after`` per column (one value for the baseline, which the swap does
    not move, and for all without ``after``), then the mean and the worst (lowest AP, most false flags)."""
    after = after or before
    lines = ["| dataset | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]

    def cell(col: str, b: float | None, a: float | None) -> str:
        if b is None or np.isnan(b):
            return "—"
        if col.startswith("baseline") or after is before:
            return f"{a:.{digits}f}"
        return f"{b:.{digits}f} → {a:.{digits}f}"

    for name in before:
        lines.append(f"| {name} | " + " | ".join(cell(c, before[name].get(c), after[name].get(c)) for c in cols) + " |")
    for label in ("mean", "worst"):
        cells = []
        for c in cols:
            pairs = [(before[n][c], after[n][c]) for n in before if c in before[n] and not np.isnan(before[n][c])]
            if not pairs:
                cells.append("—")
                continue
            b, a = np.array(pairs).T
            pick = np.mean if label == "mean" else np.max if c == FALSE_FLAGS else np.min
            cells.append(cell(c, pick(b), pick(a)))
        lines.append(f"| **{label}** | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def outranking(dump: Dump, findings: list[Finding], kind: str, known: set[Key] | None = None) -> list[tuple]:
    """Untouched boxes whose merged score is at least the lowest planted box of ``kind``'s: (score, check, key,
    message), best first. Each one costs the merged AP."""
    merged = ln.merged_scores(ln.box_scores(findings))
    planted = [merged.get(k, 0.0) for k, (_, _, t) in dump.boxes.items() if t == kind]
    if not planted:
        return []
    floor = min(planted)
    best: dict[Key, tuple[float, str, str]] = {}
    for f in findings:
        if f.split != "train" or f.line is None or f.check in NOTE_CHECKS:
            continue
        key = (f.image, f.line)
        if key not in best or f.score > best[key][0]:
            best[key] = (f.score, f.check, f.message)
    out = []
    for key, (_, _, t) in dump.boxes.items():
        if t is None and key in best and merged[key] >= floor:
            s, check, msg = best[key]
            out.append((s, check, key, msg + (" [known real error]" if known and key in known else "")))
    return sorted(out, key=lambda r: -r[0])


def show(name: str, dump: Dump, findings: list[Finding], kind: str, known: set[Key] | None, top: int) -> str:
    """The listing of :func:`outranking` for one dump and kind, headed by the planted boxes' lowest merged scores."""
    merged = ln.merged_scores(ln.box_scores(findings))
    planted = sorted(merged.get(k, 0.0) for k, (_, _, t) in dump.boxes.items() if t == kind)
    rows = outranking(dump, findings, kind, known)
    median = float(np.median(planted)) if planted else 0.0
    by_check = Counter(check for s, check, _, _ in rows if s > median)  # s: the box's merged score
    lines = [
        f"\n{name} {kind}: {len(planted)} planted, merged scores {[round(s, 3) for s in planted[:8]]} ...;"
        f" {len(rows)} untouched at or above the lowest, above the median ({median:.3f}) by check: {dict(by_check)}"
    ]
    for s, check, key, msg in rows[:top]:
        lines.append(f"  {s:.3f} {check:18s} {key[0].split('/')[-1][:40]}:{key[1]} {msg[:110]}")
    return "\n".join(lines)


def reliability(dump: Dump, findings: list[Finding], low: float, high: float) -> dict[str, tuple[int, int, float]]:
    """Per box check with a planted kind of its own: of the train boxes it scores in [``low``, ``high``) that are
    untouched or planted of its kind, (how many are planted, how many in all, their mean score).

    Why: a score is read as P(error). Against planted errors (3 % per kind, the calibration's prior 2 %) a
    calibrated score s should find about 1.5 × s of such boxes planted; a check whose boxes are planted less often
    than another's at the same score outranks the other kind's errors with right boxes in the merged list."""
    per_check = ln.box_scores(findings)
    out = {}
    for kind in ln.BOX_TYPES:
        check = ln.TYPE_TO_CHECK[kind]
        if check not in per_check:
            continue
        scores = per_check[check]
        hits = [
            (t == kind, scores.get(k, 0.0))
            for k, (_, _, t) in dump.boxes.items()
            if t in (None, kind) and low <= scores.get(k, 0.0) < high
        ]
        if hits:
            out[check] = (sum(h for h, _ in hits), len(hits), float(np.mean([s for _, s in hits])))
    return out


def sheet(
    name: str, dump: Dump, findings: list[Finding], kinds: list[str], dataset_dir: Path, out: Path, top: int
) -> Path:
    """The untouched boxes that outrank any of ``kinds``' planted boxes (:func:`outranking`), best first, drawn on
    the UNMODIFIED dataset as ``contact_sheet.py`` draws (the box red, its image's other boxes green):
    ``<name>-outrank.png`` and a CSV with each box's image and line there, check, score and message.

    Why the unmodified data: whether an untouched box is a real error of the dataset (then ``benchmarks/known/``)
    or a right box its check overrates (then a calibration to fix) is judged on the data as the user has it; its
    line there may differ from the noisy copy's (a planted group or deletion renumbers a file), so it is matched on
    image, class and coordinates as :func:`known_in_dump` does."""
    import contact_sheet as cs
    import cv2

    dataset = ln.load_dataset(dataset_dir)
    clean = {
        (rec.rel, lab.class_id, tuple(np.round(lab.xyxy, 9))): (rec, lab)
        for rec in dataset.split("train")
        for lab in rec.labels
    }
    best: dict[Key, tuple] = {}
    for kind in kinds:
        for score, check, key, msg in outranking(dump, findings, kind):
            best[key] = max(best.get(key, (score, check, key, msg)), (score, check, key, msg))
    tiles, rows = [], []
    for score, check, key, msg in sorted(best.values(), key=lambda r: -r[0]):
        cls, xyxy, _ = dump.boxes[key]
        hit = clean.get((key[0], cls, tuple(np.round(xyxy, 9))))
        if hit is None or len(rows) >= top:
            continue
        rec, lab = hit
        k = next(i for i, other in enumerate(rec.labels) if other.line == lab.line)
        caption = [f"#{len(rows) + 1} {check} {score:.2f}", f"L{lab.line} {Path(rec.rel).name[:22]}"]
        tiles.append(cs.tile(rec.path, [(o.cx, o.cy, o.w, o.h) for o in rec.labels], k, caption, min_view=0.15))
        row = {"rank": len(rows) + 1, "image": rec.rel, "line": lab.line, "class": dataset.class_name(cls)}
        rows.append({**row, "check": check, "score": f"{score:.4f}", "message": msg})
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{name}-outrank"
    if tiles:
        tiles += [np.full_like(tiles[0], 255)] * (-len(tiles) % cs.PER_ROW)
        grid = [np.hstack(tiles[i : i + cs.PER_ROW]) for i in range(0, len(tiles), cs.PER_ROW)]
        cv2.imwrite(str(stem.with_suffix(".png")), np.vstack(grid))
    with stem.with_suffix(".csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["rank", "image", "line", "class", "check", "score", "message"])
        writer.writeheader()
        writer.writerows(rows)
    return stem.with_suffix(".csv")


def pairs(full: Path, new: Path | None) -> list[tuple[Path, Path | None]]:
    """(full dump, new dump or None) per dump: one file each, or the folders' dumps paired by name."""
    if full.is_file():
        return [(full, new)]
    out = []
    for path in sorted((new or full).glob("*-seed*.pkl")):
        if not (full / path.name).exists():
            print(f"skipped {path.name}: not in {full}", file=sys.stderr)
            continue
        out.append((full / path.name, path if new else None))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", type=Path, required=True, help="label_noise.py --dump pickle or folder (all checks)")
    parser.add_argument("--new", type=Path, default=None, help="the same for a re-run of --checks (same seeds)")
    parser.add_argument("--checks", "--check", nargs="+", default=["class_inconsistent"], help="checks to replace")
    parser.add_argument("--kinds", nargs="+", default=list(ln.BOX_TYPES), choices=ln.BOX_TYPES)
    parser.add_argument("--baseline", action="store_true", help="add the naive baseline's AP")
    parser.add_argument("--known", type=Path, default=None, help="folder of <dataset>.csv known real errors")
    parser.add_argument("--datasets", type=Path, default=None, help="folder of the unmodified datasets (--known)")
    parser.add_argument("--show", nargs="*", default=[], choices=ln.BOX_TYPES, help="kinds whose outranking to list")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--sheet", type=Path, default=None, help="draw --show's boxes on the unmodified data here")
    parser.add_argument(
        "--reliability",
        nargs=2,
        type=float,
        default=None,
        metavar=("LOW", "HIGH"),
        help="per check, the share of its boxes scored in [LOW, HIGH) that are planted errors of its kind",
    )
    parser.add_argument("--digits", type=int, default=2)
    args = parser.parse_args(argv)
    if (args.known or args.sheet) and not args.datasets:
        parser.error("--known and --sheet need --datasets (the unmodified datasets the CSVs' lines refer to)")
    if args.sheet and not args.show:
        parser.error("--sheet draws the boxes of --show KIND ...: name the kinds")
    if args.new and args.full.is_file() != args.new.is_file():
        parser.error("--full and --new must both be a dump or both a folder of dumps")
    before: dict[str, dict[str, float]] = {}
    after: dict[str, dict[str, float]] = {}
    listings = []
    dumps = pairs(args.full, args.new)
    if not dumps:
        parser.error(f"no label_noise.py --dump pickles (*-seed*.pkl) at {args.new or args.full}")
    for full_path, new_path in dumps:
        name = full_path.stem
        full = load_dump(full_path)
        csv = args.known / f"{name.rsplit('-seed', 1)[0]}.csv" if args.known else None
        known = known_in_dump(args.datasets / csv.stem, csv, full) if csv and csv.exists() else None
        findings = replace_checks(full, load_dump(new_path), set(args.checks), name) if new_path else full.findings
        before[name] = measure(full, full.findings, known)
        after[name] = measure(full, findings, known)
        listings += [show(name, full, findings, kind, known, args.top) for kind in args.show]
        if args.reliability:
            shares = reliability(full, findings, *args.reliability)
            cells = [f"{c} {p}/{n} = {p / n:.2f} (mean score {m:.2f})" for c, (p, n, m) in shares.items()]
            listings.append(f"{name} planted share at {args.reliability}: " + "; ".join(cells))
        if args.sheet:
            dataset_dir = args.datasets / name.rsplit("-seed", 1)[0]
            listings.append(f"wrote {sheet(name, full, findings, args.show, dataset_dir, args.sheet, args.top)}")
    alone = [k for k in args.kinds if ln.TYPE_TO_CHECK[k] in args.checks] if args.new else args.kinds
    cols = columns(args.kinds, alone, args.baseline, any(KNOWN_ASIDE in c for m in before.values() for c in m))
    print(table(before, after if args.new else None, cols, args.digits))
    print("\n".join(listings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
