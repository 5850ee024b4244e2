"""Audit checks: one module per check, each with one :class:`~curate.audit.checks.base.Check` subclass.

The registry finds them (:func:`registered`): a new check is one module here plus its test, and nothing
else names it. The contract (names, kind, options, shared computations, ``skipped``/``run``/``finish``)
is written down in :class:`~curate.audit.checks.base.Check`.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

from curate.audit.checks.base import AuditContext, Check
from curate.core.findings import Finding

#: Modules of this package that hold no check.
NOT_CHECKS = frozenset({"base"})


@functools.cache
def registered() -> tuple[Check, ...]:
    """One instance of every check in this package, in the order they run (:attr:`Check.order`)."""
    found: list[Check] = []
    for info in pkgutil.iter_modules(__path__):
        if info.name in NOT_CHECKS or info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        for obj in vars(mod).values():
            if isinstance(obj, type) and issubclass(obj, Check) and obj is not Check and obj.__module__ == mod.__name__:
                found.append(obj())
    return tuple(sorted(found, key=lambda c: (c.order, c.module)))


def all_check_names() -> list[str]:
    """Every check name the built modules emit, plus the reader's ``format``."""
    return ["format", *(n for c in registered() for n in c.names)]


def by_name() -> dict[str, Check]:
    """Check name → the check that emits it (``exif_rotated`` → the image_checks check)."""
    return {n: c for c in registered() for n in c.names}


def finish_checks(ctx: AuditContext, ran: dict[Check, list[Finding]]) -> tuple[dict[Check, float], dict[Check, str]]:
    """Call each check's ``finish(ctx, findings)`` after all checks ran: seconds per check, and one line per
    ``finish`` that failed (its findings stand as they are; ``CURATE_DEBUG=1`` re-raises)."""
    import os
    import time

    seconds: dict[Check, float] = {}
    errors: dict[Check, str] = {}
    for check, found in ran.items():
        if type(check).finish is Check.finish:
            continue
        t = time.perf_counter()
        try:
            check.finish(ctx, found)
        except Exception as exc:  # noqa: BLE001
            if os.environ.get("CURATE_DEBUG"):
                raise
            errors[check] = f"{type(exc).__name__}: {exc}"
        seconds[check] = time.perf_counter() - t
    return seconds, errors
