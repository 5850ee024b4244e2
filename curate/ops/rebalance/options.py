"""Parsing rebalance options: split ratios, class lists, merges; the one error type.

The options model (:class:`curate.ops.options.RebalanceOptions`, one for the command line and recipes) validates
and reads its values with these functions, so an option means one thing everywhere.
"""

from __future__ import annotations

import difflib
from typing import Sequence

from curate.core.dataset import SPLITS


class RebalanceError(ValueError):
    """Bad options (unknown class, bad ratios): one clear line for the user."""


def parse_ratios(text: str) -> tuple[float, ...]:
    """``"80/10/10"`` → ``(0.8, 0.1, 0.1)``; 2 ratios mean train/val, 3 train/val/test; they must sum to 100."""
    parts = [p.strip() for p in text.replace(",", "/").split("/")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise RebalanceError(f"--split {text!r}: expected numbers like 80/10/10") from None
    if len(values) not in (2, 3):
        raise RebalanceError(f"--split {text!r}: give 2 (train/val) or 3 (train/val/test) ratios, got {len(values)}")
    if any(v <= 0 for v in values):
        raise RebalanceError(f"--split {text!r}: every ratio must be above 0")
    if abs(sum(values) - 100) > 1e-6:
        raise RebalanceError(f"--split {text!r}: ratios must sum to 100 (got {sum(values):g})")
    return tuple(v / 100 for v in values)


def split_names(ratios: Sequence[float]) -> tuple[str, ...]:
    return SPLITS[: len(ratios)]


def _unknown(name: str, known: Sequence[str], option: str) -> RebalanceError:
    hint = difflib.get_close_matches(name, list(known), n=1, cutoff=0.5)
    return RebalanceError(f"{option}: unknown class {name!r}" + (f"; did you mean {hint[0]!r}?" if hint else ""))


def parse_merge(items: Sequence[str]) -> dict[str, str]:
    """``["mayonnaise=ketchup", ...]`` → ``{"mayonnaise": "ketchup"}``."""
    out: dict[str, str] = {}
    for item in items:
        src, sep, dst = item.partition("=")
        if not sep or not src.strip() or not dst.strip():
            raise RebalanceError(f"--merge {item!r}: expected SRC=DST (class names)")
        out[src.strip()] = dst.strip()
    return out


def parse_names(text: str | None) -> list[str] | None:
    """``"a, b,c"`` → ``["a", "b", "c"]`` (None stays None)."""
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise RebalanceError("--keep-classes: give at least one class name")
    return names
