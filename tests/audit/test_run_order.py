"""The runner's choice of the next check (:func:`curate.audit.runner._next_check`): a later check whose shared work is
done runs while the first waits on work running elsewhere; nothing else leaves its turn; the scores keep the checks'
order whichever ran first."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from curate.audit.checks import registered
from curate.audit.checks.base import AuditContext, Check, Shared
from curate.audit.runner import _next_check, score_dataset
from curate.io.yolo import load_yolo


class Background(Shared):
    """Work in a thread of the test's own: running until ``finish`` sets it ready."""

    def __init__(self) -> None:
        self.done = threading.Event()

    def running(self, ctx: AuditContext) -> bool:
        return not self.done.is_set()

    def ready(self, ctx: AuditContext) -> bool:
        return self.done.is_set()


class Hashing(Background):
    pass


class Child(Background):
    pass


class OnDemand(Shared):
    """Computed by whoever uses it first (the default: neither running nor ready)."""


def _check(name: str, *needs: type[Shared]) -> Check:
    return type(name, (Check,), {"names": (name,), "needs": needs})()


def _ctx(sample_dir: Path) -> AuditContext:
    return AuditContext(load_yolo(sample_dir))


def test_a_later_check_whose_needs_are_ready_runs_while_the_first_waits(sample_dir: Path) -> None:
    ctx = _ctx(sample_dir)
    first, later = _check("images", Hashing), _check("boxes", Child)
    ctx.use(Child).done.set()
    assert _next_check(ctx, [first, later], {first: None, later: None}) is later


def test_the_first_waits_no_longer_than_a_later_check_takes_to_become_ready(sample_dir: Path) -> None:
    ctx = _ctx(sample_dir)
    first, later = _check("images", Hashing), _check("boxes", Child)
    threading.Timer(0.1, ctx.use(Child).done.set).start()
    t = time.perf_counter()
    assert _next_check(ctx, [first, later], {first: None, later: None}) is later
    assert 0.08 < time.perf_counter() - t < 2.0


def test_the_first_runs_when_its_work_finishes_before_the_later_one(sample_dir: Path) -> None:
    ctx = _ctx(sample_dir)
    first, later = _check("images", Hashing), _check("boxes", Child)
    threading.Timer(0.1, ctx.use(Hashing).done.set).start()
    assert _next_check(ctx, [first, later], {first: None, later: None}) is first
    assert not ctx.use(Child).ready(ctx)


def test_nothing_leaves_its_turn_otherwise(sample_dir: Path) -> None:
    ctx = _ctx(sample_dir)
    images, boxes, lazy, same, none = (
        _check("images", Hashing),
        _check("boxes", Child),
        _check("lazy", OnDemand),
        _check("same", Hashing),
        _check("plain"),
    )
    cold = {c: None for c in (images, boxes, lazy, same, none)}
    t = time.perf_counter()
    # a later check computed here, one waiting on the same work, one with no needs: the first keeps its turn at once
    assert _next_check(ctx, [images, lazy, same, none], cold) is images
    assert time.perf_counter() - t < 0.5
    ctx.use(Child).done.set()
    assert _next_check(ctx, [images, boxes], {**cold, boxes: []}) is images  # a cached later check keeps its turn
    assert _next_check(ctx, [images, boxes], {**cold, images: []}) is images  # a cached first never waits
    ctx.use(Hashing).done.set()
    assert _next_check(ctx, [images, boxes], cold) is images  # its work done: in order again


def test_fast_scores_keep_the_checks_order_and_the_box_checks_do_not_wait_for_the_images(
    sample_dir: Path, monkeypatch
) -> None:
    """``--fast`` on the sample, its hashing held until the box model's child has exited: the box checks run before
    image_checks, and the scores come back in the checks' order all the same, each check's as when run in order."""
    from curate.audit.boxmodel import BoxModel
    from curate.audit.shared import ImageSignatures
    from curate.vision import hashing

    ran: list[str] = []
    ctx = AuditContext(load_yolo(sample_dir), fast=True)
    hash_now = hashing.image_signatures

    def after_the_child(*args, **kwargs):
        box, until = ctx.use(BoxModel), time.perf_counter() + 60  # (no child on one core: the box model runs here)
        while (box.running(ctx) or box.job is None and box._scores is None) and time.perf_counter() < until:
            time.sleep(0.01)
        return hash_now(*args, **kwargs)

    monkeypatch.setattr(hashing, "image_signatures", after_the_child)
    scores, _, errors = score_dataset(ctx, use_cache=False, on_check=ran.append)
    assert not errors
    order = [c.module for c in registered() if not c.skipped(ctx)]
    assert sorted(ran) == sorted(order)
    assert ran.index("shifted") < ran.index("image_checks")
    monkeypatch.undo()
    modules = {n: c.module for c in registered() for n in c.names}
    seen = [modules[f.check] for f in scores]
    assert seen == sorted(seen, key=order.index)  # one block per check, in the checks' order
    in_order = AuditContext(load_yolo(sample_dir), fast=True)
    by_hand: list = []
    for check in registered():
        if not check.skipped(in_order):
            by_hand.extend(check.run(in_order))
    for dep in (ImageSignatures, BoxModel):
        in_order.use(dep).stop(in_order)
    assert [(f.check, f.image, f.line, f.score, f.message) for f in scores] == [
        (f.check, f.image, f.line, f.score, f.message) for f in by_hand
    ]
