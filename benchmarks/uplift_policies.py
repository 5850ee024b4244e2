"""Which cleaning policy should the uplift experiment's (c) use? Measured on labels, before any training.

A training run costs ~15 min on this CPU and its mAP moves by less than its own noise (benchmarks/README.md,
Uplift), so the policy is chosen where the answer is exact and cheap: the cleaned train labels against the
clean ones, box for box (:func:`uplift.label_agreement`). Each policy (:class:`uplift.Policy`: a bar for
applying proposals, and which flagged boxes without a confident proposal are deleted) is applied to the noisy
train labels with the audit's findings (:func:`uplift.cleaned_labels`, the same edits as the FiftyOne deletions
and ``curate export --accept-proposals``), in seconds each.

    python benchmarks/uplift_policies.py reports/bench/uplift-cpu-r05   # needs clean/, noisy/, audit/

It prints the table and writes ``policies.json`` and ``policies.md`` into that folder. The choice: the highest
F1 averaged over IoU 0.5–0.95 (the label counterpart of mAP50-95, the experiment's target metric).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from uplift import DELETE_FIX, Policy, cleaned_labels, label_agreement

#: What each policy deletes when no proposal is confident: every flagged box (the old default), the boxes whose
#: fix is deletion (repair), only the copies, nothing.
DROP_SETS = {
    "every flagged box": None,
    "duplicate, ambiguous, grouped": DELETE_FIX,
    "duplicate, ambiguous": frozenset({"duplicate", "ambiguous"}),
    "nothing": frozenset(),
}
BARS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.9)


def measure(folder: Path, bars=BARS, drop_sets=DROP_SETS) -> list[dict]:
    """One row per policy (and the noisy labels as they are), best first by F1 at IoU 0.5–0.95."""
    from curate.io.yolo import load_yolo

    clean, noisy = load_yolo(folder / "clean"), load_yolo(folder / "noisy")
    findings = json.loads((folder / "audit" / "findings.json").read_text(encoding="utf-8"))["findings"]
    rows = [{"policy": "noisy, as it is", "deletes": "", "bar": None, **label_agreement(clean, noisy)}]
    for deletes, drop in drop_sets.items():
        for bar in bars:
            policy = Policy(bar, drop)
            rows.append(
                {
                    "policy": policy.name,
                    "deletes": deletes,
                    "bar": bar,
                    **label_agreement(clean, cleaned_labels(noisy, findings, policy)),
                }
            )
    return sorted(rows, key=lambda r: -r["f1_50_95"])


def table(rows: list[dict]) -> str:
    lines = [
        "| policy | flagged boxes deleted without a confident proposal | train boxes | clean boxes matched "
        "(same class, IoU ≥ 0.5) | boxes matching none | mean IoU of matched | F1 @0.5 | F1 @0.5–0.95 |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['policy']} | {r['deletes']} | {r['boxes']:,} | {r['matched_share']:.1%} | {r['extra']:,} | "
        f"{r['mean_iou']:.3f} | {r['f1_50']:.3f} | {r['f1_50_95']:.3f} |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    from curate.runtime import env

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path, help="an uplift.py output folder (clean/, noisy/, audit/findings.json)")
    args = ap.parse_args()
    env.configure()
    rows = measure(args.folder)
    md = table(rows)
    (args.folder / "policies.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    (args.folder / "policies.md").write_text(md, encoding="utf-8")
    print(md)


if __name__ == "__main__":
    main()
