"""benchmarks/rerank_seeds.py: a check's re-runs spliced into the full dumps of several seeds, averaged per dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rerank
import rerank_seeds
from label_noise import dump_seed
from test_rerank import _dataset  # the same toy dataset of 30 images, 5 boxes each

from curate.core.findings import Finding
from planted_noise import plant_errors


def test_each_seed_is_spliced_into_its_own_full_dump_and_the_seeds_averaged(tmp_path: Path) -> None:
    """Seed 0's re-run finds every swap, seed 1's none: the average is the mean of the two splices, each scored
    against its own seed's full dump (a re-run paired with another seed's dump would hold other boxes)."""
    for seed, found in ((0, True), (1, False)):
        noisy, truth = plant_errors(_dataset(), rate=0.05, types=("swapped",), seed=seed)
        keys = [(r.rel, lb.line) for r in noisy.split("train") for lb in r.labels]
        swaps = [k for k in keys if truth.truth(*k) == "swapped"]
        rows = [Finding("train", rel, "class_inconsistent", 0.9 if found else 0.0, "x", line=ln) for rel, ln in swaps]
        dump_seed(tmp_path / f"full-s{seed}" / f"toy-seed{seed}.pkl", noisy, truth, [])
        dump_seed(tmp_path / "new" / f"toy-seed{seed}.pkl", noisy, truth, rows)
    full = [tmp_path / "full-s0", tmp_path / "full-s1"]
    mean = rerank_seeds.averaged(full, [tmp_path / "new"], {"class_inconsistent"})["toy"]
    one = [
        rerank.measure(
            d, rerank.replace_checks(d, rerank.load_dump(tmp_path / "new" / f"toy-seed{s}.pkl"), {"class_inconsistent"})
        )
        for s, d in ((s, rerank.load_dump(tmp_path / f"full-s{s}" / f"toy-seed{s}.pkl")) for s in (0, 1))
    ]
    assert one[0]["alone swapped"] == 1.0 > one[1]["alone swapped"]
    assert np.isclose(mean["alone swapped"], (one[0]["alone swapped"] + one[1]["alone swapped"]) / 2)
