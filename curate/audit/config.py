"""Each check's options as a user writes them (``--config`` YAML, a recipe's ``options``), checked against what
the check declares (:attr:`Check.options <curate.audit.checks.base.Check.options>`), so a misspelt option is a
one-line error with a "did you mean" instead of a setting silently ignored."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml

from curate.audit.checks import all_check_names, by_name
from curate.core import defaults


class ConfigError(ValueError):
    """A bad --config: one line naming the key."""


def unknown_check(name: object, known: set[str]) -> str:
    """``unknown check 'grupd'; did you mean 'grouped'?``"""
    hint = difflib.get_close_matches(str(name), sorted(known), n=1)
    return f"unknown check {name!r}" + (f"; did you mean {hint[0]!r}?" if hint else "")


def load_config(path: Path | None) -> dict[str, dict[str, Any]]:
    """Read ``--config`` YAML: ``checks: {<check>: {threshold: 0.6, <option>: …}}``.

    Unknown check names and thresholds outside [0, 1] are one-line errors with a "did you mean".
    """
    if path is None:
        return {}
    try:
        cfg = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: unreadable config ({str(exc).splitlines()[0]})") from None
    if not isinstance(cfg, dict) or set(cfg) - {"checks"}:
        extra = sorted(set(cfg) - {"checks"}) if isinstance(cfg, dict) else ["(not a mapping)"]
        raise ConfigError(f"{path}: unknown top-level key {extra[0]!r}; expected 'checks'")
    return validate_params(cfg.get("checks") or {}, where=str(path))


def validate_params(checks: dict[str, Any], *, where: str = "config") -> dict[str, dict[str, Any]]:
    """Each check's options against what it declares (:attr:`Check.options`, plus ``threshold``): an unknown
    check or option, or a value of the wrong kind, is one :class:`ConfigError` line naming it."""
    known = set(defaults.THRESHOLDS) | set(all_check_names())
    declared = by_name()
    out: dict[str, dict[str, Any]] = {}
    for name, opts in checks.items():
        if name not in known:
            raise ConfigError(f"{where}: {unknown_check(name, known)}")
        if not isinstance(opts, dict):
            raise ConfigError(f"{where}: checks.{name} must be a mapping like {{threshold: 0.5}}")
        t = opts.get("threshold")
        if t is not None and not (isinstance(t, (int, float)) and 0.0 <= float(t) <= 1.0):
            raise ConfigError(f"{where}: 'checks.{name}.threshold={t}' is an invalid value. Valid values are 0.0–1.0")
        options = declared[name].options if name in declared else {}
        for key, value in opts.items():
            if key == "threshold":
                continue
            if key not in options:
                hint = difflib.get_close_matches(str(key), sorted(options), n=1)
                raise ConfigError(
                    f"{where}: check {name!r} has no option {key!r}"
                    + (
                        f"; did you mean {hint[0]!r}?"
                        if hint
                        else f" (it has: {', '.join(sorted(options)) or 'threshold only'})"
                    )
                )
            default = options[key]
            allowed = declared[name].choices.get(key)
            if allowed is not None:
                ok = any(value is c if isinstance(c, bool) else value == c for c in allowed)
                expected = "one of " + ", ".join(str(c).lower() if isinstance(c, bool) else str(c) for c in allowed)
            else:
                ok = (
                    isinstance(value, bool)
                    if isinstance(default, bool)
                    else (
                        isinstance(value, (int, float)) and not isinstance(value, bool)
                        if isinstance(default, (int, float))
                        else True
                    )
                )
                expected = f"a {type(default).__name__} like {default!r}"
            if not ok:
                raise ConfigError(f"{where}: 'checks.{name}.{key}={value}' is an invalid value; expected {expected}")
        out[str(name)] = dict(opts)
    return out
