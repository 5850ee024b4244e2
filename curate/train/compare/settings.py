"""What a comparison is run with and what one training returns; the one error type."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOSSES = ("box_loss", "cls_loss", "dfl_loss")
#: Manifests other curate commands leave in the folders they write: "what changed".
MANIFESTS = ("changes.csv", "CHANGES.md", "rebalance.json", "backgrounds.json")


class CompareError(Exception):
    """Bad input for a comparison (no test split, no shared classes…): shown as one line."""


@dataclass
class TrainSettings:
    """Identical for BEFORE and AFTER; ``extra`` goes through to Ultralytics' ``train()`` untouched."""

    model: str = "yolov8n.yaml"
    epochs: int = 30
    imgsz: int = 640
    batch: int = 16
    seed: int = 0
    seeds: int = 1
    device: str | None = None  # None = auto: CUDA 0 when available, else CPU
    workers: int = 2
    resamples: int = 1000
    plateau_epochs: int = 5  # a loss flat (< plateau_tol relative change) for this many epochs is a plateau
    plateau_tol: float = 0.01
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    """One training run: where it lives and what happened on the way."""

    side: str
    seed: int
    run_dir: Path
    best: Path
    batch: int
    amp: bool
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    epochs_done: int = 0
