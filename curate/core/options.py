"""The base of every command's options model, and the one-line message of a bad value.

Why one pydantic model per command: the command line (:mod:`curate.app.cli_options`), a ``curate run`` recipe
(:mod:`curate.app.recipe`) and the library read the same model, so a default, a bound and a help text are
written once, and a bad value gets the same message whether it came from ``--epochs 0`` or from ``epochs: 0``
in a recipe. Each model lives next to the job it configures, in a module that imports nothing heavy: the
command line imports them all to build its options.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Options(BaseModel):
    """A command's options: unknown names are errors (a typo must not silently fall back to a default)."""

    model_config = ConfigDict(extra="forbid")


def problem(error: dict[str, Any]) -> str:
    """The message of one pydantic error, with the value given when the message does not already show it."""
    msg = error["msg"].removeprefix("Value error, ")
    value = error.get("input")
    shown = value is None or isinstance(value, dict) or "(got" in msg or (isinstance(value, str) and repr(value) in msg)
    return msg if shown else f"{msg} (got {value!r})"


def deep_merge(base: dict, over: dict) -> dict:
    """``over`` on top of ``base``, mappings merged key by key at every depth (neither is modified)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
