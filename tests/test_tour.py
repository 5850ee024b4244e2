"""The README's guided tour as a new user follows it: its commands, read from README.md, run in order on the
bundled sample, each checked against what the README says it prints and writes.

The commands are real subprocesses in a fresh folder laid out like the repository root (``curate/sample/
food-mini`` and ``pipelines/`` linked in), with conftest.py's isolated FiftyOne database and cache. Training is
the tour's own tiny one (1 epoch, 64 px, CPU). Not run: ``curate review`` (it serves the App until Ctrl-C; the
reviewer's edit is made on the same FiftyOne dataset the App edits), and the recipe's ``--from export``,
``--profile ci`` and ``--profile gpu`` (real training of 5, 1 and 100 epochs: tests/app/test_pipeline.py runs
the ci profile). Numbers the README quotes are asserted in the README and in the output, so the README stays
true.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from curate.io.yolo import load_yolo

REPO = Path(__file__).resolve().parents[1]
CURATE = str(REPO / ".venv" / "bin" / "curate")
SAMPLE = REPO / "curate" / "sample" / "food-mini"
MIXED = "train/images/WhatsApp-Image-2024-03-26-at-3-33-43-PM-5-_jpeg"  # the file mixing polygon and box rows
KEEP = "chicken,onion,potato,egg,tomato,carrot"
TOUR = [
    "curate info curate/sample/food-mini",
    "curate audit curate/sample/food-mini",
    "curate audit curate/sample/food-mini --fast",
    "curate review curate/sample/food-mini",
    "curate export curate/sample/food-mini --out food-mini-reviewed",
    f"curate rebalance food-mini-reviewed --out food-mini-6 --keep-classes {KEEP} --split 80/10/10",
    "curate backgrounds food-mini-6 --out food-mini-6-bg --fraction 0.10",
    "curate train-and-compare curate/sample/food-mini food-mini-6-bg --imgsz 64 --epochs 1 --batch 8 --workers 0 "
    "--device cpu",
    "curate history",
    "curate run pipelines/default.yaml curate/sample/food-mini",
    "curate review curate/sample/food-mini",
    "curate run pipelines/default.yaml curate/sample/food-mini --from export",
    "curate run pipelines/default.yaml curate/sample/food-mini --profile ci",
    "curate run pipelines/default.yaml curate/sample/food-mini --dry-run",
    "curate run pipelines/seed-food.yaml ../shared/datasets/food-ingredients --profile gpu",
]
NOT_RUN = {TOUR[3], TOUR[10], TOUR[11], TOUR[12], TOUR[14]}
#: What the README quotes from the tour's output, word for word.
QUOTED = {
    "rebalance": "58 of 80 images (72 %)",
    "backgrounds": "train is already 75 % background images (48 of 64 have no box)",
    "test set": "test set: 8 of AFTER's 8 test images, none of them trained on by either side; BEFORE trains without "
    "the 8 of its train/val images that are these photos",
}


def readme_tour() -> list[str]:
    """The ``curate`` commands of the README's guided tour (the team section's ``/data/aquarium`` left out)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    tour = text[text.index("## Guided tour") : text.index("## Working on curate")]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", tour, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = " ".join(re.sub(r"\s+#.*$", "", line).split())
            if line.startswith("curate ") and "/data/" not in line:
                commands.append(line)
    return commands


def run(cwd: Path, command: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    args = shlex.split(command)
    r = subprocess.run([CURATE, *args[1:]], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)
    assert r.returncode == 0, f"{command}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    assert "Traceback" not in r.stderr, command
    return r


def review_like_a_person() -> str:
    """In the App a reviewer deletes the polygon row the audit's FORMAT card points at; returns its label file."""
    from curate.fiftyone.load import to_fiftyone

    fod = to_fiftyone(load_yolo(SAMPLE))
    sample = next(s for s in fod if s.curate_rel.startswith(MIXED))
    sample.ground_truth.detections = [d for d in sample.ground_truth.detections if d["line"] != 1]
    sample.save()
    return Path(sample.curate_rel).stem


def test_the_readme_lists_the_tour_this_test_runs() -> None:
    assert readme_tour() == TOUR
    readme = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    for words in QUOTED.values():
        assert words in readme, words


def test_guided_tour(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "curate" / "sample").mkdir(parents=True)
    (root / "curate" / "sample" / "food-mini").symlink_to(SAMPLE)
    (root / "pipelines").symlink_to(REPO / "pipelines")
    sample_files = {p: p.read_bytes() for p in SAMPLE.rglob("*") if p.is_file()}
    slug = load_yolo(SAMPLE).slug
    reports = root / "reports" / slug
    out = {}
    for command in TOUR:
        if command in NOT_RUN:
            if command == TOUR[3]:
                mixed = review_like_a_person()
            continue
        out[command] = run(root, command)

    info = out[TOUR[0]].stdout
    assert "format findings (1)" in info and "mixes polygon rows" in info
    assert all(name in info for name in load_yolo(SAMPLE).names) and len(load_yolo(SAMPLE).names) == 36

    audit = reports / "audit"
    assert {"report.html", "findings.csv", "findings.json"} <= {p.name for p in audit.iterdir()}
    with (audit / "findings.csv").open(newline="") as fh:
        assert next(csv.reader(fh)) == "split,image,line,check,score,message,x,y,w,h".split(",")
    assert f"curate-{slug}" in out[TOUR[1]].stdout
    first = re.findall(r'data-check="([a-z_]+)"[^\n]*\n[^\n]*look at these first', (audit / "report.html").read_text())
    assert first == ["leakage"]  # the README: leakage first, then label errors, then file problems
    md = (audit / "report.md").read_text()
    assert "- **leakage**: 5 pairs (9 images, 11.2% of images) — look at these first" in md
    assert md.index("- **leakage**") < md.index("- **grouped**") < md.index("- **format**")
    fast = out[TOUR[2]].stdout
    assert (reports / "audit-fast" / "report.html").exists() and "not run" in fast
    assert (
        json.loads((audit / "findings.json").read_text())["not_run"]
        != json.loads((reports / "audit-fast" / "findings.json").read_text())["not_run"]
    )  # the fast audit wrote its own folder; the full audit's stayed

    reviewed = root / "food-mini-reviewed"
    with (reviewed / "changes.csv").open(newline="") as fh:
        changes = list(csv.DictReader(fh))
    assert [(Path(c["image"]).stem, c["line"], c["kind"]) for c in changes] == [(mixed, "1", "deleted")]
    assert (reviewed / "CHANGES.md").exists()

    assert QUOTED["rebalance"] in " ".join(out[TOUR[5]].stderr.split() + out[TOUR[5]].stdout.split())
    six = root / "food-mini-6"
    summary = json.loads((six / "rebalance.json").read_text())
    assert summary["final_image_ratios"] == {"train": 0.8, "val": 0.1, "test": 0.1}
    assert sorted(load_yolo(six).names) == sorted(KEEP.split(","))
    # the review reached training: the mixed file's polygon row is gone, every row is a box
    (label,) = [p for p in six.rglob(f"{mixed}.txt")]
    assert all(len(line.split()) == 5 for line in label.read_text().splitlines())

    bg = out[TOUR[6]]
    assert QUOTED["backgrounds"] in " ".join(bg.stderr.split())
    assert (root / "food-mini-6-bg" / "backgrounds.json").exists()
    assert (root / "food-mini-6-bg" / "backgrounds_contact.png").exists()

    cmp = out[TOUR[7]]
    assert QUOTED["test set"] in " ".join(cmp.stderr.split())
    (folder,) = (root / "reports" / "compare").iterdir()
    data = json.loads((folder / "compare.json").read_text())
    assert data["test"]["leaked"] == {"BEFORE": 0, "AFTER": 0} and data["test"]["held_out_of_before"] == 8
    assert (folder / "compare.html").exists() and "NOT A FAIR TEST" not in cmp.stdout
    history = (root / "reports" / "history.jsonl").read_text().splitlines()
    assert len(history) == 1 and json.loads(history[0])["verdict"] == data["verdict"]
    assert data["verdict"] in out[TOUR[8]].stdout

    paused = out[TOUR[9]].stdout + out[TOUR[9]].stderr
    assert "curate review" in paused and "--from export" in paused
    assert "train-and-compare" in out[TOUR[13]].stdout + out[TOUR[13]].stderr

    assert {p: p.read_bytes() for p in SAMPLE.rglob("*") if p.is_file()} == sample_files  # never modified


@pytest.fixture(autouse=True)
def _no_stray_runs_folder():
    """Ultralytics must write under the comparison's folder, never ./runs of the repository."""
    before = (REPO / "runs").exists()
    yield
    assert (REPO / "runs").exists() == before
