"""benchmarks/rerank.py: one check's rows of a full label-noise dump replaced by another run's, scored again."""

from __future__ import annotations

from pathlib import Path

import rerank
from label_noise import dump_seed

from curate.core.dataset import Dataset, ImageRecord, Label
from curate.core.findings import Finding
from planted_noise import plant_errors


def _dataset() -> Dataset:
    images = []
    for i in range(30):
        labels = [Label((i + k) % 3, 0.1 + 0.15 * k, 0.5, 0.1, 0.12, line=k + 1) for k in range(5)]
        images.append(ImageRecord("train", Path(f"/nowhere/{i}.jpg"), f"train/images/{i}.jpg", None, labels))
    return Dataset(root=Path("/nowhere"), name="toy", names=["a", "b", "c"], images=images)


def test_the_changed_checks_rows_replace_its_old_ones_and_move_the_merged_list(tmp_path: Path) -> None:
    """The full run's `class_inconsistent` put an untouched box at 1.0, above every planted duplicate (0.9); the
    new run scores the planted swaps instead. Scored again with the new rows: the merged duplicate AP rises to 1,
    `class_inconsistent` alone finds the swaps, the other check's rows are kept, and the table says before → after."""
    noisy, truth = plant_errors(_dataset(), rate=0.05, types=("swapped", "duplicate"), seed=0)
    keys = [(r.rel, lb.line) for r in noisy.split("train") for lb in r.labels]
    untouched = next(k for k in keys if truth.truth(*k) is None)
    copies = [k for k in keys if truth.truth(*k) == "duplicate"]
    swaps = [k for k in keys if truth.truth(*k) == "swapped"]
    full = [Finding("train", rel, "duplicate", 0.9, "", line=line) for rel, line in copies]
    full.append(Finding("train", untouched[0], "class_inconsistent", 1.0, "", line=untouched[1]))
    new = [Finding("train", rel, "class_inconsistent", 0.95, "", line=line) for rel, line in swaps]
    dump_seed(tmp_path / "full" / "toy-seed0.pkl", noisy, truth, full)
    dump_seed(tmp_path / "new" / "toy-seed0.pkl", noisy, truth, new)

    keys_, truth_, findings = rerank.load_dump(tmp_path / "full" / "toy-seed0.pkl")
    _, _, new_rows = rerank.load_dump(tmp_path / "new" / "toy-seed0.pkl")
    before = rerank.measure(keys_, truth_, findings)
    after = rerank.measure(keys_, truth_, rerank.replace_check(findings, new_rows, "class_inconsistent"))
    assert before["merged duplicate"] < 1.0 and after["merged duplicate"] == 1.0
    assert after["alone swapped"] == 1.0 > before["alone swapped"]
    assert after["false flags /100"] < before["false flags /100"]

    table = rerank.table({"toy": before}, {"toy": after})
    assert "| toy | " in table and "**worst**" in table
    assert f"{before['merged duplicate']:.2f} → 1.00" in table
