"""What one training returns, the loss-plateau rule and the one error type (what a comparison is run with is
:class:`curate.train.options.TrainOptions`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

LOSSES = ("box_loss", "cls_loss", "dfl_loss")
#: Manifests other curate commands leave in the folders they write: "what changed".
MANIFESTS = ("changes.csv", "CHANGES.md", "rebalance.json", "backgrounds.json")


class CompareError(Exception):
    """Bad input for a comparison (no test split, no shared classes…): shown as one line."""


#: A loss flat (less than PLATEAU_TOL relative change) for PLATEAU_EPOCHS epochs is a plateau (a note in the run).
PLATEAU_EPOCHS = 5
PLATEAU_TOL = 0.01


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
