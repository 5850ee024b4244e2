"""An audit's CPU split into its one-thread head, its two-core stretch and its one-thread tail (run by hand).

Why: on a shared 2-core host the wall seconds of `curate audit --fast` say more about the other jobs than about
the code, while CPU seconds do not say which of them lie on the critical path. This runs the CLI in-process and
reports the main thread's CPU before the images start hashing (the head: start-up, imports, reading the dataset)
and after it collects their signatures (the tail: the checks that need them, the cache writes, the report), and
all other CPU (the stretch: the hashing threads, the box model's child, the main thread meanwhile). On an idle
2-core host the wall is about head + stretch / 2 + tail (the stretch keeps both cores busy).

    CPATH_OUT=cpath.txt CURATE_CACHE_DIR=$(mktemp -d) python benchmarks/critical_path.py \
        audit ../shared/datasets/food-ingredients --fast --no-fiftyone --out /tmp/out

One line to ``$CPATH_OUT`` (benchmarks/README.md, *Audit speed*, session 28).
"""

from __future__ import annotations

import atexit
import os
import resource
import runpy
import sys
import threading
import time

import curate.audit.shared as shared

#: (thread CPU, wall) of the main thread when the hashing started and when it collected the signatures.
marks: dict[str, tuple[float, float]] = {}
_start, _get = shared.ImageSignatures.start, shared.ImageSignatures.get


def _mark(name: str) -> None:
    marks.setdefault(name, (time.thread_time(), time.perf_counter()))


def start(self, ctx):  # ImageSignatures.start, marked
    _mark("hash_start")
    return _start(self, ctx)


def get(self, ctx):  # ImageSignatures.get, marked where the main thread collects the signatures
    result = _get(self, ctx)
    if threading.current_thread() is threading.main_thread():
        _mark("sigs_got")
    return result


def report(t0: float) -> None:
    """One line: head, stretch, tail, the children's CPU, all CPU, the idle 2-core estimate, wall, load."""
    main_cpu, now, proc = time.thread_time(), time.perf_counter(), time.process_time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    child = children.ru_utime + children.ru_stime
    head = marks["hash_start"][0]
    tail = main_cpu - marks["sigs_got"][0]
    stretch = proc + child - head - tail
    line = (
        f"head={head:.2f} stretch={stretch:.2f} tail={tail:.2f} child={child:.2f} all={proc + child:.2f} "
        f"model={head + stretch / 2 + tail:.2f} wall={now - t0:.2f} load={os.getloadavg()[0]:.1f}"
    )
    with open(os.environ["CPATH_OUT"], "w", encoding="utf-8") as fh:
        fh.write(line + "\n")


if __name__ == "__main__":
    shared.ImageSignatures.start, shared.ImageSignatures.get = start, get
    atexit.register(report, time.perf_counter())
    sys.argv = ["curate", *sys.argv[1:]]
    runpy.run_module("curate.app.cli", run_name="__main__")
