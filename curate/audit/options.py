"""``curate audit``'s options: one model for the command line, the recipe's ``audit:`` stage and the runner."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

from pydantic import Field, field_validator

from curate.core.options import Options, deep_merge

if TYPE_CHECKING:
    from curate.audit.runner import AuditResult
    from curate.core.dataset import Dataset


class AuditOptions(Options):
    """What to check and how; ``options`` is the inline form of ``config``'s ``checks:`` mapping (recipes only)."""

    fast: bool = Field(False, description="No pixel work beyond hashing: geometry and image-level checks only.")
    all_scores: bool = Field(False, description="Also write every scored box/image to all_scores.csv.")
    model: Optional[str] = Field(
        None, description="A trained YOLO .pt: its predictions feed cleanlab's ObjectLab check."
    )
    checks: Union[str, list[str], None] = Field(None, description="Run only these checks (comma-separated names).")
    fiftyone: bool = Field(True, description="Tag findings in FiftyOne and save views.")
    cache: bool = Field(True, description="Reuse cached check results when nothing changed.")
    config: Optional[str] = Field(None, description="YAML of per-check options: checks: {grouped: {threshold: 0.6}}.")
    options: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("checks")
    @classmethod
    def _known_names(cls, v: Union[str, list[str], None]) -> Union[str, list[str], None]:
        from curate.audit.checks import all_check_names
        from curate.audit.config import unknown_check

        known = set(all_check_names())
        for c in sorted(_names(v) - known):
            raise ValueError(unknown_check(c, known))
        return v

    @field_validator("options")
    @classmethod
    def _known_checks(cls, v: dict) -> dict:
        from curate.audit.config import ConfigError, validate_params

        try:
            return validate_params(v, where="options")
        except ConfigError as exc:
            raise ValueError(str(exc).removeprefix("options: ")) from None

    @property
    def only(self) -> set[str] | None:
        """The checks to run (None: all)."""
        return _names(self.checks) if self.checks else None

    def params(self) -> dict[str, dict[str, Any]]:
        """Each check's options: ``config``'s file, then ``options`` on top (raises ConfigError)."""
        from curate.audit.config import load_config

        return deep_merge(load_config(Path(self.config) if self.config else None), self.options)

    def run(self, dataset: Dataset, *, params: dict[str, dict[str, Any]], **hooks: Any) -> AuditResult:
        """The audit of ``dataset`` with these options: the one place they become
        :func:`curate.audit.runner.run_audit`'s arguments (``hooks``: its output folder and callbacks)."""
        from curate.audit.runner import run_audit

        return run_audit(
            dataset,
            params=params,
            fast=self.fast,
            model=self.model,
            all_scores=self.all_scores,
            only=self.only,
            fiftyone=self.fiftyone,
            use_cache=self.cache,
            **hooks,
        )


def _names(checks: Union[str, list[str], None]) -> set[str]:
    """``"a, b"`` or ``[a, b]`` → ``{"a", "b"}``."""
    if not checks:
        return set()
    return set(checks) if isinstance(checks, list) else {c.strip() for c in checks.split(",") if c.strip()}
