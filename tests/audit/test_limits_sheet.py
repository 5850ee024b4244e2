"""benchmarks/limits_sheet.py: the planted boxes a dump ranks lowest, beside the boxes they replaced."""

from __future__ import annotations

import csv
from pathlib import Path

import limits_sheet as ls
import numpy as np
import pytest
import rerank
from label_noise import dump_seed, load_dataset

from curate.core.findings import Finding
from planted_noise import plant_errors


def _clean(root: Path, make_yolo_tree):
    """40 images of 64 × 64 px, six boxes each in three same-class pairs side by side (so groups can be planted)."""
    images = {
        f"train/{i}.jpg": [
            f"{(k // 2 + i) % 3} {0.1 + 0.15 * k:.2f} {0.3 + 0.01 * (i % 5):.2f} 0.1 0.12" for k in range(6)
        ]
        for i in range(40)
    }
    return load_dataset(make_yolo_tree(root / "toy", images, names=["a", "b", "c"]))


def _dump(tmp_path: Path, clean, seed: int, findings=lambda noisy, truth: []) -> Path:
    noisy, truth = plant_errors(clean, rate=ls.RATE, seed=seed)
    path = tmp_path / "dumps" / f"toy-seed{seed}.pkl"
    dump_seed(path, noisy, truth, findings(noisy, truth))
    return path


def test_the_replant_matches_the_dump_and_finds_each_planted_boxs_original(tmp_path: Path, make_yolo_tree) -> None:
    """Planted again from the clean data and the seed, every box of the dump is there; a loose box keeps its
    original's centre, a shifted one its size, a swap its corners with another class, a group is the union of its
    2–4 members, and the original's shorter side is read in the image's pixels (0.1 × 64 = 6.4 px)."""
    clean = _clean(tmp_path, make_yolo_tree)
    dump, plant = ls.load(_dump(tmp_path, clean, 0), tmp_path)
    kinds = {}
    for key, (_, xyxy, kind) in dump.boxes.items():
        if kind in (None, "source"):
            continue
        kinds[kind] = kinds.get(kind, 0) + 1
        orig = plant.originals[key]
        x1, y1, x2, y2 = xyxy
        if kind == "grouped":
            assert 2 <= len(orig) <= 4 and len({o.class_id for o in orig}) == 1
        elif kind == "loose":
            assert np.isclose((x1 + x2) / 2, orig[0].cx) or x1 == 0 or x2 == 1  # clipped at the border
            assert (x2 - x1) * (y2 - y1) >= 1.5 * orig[0].area - 1e-9
        elif kind == "shifted":
            assert not np.allclose(xyxy, orig[0].xyxy)
        elif kind == "swapped":
            assert np.allclose(xyxy, orig[0].xyxy) and dump.boxes[key][0] != orig[0].class_id
    assert set(kinds) >= {"grouped", "loose", "shifted", "swapped", "duplicate", "ambiguous"}
    rows = ls.planted_rows(dump, plant, "shifted")
    assert {round(r["side"], 1) for r in rows} == {6.4}


def test_a_dump_of_another_seed_is_a_one_line_error(tmp_path: Path, make_yolo_tree) -> None:
    """Seed 1's dump read as if it were seed 0's (renamed): the re-plant holds other boxes, and says so."""
    clean = _clean(tmp_path, make_yolo_tree)
    path = _dump(tmp_path, clean, 1)
    wrong = path.with_name("toy-seed0.pkl")
    path.rename(wrong)
    with pytest.raises(SystemExit, match="toy-seed0: the re-plant"):
        ls.load(wrong, tmp_path)


def test_two_overlapping_groups_get_the_members_whose_union_is_their_box() -> None:
    """A lost member inside both group boxes goes to the group it completes (the smaller box would be wrong)."""
    from curate.core.dataset import Label

    def lab(x1, y1, x2, y2, line=0):
        return Label(0, (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, line)

    labels = [lab(0.5, 0.4, 0.7, 0.6), lab(0.5, 0.0, 0.7, 0.2), lab(0.7, 0.2, 0.9, 0.35), lab(0.72, 0.05, 0.9, 0.2)]
    big = ls._Traced(**vars(lab(0.5, 0.2, 0.9, 0.6, line=1)), origin=0)  # members 0 and 2
    small = ls._Traced(**vars(lab(0.5, 0.0, 0.9, 0.36, line=2)), origin=1)  # members 1 and 3: 2 lies inside it too
    members = ls._members([big, small], [labels[2], labels[3]], labels)
    assert members[1] == [labels[2]] and members[2] == [labels[3]]


def test_the_sheet_lists_the_lowest_planted_boxes_first_and_the_untouched_ones_above_their_median(
    tmp_path: Path, make_yolo_tree
) -> None:
    """The planted shifted boxes score 0.1, 0.2, ...; two untouched boxes 0.95 and 0.05. The sheet lists the
    shifted ones from the lowest up with their rank in the merged list (the 0.95 box and the higher planted ones
    above them), and only the untouched box above the planted median; both PNGs are drawn, the verdicts blank."""

    def findings(noisy, truth):
        keys = [(r.rel, lb.line) for r in noisy.split("train") for lb in r.labels]
        shifted = [k for k in keys if truth.truth(*k) == "shifted"]
        untouched = [k for k in keys if truth.truth(*k) is None]
        rows = [
            Finding("train", rel, "shifted", 0.1 * (i + 1), "moved", line=ln) for i, (rel, ln) in enumerate(shifted)
        ]
        rows.append(Finding("train", untouched[0][0], "grouped", 0.95, "two in one", line=untouched[0][1]))
        rows.append(Finding("train", untouched[1][0], "grouped", 0.05, "two in one", line=untouched[1][1]))
        return rows

    clean = _clean(tmp_path, make_yolo_tree)
    path = _dump(tmp_path, clean, 0, findings)
    dump, plant = ls.load(path, tmp_path)
    n = dump.truth.counts["shifted"]
    out = ls.sheet("toy-seed0", dump, plant, "shifted", tmp_path / "eye", top=3, min_view=0.2)
    rows = list(csv.DictReader(out.open()))
    low = [r for r in rows if r["part"] == "low"]
    assert [r["score"] for r in low] == ["0.1000", "0.2000", "0.3000"]
    assert [int(r["rank"]) for r in low] == [n + 1, n, n - 1]  # the 0.95 box and every higher planted one above
    up = [r for r in rows if r["part"] == "outrank"]
    assert len(up) == 1 and up[0]["score"] == "0.9500" and up[0]["rank"] == "1" and up[0]["check"] == "grouped"
    assert all(r["verdict"] == "" for r in rows)
    assert (tmp_path / "eye" / "toy-seed0-shifted-low.png").stat().st_size > 0
    assert (tmp_path / "eye" / "toy-seed0-shifted-outrank.png").stat().st_size > 0

    for r in rows:
        r["verdict"] = "visible" if r["part"] == "low" else "not"
    with out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=ls.FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    assert "| toy | shifted | 3 / 0 / 0 | 0 / 1 / 0 |" in ls.tally([out])

    # the untouched 0.95 box judged a real error, the lowest planted box not visible, the next unsure: set aside,
    # every other planted box outranks every right one
    for r, verdict in zip(rows, ["not visible", "unsure", "visible", "real"]):
        r["verdict"] = verdict
    as_is, unseen, unsure = ls.aside_aps(dump, rows, "shifted")
    assert as_is < 1.0 and unseen == unsure == 1.0
    with out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=ls.FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    assert f"| toy | shifted | {as_is:.2f} | 1.00 | 1.00 |" in ls.aside_table([out], [path])


def test_sizes_split_the_planted_boxes_by_their_originals_side(tmp_path: Path, make_yolo_tree) -> None:
    """Every box is 6.4 × 7.7 px: all planted boxes fall under 16 px, and that stratum's AP is the unsplit one."""
    clean = _clean(tmp_path, make_yolo_tree)

    def findings(noisy, truth):
        keys = [(r.rel, lb.line) for r in noisy.split("train") for lb in r.labels]
        return [
            Finding("train", rel, "shifted", 0.9, "moved", line=ln)
            for rel, ln in keys
            if truth.truth(rel, ln) == "shifted"
        ]

    dump, plant = ls.load(_dump(tmp_path, clean, 0, findings), tmp_path)
    (small, n_small), (mid, n_mid), (_, n_big) = ls.size_aps(dump, plant, "shifted", [16.0, 48.0])
    assert n_small == dump.truth.counts["shifted"] and n_mid == n_big == 0 and np.isnan(mid) and small == 1.0
    table = ls.sizes_table([tmp_path / "dumps" / "toy-seed0.pkl"], tmp_path, ["shifted"], [16.0, 48.0])
    assert f"| toy | shifted | 1.00 | 1.00 ({n_small}) | — (0) | — (0) |" in table
    assert rerank.load_dump(tmp_path / "dumps" / "toy-seed0.pkl").truth.counts["shifted"] == n_small


def test_adds_are_listed_by_their_iou_with_the_deleted_box_they_found_and_the_unfound_deletions_by_size(
    tmp_path: Path, make_yolo_tree
) -> None:
    """Two deleted boxes of image 0 and one of image 1. A region finds the first (its proposed box half as wide: IoU
    0.5); a region without a class guess finds the second (no add, yet found); nothing finds image 1's, so it is
    listed as missed. The adds are worst first, the missed ones largest first, each with its side in pixels."""
    import pickle

    clean = _clean(tmp_path, make_yolo_tree)
    a, b = clean.images[0].labels[:2]
    c = clean.images[1].labels[0]
    rel0, rel1 = clean.images[0].rel, clean.images[1].rel
    half = (a.cx - a.w / 4, a.cy, a.w / 2, a.h)
    regions = [
        (rel0, (a.cx, a.cy, a.w, a.h), 0.8, {"class_id": a.class_id, "add_box": half}),
        (rel0, (b.cx, b.cy, b.w, b.h), 0.7, {"class_id": -1}),
    ]
    deleted = [(rel0, a.xyxy, a.class_id), (rel0, b.xyxy, b.class_id), (rel1, c.xyxy, c.class_id)]
    path = tmp_path / "adds-toy-seed0.pkl"
    path.write_bytes(pickle.dumps({"regions": regions, "deleted": deleted, "tried": []}))

    rows, missed = ls.add_rows(pickle.loads(path.read_bytes()))
    assert len(rows) == 1 and np.isclose(rows[0]["iou"], 0.5) and rows[0]["image"] == rel0
    assert missed == [(rel1, c.xyxy, c.class_id)]
    out = ls.adds_sheet(path, clean, tmp_path / "eye", top=15, min_view=0.2)
    table = list(csv.DictReader(out.open()))
    assert [(r["part"], r["iou"], r["side px"]) for r in table] == [("add", "0.500", "6.4"), ("missed", "", "6.4")]
    assert (tmp_path / "eye" / "adds-toy-seed0-adds.png").stat().st_size > 0
