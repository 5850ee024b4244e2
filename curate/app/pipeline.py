"""`curate run RECIPE DATASET`: the whole workflow as one declarative, resumable pipeline.

A recipe (YAML) lists stages in a fixed order — audit → review → export → rebalance → backgrounds →
train-and-compare — each with the SAME option names as its command (``curate rebalance --keep-classes``
is ``keep-classes:`` or ``keep_classes:``; dashes and underscores are the same). A stage left out of the
recipe is not run and the dataset flows past it unchanged.

Why a manifest per stage: re-running a recipe must be cheap. Each stage writes
``reports/<run>/<stage>/manifest.json`` with the fingerprint of its input dataset (:func:`dataset_fingerprint`:
label bytes, image sizes/mtimes, class names), its parameters, its outputs and timings; a stage whose
input and parameters are unchanged and whose outputs exist is skipped. ``--from STAGE`` forces a stage
and everything after it.

Why a review pause: fixing boxes is human work in the FiftyOne App. Unless the recipe says
``review: {skip: true}``, the run stops after the audit, printing the ``curate review`` command and the
``curate run ... --from export`` command that continues once the review is done.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from curate import __version__
from curate.core.dataset import Dataset
from curate.io.outputs import atomic_output, is_complete, write_text_atomic

STAGES: tuple[str, ...] = ("audit", "review", "export", "rebalance", "backgrounds", "train-and-compare")
DATASET_STAGES = ("export", "rebalance", "backgrounds")  # their output folder is the next stage's input
MANIFEST = "manifest.json"
SUMMARY = "summary.html"


class PipelineError(ValueError):
    """A bad recipe or an impossible run: one line for the user."""


# ------------------------------------------------------------------------------------------ the recipe


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AuditOptions(_Options):
    """``curate audit`` options; ``options`` is the inline form of ``--config``'s ``checks:`` mapping."""

    fast: bool = False
    all_scores: bool = False
    model: Optional[str] = None
    checks: Union[str, list[str], None] = None
    fiftyone: bool = True
    cache: bool = True
    config: Optional[str] = None
    options: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("options")
    @classmethod
    def _known_checks(cls, v: dict) -> dict:
        from curate.audit.runner import ConfigError, validate_params

        try:
            return validate_params(v, where="options")
        except ConfigError as exc:
            raise ValueError(str(exc).removeprefix("options: ")) from None


class ReviewOptions(_Options):
    """``skip: true`` = no pause; export is then the unreviewed dataset (byte-identical labels)."""

    skip: bool = False
    check: Optional[str] = None
    port: int = 5151
    remote: bool = False


class ExportOptions(_Options):
    pass


class RebalanceOptionsModel(_Options):
    split: str = "80/10/10"
    seed: int = 0
    keep_classes: Union[str, list[str], None] = None
    drop_class: list[str] = Field(default_factory=list)
    merge: Union[list[str], dict[str, str]] = Field(default_factory=list)
    min_instances: int = Field(0, ge=0)
    empty_images: Literal["keep", "drop"] = "keep"
    cap: Optional[int] = Field(None, ge=1)
    oversample: Union[Literal["median"], int, None] = None
    group_by: Optional[str] = None
    near_duplicates: bool = True

    @field_validator("split")
    @classmethod
    def _ratios(cls, v: str) -> str:
        from curate.ops.rebalance import RebalanceError, parse_ratios

        try:
            parse_ratios(str(v))
        except RebalanceError as exc:
            raise ValueError(str(exc)) from None
        return str(v)


class BackgroundsOptions(_Options):
    fraction: float = Field(0.05, ge=0.0, le=1.0)
    instances: int = Field(0, ge=0)
    seed: int = 0


class TrainOptions(_Options):
    """``curate train-and-compare`` options; ``extra`` = the key=value arguments passed to Ultralytics."""

    test: Optional[str] = None
    test_split: str = "test"
    model: str = "yolov8n.yaml"
    epochs: int = Field(30, ge=1)
    imgsz: int = Field(640, ge=32)
    batch: int = Field(16, ge=1)
    seed: int = 0
    seeds: int = Field(1, ge=1)
    device: Union[str, int, None] = None
    workers: int = Field(2, ge=0)
    resamples: int = Field(1000, ge=100)
    extra: dict[str, Any] = Field(default_factory=dict)


class Stages(_Options):
    audit: Optional[AuditOptions] = None
    review: Optional[ReviewOptions] = None
    export: Optional[ExportOptions] = None
    rebalance: Optional[RebalanceOptionsModel] = None
    backgrounds: Optional[BackgroundsOptions] = None
    train_and_compare: Optional[TrainOptions] = None


class Recipe(_Options):
    name: Optional[str] = None
    description: Optional[str] = None
    stages: Stages
    profiles: dict[str, dict[str, Any]] = Field(default_factory=dict)
    _profile: Optional[str] = PrivateAttr(default=None)  # the --profile it was loaded with

    @property
    def profile(self) -> Optional[str]:
        return self._profile

    def options(self, stage: str) -> Optional[_Options]:
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


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
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
    msg = e["msg"].removeprefix("Value error, ")
    value = e.get("input")
    got = f" (got {value!r})" if value is not None and not isinstance(value, dict) and "(got" not in msg else ""
    return f"{where}: {key or norm_loc}: {msg}{got}{more}"


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
        stages = _deep_merge(stages, over)
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


# --------------------------------------------------------------------------------------------- manifests


def params_of(recipe: Recipe, stage: str) -> dict[str, Any]:
    opts = recipe.options(stage)
    return {} if opts is None else json.loads(json.dumps(opts.model_dump(), default=str))


def stage_dir(run_dir: Path, stage: str) -> Path:
    return run_dir / stage


def read_manifest(run_dir: Path, stage: str) -> dict | None:
    p = stage_dir(run_dir, stage) / MANIFEST
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def dataset_fingerprint(dataset: Dataset) -> str:
    from curate.fiftyone.identity import fingerprint

    return fingerprint(dataset)


@dataclass
class StagePlan:
    """What happens to one stage, and why (the ``--dry-run`` table is a list of these)."""

    stage: str
    action: str  # "run", "skip", "pause", "off"
    reason: str


def why_run(manifest: dict | None, fingerprint: str | None, params: dict) -> str | None:
    """Why a stage must run again, or None when its manifest says it is up to date."""
    if manifest is None:
        return "never ran"
    if manifest.get("status") != "ok":
        return f"last run {manifest.get('status', 'unfinished')}"
    if fingerprint is not None and manifest.get("input", {}).get("fingerprint") != fingerprint:
        return "input changed"
    old = manifest.get("params", {})
    if old != params:
        keys = sorted(k for k in set(old) | set(params) if old.get(k) != params.get(k))
        return "parameters changed: " + ", ".join(keys)
    missing = [k for k, p in (manifest.get("outputs") or {}).items() if not Path(p).exists()]
    if missing:
        return "output missing: " + ", ".join(missing)
    unfinished = [k for k, p in (manifest.get("outputs") or {}).items() if Path(p).is_dir() and not is_complete(p)]
    if unfinished:  # a folder curate writes is a result only with its completion marker (curate.io.outputs)
        return "output unfinished: " + ", ".join(unfinished)
    return None


# ------------------------------------------------------------------------------------------------ running


@dataclass
class PipelineResult:
    run_dir: Path
    plan: list[StagePlan]
    paused: bool = False
    seconds: dict[str, float] = field(default_factory=dict)
    summary: Path | None = None
    final: Path | None = None  # the last dataset folder


def run_name(recipe: Recipe, dataset: Dataset, name: str | None = None) -> str:
    """``<recipe>[-<profile>]-<dataset>-<key>``: a run under another profile (``--profile ci`` after a reviewed
    run) gets its own folder instead of silently replacing that run's stages."""
    profile = f"-{recipe.profile}" if recipe.profile else ""
    return name or f"{recipe.name}{profile}-{dataset.slug}"


def check_run_dir(run_dir: Path, dataset: Dataset) -> None:
    """Refuse a run folder inside the dataset (the default ``reports/`` when run from inside it) or holding it
    (stages clear their folders)."""
    from curate.io.yolo import WriteError, check_outside_inputs

    try:
        check_outside_inputs(run_dir, [dataset.root])
    except WriteError as exc:
        raise PipelineError(f"{exc} (run from another folder or pass --reports)") from None


def _from_index(from_stage: str | None, recipe: Recipe) -> int:
    if from_stage is None:
        return len(STAGES)
    s = from_stage.replace("_", "-")
    if s not in STAGES:
        hint = difflib.get_close_matches(s, STAGES, n=1)
        raise PipelineError(
            f"--from {from_stage}: unknown stage"
            + (f"; did you mean {hint[0]!r}?" if hint else f"; stages: {', '.join(STAGES)}")
        )
    if recipe.options(s) is None:
        raise PipelineError(f"--from {from_stage}: the recipe has no {s} stage (it has {', '.join(recipe.active())})")
    return STAGES.index(s)


def review_pending(recipe: Recipe, run_dir: Path, from_idx: int) -> bool:
    """True when the run must stop for a human review: not skipped, not ``--from export`` (or later), no export yet."""
    review = recipe.stages.review
    if review is None or review.skip or recipe.stages.export is None:
        return False
    if STAGES.index("review") < from_idx < len(STAGES):
        return False
    m = read_manifest(run_dir, "export")
    return not (m and m.get("status") == "ok" and m.get("params", {}).get("reviewed"))


def _export_params(recipe: Recipe) -> dict:
    review = recipe.stages.review
    return {"reviewed": bool(review is not None and not review.skip)}


def _stage_params(recipe: Recipe, stage: str) -> dict:
    return _export_params(recipe) if stage == "export" else params_of(recipe, stage)


def plan_run(
    recipe: Recipe,
    dataset: Dataset,
    *,
    reports: Path = Path("reports"),
    name: str | None = None,
    from_stage: str | None = None,
) -> list[StagePlan]:
    """What a run would do, without writing anything: per stage run/skip/pause/off and why.

    A stage after one that runs is planned to run (its input will be rewritten); the real run checks
    the actual fingerprint again, so a stage whose input came out identical is still skipped.
    """
    run_dir = Path(reports) / run_name(recipe, dataset, name)
    check_run_dir(run_dir, dataset)
    from_idx = _from_index(from_stage, recipe)
    pending = review_pending(recipe, run_dir, from_idx)
    plans: list[StagePlan] = []
    current: Dataset | None = dataset
    upstream_runs = False
    stopped = False
    for i, stage in enumerate(STAGES):
        if recipe.options(stage) is None:
            plans.append(StagePlan(stage, "off", "not in the recipe"))
            continue
        if stopped:
            plans.append(StagePlan(stage, "pause", "after the review: curate run ... --from export"))
            continue
        if stage == "review":
            if pending:
                plans.append(StagePlan(stage, "pause", "stops here for the review in the FiftyOne App"))
                stopped = True
            else:
                rv = recipe.stages.review
                plans.append(
                    StagePlan(stage, "skip", "review: skip" if rv.skip else "review done (export exists or --from)")
                )
            continue
        if i >= from_idx:
            plans.append(StagePlan(stage, "run", f"--from {STAGES[from_idx]}"))
            upstream_runs = upstream_runs or stage in DATASET_STAGES
            continue
        if upstream_runs and stage not in ("audit", "export"):
            plans.append(StagePlan(stage, "run", "an earlier stage rewrites its input"))
            continue
        fp = _input_fingerprint(stage, dataset, current)
        reason = why_run(read_manifest(run_dir, stage), fp, _stage_params(recipe, stage))
        if reason:
            plans.append(StagePlan(stage, "run", reason))
            upstream_runs = upstream_runs or stage in DATASET_STAGES
            continue
        plans.append(StagePlan(stage, "skip", "input and parameters unchanged"))
        if stage in DATASET_STAGES:
            current = _load_output(run_dir, stage)
    return plans


def _input_fingerprint(stage: str, source: Dataset, current: Dataset | None) -> str | None:
    if current is None:
        return None
    if stage == "train-and-compare":
        return hashlib.sha256(f"{dataset_fingerprint(source)}\0{dataset_fingerprint(current)}".encode()).hexdigest()
    if stage in ("audit", "export"):
        return dataset_fingerprint(source)
    return dataset_fingerprint(current)


def _load_output(run_dir: Path, stage: str) -> Dataset | None:
    from curate.io.yolo import DatasetError, load_yolo

    folder = stage_dir(run_dir, stage) / "dataset"
    try:
        return load_yolo(folder) if is_complete(folder) else None
    except DatasetError:
        return None


def run_pipeline(
    recipe: Recipe,
    dataset: Dataset,
    *,
    reports: Path = Path("reports"),
    name: str | None = None,
    from_stage: str | None = None,
    log: Callable[[str], None] = print,
    progress: Callable[[str], None] | None = None,
    commands: dict[str, str] | None = None,
) -> PipelineResult:
    """Run (or skip) every stage of ``recipe`` on ``dataset``; write manifests and ``summary.html``.

    ``commands`` gives the exact ``review``/``continue`` command lines to print at the review pause.
    """
    from curate.io.yolo import DatasetError, load_yolo

    run_dir = Path(reports).resolve() / run_name(recipe, dataset, name)
    check_run_dir(run_dir, dataset)
    from_idx = _from_index(from_stage, recipe)
    pending = review_pending(recipe, run_dir, from_idx)
    result = PipelineResult(run_dir=run_dir, plan=[])
    current = dataset
    for i, stage in enumerate(STAGES):
        opts = recipe.options(stage)
        if opts is None:
            result.plan.append(StagePlan(stage, "off", "not in the recipe"))
            continue
        if stage == "review":
            if pending:
                result.plan.append(StagePlan(stage, "pause", "review in the FiftyOne App, then --from export"))
                _write_manifest(
                    run_dir,
                    stage,
                    dataset,
                    params_of(recipe, stage),
                    {},
                    0.0,
                    status="paused",
                    extra={"commands": commands or {}},
                )
                result.paused = True
                for label, cmd in (commands or {}).items():
                    log(f"{label}: {cmd}")
                break
            result.plan.append(StagePlan(stage, "skip", "review: skip" if opts.skip else "review done"))
            continue
        params = _stage_params(recipe, stage)
        fp = _input_fingerprint(stage, dataset, current)
        reason = f"--from {STAGES[from_idx]}" if i >= from_idx else why_run(read_manifest(run_dir, stage), fp, params)
        if reason is None:
            result.plan.append(StagePlan(stage, "skip", "input and parameters unchanged"))
            log(f"{stage}: skipped (input and parameters unchanged)")
            if stage in DATASET_STAGES:
                out = _load_output(run_dir, stage)
                if out is None:
                    raise PipelineError(
                        f"{stage_dir(run_dir, stage) / 'dataset'}: cannot read the stage's output; "
                        f"run with --from {stage}"
                    )
                current = out
            continue
        result.plan.append(StagePlan(stage, "run", reason))
        log(f"{stage}: running ({reason})")
        folder = stage_dir(run_dir, stage)
        _write_manifest(
            run_dir,
            stage,
            current if stage not in ("audit", "export") else dataset,
            params,
            {},
            0.0,
            status="running",
            fingerprint=fp,
        )
        t0 = time.perf_counter()
        outputs = RUNNERS[stage](recipe, opts, dataset, current, folder, log=log, progress=progress)
        secs = time.perf_counter() - t0
        result.seconds[stage] = secs
        _write_manifest(
            run_dir,
            stage,
            current if stage not in ("audit", "export") else dataset,
            params,
            outputs,
            secs,
            status="ok",
            fingerprint=fp,
            started=time.time() - secs,
        )
        log(f"{stage}: done in {secs:.1f} s")
        if stage in DATASET_STAGES:
            try:
                current = load_yolo(outputs["dataset"])
            except DatasetError as exc:
                raise PipelineError(f"{stage}: its output does not load ({exc})") from None
    if stage_dir(run_dir, "export").exists() or current is not dataset:
        result.final = current.root
    result.summary = write_summary(recipe, run_dir, dataset, result)
    return result


def _write_manifest(
    run_dir: Path,
    stage: str,
    input_ds: Dataset,
    params: dict,
    outputs: dict,
    seconds: float,
    *,
    status: str,
    fingerprint: str | None = None,
    started: float | None = None,
    extra: dict | None = None,
) -> Path:
    folder = stage_dir(run_dir, stage)
    folder.mkdir(parents=True, exist_ok=True)
    data = {
        "stage": stage,
        "status": status,
        "curate_version": __version__,
        "input": {"path": str(input_ds.root), "fingerprint": fingerprint},
        "params": params,
        "outputs": {k: str(v) for k, v in outputs.items()},
        "timings": {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started or time.time())),
            "seconds": round(seconds, 2),
        },
        **(extra or {}),
    }
    return write_text_atomic(folder / MANIFEST, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _fresh(folder: Path) -> Path:
    """An empty output folder inside the run (ours to clear; never the user's data)."""
    if folder.exists():
        shutil.rmtree(folder)
    return folder


# ------------------------------------------------------------------------------------------------ stages


def _run_audit(
    recipe: Recipe, o: AuditOptions, source: Dataset, current: Dataset, folder: Path, *, log, progress
) -> dict:
    from curate.audit.runner import ConfigError, load_config, run_audit

    try:
        params = load_config(Path(o.config)) if o.config else {}
    except ConfigError as exc:
        raise PipelineError(f"stages.audit.config: {exc}") from None
    params = _deep_merge(params, o.options)
    only = None
    if o.checks:
        only = set(o.checks if isinstance(o.checks, list) else [c.strip() for c in o.checks.split(",") if c.strip()])
    if o.model and not Path(o.model).is_file():
        raise PipelineError(f"stages.audit.model: {o.model}: no such file")
    for f in folder.glob("*"):
        if f.name != MANIFEST:
            shutil.rmtree(f) if f.is_dir() else f.unlink()
    res = run_audit(
        source,
        out_dir=folder,
        params=params,
        fast=o.fast,
        model=o.model,
        all_scores=o.all_scores,
        only=only,
        fiftyone=o.fiftyone,
        use_cache=o.cache,
        on_check=(lambda m: progress(f"audit: {m}")) if progress else None,
    )
    counts = ", ".join(f"{n} {c}" for c, n in sorted(res.counts().items())) or "nothing flagged"
    log(f"audit: {len(res.findings)} findings ({counts})")
    outs: dict[str, Path] = {"findings": folder / "findings.csv"}
    if res.report:
        outs["report"] = res.report
    return outs


def _run_export(
    recipe: Recipe, o: ExportOptions, source: Dataset, current: Dataset, folder: Path, *, log, progress
) -> dict:
    from curate.io.yolo import WriteError, save_yolo

    out = _fresh(folder / "dataset")
    try:
        if _export_params(recipe)["reviewed"]:
            from curate.ops.export import export_reviewed

            res = export_reviewed(source, out)
            for w in res.warnings:
                log(f"export: warning: {w}")
            log(f"export: {', '.join(f'{n} {k}' for k, n in res.counts().items() if n) or 'no changes'}")
            return {"dataset": out, "report": out / "CHANGES.md", "changes": out / "changes.csv"}
        with atomic_output(out, "export") as tmp:
            save_yolo(source, tmp)
    except (WriteError, ValueError) as exc:
        raise PipelineError(f"export: {exc}") from None
    log("export: review skipped; unreviewed copy (labels byte-identical)")
    return {"dataset": out}


def _run_rebalance(
    recipe: Recipe, o: RebalanceOptionsModel, source: Dataset, current: Dataset, folder: Path, *, log, progress
) -> dict:
    from curate.io.yolo import WriteError
    from curate.ops import rebalance as rb

    keep = (
        o.keep_classes if isinstance(o.keep_classes, list) or o.keep_classes is None else rb.parse_names(o.keep_classes)
    )
    merge = dict(o.merge) if isinstance(o.merge, dict) else rb.parse_merge(o.merge)
    try:
        options = rb.RebalanceOptions(
            ratios=rb.parse_ratios(o.split),
            seed=o.seed,
            keep=keep,
            drop=list(o.drop_class),
            merge=merge,
            min_instances=o.min_instances,
            empty_images=o.empty_images,
            cap=o.cap,
            oversample=o.oversample,
            group_by=o.group_by,
            near_duplicates=o.near_duplicates,
        )
        result = rb.rebalance(current, options)
        out = rb.write_rebalanced(result, _fresh(folder / "dataset"))
    except (rb.RebalanceError, WriteError) as exc:
        raise PipelineError(f"rebalance: {exc}") from None
    for note in result.summary.get("notes", []):
        log(f"rebalance: note: {note}")
    return {"dataset": out, "report": out / "rebalance.json"}


def _run_backgrounds(
    recipe: Recipe, o: BackgroundsOptions, source: Dataset, current: Dataset, folder: Path, *, log, progress
) -> dict:
    from curate.io.yolo import WriteError
    from curate.ops import backgrounds as bg

    try:
        result = bg.backgrounds(current, fraction=o.fraction, instances=o.instances, seed=o.seed)
        out = bg.write_backgrounds(result, _fresh(folder / "dataset"))
    except (bg.BackgroundError, WriteError) as exc:
        raise PipelineError(f"backgrounds: {exc}") from None
    for w in result.warnings:
        log(f"backgrounds: warning: {w}")
    log(f"backgrounds: added {len(result.backgrounds)} background and {len(result.instances)} instance images")
    outs = {"dataset": out, "report": out / "backgrounds.json"}
    if (out / "backgrounds_contact.png").exists():
        outs["contact"] = out / "backgrounds_contact.png"
    return outs


def _run_compare(
    recipe: Recipe, o: TrainOptions, source: Dataset, current: Dataset, folder: Path, *, log, progress
) -> dict:
    from curate.io.yolo import DatasetError, load_yolo
    from curate.train import compare as cmp
    from curate.train import history as hist

    def loader(p: Path) -> Dataset:
        try:
            return load_yolo(p)
        except DatasetError as exc:
            raise PipelineError(f"stages.train-and-compare.test: {exc}") from None

    test = cmp.resolve_test(Path(o.test), o.test_split, loader) if o.test else None
    settings = cmp.TrainSettings(
        model=o.model,
        epochs=o.epochs,
        imgsz=o.imgsz,
        batch=o.batch,
        seed=o.seed,
        seeds=o.seeds,
        device=None if o.device is None else str(o.device),
        workers=o.workers,
        resamples=o.resamples,
        extra=dict(o.extra),
    )
    folder.mkdir(parents=True, exist_ok=True)
    try:
        res = cmp.compare(source, current, folder, settings=settings, test=test, log=log)
    except cmp.CompareError as exc:
        raise PipelineError(f"train-and-compare: {exc}") from None
    paths = cmp.write_outputs(res)
    data = res.to_json()
    hpath = hist.append(hist.history_path(folder.parent.parent), hist.entry(data, res.out))  # <reports>/history.jsonl
    from curate.report.compare import headline

    log("train-and-compare: " + headline(data).replace("**", ""))
    return {"report": paths["html"], "json": paths["json"], "history": hpath}


RUNNERS: dict[str, Callable[..., dict]] = {
    "audit": _run_audit,
    "export": _run_export,
    "rebalance": _run_rebalance,
    "backgrounds": _run_backgrounds,
    "train-and-compare": _run_compare,
}


# ------------------------------------------------------------------------------------------------ summary


def write_summary(recipe: Recipe, run_dir: Path, dataset: Dataset, result: PipelineResult) -> Path:
    """``summary.html``: one self-contained page linking each stage's report and the attempt history."""
    from curate.report.run_summary import render
    from curate.train import history as hist

    stages = []
    for p in result.plan:
        m = (read_manifest(run_dir, p.stage) if p.action != "off" else None) or {}
        stages.append({"stage": p.stage, "action": p.action, "reason": p.reason,
                       "seconds": m.get("timings", {}).get("seconds"), "outputs": m.get("outputs") or {}})  # fmt: skip
    attempts = []
    hpath = hist.history_path(run_dir.parent)
    if hpath.is_file():  # the same history file holds every run's attempts: this run's only
        entries, _ = hist.read(hpath)
        attempts = [h for h in entries if Path(str(h.get("out", ""))).resolve().is_relative_to(run_dir.resolve())]
    page = render(run_dir=run_dir, recipe_name=recipe.name or "", description=recipe.description or "",
                  root=dataset.root, images=len(dataset.images), boxes=dataset.num_boxes, paused=result.paused,
                  stages=stages, attempts=attempts)  # fmt: skip
    run_dir.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(run_dir / SUMMARY, page)
