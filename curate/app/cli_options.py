"""A command's typer options built from its options model, and its values checked by building the model.

Why: the default, the bounds and the help text of an option are written once, on the model's field
(:mod:`curate.core.options`), and a bad value is checked by the model, not by click, so ``--epochs 0`` and
``epochs: 0`` in a recipe get the same message naming the same field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from annotated_types import Ge, Le
from pydantic import ValidationError
from rich.markup import escape

from curate.core.options import Options, problem


def option(model: type[Options], name: str, *decls: str, **kw: Any) -> Any:
    """``typer.Option`` for ``model``'s field ``name``: its default (an empty list: none), its description and
    bounds as the help. ``decls`` are the flag names when they are not the field's (``--fast``, ``--x/--no-x``)."""
    field = model.model_fields[name]
    default = field.get_default(call_default_factory=True)
    return typer.Option(
        None if default in ([], {}) else default, *decls, help=(field.description or "") + _bounds(field), **kw
    )


def _bounds(field: Any) -> str:
    """The field's bounds as click shows a range (`` [x>=1]``, escaped from rich's markup); the model enforces them."""
    lo = next((m.ge for m in field.metadata if isinstance(m, Ge)), None)
    hi = next((m.le for m in field.metadata if isinstance(m, Le)), None)
    if lo is None and hi is None:
        return ""
    text = f"{lo}<=x<={hi}" if lo is not None and hi is not None else f"x>={lo}" if hi is None else f"x<={hi}"
    return " " + escape(f"[{text}]")


def build(model: type[Options], flags: dict[str, Any]) -> Options:
    """``model`` from those of a command's ``flags`` named as its fields (None: not given, so the model's default);
    raises ValidationError."""
    values = {k: v for k, v in flags.items() if k in model.model_fields and v is not None}
    return model(**{k: str(v) if isinstance(v, Path) else v for k, v in values.items()})


def flag_error(exc: ValidationError) -> str:
    """The first error as ``--flag: message``, the message a recipe's error gives for the same field."""
    e = exc.errors()[0]
    return f"--{str(e['loc'][0]).replace('_', '-')}: {problem(e)}"
