"""Audit checks: one module per check, each ``NAME`` plus ``run(ctx) -> list[Finding]``.

A check returns a finding for every item it scored (every box, image or region it looked at), with a
score in [0, 1] (higher = more likely a real problem). The audit keeps those at or above the check's
threshold for findings.csv and writes all of them with ``--all-scores``. The registry below maps names to
modules so the CLI, the config and the report share one list. A module that emits several check names
(``image_checks`` → corrupt_image, exif_rotated) lists them in ``NAMES``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from curate.checks.base import AuditContext
from curate.findings import Finding

#: Check modules in the order they run (cheap geometry first, pixels later). Module name → curate.checks.<name>.
CHECK_MODULES: tuple[str, ...] = (
    "image_checks",  # corrupt_image, exif_rotated
    "near_duplicate",  # near_duplicate, leakage
    "dataset_stats",  # dataset
    "duplicate",
    "ambiguous",
    "grouped",
    "background_heavy",
    "shifted",
    "missing",
    "class_inconsistent",
    "objectlab",
)


def load_module(name: str) -> ModuleType | None:
    """The check module, or None while it is not built yet (so the audit runs whatever exists)."""
    try:
        return importlib.import_module(f"curate.checks.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"curate.checks.{name}":
            return None
        raise


def check_names(module: ModuleType) -> tuple[str, ...]:
    return tuple(getattr(module, "NAMES", (module.NAME,)))


def available() -> dict[str, ModuleType]:
    """Module name → module, for the modules that exist."""
    return {name: mod for name in CHECK_MODULES if (mod := load_module(name)) is not None}


def run_checks(ctx: AuditContext, *, only: set[str] | None = None) -> list[Finding]:
    """Run every available check (or those whose names are in ``only``) and return all their scores."""
    out: list[Finding] = []
    for mod in available().values():
        if only is not None and not (set(check_names(mod)) & only):
            continue
        out.extend(mod.run(ctx))
    return out
