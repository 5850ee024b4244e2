"""The check contract (issue #21): a new check is one module; the runner knows no check by name; --config is
validated against what each check declares."""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

import pytest

from curate.audit import checks
from curate.audit.checks import all_check_names, by_name, registered
from curate.audit.config import ConfigError, validate_params
from curate.audit.runner import run_audit
from curate.io.yolo import load_yolo

SKY_CHECK = '''
"""sky: a made-up check for the contract test: one finding per image, its score from an option."""

from curate.audit.checks.base import AuditContext, Check
from curate.core.findings import Finding


class Sky(Check):
    names = ("sky",)
    description = "a test check"
    kind = "image"
    order = 55
    options = {"level": 0.75}

    def run(self, ctx: AuditContext) -> list[Finding]:
        level = float(ctx.param("sky", "level", 0.75))
        return [Finding(r.split, r.rel, "sky", level, f"sky at {level}") for r in ctx.dataset.images]
'''


@pytest.fixture
def sky_check(tmp_path: Path, monkeypatch):
    """One file in a folder that the checks package also searches: nothing else is edited."""
    folder = tmp_path / "more_checks"
    folder.mkdir()
    (folder / "sky.py").write_text(SKY_CHECK, encoding="utf-8")
    monkeypatch.setattr(checks, "__path__", [*checks.__path__, str(folder)])
    registered.cache_clear()
    yield
    registered.cache_clear()
    sys.modules.pop("curate.audit.checks.sky", None)


def test_a_new_check_is_one_module(sky_check, tmp_path: Path, make_yolo_tree) -> None:
    root = make_yolo_tree(tmp_path / "ds", {"train/a.jpg": ["0 0.5 0.5 0.2 0.2"], "val/b.jpg": []})
    assert "sky" in all_check_names() and by_name()["sky"].kind == "image"
    assert [c.module for c in registered()].index("sky") == [c.order for c in registered()].index(55)
    params = validate_params({"sky": {"level": 0.9, "threshold": 0.8}})
    result = run_audit(load_yolo(root), out_dir=tmp_path / "out", params=params, only={"sky"}, fiftyone=False)
    rows = list(csv.DictReader((tmp_path / "out" / "findings.csv").open(encoding="utf-8")))
    assert sorted((r["check"], r["score"]) for r in rows) == [("sky", "0.9000"), ("sky", "0.9000")]
    report = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "sky" in result.timings and "**sky**: 2 images flagged" in report and "| sky | 0.90 |" in report
    with pytest.raises(ConfigError, match="did you mean 'level'"):
        validate_params({"sky": {"levle": 0.9}})


def test_config_options_are_checked_against_the_check() -> None:
    assert validate_params({"duplicate": {"iou": 0.6}, "grouped": {"iterations": 60}}) == {
        "duplicate": {"iou": 0.6},
        "grouped": {"iterations": 60},
    }
    with pytest.raises(ConfigError, match=r"check 'duplicate' has no option 'ioo'; did you mean 'iou'\?"):
        validate_params({"duplicate": {"ioo": 0.6}})
    with pytest.raises(ConfigError, match=r"'checks.duplicate.iou=high' is an invalid value; expected a float"):
        validate_params({"duplicate": {"iou": "high"}})
    with pytest.raises(ConfigError, match=r"'checks.background_heavy.use_mask=1' .* expected a bool"):
        validate_params({"background_heavy": {"use_mask": 1}})
    with pytest.raises(ConfigError, match="has no option 'cut' \\(it has: threshold only\\)"):
        validate_params({"corrupt_image": {"cut": 0.3}})
    with pytest.raises(ConfigError, match="has no option 'cut' \\(it has: embeddings\\)"):
        validate_params({"missing": {"cut": 0.3}})


def test_an_option_of_a_few_values_takes_only_those() -> None:
    """``class_inconsistent``'s ``embeddings`` is true, false or auto: a bool or that word, nothing else."""
    for value in (True, False, "auto"):
        assert validate_params({"class_inconsistent": {"embeddings": value}}) == {
            "class_inconsistent": {"embeddings": value}
        }
    for value in ("atuo", 1, "yes"):
        with pytest.raises(ConfigError, match=r"embeddings=.* is an invalid value; expected one of true, false, auto"):
            validate_params({"class_inconsistent": {"embeddings": value}})


def test_every_check_declares_itself() -> None:
    """Names unique over all checks, a kind, a one-line description, how the report shows each name (a threshold
    default is optional: 0.5)."""
    names = [n for c in registered() for n in c.names]
    assert len(names) == len(set(names))
    for c in registered():
        assert c.kind in {"box", "image", "pair", "region", "dataset", "note"}, c
        assert c.description and "\n" not in c.description, c
        assert set(c.display) == set(c.names), c  # the report shows each name it emits
    ranks = [d.rank for c in registered() for d in c.display.values()]
    assert len(ranks) == len(set(ranks))


def test_the_runner_names_no_check() -> None:
    """What a check needs comes from its declaration, not from the runner knowing it (no string keys)."""
    source = (Path(checks.__file__).parent.parent / "runner.py").read_text(encoding="utf-8")
    for c in registered():
        for name in (c.module, *c.names):
            assert not re.search(rf"[\"']{name}[\"']", source), name
