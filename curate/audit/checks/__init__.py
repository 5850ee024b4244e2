"""Audit checks: one module per check, each ``NAME`` plus ``run(ctx) -> list[Finding]``.

A module may also define ``finish(ctx, findings) -> None``, called after every check has run (on fresh
and cached findings alike): the box checks add foreground masks there that were computed in the
background while the later checks ran (:func:`finish_checks`).

A check returns a finding for every item it scored (every box, image or region it looked at), with a
score in [0, 1] (higher = more likely a real problem). The audit keeps those at or above the check's
threshold for findings.csv and writes all of them with ``--all-scores``. The registry below maps names to
modules so the CLI, the config and the report share one list. A module that emits several check names
(``image_checks`` → corrupt_image, exif_rotated) lists them in ``NAMES``. A module that cannot run in some
audits defines ``skipped(ctx) -> str | None`` (why not, e.g. ``"--fast"``): it is then not run at all, so
the report never calls it clean and an earlier audit's FiftyOne marks of it are kept.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from curate.audit.checks.base import AuditContext
from curate.core.findings import Finding

#: Check modules in the order they run (cheap geometry first, pixels later). Module name → curate.audit.checks.<name>.
#: The audit starts hashing the images in the background first (:func:`image_checks.start_signatures`), so
#: the checks before ``image_checks`` — label geometry only — run while the images are decoded.
CHECK_MODULES: tuple[str, ...] = (
    "dataset_stats",  # dataset
    "duplicate",
    "ambiguous",
    "image_checks",  # corrupt_image, exif_rotated
    "image_quality",  # dark, overexposed, blurry, low_information, odd_size
    "near_duplicate",  # near_duplicate, leakage
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
        return importlib.import_module(f"curate.audit.checks.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"curate.audit.checks.{name}":
            return None
        raise


def check_names(module: ModuleType) -> tuple[str, ...]:
    return tuple(getattr(module, "NAMES", (module.NAME,)))


def skip_reason(module: ModuleType, ctx: AuditContext) -> str | None:
    """Why ``module`` does not run in this audit (its ``skipped(ctx)``), or None when it runs."""
    skipped = getattr(module, "skipped", None)
    return skipped(ctx) if skipped is not None else None


def available() -> dict[str, ModuleType]:
    """Module name → module, for the modules that exist."""
    return {name: mod for name in CHECK_MODULES if (mod := load_module(name)) is not None}


def finish_checks(ctx: AuditContext, ran: dict[ModuleType, list[Finding]]) -> tuple[dict[ModuleType, float], dict[ModuleType, str]]:
    """Call each module's ``finish(ctx, findings)`` after all checks ran: seconds per module that has one,
    and one line per ``finish`` that failed (its findings stand as they are; ``CURATE_DEBUG=1`` re-raises)."""
    import os
    import time

    seconds: dict[ModuleType, float] = {}
    errors: dict[ModuleType, str] = {}
    for mod, found in ran.items():
        if hasattr(mod, "finish"):
            t = time.perf_counter()
            try:
                mod.finish(ctx, found)
            except Exception as exc:  # noqa: BLE001
                if os.environ.get("CURATE_DEBUG"):
                    raise
                errors[mod] = f"{type(exc).__name__}: {exc}"
            seconds[mod] = time.perf_counter() - t
    return seconds, errors
