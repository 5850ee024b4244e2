"""`curate run`: recipe validation (one line per mistake), profiles, the review pause, skips, --from, --dry-run,
and the bundled sample end to end through every stage with tiny CPU training.

The CLI runs as a real subprocess (the environment of conftest.py — isolated FiftyOne, cache — is inherited),
so the second run's seconds include the real import cost a user pays.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from curate.app import pipeline as pl
from curate.io.yolo import load_yolo

REPO = Path(__file__).resolve().parents[2]
DEFAULT = REPO / "pipelines" / "default.yaml"
SEED_FOOD = REPO / "pipelines" / "seed-food.yaml"
CURATE = [sys.executable, "-c", "from curate.app.cli import entry; entry()"]


def curate(*args: str | Path, cwd: Path | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([*CURATE, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)


def manifests(run_dir: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in run_dir.glob("*/manifest.json")}


def tree(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")} if folder.exists() else {}


# ------------------------------------------------------------------------------------------ validation


def write_recipe(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "x.yaml"
    p.write_text(text)
    return p


BASE = "stages:\n  audit: {fast: true}\n  review: {skip: true}\n  export: {}\n  rebalance: {split: 80/10/10}\n"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("stages:\n  rebalance: {splt: 80/10/10}\n", "stages.rebalance.splt: unknown option; did you mean 'split'?"),
        ("stages:\n  rebalanse: {}\n", "stages.rebalanse: unknown stage; did you mean 'rebalance'?"),
        (
            "stages:\n  backgrounds: {fraction: 2}\n",
            "stages.backgrounds.fraction: Input should be less than or equal to 1",
        ),
        (
            "stages:\n  train-and-compare: {epochs: many}\n",
            "stages.train-and-compare.epochs: Input should be a valid integer",
        ),
        ("stages:\n  rebalance: {split: 70/10}\n", "stages.rebalance.split:"),
        ("stages:\n  rebalance: {empty-images: maybe}\n", "stages.rebalance.empty-images:"),
        (
            "stages:\n  rebalance: {keep-clases: a}\n",
            "stages.rebalance.keep-clases: unknown option; did you mean 'keep_classes'?",
        ),
        (
            "stages:\n  audit: {options: {grouepd: {threshold: 0.5}}}\n",
            "unknown check 'grouepd'; did you mean 'grouped'?",
        ),
        ("stages:\n  audit: {}\nstaegs: {}\n", "staegs: unknown option; did you mean 'stages'?"),
        ("stages: [audit]\n", "stages: missing or not a mapping"),
        ("stages:\n  audit: {fast: true\n", "not valid YAML"),
    ],
)
def test_recipe_mistake_is_one_line_naming_the_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write_recipe(tmp_path, text)
    with pytest.raises(pl.PipelineError) as exc:
        pl.load_recipe(path)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(str(path)), msg
    assert expected in msg, msg
    assert "pydantic" not in msg and "errors.pydantic.dev" not in msg


def test_typo_through_the_cli_is_one_line_and_exit_1(tmp_path: Path, sample_dir: Path) -> None:
    path = write_recipe(tmp_path, "stages:\n  rebalance: {splt: 80/10/10}\n")
    r = curate("run", path, sample_dir, "--reports", tmp_path / "reports")
    assert r.returncode == 1
    assert r.stderr.strip() == f"error: {path}: stages.rebalance.splt: unknown option; did you mean 'split'?"
    assert not (tmp_path / "reports").exists()


def test_dashes_and_underscores_are_the_same_option(tmp_path: Path) -> None:
    a = pl.load_recipe(
        write_recipe(tmp_path, "stages:\n  rebalance: {keep-classes: 'egg,onion', empty-images: drop}\n")
    )
    b = pl.load_recipe(
        write_recipe(tmp_path, "stages:\n  rebalance: {keep_classes: 'egg,onion', empty_images: drop}\n")
    )
    assert a.stages.rebalance == b.stages.rebalance
    assert a.stages.rebalance.empty_images == "drop"


def test_profiles_and_set_overrides() -> None:
    cpu = pl.load_recipe(SEED_FOOD, profile="cpu")
    gpu = pl.load_recipe(SEED_FOOD, profile="gpu")
    t = gpu.stages.train_and_compare
    assert (t.imgsz, t.epochs, t.batch, str(t.device)) == (640, 100, 16, "0")
    assert cpu.stages.train_and_compare.imgsz < 640 and cpu.stages.train_and_compare.device == "cpu"
    assert cpu.stages.rebalance.keep_classes == "chicken,onion,potato,egg,tomato,carrot"
    assert cpu.stages.backgrounds.fraction == pytest.approx(0.10) and cpu.stages.rebalance.split == "80/10/10"
    assert cpu.stages.review.skip is False  # the users' attempts fixed flagged boxes by hand
    s = pl.load_recipe(SEED_FOOD, profile="gpu", overrides=["train-and-compare.epochs=3", "review.skip=true"])
    assert s.stages.train_and_compare.epochs == 3 and s.stages.train_and_compare.imgsz == 640 and s.stages.review.skip
    with pytest.raises(pl.PipelineError, match="--profile gpus: no such profile; known: cpu, gpu"):
        pl.load_recipe(SEED_FOOD, profile="gpus")
    with pytest.raises(
        pl.PipelineError, match=r"stages.train-and-compare.epohcs: unknown option; did you mean 'epochs'\?"
    ):
        pl.load_recipe(SEED_FOOD, overrides=["train-and-compare.epohcs=3"])
    for name in pl.load_recipe(DEFAULT).profiles:  # every shipped profile is valid
        pl.load_recipe(DEFAULT, profile=name)


@pytest.mark.parametrize(
    "manifest, fp, params, expected",
    [
        (None, "a", {}, "never ran"),
        ({"status": "running", "input": {"fingerprint": "a"}, "params": {}}, "a", {}, "last run running"),
        ({"status": "ok", "input": {"fingerprint": "a"}, "params": {"seed": 0}}, "b", {"seed": 0}, "input changed"),
        (
            {"status": "ok", "input": {"fingerprint": "a"}, "params": {"seed": 0}},
            "a",
            {"seed": 1},
            "parameters changed: seed",
        ),
        (
            {"status": "ok", "input": {"fingerprint": "a"}, "params": {}, "outputs": {"d": "/nonexistent/x"}},
            "a",
            {},
            "output missing: d",
        ),
        ({"status": "ok", "input": {"fingerprint": "a"}, "params": {"seed": 0}, "outputs": {}}, "a", {"seed": 0}, None),
    ],
)
def test_why_run(manifest, fp, params, expected) -> None:
    assert pl.why_run(manifest, fp, params) == expected


# ------------------------------------------------------------------------------------------- running


def test_review_pause_then_from_export(tmp_path: Path, sample_dir: Path) -> None:
    """No review yet: stop after the audit (exit 0) printing both commands; --from export goes on."""
    recipe = write_recipe(
        tmp_path, "name: held\nstages:\n  audit: {fast: true, checks: duplicate}\n  review: {}\n  export: {}\n"
    )
    reports = tmp_path / "reports"
    r = curate("run", recipe, sample_dir, "--reports", reports)
    assert r.returncode == 0, r.stderr
    out = " ".join(r.stdout.split())
    assert f"curate review {sample_dir}" in out
    assert f"curate run {recipe} {sample_dir} --reports {reports} --from export" in out
    run_dir = reports / f"held-{load_yolo(sample_dir).slug}"
    m = manifests(run_dir)
    assert m["audit"]["status"] == "ok" and m["review"]["status"] == "paused" and "export" not in m
    r2 = curate("run", recipe, sample_dir, "--reports", reports, "--from", "export")
    assert r2.returncode == 0, r2.stderr
    m = manifests(run_dir)
    assert m["export"]["status"] == "ok" and m["export"]["params"] == {"reviewed": True}
    assert (run_dir / "export" / "dataset" / "changes.csv").is_file()  # the FiftyOne export, not a plain copy
    r3 = curate("run", recipe, sample_dir, "--reports", reports, "--dry-run")  # reviewed once: no pause any more
    assert r3.returncode == 0 and "│ review" in r3.stdout
    assert not re.search(r"│\s*pause\s*│", r3.stdout), r3.stdout


def test_from_stage_reruns_from_there(tmp_path: Path, sample_dir: Path) -> None:
    recipe = write_recipe(
        tmp_path,
        "name: short\nstages:\n  audit: {fast: true, checks: duplicate, fiftyone: false}\n"
        "  review: {skip: true}\n  export: {}\n  rebalance: {split: 70/15/15}\n",
    )
    reports = tmp_path / "reports"
    assert curate("run", recipe, sample_dir, "--reports", reports).returncode == 0
    run_dir = reports / f"short-{load_yolo(sample_dir).slug}"
    before = manifests(run_dir)
    r = curate("run", recipe, sample_dir, "--reports", reports, "--from", "rebalance")
    assert r.returncode == 0, r.stderr
    after = manifests(run_dir)
    for stage in ("audit", "export"):
        assert after[stage]["timings"] == before[stage]["timings"], stage
    assert after["rebalance"]["timings"]["started"] >= before["rebalance"]["timings"]["started"]
    assert "--from rebalance" in r.stdout and "rebalance: running" in r.stdout
    bad = curate("run", recipe, sample_dir, "--reports", reports, "--from", "backgrounds")
    assert bad.returncode == 1 and "the recipe has no backgrounds stage" in bad.stderr


def test_default_recipe_end_to_end_then_everything_skips(tmp_path: Path, sample_dir: Path) -> None:
    """The bundled sample through every stage (tiny CPU training), then a run that skips them all in seconds."""
    reports = tmp_path / "reports"
    args = ["run", DEFAULT, sample_dir, "--reports", reports, "--profile", "ci", "--set", "audit.fast=true"]
    t0 = time.perf_counter()
    r = curate(*args)
    first = time.perf_counter() - t0
    assert r.returncode == 0, r.stderr[-3000:]
    run_dir = reports / f"default-ci-{load_yolo(sample_dir).slug}"
    m = manifests(run_dir)
    assert set(m) == {"audit", "export", "rebalance", "backgrounds", "train-and-compare"}
    for stage, man in m.items():
        assert man["status"] == "ok" and man["curate_version"] and len(man["input"]["fingerprint"]) == 64, stage
        assert all(Path(p).exists() for p in man["outputs"].values()), stage
    assert m["train-and-compare"]["params"]["imgsz"] == 64 and m["train-and-compare"]["params"]["epochs"] == 1
    # review skipped: export is the unreviewed dataset, every label file byte-identical
    exported = run_dir / "export" / "dataset"
    for lab in sample_dir.glob("*/labels/*.txt"):
        split = {"valid": "val"}.get(lab.parent.parent.name, lab.parent.parent.name)
        assert (exported / "labels" / split / lab.name).read_bytes() == lab.read_bytes()
    # the dataset flows: each stage's input is the previous stage's output
    assert m["rebalance"]["input"]["path"] == str(exported)
    assert m["backgrounds"]["input"]["path"] == str(run_dir / "rebalance" / "dataset")
    compare = json.loads(Path(m["train-and-compare"]["outputs"]["json"]).read_text())
    assert compare["after"]["path"].rstrip("/") == str(run_dir / "backgrounds" / "dataset")
    assert Path(compare["before"]["path"]).resolve() == sample_dir.resolve()
    summary = (run_dir / "summary.html").read_text()
    for link in ("audit/report.html", "train-and-compare/compare.html", "rebalance/dataset/rebalance.json"):
        assert f'href="{link}"' in summary and (run_dir / link).exists(), link
    assert "Attempt history" in summary and "No train-and-compare run yet" not in summary
    assert "http://" not in summary and "https://" not in summary  # self-contained

    # second run: every stage skipped, nothing rewritten, a few seconds
    snapshot = tree(run_dir / "backgrounds")
    t0 = time.perf_counter()
    r2 = curate(*args)
    second = time.perf_counter() - t0
    assert r2.returncode == 0, r2.stderr
    assert "ran: nothing (every stage up to date)" in r2.stdout
    for stage in m:
        assert f"{stage}: skipped (input and parameters unchanged)" in r2.stdout
    assert manifests(run_dir) == {k: v for k, v in m.items()}
    assert tree(run_dir / "backgrounds") == snapshot
    assert second < 30 and second < first / 5, (first, second)

    # --dry-run: the plan, nothing written
    before = tree(run_dir)
    r3 = curate(*args, "--set", "backgrounds.seed=7", "--dry-run")
    assert r3.returncode == 0 and "dry run: nothing written" in r3.stdout
    lines = {ln.split("│")[1].strip(): ln for ln in r3.stdout.splitlines() if ln.count("│") >= 3}
    assert (
        "skip" in lines["rebalance"]
        and "run" in lines["backgrounds"]
        and "parameters changed: seed" in lines["backgrounds"]
    )
    assert "run" in lines["train-and-compare"]
    assert tree(run_dir) == before


def test_a_run_under_a_profile_gets_its_own_folder(sample_dir: Path) -> None:
    """`curate run ... --profile ci` silently replaced the reviewed run's stages: it shared the run folder."""
    ds = load_yolo(sample_dir)
    plain, ci = pl.run_name(pl.load_recipe(DEFAULT), ds), pl.run_name(pl.load_recipe(DEFAULT, profile="ci"), ds)
    assert plain == f"default-{ds.slug}" and ci == f"default-ci-{ds.slug}"
    assert pl.run_name(pl.load_recipe(DEFAULT, profile="ci"), ds, "mine") == "mine"
