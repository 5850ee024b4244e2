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
