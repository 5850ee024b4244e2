"""Audit checks: one module per check, each ``NAME`` plus ``run(ctx) -> list[Finding]``.

A check returns a finding for every item it scored (every box, image or region it looked at), with a
score in [0, 1] (higher = more likely a real problem). The audit keeps those at or above the check's
threshold for findings.csv and writes all of them with ``--all-scores``. The registry below maps names to
modules so the CLI, the config and the report share one list.
"""
