"""planted_noise.plant_errors: deterministic per seed, right counts per type, truthful bookkeeping."""

from __future__ import annotations

from pathlib import Path

import pytest

from curate.core.dataset import Dataset, ImageRecord, Label
from planted_noise import NOISE_TYPES, SOURCE, plant_errors


def _dataset(n_images: int = 40, boxes_per_image: int = 6) -> Dataset:
    """Images with rows of nearby same-class boxes (so grouped has candidates), 3 classes."""
    images = []
    for i in range(n_images):
        labels = [
            Label(class_id=(i + k // 3) % 3, cx=0.1 + 0.13 * k, cy=0.3 + 0.05 * (k % 2), w=0.1, h=0.12, line=k + 1)
            for k in range(boxes_per_image)
        ]
        split = "train" if i < n_images * 3 // 4 else "val"
        images.append(ImageRecord(split, Path(f"/nowhere/{i}.jpg"), f"{split}/images/{i}.jpg", None, labels))
    return Dataset(root=Path("/nowhere"), name="toy", names=["a", "b", "c"], images=images)


def _snapshot(ds: Dataset) -> list[tuple]:
    return [(r.rel, r.edited, tuple(r.labels)) for r in ds.images]


def test_deterministic_for_a_seed_and_different_across_seeds() -> None:
    ds = _dataset()
    a, ta = plant_errors(ds, rate=0.05, seed=3)
    b, tb = plant_errors(ds, rate=0.05, seed=3)
    c, _ = plant_errors(ds, rate=0.05, seed=4)
    assert _snapshot(a) == _snapshot(b) and ta.boxes == tb.boxes
    assert _snapshot(a) != _snapshot(c)


def test_input_is_not_mutated() -> None:
    ds = _dataset()
    before = _snapshot(ds)
    plant_errors(ds, rate=0.1, seed=0)
    assert _snapshot(ds) == before


@pytest.mark.parametrize("kind", NOISE_TYPES)
def test_count_per_type_and_train_only(kind: str) -> None:
    ds = _dataset()
    n_train = sum(len(r.labels) for r in ds.split("train"))
    noisy, truth = plant_errors(ds, rate=0.05, types=[kind], seed=1)
    expected = round(0.05 * n_train)
    assert truth.counts[kind] == expected
    planted = [k for k, v in truth.boxes.items() if v == kind]
    assert len(planted) == (0 if kind == "missing" else expected)
    assert len(truth.missing) == (expected if kind == "missing" else 0)
    edited = {r.rel for r in noisy.images if r.edited}
    assert edited and all(rel.startswith("train/") for rel in edited)
    assert [r.labels for r in noisy.split("val")] == [r.labels for r in ds.split("val")]


def test_box_counts_change_as_each_type_says() -> None:
    ds = _dataset()
    noisy, truth = plant_errors(ds, rate=0.05, seed=2)
    c = truth.counts
    n_before = sum(len(r.labels) for r in ds.split("train"))
    n_after = sum(len(r.labels) for r in noisy.split("train"))
    # copies add one box each, deletions remove one, a group of k (2–4) boxes becomes one
    assert c["grouped"] > 0
    assert n_after - n_before <= c["duplicate"] + c["ambiguous"] - c["missing"] - c["grouped"]
    assert n_after - n_before >= c["duplicate"] + c["ambiguous"] - c["missing"] - 3 * c["grouped"]


def test_truth_is_keyed_by_new_lines_and_describes_the_box() -> None:
    ds = _dataset()
    originals = {r.rel: r for r in ds.images}
    noisy, truth = plant_errors(ds, rate=0.08, seed=5)
    for rec in noisy.split("train"):
        assert [lab.line for lab in rec.labels] == list(range(1, len(rec.labels) + 1))
        orig = originals[rec.rel]
        for lab in rec.labels:
            kind = truth.truth(rec.rel, lab.line)
            if kind == "swapped":
                assert all(o.class_id != lab.class_id or o.xyxy != lab.xyxy for o in orig.labels)
                assert any(o.xyxy == lab.xyxy for o in orig.labels)
            elif kind in ("duplicate", "ambiguous"):
                assert lab.line == len(rec.labels) or truth.truth(rec.rel, lab.line + 1) in ("duplicate", "ambiguous")
                sources = [l for l in rec.labels if truth.truth(rec.rel, l.line) == SOURCE]
                assert sources
                same = any(s.class_id == lab.class_id for s in sources)
                assert same if kind == "duplicate" else any(s.class_id != lab.class_id for s in sources)
            elif kind == "loose":
                assert not any(o.xyxy == lab.xyxy for o in orig.labels)
            elif kind == "grouped":
                inside = [
                    o
                    for o in orig.labels
                    if o.class_id == lab.class_id
                    and o.xyxy[0] >= lab.xyxy[0] - 1e-9
                    and o.xyxy[2] <= lab.xyxy[2] + 1e-9
                ]
                assert len(inside) >= 2
    for rel, lab in truth.missing:
        assert lab in originals[rel].labels
        assert not any(
            l.xyxy == lab.xyxy and l.class_id == lab.class_id
            for l in next(r for r in noisy.images if r.rel == rel).labels
        )


def test_loose_and_shifted_stay_inside_the_image() -> None:
    noisy, truth = plant_errors(_dataset(), rate=0.1, types=["loose", "shifted"], seed=0)
    for rec in noisy.split("train"):
        for lab in rec.labels:
            if truth.truth(rec.rel, lab.line):
                x1, y1, x2, y2 = lab.xyxy
                assert -1e-9 <= x1 < x2 <= 1 + 1e-9 and -1e-9 <= y1 < y2 <= 1 + 1e-9


def test_unknown_type_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown noise types"):
        plant_errors(_dataset(), types=["typo"])


def _write_tree(root: Path, n: int = 24) -> None:
    """A Roboflow-layout dataset of tiny images with three boxes each (two classes)."""
    from PIL import Image

    for split, folder, count in (("train", "train", n), ("val", "valid", 4)):
        (root / folder / "images").mkdir(parents=True)
        (root / folder / "labels").mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", (64, 64), (90, 90, 90)).save(root / folder / "images" / f"{i}.jpg")
            rows = [f"{k % 2} {0.2 + 0.3 * k:.3f} 0.5 0.2 0.3" for k in range(3)]
            (root / folder / "labels" / f"{i}.txt").write_text("\n".join(rows) + "\n")
    (root / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\nnc: 2\nnames: ['a', 'b']\n")


def _load_bench():
    """benchmarks/label_noise.py as a module (the benchmarks folder is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "label_noise", Path(__file__).resolve().parents[2] / "benchmarks" / "label_noise.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)  # type: ignore[union-attr]
    return bench


def test_benchmark_runs_end_to_end_and_scores_geometry_checks(tmp_path: Path) -> None:
    """The benchmark script: plants, runs the checks it asked for, scores them, shows absent checks as None."""
    import json

    bench = _load_bench()
    _write_tree(tmp_path / "ds")
    out = tmp_path / "out"
    assert (
        bench.main(
            [
                "--dataset",
                str(tmp_path / "ds"),
                "--seeds",
                "0",
                "1",
                "--rate",
                "0.1",
                "--checks",
                "duplicate",
                "ambiguous",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    payload = json.loads((out / "label_noise.json").read_text())
    res = payload["results"][0]
    rows = res["summary"]["types"]
    assert rows["duplicate"]["check_ap"][0] == 1.0 and rows["ambiguous"]["check_ap"][0] == 1.0
    assert rows["loose"]["check_ap"] is None  # background_heavy not asked for: shown as "—"
    assert set(res["checks_ran"]) == {"duplicate", "ambiguous"}
    assert res["summary"]["missing_planted"][0] == round(0.1 * 72)
    assert "| duplicate | duplicate |" in (out / "label_noise.md").read_text()
    # a planted duplicate never counts as a false flag; untouched identical rows of boxes are never flagged
    assert res["summary"]["false_flags_per_100"][0] == 0.0


def test_known_errors_leave_the_negatives_and_lift_the_ap(tmp_path: Path) -> None:
    """``--known``: an untouched box listed as a real group box (by its ORIGINAL line) is found again in the
    noisy copy (lines renumbered) and left out of grouped's negatives; AP counts it as a false positive without."""
    bench = _load_bench()
    ds = _dataset()
    noisy, truth = plant_errors(ds, rate=0.05, types=("grouped",), seed=0)
    noisy_of = {r.rel: r for r in noisy.images}
    moved = [  # (original record, original label) of untouched boxes whose line the planting renumbered
        (rec, lab)
        for rec in ds.split("train")
        for lab in rec.labels
        for n in noisy_of[rec.rel].labels
        if (n.class_id, n.cx, n.cy, n.w, n.h) == (lab.class_id, lab.cx, lab.cy, lab.w, lab.h)
        and truth.truth(rec.rel, n.line) is None
        and n.line != lab.line
    ]
    rec, lab = moved[0]
    csv_path = tmp_path / "known.csv"
    csv_path.write_text(
        f"image,line,class,real_type,note\n{rec.rel},{lab.line},a,grouped,by eye\n{rec.rel},1,a,,looks right\n"
    )
    known = bench.known_keys(ds, noisy, bench.load_known(csv_path))
    (key,) = known["grouped"]
    assert key[0] == rec.rel and key[1] != lab.line and truth.truth(*key) is None  # same box, new line, untouched
    keys = [(r.rel, l.line) for r in noisy.split("train") for l in r.labels]
    score = {k: 0.9 for k in keys if truth.truth(*k) == "grouped"} | {key: 1.0}
    plain = bench.rank_metrics(keys, truth, "grouped", score)
    cleaned = bench.rank_metrics(keys, truth, "grouped", score, exclude=known["grouped"])
    assert plain["ap"] < 1.0 and cleaned["ap"] == pytest.approx(1.0)


def test_operating_points_count_planted_and_untouched_boxes_at_each_threshold() -> None:
    """Flagged share of the type's planted boxes and false flags per 100 untouched boxes, per threshold;
    boxes planted as another type count as neither."""
    bench = _load_bench()
    noisy, truth = plant_errors(_dataset(), rate=0.05, types=("grouped", "loose"), seed=0)
    keys = [(r.rel, l.line) for r in noisy.split("train") for l in r.labels]
    grouped = [k for k in keys if truth.truth(*k) == "grouped"]
    loose = [k for k in keys if truth.truth(*k) == "loose"]
    untouched = [k for k in keys if truth.truth(*k) is None]
    score = {k: 0.35 for k in grouped[: len(grouped) // 2]} | {untouched[0]: 0.55} | {k: 0.9 for k in loose}
    ops = bench.operating_points(keys, truth, {"grouped": score}, untouched)
    assert set(ops) == {"grouped"}  # only checks that ran
    assert ops["grouped"]["0.3"]["flagged"] == pytest.approx((len(grouped) // 2) / len(grouped))
    assert ops["grouped"]["0.4"]["flagged"] == 0.0
    assert ops["grouped"]["0.5"]["false_per_100"] == pytest.approx(
        100 / len(untouched)
    )  # the loose boxes at 0.9 don't count
    assert ops["grouped"]["0.6"]["false_per_100"] == 0.0


def test_notes_are_no_part_of_the_merged_list() -> None:
    """A note (a box cut by the border) on an untouched box neither outranks planted errors in the merged
    worst-first list nor counts as a false flag; the same score from an error check does both."""
    from curate.audit.checks.base import AuditContext
    from curate.core.findings import Finding

    bench = _load_bench()
    noisy, truth = plant_errors(_dataset(), rate=0.05, types=("grouped",), seed=0)
    keys = [(r.rel, l.line) for r in noisy.split("train") for l in r.labels]
    clean = [k for k in keys if truth.truth(*k) is None]
    planted = [
        Finding("train", rel, "grouped", 0.8, "", line=line)
        for rel, line in keys
        if truth.truth(rel, line) == "grouped"
    ]
    ctx = AuditContext(noisy)

    def merged(check: str) -> dict:
        extra = [Finding("train", rel, check, 0.9, "", line=line) for rel, line in clean[:5]]
        return bench.score_seed(noisy, truth, planted + extra, ctx, {"grouped", "ambiguous"})

    as_note, as_error = merged("border_cut"), merged("ambiguous")
    assert as_note["types"]["grouped"]["any"]["ap"] == pytest.approx(1.0) and as_note["false_flags_per_100"] == 0.0
    assert as_error["types"]["grouped"]["any"]["ap"] < 1.0 and as_error["false_flags_per_100"] > 0.0


def test_pool_table_shows_the_mean_and_the_worst_dataset() -> None:
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "pool_table.py"
    spec = importlib.util.spec_from_file_location("pool_table", path)
    pool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pool)  # type: ignore[union-attr]

    def result(name: str, ap: float, flags: float) -> dict:
        row = {"ap": ap}
        seed = {
            "types": {"grouped": {"any": row, "check": row, "baseline": row}},
            "false_flags_per_100": flags,
            "baseline_false_flags_per_100": 0.0,
            "missing": {"recall": 0.5, "regions": 10},
        }
        return {"name": name, "train_boxes": 100, "per_seed": [seed]}

    lines = pool.table([result("a", 0.9, 1.0), result("b", 0.5, 3.0)]).splitlines()
    mean = next(line for line in lines if line.startswith("| **mean**"))
    worst = next(line for line in lines if line.startswith("| **worst**")).split(" | ")
    assert mean.startswith("| **mean** | 0.70") and worst[1] == "0.50"
    assert "3.00" in worst and "10.00" in worst  # the highest false flags; 10 regions per 100 boxes
    assert lines[-1] == "merged below the naive baseline: none"


def test_pool_table_marks_a_merged_ap_below_the_baseline_for_every_kind() -> None:
    """The house rule (#22): the merged list never loses to the naive geometry, for any kind — duplicate and
    ambiguous included, whose baseline the table did not show."""
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "pool_table.py"
    spec = importlib.util.spec_from_file_location("pool_table", path)
    pool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pool)  # type: ignore[union-attr]
    types = {
        "grouped": {"any": {"ap": 0.9}, "check": {"ap": 0.95}, "baseline": {"ap": 0.5}},
        "duplicate": {"any": {"ap": 0.88}, "check": {"ap": 0.94}, "baseline": {"ap": 0.91}},
    }
    seed = {"types": types, "false_flags_per_100": 0.3, "baseline_false_flags_per_100": 0.4}
    lines = pool.table([{"name": "bccd", "train_boxes": 100, "per_seed": [seed]}]).splitlines()
    head = [h.strip() for h in lines[0].split("|")]
    row = [c.strip() for c in lines[2].split("|")]
    assert row[head.index("merged duplicate")] == "0.88 < 0.91" and row[head.index("baseline duplicate")] == "0.91"
    assert (
        row[head.index("merged grouped")] == "0.90" and lines[-1] == "merged below the naive baseline: bccd duplicate"
    )


def test_a_real_error_of_another_kind_leaves_the_merged_negatives_with_known() -> None:
    """bccd: a platelet labelled WBC (a real swap, P(swap) 1.0) outranks the planted duplicates in the merged
    list. With ``--known`` the merged list and the baseline are also scored with every real error, of any kind,
    set aside — not only the check's own kind."""
    from curate.audit.checks.base import AuditContext
    from curate.core.findings import Finding

    bench = _load_bench()
    noisy, truth = plant_errors(_dataset(), rate=0.05, types=("duplicate",), seed=0)
    keys = [(r.rel, l.line) for r in noisy.split("train") for l in r.labels]
    real = next(k for k in keys if truth.truth(*k) is None)
    findings = [
        Finding("train", k[0], "duplicate", 0.9, "x", line=k[1]) for k in keys if truth.truth(*k) == "duplicate"
    ]
    findings.append(Finding("train", real[0], "class_inconsistent", 1.0, "x", line=real[1]))
    ctx = AuditContext(noisy)
    result = bench.score_seed(noisy, truth, findings, ctx, {"duplicate", "class_inconsistent"}, {"swapped": {real}})
    row = result["types"]["duplicate"]
    assert row["any"]["ap"] < 1.0 and row["any_known"]["ap"] == pytest.approx(1.0)
    assert row["baseline_known"]["n"] == row["baseline"]["n"]


def test_dump_keeps_each_train_box_its_planted_type_and_its_findings(tmp_path: Path) -> None:
    """``--dump``: a seed's train boxes (class, corners, planted type), their box findings and the baseline, read
    back offline to see which boxes outrank the planted ones."""
    import pickle

    from curate.core.findings import Finding

    bench = _load_bench()
    noisy, truth = plant_errors(_dataset(), rate=0.05, types=("duplicate",), seed=0)
    keys = [(r.rel, l.line) for r in noisy.split("train") for l in r.labels]
    copy = next(k for k in keys if truth.truth(*k) == "duplicate")
    findings = [
        Finding("train", copy[0], "duplicate", 0.9, "x", line=copy[1]),
        Finding("train", copy[0], "dataset", 0.1, "x"),
    ]
    bench.dump_seed(tmp_path / "d.pkl", noisy, truth, findings)
    dump = pickle.loads((tmp_path / "d.pkl").read_bytes())
    assert set(dump["boxes"]) == set(keys) and dump["boxes"][copy][2] == "duplicate"
    assert [row[2] for row in dump["findings"]] == ["duplicate"] and set(dump["baseline"]) == set(keys)


def test_pool_table_merges_one_json_a_seed_into_one_row_a_dataset(tmp_path: Path) -> None:
    """Seeds run apart (one JSON each) make one row a dataset, the mean over all seeds, not a row per file."""
    import importlib.util
    import json

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "pool_table.py"
    spec = importlib.util.spec_from_file_location("pool_table", path)
    pool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pool)  # type: ignore[union-attr]

    def seed(ap: float) -> dict:
        row = {"ap": ap}
        return {
            "types": {"grouped": {"any": row, "check": row, "baseline": row}},
            "false_flags_per_100": 0.0,
            "baseline_false_flags_per_100": 0.0,
        }

    for k, ap in enumerate((0.4, 0.8)):
        (tmp_path / f"s{k}.json").write_text(
            json.dumps({"results": [{"name": "a", "train_boxes": 100, "per_seed": [seed(ap)]}]})
        )
    merged = pool.merged_by_dataset([str(tmp_path / "s0.json"), str(tmp_path / "s1.json")])
    assert len(merged) == 1 and len(merged[0]["per_seed"]) == 2
    assert pool.dataset_row(merged[0])["merged_grouped"] == pytest.approx(0.6)
