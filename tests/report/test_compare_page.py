"""The comparison page from a compare.json dict: a leaking test set opens the verdict line, and numbers of
different data or different boxes are shown side by side with no Δ."""

from __future__ import annotations

from curate.report.compare import headline, metric_rows, render_html, render_md


def _data(*, leaked: dict[str, int], dropped_before: dict[str, int]) -> dict:
    box = {"mAP50": 0.5, "mAP50-95": 0.3, "precision": 0.6, "recall": 0.4, "F1": 0.48, "F1_conf": 0.2, "per_class": {}}
    side = {
        "path": "/d",
        "fingerprint": "f",
        "metrics": {"box": box, "losses": {"train/cls_loss": {"final": 9.0, "best": 8.5}}},
    }
    after = {
        **side,
        "metrics": {"box": {**box, "mAP50-95": 0.4}, "losses": {"train/cls_loss": {"final": 4.5, "best": 4.0}}},
    }
    return {
        "before": side,
        "after": after,
        "test": {
            "path": "/t", "split": "test", "images": 8, "boxes": 20, "default": False, "leaked": leaked,
            "leaked_any": max(leaked.values(), default=0), "dropped_for_before": dropped_before,
            "dropped_for_after": {},
        },
        "settings": {"model": "yolov8n.yaml", "epochs": 1, "imgsz": 64, "batch": 8, "seeds_used": [0], "device": "cpu"},
        "task": "detect",
        "bootstrap": {
            "resamples": 200, "classes": ["egg"], "delta": {"mAP50-95": 0.1, "mAP50": 0.1},
            "ci95": {"mAP50-95": [-0.1, 0.3], "mAP50": [-0.1, 0.3]},
            "verdicts": {"mAP50-95": "no significant difference", "mAP50": "no significant difference"},
        },
        "verdict": "no significant difference",
        "runs": [],
        "warnings": [],
    }  # fmt: skip


def test_a_leaking_test_set_opens_the_verdict_line() -> None:
    data = _data(leaked={"BEFORE": 7, "AFTER": 0}, dropped_before={})
    line = "NOT A FAIR TEST: 7 of 8 test images were trained on (7 in BEFORE's train/val) — No significant"
    assert headline(data).replace("**", "").startswith(line)
    assert "NOT A FAIR TEST: 7 of 8" in render_html(data) and "NOT A FAIR TEST: 7 of 8" in render_md(data)
    clean = _data(leaked={"BEFORE": 0, "AFTER": 0}, dropped_before={})
    assert headline(clean).startswith("**No significant difference**")


def test_no_delta_of_numbers_that_are_not_comparable() -> None:
    same = {row[0]: row[3] for row in metric_rows(_data(leaked={}, dropped_before={}))}
    assert same["mAP50-95"] == "+0.100"  # the same test boxes: comparable
    assert same["train/cls_loss (final, own data)"] == ""  # each side's own data (and number of classes)
    differ = _data(leaked={}, dropped_before={"tomato": 3})  # BEFORE's model is scored on other boxes
    assert all(row[3] == "" for row in metric_rows(differ))
    assert "BEFORE leaves out 3, AFTER 0" in render_md(differ) and "BEFORE leaves out 3, AFTER 0" in render_html(differ)


def test_the_page_reads_in_ten_seconds() -> None:
    """Verdict first, then what the test labels are worth, the test-set table, per-class Δ with intervals, both
    sides' training curves on one plot each, the notes (a loss plateau, a NaN restart), then the losses."""
    data = _data(leaked={}, dropped_before={})
    data["test"]["audit"] = {
        "labels": 20, "suspect": 3, "share": 0.15, "kinds": {"duplicate": 2, "shifted": 1}, "not_run": {},
        "findings": "/o/test-audit/findings.csv",
    }  # fmt: skip
    for side, losses in (("before", [3.0, 2.0, 1.9]), ("after", [2.5, 1.5, 1.4])):
        box = data[side]["metrics"]["box"]
        data[side]["metrics"] = {**data[side]["metrics"], "box": {**box, "per_class": {"egg": {"AP50-95": 0.3}}}}
        data[side]["metrics"]["curve"] = {
            "epoch": [1, 2, 3], "train_loss": losses, "val_loss": [None, 2.2, 2.1], "mAP50-95": [0.0, 0.1, 0.2],
            "plateau": 2 if side == "before" else None, "nan": [1] if side == "before" else [],
        }  # fmt: skip
    data["bootstrap"]["per_class"] = {"egg": {"delta": 0.1, "ci95": [0.02, 0.2], "verdict": "better"}}
    nan = "NaN/inf loss at epoch 1: restarted with amp=False"
    data["runs"] = [{"side": "before", "seed": 0, "notes": [nan], "epochs_done": 3, "seconds": 9.0}]
    page = render_html(data)
    order = [
        "class='verdict'>No significant difference",
        "Test labels: 3 of 20 (15%) look wrong to the audit&#x27;s --fast checks (duplicate 2, shifted 1).",
        "<th>metric (test set)</th>",
        "<td>egg</td><td>0.300</td><td>0.300</td><td>+0.000</td><td>[+0.020, +0.200] better</td>",
        "alt='loss per epoch'",
        "alt='mAP50-95 per epoch'",
        "before seed 0: NaN/inf loss at epoch 1: restarted with amp=False",
        "<h2>Losses</h2>",  # each side's own data, no Δ: below what is read first
    ]
    at = [page.find(x) for x in order]
    assert all(i >= 0 for i in at) and at == sorted(at), list(zip(order, at))
    assert page.count("src='data:image/png;base64,") == 2
    md = render_md(data)
    assert "Test labels: 3 of 20 (15%)" in md and "| egg | 0.300 | 0.300 | +0.000 | [+0.020, +0.200] better |" in md
