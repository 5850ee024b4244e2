"""benchmarks/swap_noise.py replay and compare: the check re-run on each run's saved tree probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rerank
import swap_noise
from label_noise import dump_seed, load_dataset

from curate.core.findings import Finding
from planted_noise import plant_errors


def _on_disk(root: Path, make_yolo_tree) -> Path:
    images = {
        f"train/{i}.jpg": [f"{(i + k) % 3} {0.1 + 0.15 * k:.2f} 0.5 0.1 0.12" for k in range(5)] for i in range(30)
    }
    return make_yolo_tree(root / "toy", images, names=["a", "b", "c"])


def test_replay_gives_the_runs_own_findings_back_and_compare_reads_them(tmp_path: Path, make_yolo_tree, capsys):
    """Unchanged code replayed on the saved trees is the run itself, run by run; compare splices both into the full
    dump and prints each dataset's mean before → after (here equal)."""
    source = _on_disk(tmp_path, make_yolo_tree)
    out = tmp_path / "sn"
    swap_noise.run(source, 0, 2, out, 0.05)
    swap_noise.replay(source, 0, out, 0.05, "again")
    for r in range(2):
        a = rerank.load_dump(out / f"run{r}" / "toy-seed0.pkl")
        b = rerank.load_dump(out / f"again{r}" / "toy-seed0.pkl")
        assert [(f.image, f.line, f.score) for f in a.findings] == [(f.image, f.line, f.score) for f in b.findings]
    noisy, truth = plant_errors(load_dataset(source), rate=0.05, types=tuple(swap_noise.NOISE_TYPES), seed=0)
    keys = [(r.rel, lb.line) for r in noisy.split("train") for lb in r.labels]
    full = [Finding("train", rel, "shifted", 0.1, "shifted here", line=line) for rel, line in keys]
    dump_seed(tmp_path / "full" / "toy-seed0.pkl", noisy, truth, full)
    capsys.readouterr()
    swap_noise.compare([out], [tmp_path / "full"], "again")
    table = capsys.readouterr().out
    row = next(line for line in table.splitlines() if line.startswith("| toy |"))
    cells = [c.strip() for c in row.strip("|").split("|")[1:]]
    pairs = [c.split(" → ") for c in cells if "→" in c]
    assert pairs and all(b == a for b, a in pairs)
    assert "**worst**" in table and np.isfinite(float(pairs[0][0]))
