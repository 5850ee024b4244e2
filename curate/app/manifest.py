"""Per-stage manifests: what a stage ran on (its input's fingerprint), with which parameters, what it wrote;
and the rule that says whether a stage must run again."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate import __version__
from curate.app.recipe import Recipe
from curate.core.dataset import Dataset
from curate.io.outputs import is_complete, write_text_atomic

MANIFEST = "manifest.json"


def params_of(recipe: Recipe, stage: str) -> dict[str, Any]:
    opts = recipe.options(stage)
    return {} if opts is None else json.loads(json.dumps(opts.model_dump(), default=str))


def export_params(recipe: Recipe) -> dict:
    """The export stage's parameter: whether a review ran before it (its output then comes from FiftyOne)."""
    review = recipe.stages.review
    return {"reviewed": bool(review is not None and not review.skip)}


def stage_params(recipe: Recipe, stage: str) -> dict:
    """The parameters a stage's manifest records (and a re-run compares)."""
    return export_params(recipe) if stage == "export" else params_of(recipe, stage)


def stage_dir(run_dir: Path, stage: str) -> Path:
    return run_dir / stage


def read_manifest(run_dir: Path, stage: str) -> dict | None:
    p = stage_dir(run_dir, stage) / MANIFEST
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


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


def write_manifest(
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


def fresh_folder(folder: Path) -> Path:
    """An empty output folder inside the run (ours to clear; never the user's data)."""
    if folder.exists():
        shutil.rmtree(folder)
    return folder
