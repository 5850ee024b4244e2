"""Rebalance: the pure split (ratios, per-class shares, groups, seeds), class surgery, cap/oversample,
the written folder (input untouched, label files byte-identical) and the command's one-line errors."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from curate.core.dataset import Dataset, ImageRecord, Label, roboflow_photo
from curate.io.yolo import load_yolo, save_yolo
from curate.ops.rebalance import (
    RebalanceError,
    RebalanceOptions,
    parse_merge,
    parse_ratios,
    rebalance,
    write_rebalanced,
)
from curate.ops.rebalance.classes import apply_class_surgery, class_mapping
from curate.ops.rebalance.groups import BACKGROUND, Group, build_groups, pattern_key
from curate.ops.rebalance.sampling import cap_instances, oversample
from curate.ops.rebalance.split import assign_splits, plan_split

# ------------------------------------------------------------------------------------------ helpers


def synthetic_groups(n: int = 400, *, seed: int = 7, nc: int = 12) -> list[Group]:
    """Multi-label groups with a long-tailed class mix, 1–3 images each, ~20 % background."""
    rng = np.random.default_rng(seed)
    groups = []
    for i in range(n):
        counts: dict[int, int] = {}
        if rng.random() > 0.2:
            for _ in range(int(rng.integers(1, 4))):
                c = int(min(rng.zipf(1.6) - 1, nc - 1))
                counts[c] = counts.get(c, 0) + int(rng.integers(1, 4))
        else:
            counts[BACKGROUND] = 1
        groups.append(Group(i, counts, images=int(rng.integers(1, 4)) if BACKGROUND not in counts else 1))
    return groups


def shares(
    groups: list[Group], plan: dict[int, str]
) -> tuple[dict[str, float], dict[int, dict[str, float]], dict[int, int]]:
    """(image share per split, instance share per class per split, instances per class)."""
    images: Counter = Counter()
    per_class: dict[int, Counter] = defaultdict(Counter)
    for g in groups:
        images[plan[g.id]] += g.images
        for c, n in g.counts.items():
            per_class[c][plan[g.id]] += n
    total = sum(images.values())
    tot = {c: sum(v.values()) for c, v in per_class.items()}
    return (
        {s: n / total for s, n in images.items()},
        {c: {s: n / tot[c] for s, n in v.items()} for c, v in per_class.items()},
        tot,
    )


def record(rel: str, labels: list[tuple[int, ...]] | list[int], split: str = "train") -> ImageRecord:
    """A record without files: labels given as class ids."""
    return ImageRecord(
        split,
        Path("/nowhere") / rel,
        rel,
        None,
        [Label(int(c), 0.5, 0.5, 0.1, 0.1, k) for k, c in enumerate(labels, 1)],
    )


def make_tree(root: Path, files: dict[str, str], names: list[str]) -> Path:
    """A Roboflow-layout dataset: ``{"train/a.jpg": "0 0.5 0.5 0.2 0.2\\n", ...}``; None text = no label file."""
    for i, (key, text) in enumerate(sorted(files.items())):
        split, name = key.split("/")
        (root / split / "images").mkdir(parents=True, exist_ok=True)
        (root / split / "labels").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 24), ((37 * i) % 256, (91 * i) % 256, (53 * i) % 256)).save(
            root / split / "images" / name
        )
        if text is not None:
            (root / split / "labels" / (Path(name).stem + ".txt")).write_text(text)
    (root / "data.yaml").write_text(
        "train: ../train/images\nval: ../valid/images\n" + f"nc: {len(names)}\nnames: {json.dumps(names)}\n"
    )
    return root


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def box(c: int, x: float = 0.5) -> str:
    return f"{c} {x} 0.5 0.2 0.2\n"


NAMES = ["apple", "pear", "plum", "fig"]


@pytest.fixture()
def fruit(tmp_path: Path) -> Path:
    """40 images of 4 classes; 3 Roboflow variants of one photo; 2 backgrounds; a deliberate CRLF file."""
    files: dict[str, str | None] = {}
    for i in range(36):
        split = "train" if i < 28 else "valid"
        files[f"{split}/img{i:02d}.jpg"] = box(i % 3) + (box(3, 0.2) if i % 5 == 0 else "")
    for h in ("aaa", "bbb", "ccc"):
        files[f"train/photo_jpg.rf.{h}.jpg"] = box(1) + box(2, 0.3)
    files["train/bg1.jpg"] = ""
    files["valid/bg2.jpg"] = None
    root = make_tree(tmp_path / "fruit", files, NAMES)
    (root / "train/labels/img01.txt").write_bytes(b"1 0.5 0.5 0.2 0.2\r\n")  # odd bytes must survive untouched
    return root


# ------------------------------------------------------------------------------------- pure: parsing


@pytest.mark.parametrize(
    "text, expected",
    [
        ("80/10/10", (0.8, 0.1, 0.1)),
        ("80/20", (0.8, 0.2)),
        ("70/15/15", (0.7, 0.15, 0.15)),
        ("50.5/49.5", (0.505, 0.495)),
    ],
)
def test_parse_ratios(text: str, expected: tuple[float, ...]) -> None:
    assert parse_ratios(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    "text, reason",
    [
        ("80/10", "sum to 100"),
        ("100", "2 (train/val) or 3"),
        ("60/20/10/10", "got 4"),
        ("80/x/10", "numbers"),
        ("100/0", "above 0"),
    ],
)
def test_parse_ratios_errors_are_one_line(text: str, reason: str) -> None:
    with pytest.raises(RebalanceError, match=re.escape(reason)) as info:
        parse_ratios(text)
    assert "\n" not in str(info.value) and text in str(info.value)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("abc_jpg.rf.0123abcd.jpg", "abc_jpg"),  # Roboflow variant
        ("IMG_0384_jpg.rf.c8ef4d85.jpg", "IMG_0384_jpg"),
        ("plain.jpg", None),  # not a Roboflow name
        (".rf.0123abcd.jpg", None),  # nothing before .rf.
        ("a_jpg.rf.0123abcd_jpg.rf.89abcdef.jpg", "a_jpg"),  # a re-export's variant: still the same photo
        ("a_jpg.rf.0123abcd", "a_jpg"),  # a stem
    ],
)
def test_roboflow_photo(name: str, expected: str | None) -> None:
    """One rule for the re-split and the background sampler (they disagreed on short hashes and re-exports)."""
    assert roboflow_photo(name) == expected


@pytest.mark.parametrize(
    "pattern, name, expected",
    [
        (r"^(scene\d+)_", "scene12_frame3.jpg", "scene12"),  # first capture group
        (r"scene\d+", "a_scene7_b.jpg", "scene7"),  # no group: whole match
        (r"^(scene\d+)_", "other.jpg", None),  # no match: not grouped by the pattern
    ],
)
def test_pattern_key(pattern: str, name: str, expected: str | None) -> None:
    assert pattern_key(name, re.compile(pattern)) == expected


def test_parse_merge() -> None:
    assert parse_merge(["bell pepper = green pepper", "a=b"]) == {"bell pepper": "green pepper", "a": "b"}
    with pytest.raises(RebalanceError, match="SRC=DST"):
        parse_merge(["nonsense"])


# ---------------------------------------------------------------------------------------- pure: split


@pytest.mark.parametrize("ratios", [(0.8, 0.1, 0.1), (0.7, 0.3), (0.6, 0.2, 0.2)])
@pytest.mark.parametrize("seed", [0, 3])
def test_plan_split_image_and_class_ratios(ratios: tuple[float, ...], seed: int) -> None:
    groups = synthetic_groups(400, seed=seed + 11)
    plan = plan_split(groups, ratios, seed=seed)
    image_share, class_share, totals = shares(groups, plan)
    names = ["train", "val", "test"][: len(ratios)]
    assert set(plan.values()) == set(names)
    for s, r in zip(names, ratios):
        assert abs(image_share.get(s, 0) - r) <= 0.01, (s, image_share)
    big = [c for c, n in totals.items() if n >= 30]
    assert len(big) >= 5  # the test is about something
    for c in big:
        for s, r in zip(names, ratios):
            assert abs(class_share[c].get(s, 0) - r) <= 0.05, (c, totals[c], class_share[c])


def test_plan_split_beats_a_random_split_per_class() -> None:
    """Direction: stratification gives a smaller worst per-class deviation than a random group split."""
    groups = synthetic_groups(300, seed=5)
    ratios = (0.8, 0.1, 0.1)

    def worst(plan: dict[int, str]) -> float:
        _, class_share, totals = shares(groups, plan)
        return max(
            abs(class_share[c].get(s, 0) - r)
            for c in totals
            if totals[c] >= 30
            for s, r in zip(("train", "val", "test"), ratios)
        )

    rng = np.random.default_rng(0)
    randoms = [worst({g.id: str(rng.choice(["train", "val", "test"], p=ratios)) for g in groups}) for _ in range(5)]
    assert worst(plan_split(groups, ratios, seed=0)) < min(randoms)


def test_plan_split_is_deterministic_and_seed_dependent() -> None:
    groups = synthetic_groups(300)
    frozen = copy.deepcopy(groups)
    a = plan_split(groups, (0.8, 0.1, 0.1), seed=1)
    b = plan_split(groups, (0.8, 0.1, 0.1), seed=1)
    c = plan_split(groups, (0.8, 0.1, 0.1), seed=2)
    assert a == b
    assert a != c
    assert groups == frozen  # inputs are not mutated


def test_plan_split_background_follows_ratios() -> None:
    groups = [Group(i, {BACKGROUND: 1}) for i in range(100)] + [Group(100 + i, {0: 1}) for i in range(100)]
    plan = plan_split(groups, (0.8, 0.2), seed=0)
    bg = Counter(plan[g.id] for g in groups if BACKGROUND in g.counts)
    assert bg == {"train": 80, "val": 20}


def test_plan_split_keeps_a_big_group_whole() -> None:
    groups = [Group(0, {0: 30}, images=30)] + [Group(i, {0: 1}) for i in range(1, 71)]
    plan = plan_split(groups, (0.8, 0.1, 0.1), seed=0)
    assert plan[0] == "train"  # 30 of 100 images cannot go anywhere else without breaking the ratios
    assert Counter(plan.values())["val"] == 10


# --------------------------------------------------------------------------------------------- groups


def test_groups_union_near_duplicates_roboflow_and_pattern() -> None:
    recs = [
        record("train/images/a_jpg.rf.1.jpg", [0]),
        record("train/images/a_jpg.rf.2.jpg", [0]),  # Roboflow variant of a
        record("train/images/b.jpg", [1]),  # near-duplicate of a variant → joins a's group
        record("train/images/scene1_f1.jpg", [1]),
        record("val/images/scene1_f2.jpg", [2], "val"),  # same scene by pattern
        record("val/images/lonely.jpg", []),
    ]
    ds = Dataset(Path("/nowhere"), "t", ["x", "y", "z"], recs)
    grouping = build_groups(
        ds, near_duplicates=[["train/images/a_jpg.rf.2.jpg", "train/images/b.jpg"]], pattern=r"^(scene\d+)_"
    )
    g = grouping.group_of
    assert g["train/images/a_jpg.rf.1.jpg"] == g["train/images/a_jpg.rf.2.jpg"] == g["train/images/b.jpg"]
    assert g["train/images/scene1_f1.jpg"] == g["val/images/scene1_f2.jpg"]
    assert len(grouping.groups) == 3
    first = grouping.groups[g["train/images/b.jpg"]]
    assert first.images == 3 and dict(first.counts) == {0: 2, 1: 1}
    assert grouping.groups[g["val/images/lonely.jpg"]].counts == {BACKGROUND: 1}
    assert grouping.joined_by == {"near_duplicate": 2, "roboflow": 2, "pattern": 2}


def test_no_group_straddles_splits() -> None:
    rng = np.random.default_rng(0)
    recs = []
    for i in range(300):
        src = i // 3  # three Roboflow variants per photo
        recs.append(record(f"train/images/p{src}_jpg.rf.{i}.jpg", [int(c) for c in rng.integers(0, 4, size=2)]))
    ds = Dataset(Path("/nowhere"), "t", list("abcd"), recs)
    grouping = build_groups(ds, near_duplicates=[[recs[0].rel, recs[150].rel]])
    out = assign_splits(ds, grouping, plan_split(grouping.groups, (0.8, 0.1, 0.1), seed=0))
    split_of = {r.rel: r.split for r in out.images}
    for group in grouping.groups:
        assert len({split_of[m] for m in group.members}) == 1
    assert len(grouping.groups) == 99  # 100 photos, two joined as near-duplicates
    assert {r.split for r in out.images} == {"train", "val", "test"}
    assert [r.split for r in ds.images] == ["train"] * 300  # input untouched


# --------------------------------------------------------------------------------------- class surgery


@pytest.mark.parametrize(
    "kwargs, names, mapping",
    [
        ({"keep": ["plum", "apple"]}, ["apple", "plum"], {0: 0, 1: None, 2: 1, 3: None}),  # original order kept
        ({"drop": ["pear"]}, ["apple", "plum", "fig"], {0: 0, 1: None, 2: 1, 3: 2}),
        ({"drop": ["pear", "apple"]}, ["plum", "fig"], {0: None, 1: None, 2: 0, 3: 1}),
        ({"merge": {"pear": "apple"}}, ["apple", "plum", "fig"], {0: 0, 1: 0, 2: 1, 3: 2}),
        ({"merge": {"apple": "fig"}}, ["pear", "plum", "fig"], {0: 2, 1: 0, 2: 1, 3: 2}),
        (
            {"merge": {"pear": "apple"}, "keep": ["pear", "fig"]},
            ["apple", "fig"],
            {0: 0, 1: 0, 2: None, 3: 1},
        ),  # pear stands for apple
        ({"min_instances": 5}, ["apple", "pear"], {0: 0, 1: 1, 2: None, 3: None}),  # plum 4, fig 1
        (
            {"min_instances": 5, "merge": {"fig": "plum"}},
            ["apple", "pear", "plum"],
            {0: 0, 1: 1, 2: 2, 3: 2},
        ),  # 4 + 1 after merge
    ],
)
def test_class_mapping(kwargs: dict, names: list[str], mapping: dict[int, int | None]) -> None:
    surgery = class_mapping(NAMES, {0: 10, 1: 6, 2: 4, 3: 1}, **kwargs)
    assert surgery.names == names
    assert surgery.mapping == mapping


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"keep": ["aple"]}, "--keep-classes: unknown class 'aple'; did you mean 'apple'?"),
        ({"drop": ["fgi"]}, "--drop-class: unknown class 'fgi'; did you mean 'fig'?"),
        ({"merge": {"pear": "banana"}}, "--merge: unknown class 'banana'"),
        ({"merge": {"pear": "pear"}}, "cannot be merged into itself"),
    ],
)
def test_class_mapping_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(RebalanceError) as info:
        class_mapping(NAMES, {}, **kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_surgery_marks_only_changed_files_edited_and_keeps_bytes(fruit: Path, tmp_path: Path) -> None:
    ds = load_yolo(fruit)
    before = copy.deepcopy([(r.rel, r.labels, r.edited) for r in ds.images])
    new, surgery = apply_class_surgery(ds, drop=["fig"])  # fig is the last id: others keep their ids
    assert [(r.rel, r.labels, r.edited) for r in ds.images] == before  # input untouched
    by_rel = {r.rel: r for r in new.images}
    assert not by_rel["train/images/img01.jpg"].edited  # only a pear: unchanged
    assert by_rel["train/images/img00.jpg"].edited  # lost its fig box
    assert [lb.class_id for lb in by_rel["train/images/img00.jpg"].labels] == [0]
    assert surgery.dropped_boxes == 8 and surgery.edited_images == 8
    out = save_yolo(new, tmp_path / "out")
    assert (out / "labels/train/img01.txt").read_bytes() == b"1 0.5 0.5 0.2 0.2\r\n"  # byte-identical (CRLF kept)
    assert (out / "labels/train/img00.txt").read_text() == "0 0.5 0.5 0.2 0.2\n"
    assert "nc: 3" in (out / "data.yaml").read_text()


def test_surgery_renumbers_and_handles_emptied_images(fruit: Path) -> None:
    ds = load_yolo(fruit)
    kept, s1 = apply_class_surgery(ds, keep=["fig", "plum"])
    assert kept.names == ["plum", "fig"]
    ids = Counter(lb.class_id for _, lb in kept.boxes())
    assert ids == {0: 15, 1: 8}  # plum 2 → 0 (12 + 3 variants), fig 3 → 1
    assert len(kept.images) == len(ds.images) and len(s1.emptied_images) > 0
    assert all(r.edited for r in kept.images if r.rel in s1.emptied_images)
    dropped, s2 = apply_class_surgery(ds, keep=["fig", "plum"], empty_images="drop")
    assert len(dropped.images) == len(ds.images) - len(s2.emptied_images)
    assert {"train/images/bg1.jpg", "valid/images/bg2.jpg"} <= {r.rel for r in dropped.images}  # born background: kept


# ------------------------------------------------------------------------------------ cap, oversample


def test_cap_spares_images_of_rare_classes() -> None:
    recs = [record(f"c{i}.jpg", [0, 0]) for i in range(20)]  # only the common class
    recs += [record(f"r{i}.jpg", [0, 0, 1]) for i in range(5)]  # common + rare
    kept, dropped = cap_instances(recs, 20, nc=2)
    counts = Counter(lb.class_id for r in kept for lb in r.labels)
    assert counts[0] <= 20 and counts[1] == 5  # the rare class loses nothing
    assert all(rel.startswith("c") for rel in dropped)
    assert len(recs) == 25  # input untouched


def test_cap_brings_every_class_under_the_cap() -> None:
    rng = np.random.default_rng(0)
    recs = [record(f"i{i}.jpg", [int(c) for c in rng.integers(0, 3, size=3)]) for i in range(100)]
    kept, dropped = cap_instances(recs, 50, nc=3)
    counts = Counter(lb.class_id for r in kept for lb in r.labels)
    assert max(counts.values()) <= 50 and min(counts.values()) >= 35  # not more than needed
    assert len(kept) + len(dropped) == 100


def test_oversample_reaches_target_within_copy_limit() -> None:
    recs = (
        [record(f"a{i}.jpg", [0]) for i in range(40)]
        + [record(f"b{i}.jpg", [1, 1]) for i in range(5)]
        + [record("c.jpg", [2])]
    )
    copies, target = oversample(recs, nc=3, target=20, max_copies=4)
    counts = Counter(lb.class_id for r in recs for lb in r.labels)
    counts.update(lb.class_id for r, _ in copies for lb in r.labels)
    assert target == 20 and counts[0] == 40  # no copies of the common class
    assert counts[1] == 20  # 10 + 5 images × 2 boxes... exactly reached
    assert counts[2] == 5  # one image, at most 4 copies
    assert len({(r.rel, k) for r, k in copies}) == len(copies)  # unique copy numbers per source
    _, median = oversample(recs, nc=3)
    assert median == 10  # median of 40, 10, 1


# ------------------------------------------------------------------------------------ whole command


def _opts(**kw) -> RebalanceOptions:
    return RebalanceOptions(near_duplicates=True, **kw)


def test_rebalance_writes_new_folder_and_leaves_input_alone(fruit: Path, tmp_path: Path) -> None:
    digest = tree_digest(fruit)
    ds = load_yolo(fruit)
    near = lambda d: [["train/images/img02.jpg", "valid/images/img30.jpg"]]  # noqa: E731 — a stand-in for hashing
    result = rebalance(ds, _opts(split="60/20/20", oversample=12, seed=4), near_duplicates=near)
    out = write_rebalanced(result, tmp_path / "out")
    assert tree_digest(fruit) == digest
    back = load_yolo(out)
    split_of = {Path(r.rel).name: r.split for r in back.images}
    assert split_of["img02.jpg"] == split_of["img30.jpg"]
    assert len({split_of[f"photo_jpg.rf.{h}.jpg"] for h in ("aaa", "bbb", "ccc")}) == 1
    copies = [n for n in split_of if "__os" in n]
    assert copies and all(split_of[n] == "train" for n in copies)
    assert all(split_of[n.split("__os")[0] + ".jpg"] == "train" for n in copies)  # sources are train images
    fig = sum(1 for r in back.images if r.split == "train" for lb in r.labels if lb.class_id == 3)
    assert fig >= 12  # fig (5 in train at most) was oversampled to the target
    summary = json.loads((out / "rebalance.json").read_text())
    assert summary["groups"]["largest"] == 3 and summary["groups"]["images_joined_by"]["roboflow"] == 3
    assert set(summary["counts_before"]) == set(NAMES) and len(summary["oversample"]["copies"]) == len(copies)
    assert not list(tmp_path.glob(".out-staging-*"))  # staging folder removed
    with pytest.raises(Exception, match="refusing"):
        write_rebalanced(result, fruit / "inside")


def test_rebalance_same_seed_same_output(fruit: Path, tmp_path: Path) -> None:
    ds = load_yolo(fruit)

    def splits(seed: int) -> dict[str, str]:
        result = rebalance(ds, _opts(seed=seed), near_duplicates=lambda d: [])
        return {r.rel: r.split for r in result.dataset.images}

    assert splits(1) == splits(1)
    assert any(splits(s) != splits(1) for s in (2, 3, 4))


# ------------------------------------------------------------------------------------------------ CLI


def _cli(args: list[str]):
    from typer.testing import CliRunner

    from curate.app.cli import app

    return CliRunner().invoke(app, args, terminal_width=200)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--split", "80/10"], "ratios must sum to 100 (got 90)"),
        (["--keep-classes", "aple,fig"], "unknown class 'aple'; did you mean 'apple'?"),
        (["--merge", "pear"], "expected SRC=DST"),
        (["--oversample", "lots"], "expected 'median' or a positive instance count"),
        (["--group-by", "(unclosed"], "not a regular expression"),
    ],
)
def test_cli_errors_are_one_line(fruit: Path, tmp_path: Path, extra: list[str], message: str) -> None:
    result = _cli(["rebalance", str(fruit), "--out", str(tmp_path / "out"), "--no-near-duplicates", *extra])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert len([ln for ln in result.output.splitlines() if ln.strip()]) == 1
    assert not (tmp_path / "out").exists()


def test_cli_refuses_to_write_into_input(fruit: Path) -> None:
    result = _cli(["rebalance", str(fruit), "--out", str(fruit / "out"), "--no-near-duplicates"])
    assert result.exit_code == 1 and "refusing" in result.output


def test_cli_keep_classes_writes_table_and_folder(fruit: Path, tmp_path: Path) -> None:
    digest = tree_digest(fruit)
    result = _cli(
        [
            "rebalance",
            str(fruit),
            "--out",
            str(tmp_path / "out"),
            "--keep-classes",
            "plum,fig",
            "--split",
            "80/20",
            "--no-near-duplicates",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "plum" in result.output and "images" in result.output
    back = load_yolo(tmp_path / "out")
    assert back.names == ["plum", "fig"] and back.splits == ["train", "val"]
    assert tree_digest(fruit) == digest


def test_real_sample_near_duplicates_stay_together(sample_dir: Path, tmp_path: Path) -> None:
    """The bundled 80 real images: the hashing module's near-duplicate pairs (5 straddle the export's
    splits) all land in one split after `rebalance`, and the input folder is byte-for-byte unchanged."""
    from curate.vision.hashing import image_signatures, near_duplicate_pairs

    digest = tree_digest(sample_dir)
    ds = load_yolo(sample_dir)
    pairs = near_duplicate_pairs(image_signatures(ds, progress=False))
    original = {r.rel: r.split for r in ds.images}
    assert sum(original[p.a] != original[p.b] for p in pairs) > 0  # the export leaks: the test is about something
    result = rebalance(ds, RebalanceOptions(seed=0))  # real hashing, no stand-in
    split_of = {r.rel: r.split for r in result.dataset.images}
    assert all(split_of[p.a] == split_of[p.b] for p in pairs)
    assert result.summary["groups"]["images_joined_by"]["near_duplicate"] >= 2
    images = Counter(split_of.values())
    assert images == {"train": 64, "val": 8, "test": 8}
    write_rebalanced(result, tmp_path / "out")
    assert tree_digest(sample_dir) == digest
    assert len(load_yolo(tmp_path / "out").images) == 80


def test_rebalance_writes_a_file_listed_in_two_splits_once(make_yolo_tree, tmp_path: Path) -> None:
    """``train: images`` and ``val: images``: the re-split wrote every image twice (``a.jpg`` and ``a_1.jpg``)."""
    files = {f"train/{i}.jpg": [f"{i % 2} 0.5 0.5 0.2 0.2"] for i in range(6)}
    root = make_yolo_tree(tmp_path / "ds", files, layout="ultralytics")
    (root / "data.yaml").write_text("train: images/train\nval: images/train\nnames: [a, b]\n")
    result = rebalance(load_yolo(root), _opts(split="50/50"), near_duplicates=lambda d: [])
    out = write_rebalanced(result, tmp_path / "out")
    assert sorted(p.name for p in out.glob("images/*/*")) == [f"{i}.jpg" for i in range(6)]
    assert any("listed under several splits" in n for n in result.summary["notes"])


@pytest.mark.parametrize(
    "n, ratios, expected",
    [
        (3, (0.8, 0.1, 0.1), {"train": 1, "val": 1, "test": 1}),
        (2, (0.8, 0.1, 0.1), {"train": 1, "val": 1}),
        (1, (0.5, 0.5), {"train": 1}),
        (12, (0.8, 0.1, 0.1), {"train": 10, "val": 1, "test": 1}),
    ],
)
def test_plan_split_leaves_no_split_empty_that_a_group_can_fill(
    n: int, ratios: tuple[float, ...], expected: dict[str, int]
) -> None:
    """3 images at 80/10/10 went 3/0/0 and one image at 50/50 went to val: outputs Ultralytics cannot train on."""
    groups = [Group(i, {i % 2: 1}) for i in range(n)]
    for seed in range(4):
        assert Counter(plan_split(groups, ratios, seed=seed).values()) == expected


def test_oversample_median_of_a_train_split_without_boxes_says_so() -> None:
    """All-background train: the error read "--oversample 0: target must be at least 1" for --oversample median."""
    with pytest.raises(RebalanceError, match="median: the train split has no boxes"):
        oversample([record(f"bg{i}.jpg", []) for i in range(3)], nc=2)


def test_rebalance_refuses_to_drop_every_class(make_yolo_tree, tmp_path: Path) -> None:
    """--min-instances above every class wrote a dataset with nc: 0 (all images background) and exit 0."""
    root = make_yolo_tree(tmp_path / "ds", {f"train/{i}.jpg": ["0 0.5 0.5 0.2 0.2"] for i in range(4)}, names=["thing"])
    with pytest.raises(RebalanceError, match="no classes left after class surgery \\(dropped: thing\\)"):
        rebalance(load_yolo(root), _opts(min_instances=100), near_duplicates=lambda d: [])
