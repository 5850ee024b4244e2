"""The audit's one embedding child (:class:`curate.audit.shared.CropEmbeddings`): the boxes' and ``missing``'s
windows' embeddings from one process, the numbers of the two calls made apart, and no child left after an audit,
one that raises included."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import psutil
import pytest

from curate.audit.checks.base import AuditContext
from curate.audit.runner import score_dataset
from curate.io.yolo import load_yolo
from curate.vision import embed

needs_weights = pytest.mark.skipif(
    not embed.weights_path().is_file(), reason=f"embedding weights not at {embed.weights_path()}"
)


def _embedding_children() -> set[int]:
    """Pids of this process's worker children that preload the backbone's module."""
    found = set()
    for child in psutil.Process().children(recursive=True):
        try:
            cmd = child.cmdline()
        except psutil.Error:
            continue
        if any("curate.runtime.worker" in part for part in cmd) and embed.__name__ in cmd:
            found.add(child.pid)
    return found


class _Watch:
    """Every embedding child seen while the block runs (polled every 20 ms: a child imports torch for seconds)."""

    def __enter__(self) -> set[int]:
        self.seen: set[int] = set()
        self._done = threading.Event()

        def poll() -> None:
            while not self._done.wait(0.02):
                self.seen |= _embedding_children()

        self._thread = threading.Thread(target=poll, daemon=True)
        self._thread.start()
        return self.seen

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()


@needs_weights
def test_missing_and_class_inconsistent_are_served_by_one_embedding_child(
    sample_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """One process imports torch for both (≈ 4 CPU-s each), and it is gone when the audit returns."""
    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path / "cache"))
    ctx = AuditContext(load_yolo(sample_dir))
    with _Watch() as seen:
        _, _, errors = score_dataset(ctx, only={"missing", "class_inconsistent"}, use_cache=False)
    assert not errors
    assert list((tmp_path / "cache" / "embed").rglob("*.npy"))  # the boxes' embeddings were made
    assert list((tmp_path / "cache" / "embed-windows").rglob("*.npy"))  # and the windows'
    assert len(seen) == 1
    assert not any(psutil.pid_exists(pid) for pid in seen)


@needs_weights
@pytest.mark.parametrize("stop_at", ["missing", "class_inconsistent"])
def test_an_audit_that_raises_leaves_no_embedding_child(
    sample_dir: Path, tmp_path: Path, monkeypatch, stop_at: str
) -> None:
    """Stopped before ``missing`` (the child idle) or after it (the child done): either way none is left."""
    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path / "cache"))
    ctx = AuditContext(load_yolo(sample_dir))
    alive: set[int] = set()

    def stop(module: str) -> None:
        if module == stop_at:
            alive.update(_embedding_children())
            raise RuntimeError("stopped")

    with _Watch() as seen, pytest.raises(RuntimeError, match="stopped"):
        score_dataset(ctx, only={"missing", "class_inconsistent"}, use_cache=False, on_check=stop)
    assert (stop_at == "missing") == bool(alive)  # idle before missing; after it, done and gone
    assert not any(psutil.pid_exists(pid) for pid in seen | alive)


@needs_weights
def test_both_embeddings_in_one_call_are_the_numbers_of_two_calls(
    sample_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    ds = load_yolo(sample_dir)
    ds.images = ds.images[:12]
    items = [(r.path, np.array([[0.1, 0.1, 0.4, 0.5], [0.5, 0.2, 0.9, 0.9]])) for r in ds.images]
    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path / "together"))
    boxes, windows = embed.dataset_and_window_embeddings(ds, items)
    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path / "apart"))
    assert all(np.array_equal(a, b) for a, b in zip(boxes, embed.dataset_embeddings(ds, progress=False), strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(windows, embed.window_embeddings(items), strict=True))
