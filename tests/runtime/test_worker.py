"""curate.runtime.worker: a call in a fresh Python process, and the two jobs that use it (the --fast box model and
the report's dataset plots), which must give what the same call gives in this process."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import numpy as np
import pytest

from curate.audit import boxmodel
from curate.audit.checks.base import AuditContext
from curate.core.dataset import LabelLookup
from curate.io.yolo import load_yolo
from curate.report import plots
from curate.runtime import worker


def test_result_comes_back_from_another_process():
    job = worker.start("os:getpid")
    assert job.result(timeout=60) not in (os.getpid(), None)
    assert not job.folder.exists()  # its files are gone once read
    assert worker.start("math:hypot", 3.0, 4.0).result(timeout=60) == 5.0


def test_an_exception_in_the_child_is_one_line_here():
    with pytest.raises(worker.WorkerError, match="ValueError: math domain error"):
        worker.start("math:sqrt", -1.0).result(timeout=60)
    with pytest.raises(worker.WorkerError, match="ModuleNotFoundError"):
        worker.start("curate.no_such_module:f").result(timeout=60)


def test_a_killed_child_is_an_error_and_cancel_stops_it():
    job = worker.start("time:sleep", 60)
    job.proc.kill()
    with pytest.raises(worker.WorkerError, match="exited with"):
        job.result(timeout=60)
    job = worker.start("time:sleep", 60)
    t = time.perf_counter()
    job.cancel()
    assert job.proc.poll() is not None and time.perf_counter() - t < 10
    assert not job.folder.exists()


def test_fast_box_model_in_a_child_equals_the_one_computed_here(sample_dir: Path):
    ds = load_yolo(sample_dir)
    ctx = AuditContext(ds, fast=True)
    model = ctx.use(boxmodel.BoxModel)
    model.start(ctx)
    job = model.job
    assert job.proc.pid != os.getpid()
    child = boxmodel.shared_scores(ctx)
    assert model.job is None
    here = boxmodel.score_boxes(ds, progress=False, **boxmodel._model_options(AuditContext(ds, fast=True)))
    assert child.method == here.method == "geometry"
    for kind in boxmodel.KINDS:
        np.testing.assert_array_equal(child.scores[kind], here.scores[kind])
    np.testing.assert_array_equal(child.features, here.features)
    # the rows point at this process's records, not at the child's unpickled copies
    assert all(any(rec is r for r in ds.images) for rec, _ in child.records)
    assert [(rec.rel, j) for rec, j in child.records] == [(rec.rel, j) for rec, j in here.records]


def test_a_failed_child_falls_back_to_computing_here(sample_dir: Path, monkeypatch):
    monkeypatch.delenv("CURATE_DEBUG", raising=False)
    ds = load_yolo(sample_dir)
    ctx = AuditContext(ds, fast=True)
    ctx.use(boxmodel.BoxModel).job = worker.start("curate.audit.boxmodel.child:no_such_function")
    bs = boxmodel.shared_scores(ctx)
    assert len(bs.records) == ds.num_boxes and bs.method == "geometry"


def test_only_fast_starts_a_child(sample_dir: Path):
    ctx = AuditContext(load_yolo(sample_dir), fast=False)
    ctx.use(boxmodel.BoxModel).start(ctx)
    assert ctx.use(boxmodel.BoxModel).job is None


def test_dataset_plots_drawn_in_a_child_equal_those_drawn_here(sample_dir: Path, tmp_path: Path, monkeypatch):
    ds = load_yolo(sample_dir)
    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path / "cache-child"))  # the child inherits it: nothing cached yet
    job = plots.start_dataset_plots(ds)
    assert job is not None
    child = plots.make_plots(ds, [], LabelLookup(ds), drawing=job)
    assert plots.start_dataset_plots(ds) is None  # the child cached them: nothing left to draw
    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path / "cache-here"))
    here = plots.make_plots(ds, [], LabelLookup(ds))
    assert (
        [p.key for p in child] == [p.key for p in here] == ["class_distribution", "findings_per_class", "box_geometry"]
    )
    assert [p.uri for p in child] == [p.uri for p in here]
    assert [p.bars for p in child] == [p.bars for p in here] and child[0].bars  # the class distribution's HTML bars
    assert re.match(r"data:image/png;base64,", child[2].uri)


def test_an_argument_that_cannot_travel_is_a_worker_error_and_the_model_is_computed_here(sample_dir: Path, monkeypatch):
    with pytest.raises(worker.WorkerError, match="cannot hand the call to the child process"):
        worker.start("builtins:len", lambda: None)  # a lambda does not pickle
    monkeypatch.delenv("CURATE_DEBUG", raising=False)
    monkeypatch.setattr(worker.sys, "executable", "/nonexistent/python")  # no interpreter to start
    ctx = AuditContext(load_yolo(sample_dir), fast=True)
    ctx.use(boxmodel.BoxModel).start(ctx)
    assert ctx.use(boxmodel.BoxModel).job is None
    assert len(boxmodel.shared_scores(ctx).records) == ctx.dataset.num_boxes


def test_a_child_that_imports_another_curate_refuses(tmp_path: Path, monkeypatch):
    import io
    import pickle

    folder = tmp_path / "call"
    folder.mkdir()
    (folder / "call.pkl").write_bytes(pickle.dumps(("os:getpid", (), {})))
    monkeypatch.setattr(worker.sys, "stdin", io.StringIO("go\n"))
    assert worker.child_main(str(folder), "/somewhere/else/curate") == 1
    assert "the parent from /somewhere/else/curate" in (folder / "error.txt").read_text()
    assert worker.child_main(str(folder), worker._package_dir()) == 0
    assert pickle.loads((folder / "result.pkl").read_bytes()) == os.getpid()


def test_a_spawned_child_imports_first_and_runs_the_call_it_is_given_later():
    job = worker.spawn("json")
    time.sleep(0.5)
    assert job.proc.poll() is None  # waiting for its call
    job.call("json:dumps", {"a": 1})
    assert job.result(timeout=60) == '{"a": 1}'
    idle = worker.spawn()
    with pytest.raises(worker.WorkerError, match="given no call"):
        idle.result(timeout=5)
    assert idle.proc.poll() is not None and not idle.folder.exists()


def test_a_warm_box_model_child_is_used_and_an_unneeded_one_cancelled(sample_dir: Path):
    ds = load_yolo(sample_dir)
    warm = boxmodel.spawn_child()
    ctx = AuditContext(ds, fast=True)
    model = ctx.use(boxmodel.BoxModel)
    model.warm = warm
    model.start(ctx)
    assert model.job is warm and warm.called and model.warm is None
    assert len(boxmodel.shared_scores(ctx).records) == ds.num_boxes
    full = AuditContext(ds, fast=False)  # the full audit's model needs the signatures first: no child
    full.use(boxmodel.BoxModel).warm = unneeded = boxmodel.spawn_child()
    full.use(boxmodel.BoxModel).start(full)
    assert full.use(boxmodel.BoxModel).warm is None and unneeded.proc.poll() is not None
