"""Call a function in a fresh Python process and collect its result later.

Why: ``--fast``'s box model is Python and numpy work that holds the GIL most of the time. In a thread it
fights the hashing threads for it; in a second process it runs on the other core while this one hashes
(benchmarks/README.md, *Session 8: `--fast` in three processes*). The full audit's dataset plots
(matplotlib) are drawn in another child meanwhile.

Why not ``concurrent.futures.ProcessPoolExecutor``: its spawn and forkserver children import the caller's
``__main__`` script again, so a user's script without an ``if __name__ == "__main__"`` guard would run its
top-level code twice; fork is unsafe once threads run (FiftyOne's database start, OpenCV). ``python -c``
imports nothing of the caller's: the call and its result travel as pickles in a temporary folder.
"""

from __future__ import annotations

import importlib
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_CHILD = "import sys, curate.runtime.worker as w; sys.exit(w.child_main(*sys.argv[1:]))"


class WorkerError(RuntimeError):
    """The child failed: its exception's last line, or how it exited."""


@dataclass
class Job:
    """A child process: :meth:`call` hands it a function call, :meth:`result` waits for its value."""

    proc: subprocess.Popen
    folder: Path
    called: bool = False

    def call(self, func: str, *args: Any, **kwargs: Any) -> None:
        """Run ``func`` (``"package.module:function"``) with picklable arguments in the child (once).

        :class:`WorkerError` when the arguments do not pickle or the child is gone.
        """
        try:
            with open(self.folder / "call.pkl", "wb") as fh:  # the child reads it only after the line below
                pickle.dump((func, args, kwargs), fh, protocol=pickle.HIGHEST_PROTOCOL)
            assert self.proc.stdin is not None
            self.proc.stdin.write(b"go\n")  # a line: never blocks on the pipe
            self.proc.stdin.close()
        except Exception as exc:  # noqa: BLE001 — an unpicklable argument, a child that died while importing
            self.cancel()
            raise WorkerError(f"cannot hand the call to the child process: {type(exc).__name__}: {exc}") from exc
        self.called = True

    def result(self, timeout: float | None = None) -> Any:
        """The function's return value; :class:`WorkerError` when the child raised, crashed or was killed."""
        if not self.called:
            self.cancel()
            raise WorkerError("the child process was given no call")
        try:
            self.proc.wait(timeout=timeout)
            out = self.folder / "result.pkl"
            if self.proc.returncode == 0 and out.exists():
                with open(out, "rb") as fh:
                    return pickle.load(fh)
            err = self.folder / "error.txt"
            line = err.read_text(encoding="utf-8").strip().splitlines()[-1:] if err.exists() else []
            raise WorkerError(line[0] if line else f"the child process exited with {self.proc.returncode}")
        finally:
            if self.proc.poll() is not None:
                shutil.rmtree(self.folder, ignore_errors=True)

    def cancel(self) -> None:
        """Stop the child (a result nobody will read, or a call never made) and remove its files."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        shutil.rmtree(self.folder, ignore_errors=True)


def spawn(*preload: str) -> Job:
    """A child process that imports the modules ``preload`` now and then waits for :meth:`Job.call`.

    Why in two steps: a child started before its arguments exist starts up and does its imports meanwhile,
    so it starts computing as soon as the call comes. The child
    inherits the environment (cache folder, thread settings) and the working directory; a traceback is
    kept in ``error.txt`` for :meth:`Job.result`. :class:`WorkerError` when it cannot start.
    """
    folder = None
    try:
        folder = Path(tempfile.mkdtemp(prefix="curate-worker-"))
        cmd = [sys.executable or "python3", "-c", _CHILD, str(folder), _package_dir(), *preload]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except Exception as exc:  # noqa: BLE001 — no temp folder, no interpreter to start
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        raise WorkerError(f"cannot start a child process: {type(exc).__name__}: {exc}") from exc
    return Job(proc, folder)


def start(func: str, *args: Any, **kwargs: Any) -> Job:
    """:func:`spawn` a child for ``func``'s module and :meth:`Job.call` it: ``func`` runs in a new process."""
    job = spawn(func.split(":")[0])
    job.call(func, *args, **kwargs)
    return job


def worth_it() -> bool:
    """Whether a second process can run beside this one: two cores or more (on one it only adds its start-up)."""
    return (os.cpu_count() or 1) >= 2


def try_spawn(*preload: str) -> Job | None:
    """:func:`spawn`, or None where it is not :func:`worth_it` or cannot start: the caller then does the
    work itself (``CURATE_DEBUG=1`` raises the :class:`WorkerError` instead)."""
    if not worth_it():
        return None
    try:
        return spawn(*preload)
    except WorkerError:
        if os.environ.get("CURATE_DEBUG"):
            raise
        return None


def try_call(job: Job | None, func: str, *args: Any, **kwargs: Any) -> Job | None:
    """:meth:`Job.call` on ``job``; None when there is no job or the call cannot be handed over (as
    :func:`try_spawn`)."""
    if job is None:
        return None
    try:
        job.call(func, *args, **kwargs)
    except WorkerError:
        if os.environ.get("CURATE_DEBUG"):
            raise
        return None
    return job


def _package_dir() -> str:
    return str(Path(__file__).resolve().parent)


def child_main(folder: str, package: str = "", *preload: str) -> int:
    """In the child: import ``preload``, wait for the call (a line on stdin), run it, and pickle its result
    (or write the traceback) into ``folder``.

    ``package`` is the parent's ``curate`` folder: the child inherits its environment and working
    directory, so it imports the same code, and refuses (an error, not another version's result) if not.
    Stdin closed without a line means the parent cancelled or died: the child exits quietly.
    """
    where = Path(folder)
    try:
        if package and package != _package_dir():
            raise ImportError(f"the child imported curate from {_package_dir()}, the parent from {package}")
        for module in preload:
            importlib.import_module(module)
        if not sys.stdin.readline():
            return 1
        with open(where / "call.pkl", "rb") as fh:
            func, args, kwargs = pickle.load(fh)
        module, name = func.split(":")
        value = getattr(importlib.import_module(module), name)(*args, **kwargs)
        tmp = where / "result.tmp"
        with open(tmp, "wb") as fh:
            pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, where / "result.pkl")  # the parent never reads a half-written result
        return 0
    except BaseException:  # noqa: BLE001 — everything goes back to the parent as text
        (where / "error.txt").write_text(traceback.format_exc(), encoding="utf-8")
        return 1
