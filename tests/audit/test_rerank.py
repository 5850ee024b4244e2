"""benchmarks/rerank.py: some checks' rows of a full label-noise dump replaced by another run's, scored again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rerank
from label_noise import dump_seed, load_dataset

from curate.core.dataset import Dataset, ImageRecord, Label
from curate.core.findings import Finding
from planted_noise import plant_errors


def _dataset() -> Dataset:
    images = []
    for i in range(30):
        labels = [Label((i + k) % 3, 0.1 + 0.15 * k, 0.5, 0.1, 0.12, line=k + 1) for k in range(5)]
        images.append(ImageRecord("train", Path(f"/nowhere/{i}.jpg"), f"train/images/{i}.jpg", None, labels))
    return Dataset(root=Path("/nowhere"), name="toy", names=["a", "b", "c"], images=images)


def _on_disk(root: Path, make_yolo_tree) -> Dataset:
    """:func:`_dataset` written as a real YOLO tree (``--known`` reads the unmodified dataset's lines from disk)."""
    images = {
        f"train/{i}.jpg": [f"{(i + k) % 3} {0.1 + 0.15 * k:.2f} 0.5 0.1 0.12" for k in range(5)] for i in range(30)
    }
    return load_dataset(make_yolo_tree(root, images, names=["a", "b", "c"]))


def _rows(check: str, keys: list[tuple[str, int]], score: float) -> list[Finding]:
    return [Finding("train", rel, check, score, f"{check} here", line=line) for rel, line in keys]


def test_the_changed_checks_rows_replace_its_old_ones_and_move_the_merged_list(tmp_path: Path) -> None:
    """The full run's `class_inconsistent` put an untouched box at 1.0, above every planted duplicate (0.9); the
    new run scores the planted swaps instead. Scored again with the new rows: the merged duplicate AP rises to 1,
    `class_inconsistent` alone finds the swaps, the other check's rows are kept, and the table says before → after."""
    noisy, truth = plant_errors(_dataset(), rate=0.05, types=("swapped", "duplicate"), seed=0)
    keys = [(r.rel, lb.line) for r in noisy.split("train") for lb in r.labels]
    untouched = next(k for k in keys if truth.truth(*k) is None)
    copies = [k for k in keys if truth.truth(*k) == "duplicate"]
    swaps = [k for k in keys if truth.truth(*k) == "swapped"]
    full = _rows("duplicate", copies, 0.9) + _rows("class_inconsistent", [untouched], 1.0)
    new = _rows("class_inconsistent", swaps, 0.95)
    dump_seed(tmp_path / "full" / "toy-seed0.pkl", noisy, truth, full)
    dump_seed(tmp_path / "new" / "toy-seed0.pkl", noisy, truth, new)

    dump = rerank.load_dump(tmp_path / "full" / "toy-seed0.pkl")
    new_dump = rerank.load_dump(tmp_path / "new" / "toy-seed0.pkl")
    before = rerank.measure(dump, dump.findings)
    after = rerank.measure(dump, rerank.replace_checks(dump, new_dump, {"class_inconsistent"}))
    assert before["merged duplicate"] < 1.0 and after["merged duplicate"] == 1.0
    assert after["alone swapped"] == 1.0 > before["alone swapped"]
    assert after["false flags /100"] < before["false flags /100"]

    cols = rerank.columns(["swapped", "duplicate"], ["swapped"], False, False)
    table = rerank.table({"toy": before}, {"toy": after}, cols)
    assert "| toy | " in table and "**worst**" in table
    assert f"{before['merged duplicate']:.2f} → 1.00" in table


def test_several_checks_are_replaced_at_once_and_kinds_pick_the_columns(tmp_path: Path, capsys) -> None:
    """`--checks duplicate ambiguous`: both checks' rows come from the re-run, a third check's rows of the re-run
    (here `class_inconsistent` on an untouched box at 1.0) are not taken; `--kinds` keeps only those kinds'
    columns, with each re-run check alone for its own kind."""
    noisy, truth = plant_errors(_dataset(), rate=0.05, types=("swapped", "duplicate", "ambiguous"), seed=0)
    keys = [(r.rel, lb.line) for r in noisy.split("train") for lb in r.labels]
    untouched = [k for k in keys if truth.truth(*k) is None]
    of = {kind: [k for k in keys if truth.truth(*k) == kind] for kind in ("swapped", "duplicate", "ambiguous")}
    full = _rows("duplicate", untouched[:1], 1.0) + _rows("ambiguous", untouched[1:2], 1.0)
    full += _rows("duplicate", of["duplicate"], 0.9) + _rows("ambiguous", of["ambiguous"], 0.9)
    new = _rows("duplicate", of["duplicate"], 0.9) + _rows("ambiguous", of["ambiguous"], 0.9)
    new += _rows("class_inconsistent", untouched[2:3], 1.0)
    dump_seed(tmp_path / "full" / "toy-seed0.pkl", noisy, truth, full)
    dump_seed(tmp_path / "new" / "toy-seed0.pkl", noisy, truth, new)

    argv = ["--full", str(tmp_path / "full"), "--new", str(tmp_path / "new"), "--checks", "duplicate", "ambiguous"]
    assert rerank.main([*argv, "--kinds", "duplicate", "ambiguous", "--digits", "3"]) == 0
    header, _, row, *_ = capsys.readouterr().out.splitlines()
    cols = [c.strip() for c in header.strip("|").split("|")][1:]
    assert cols == ["merged duplicate", "merged ambiguous", "alone duplicate", "alone ambiguous", "false flags /100"]
    cells = [c.strip() for c in row.strip("|").split("|")][1:]
    assert cells[0].endswith("→ 1.000") and cells[1].endswith("→ 1.000") and not cells[0].startswith("1.000")


def test_dumps_of_different_planted_boxes_are_a_clear_error(tmp_path: Path) -> None:
    """Another seed plants other boxes: splicing its rows in would score them against the wrong truth."""
    for seed in (0, 1):
        noisy, truth = plant_errors(_dataset(), rate=0.05, types=("duplicate",), seed=seed)
        dump_seed(tmp_path / f"s{seed}" / "toy-seed0.pkl", noisy, truth, [])
    argv = ["--full", str(tmp_path / "s0"), "--new", str(tmp_path / "s1"), "--checks", "duplicate"]
    with pytest.raises(SystemExit, match="toy-seed0: the two dumps hold different boxes"):
        rerank.main(argv)


def test_known_real_errors_are_set_aside_and_the_boxes_above_the_planted_ones_listed(
    tmp_path: Path, capsys, make_yolo_tree
) -> None:
    """A real duplicate of the dataset (an untouched box, named in `--known`'s CSV by its line in the UNMODIFIED
    dataset) scores 1.0, above every planted copy: the merged AP counts it against the check, with it set aside
    the AP is 1; `--show duplicate` lists it as the one untouched box at or above the lowest planted copy."""
    clean = _on_disk(tmp_path / "datasets" / "toy", make_yolo_tree)
    noisy, truth = plant_errors(clean, rate=0.05, types=("duplicate",), seed=0)
    noisy_of = {r.rel: r for r in noisy.split("train")}
    rec, lab, key = next(
        (rec, lab, (rec.rel, n.line))
        for rec in clean.split("train")
        for lab in rec.labels
        for n in noisy_of[rec.rel].labels
        if n.class_id == lab.class_id and np.allclose(n.xyxy, lab.xyxy) and truth.truth(rec.rel, n.line) is None
    )
    copies = [(r.rel, lb.line) for r in noisy.split("train") for lb in r.labels if truth.truth(r.rel, lb.line)]
    findings = _rows("duplicate", [k for k in copies if truth.truth(*k) == "duplicate"], 0.9)
    findings += [Finding("train", key[0], "duplicate", 1.0, "a second box on one object", line=key[1])]
    dump_seed(tmp_path / "full" / "toy-seed0.pkl", noisy, truth, findings)
    (tmp_path / "known").mkdir()
    csv = f"image,line,class,real_type,note\n{rec.rel},{lab.line},a,duplicate,a second box\n"
    (tmp_path / "known" / "toy.csv").write_text(csv)

    argv = ["--full", str(tmp_path / "full" / "toy-seed0.pkl"), "--kinds", "duplicate", "--baseline", "--digits", "3"]
    argv += ["--known", str(tmp_path / "known"), "--datasets", str(tmp_path / "datasets"), "--show", "duplicate"]
    assert rerank.main(argv) == 0
    out = capsys.readouterr().out
    header, _, row, *_ = out.splitlines()
    cells = dict(zip(header.split("|")[2:-1], row.split("|")[2:-1]))
    cells = {c.strip(): v.strip() for c, v in cells.items()}
    assert float(cells["merged duplicate"]) < 1.0 and cells["merged duplicate, known aside"] == "1.000"
    assert "baseline duplicate" in cells and "baseline duplicate, known aside" in cells
    assert "1 untouched at or above the lowest" in out
    assert f"1.000 duplicate          {key[0].split('/')[-1]}:{key[1]} a second box on one object [known" in out


def test_sheet_draws_the_outranking_boxes_at_their_lines_in_the_unmodified_data(
    tmp_path: Path, capsys, make_yolo_tree
) -> None:
    """`--show shifted --sheet DIR`: the untouched boxes above the planted shifted boxes are drawn and listed at their
    image and line in the UNMODIFIED dataset (a planted deletion renumbers its file's lines in the noisy copy), best
    first, with the check that scores them; `--show` counts them by check above the planted median."""
    clean = _on_disk(tmp_path / "datasets" / "toy", make_yolo_tree)
    noisy, truth = plant_errors(clean, rate=0.05, types=("missing", "shifted"), seed=0)
    shifted = [(r.rel, lb.line) for r in noisy.split("train") for lb in r.labels if truth.truth(r.rel, lb.line)]
    deleted = {rel: lab.line for rel, lab in truth.missing}
    rec = next(r for r in noisy.split("train") if r.rel in deleted and deleted[r.rel] < len(r.labels))
    lab = next(lb for lb in rec.labels if lb.line >= deleted[rec.rel] and truth.truth(rec.rel, lb.line) is None)
    clean_rec = next(r for r in clean.split("train") if r.rel == rec.rel)
    original = next(o for o in clean_rec.labels if np.allclose(o.xyxy, lab.xyxy))
    assert original.line == lab.line + 1  # the case: its line moved up in the noisy copy
    findings = _rows("shifted", shifted, 0.6) + _rows("grouped", [(rec.rel, lab.line)], 0.9)
    dump_seed(tmp_path / "full" / "toy-seed0.pkl", noisy, truth, findings)

    argv = ["--full", str(tmp_path / "full" / "toy-seed0.pkl"), "--show", "shifted", "--sheet", str(tmp_path / "eye")]
    assert rerank.main([*argv, "--datasets", str(tmp_path / "datasets")]) == 0
    assert "above the median (0.600) by check: {'grouped': 1}" in capsys.readouterr().out
    rows = (tmp_path / "eye" / "toy-seed0-outrank.csv").read_text().splitlines()
    assert rows[1].startswith(f"1,{rec.rel},{original.line},{clean.class_name(original.class_id)},grouped,0.9000,")
    assert len(rows) == 2 and (tmp_path / "eye" / "toy-seed0-outrank.png").stat().st_size > 0


def test_reliability_counts_the_planted_share_of_a_checks_scores_in_a_band(tmp_path: Path, capsys) -> None:
    """`--reliability 0.1 0.5`: of the boxes `shifted` scores in the band, the planted shifted ones and the untouched
    ones count (a planted box of another kind is neither), with their mean score; a box outside the band is not."""
    noisy, truth = plant_errors(_dataset(), rate=0.05, types=("shifted", "swapped"), seed=0)
    keys = [(r.rel, lb.line) for r in noisy.split("train") for lb in r.labels]
    shifted = [k for k in keys if truth.truth(*k) == "shifted"][:2]
    swapped = [k for k in keys if truth.truth(*k) == "swapped"][:1]
    untouched = [k for k in keys if truth.truth(*k) is None][:4]
    findings = _rows("shifted", shifted, 0.3) + _rows("shifted", swapped + untouched[:2], 0.2)
    findings += _rows("shifted", untouched[2:3], 0.6) + _rows("shifted", untouched[3:], 0.05)
    dump_seed(tmp_path / "toy-seed0.pkl", noisy, truth, findings)

    assert rerank.main(["--full", str(tmp_path / "toy-seed0.pkl"), "--reliability", "0.1", "0.5"]) == 0
    assert "shifted 2/4 = 0.50 (mean score 0.25)" in capsys.readouterr().out
