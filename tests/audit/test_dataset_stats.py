"""Dataset-level notes on a tiny hand-built dataset with known imbalance and background share."""

from pathlib import Path

from curate.audit.checks import dataset_stats
from curate.audit.checks.base import AuditContext
from curate.core.dataset import Dataset, ImageRecord, Label


def _ds() -> Dataset:
    lab = lambda c: Label(c, 0.5, 0.5, 0.1, 0.1, 1)  # noqa: E731
    imgs = [ImageRecord("train", Path(f"/x/t{i}.jpg"), f"train/t{i}.jpg", labels=[lab(0)] * 2) for i in range(20)]
    imgs += [ImageRecord("train", Path("/x/r.jpg"), "train/r.jpg", labels=[lab(1)])]
    imgs += [ImageRecord("train", Path("/x/crowd.jpg"), "train/crowd.jpg", labels=[lab(0)] * 40)]
    imgs += [
        ImageRecord("val", Path(f"/x/v{i}.jpg"), f"val/v{i}.jpg", labels=[lab(0)] if i < 5 else []) for i in range(10)
    ]
    return Dataset(Path("/x"), "t", ["common", "rare"], imgs)


def test_notes():
    f = [x for x in dataset_stats.run(AuditContext(_ds())) if x.score >= 0.5]
    msgs = " | ".join(x.message for x in f)
    assert "'rare' is absent from val" in msgs
    assert "50% of val images are background" in msgs
    assert any(x.image == "train/crowd.jpg" and "40 boxes" in x.message for x in f) and not any(
        x.image == "train/t0.jpg" for x in f
    )
