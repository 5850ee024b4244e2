"""What every check receives: the dataset plus shared, cached access to pixels and options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from curate.core import defaults
from curate.core.dataset import Dataset


@dataclass
class AuditContext:
    """Inputs shared by all checks of one audit run.

    ``params`` holds per-check options from ``--config`` (``params["grouped"]["threshold"]`` …);
    ``fast`` means no pixel work beyond hashing (``curate audit --fast``); ``model`` is a user's YOLO
    weights path for the ObjectLab check. ``shared`` lets checks reuse each other's expensive results
    within a run (image hashes, crop features) without importing each other. ``finishing`` is set by a
    runner that calls each module's ``finish(ctx, findings)`` after the last check
    (:func:`curate.audit.runner.score_dataset`): only then may a check leave work running in the background for it.
    """

    dataset: Dataset
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    fast: bool = False
    model: str | None = None
    seed: int = defaults.SEED
    shared: dict[str, Any] = field(default_factory=dict)
    finishing: bool = False
    skipped: dict[str, str] = field(default_factory=dict)  # check name -> why it did not run (e.g. "--fast")

    def threshold(self, check: str) -> float:
        return float(self.params.get(check, {}).get("threshold", defaults.THRESHOLDS.get(check, 0.5)))

    def param(self, check: str, key: str, default: Any) -> Any:
        return self.params.get(check, {}).get(key, default)
