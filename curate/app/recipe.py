"""A ``curate run`` recipe: its schema (each stage's options are its command's options model), profiles and
``--set`` overrides, and one-line errors naming the field."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Optional

import yaml
from pydantic import BaseModel, Field, PrivateAttr, ValidationError

from curate.audit.options import AuditOptions
from curate.core.options import Options, deep_merge, problem
from curate.fiftyone.options import ReviewOptions
from curate.ops.options import BackgroundsOptions, RebalanceOptions
from curate.train.options import TrainOptions

STAGES: tuple[str, ...] = ("audit", "review", "export", "rebalance", "backgrounds", "train-and-compare")
DATASET_STAGES = ("export", "rebalance", "backgrounds")  # their output folder is the next stage's input


class PipelineError(ValueError):
    """A bad recipe or an impossible run: one line for the user."""


class ReviewStage(ReviewOptions):
    """``skip: true`` = no pause; export is then the unreviewed dataset (byte-identical labels)."""

    skip: bool = False


class ExportStage(Options):
    """No options: the run exports the review it paused for (``curate export``'s options pick another review, or
    apply proposals with no reviewer: a person's choices at the command line)."""


class Stages(Options):
    audit: Optional[AuditOptions] = None
    review: Optional[ReviewStage] = None
    export: Optional[ExportStage] = None
    rebalance: Optional[RebalanceOptions] = None
    backgrounds: Optional[BackgroundsOptions] = None
    train_and_compare: Optional[TrainOptions] = None


class Recipe(Options):
    name: Optional[str] = None
    description: Optional[str] = None
    stages: Stages
    profiles: dict[str, dict[str, Any]] = Field(default_factory=dict)
    _profile: Optional[str] = PrivateAttr(default=None)  # the --profile it was loaded with

    @property
    def profile(self) -> Optional[str]:
        return self._profile

    def options(self, stage: str) -> Optional[Options]:
        return getattr(self.stages, _norm(stage))

    def active(self) -> list[str]:
        return [s for s in STAGES if self.options(s) is not None]


def _norm(key: Any) -> str:
    return str(key).replace("-", "_")


def _normalize(raw: dict, spelled: dict[str, str], prefix: str = "") -> dict:
    """Dashes → underscores in stage names and option names (not inside ``options``/``extra``/``merge``)."""
    out: dict = {}
    for k, v in raw.items():
        nk = _norm(k)
        spelled[f"{prefix}{nk}"] = str(k)
        out[nk] = v
    return out


def _parse_set(item: str) -> tuple[str, str, Any]:
    """``stage.key=value`` (value read as YAML: 64, true, cpu, [a, b])."""
    if "=" not in item or "." not in item.split("=", 1)[0]:
        raise PipelineError(f"--set {item!r}: expected STAGE.KEY=VALUE, e.g. train-and-compare.epochs=1")
    lhs, value = item.split("=", 1)
    stage, key = lhs.split(".", 1)
    try:
        parsed = yaml.safe_load(value) if value != "" else None
    except yaml.YAMLError:
        parsed = value
    return stage, key, parsed


def _error_line(where: str, exc: ValidationError, spelled: dict[str, str], model: type[BaseModel]) -> str:
    """The first error of ``exc`` as one line naming the key the user wrote, with a "did you mean"."""
    e = exc.errors()[0]
    loc = [str(p) for p in e["loc"] if not str(p).startswith(("str", "int", "list[", "dict[", "literal[", "function-"))]
    norm_loc = ".".join(loc)
    shown = [spelled.get(".".join(loc[: i + 1]), loc[i]) for i in range(len(loc))]
    key = ".".join(shown)
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    if e["type"] == "extra_forbidden":
        known = _fields_at(model, loc[:-1])
        hint = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
        what = "unknown stage" if len(loc) == 2 and loc[0] == "stages" else "unknown option"
        if len(loc) == 2 and loc[0] == "stages":
            hint = [h.replace("_", "-") for h in hint]
            known = [k.replace("_", "-") for k in known]
        tail = f"; did you mean {hint[0]!r}?" if hint else (f"; expected one of {', '.join(known)}" if known else "")
        return f"{where}: {key}: {what}{tail}{more}"
    if e["type"] == "missing":
        return f"{where}: {key}: missing{more}"
    return f"{where}: {key or norm_loc}: {problem(e)}{more}"


def _fields_at(model: type[BaseModel], loc: list[str]) -> list[str]:
    """Field names of the sub-model at ``loc`` (for "did you mean")."""
    m: Any = model
    for part in loc:
        fld = getattr(m, "model_fields", {}).get(part)
        if fld is None:
            return []
        ann = fld.annotation
        sub = [a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not sub:
            return []
        m = sub[0]
    return list(getattr(m, "model_fields", {}))


def load_recipe(path: str | Path, *, profile: str | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Read, merge (profile, then ``--set`` overrides) and validate a recipe; any problem is one line."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PipelineError(f"{path}: cannot read the recipe ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise PipelineError(f"{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    if not isinstance(raw, dict):
        raise PipelineError(f"{path}: a recipe is a mapping with 'stages:' (got {type(raw).__name__})")
    if not isinstance(raw.get("stages"), dict):
        raise PipelineError(f"{path}: stages: missing or not a mapping of stage name → options")
    spelled: dict[str, str] = {}
    stages = {nk: ({} if v is None else v) for nk, v in _normalize(raw["stages"], spelled, "stages.").items()}
    profiles = raw.get("profiles") or {}
    if not isinstance(profiles, dict):
        raise PipelineError(f"{path}: profiles: must be a mapping of profile name → stage overrides")
    where = str(path)
    if profile is not None:
        if profile not in profiles:
            hint = f"; known: {', '.join(map(str, profiles))}" if profiles else "; the recipe has no profiles"
            raise PipelineError(f"{path}: --profile {profile}: no such profile{hint}")
        over = profiles[profile] or {}
        if not isinstance(over, dict):
            raise PipelineError(f"{path}: profiles.{profile}: must be a mapping of stage → options")
        over = {nk: ({} if v is None else v) for nk, v in _normalize(over, spelled, "stages.").items()}
        stages = deep_merge(stages, over)
        where = f"{path} (profile {profile})"
    for item in overrides:
        stage, key, value = _parse_set(item)
        ns = _norm(stage)
        spelled[f"stages.{ns}"] = stage
        spelled[f"stages.{ns}.{_norm(key)}"] = key
        stages.setdefault(ns, {})
        if not isinstance(stages[ns], dict):
            stages[ns] = {}
        stages[ns][_norm(key)] = value
        where = f"{where} + --set"
    for ns, opts in list(stages.items()):
        if isinstance(opts, dict):
            stages[ns] = _normalize(opts, spelled, f"stages.{ns}.")
    doc = {**{k: v for k, v in raw.items() if k not in ("stages",)}, "stages": stages}
    try:
        recipe = Recipe.model_validate(doc)
    except ValidationError as exc:
        raise PipelineError(_error_line(where, exc, spelled, Recipe)) from None
    if recipe.name is None:
        recipe.name = path.stem
    recipe._profile = profile
    return recipe
