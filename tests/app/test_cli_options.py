"""One options model per command: the command line's flags take their defaults from it and are checked by it, so
a bad value reads the same from ``curate X --flag`` and from a recipe's ``X: {flag: ...}``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from curate.app import pipeline as pl
from curate.app.cli import app
from curate.audit.options import AuditOptions
from curate.fiftyone.options import ReviewOptions
from curate.ops.options import BackgroundsOptions, ExportOptions, RebalanceOptions
from curate.train.options import TrainOptions


@pytest.mark.parametrize(
    "command, field, value, reason",
    [
        ("train-and-compare", "epochs", "0", "Input should be greater than or equal to 1 (got 0)"),
        ("train-and-compare", "resamples", "99", "Input should be greater than or equal to 100 (got 99)"),
        ("backgrounds", "fraction", "1.5", "Input should be less than or equal to 1 (got 1.5)"),
        ("rebalance", "split", "70/10", "ratios must sum to 100 (got 80)"),
        ("rebalance", "oversample", "lots", "expected 'median' or a positive instance count (got 'lots')"),
        ("rebalance", "empty_images", "hide", "Input should be 'keep' or 'drop' (got 'hide')"),
        ("rebalance", "cap", "0", "Input should be greater than or equal to 1 (got 0)"),
        ("audit", "checks", "grouepd", "unknown check 'grouepd'; did you mean 'grouped'?"),
    ],
)
def test_a_bad_value_reads_the_same_from_the_command_line_and_a_recipe(
    tmp_path: Path, command: str, field: str, value: str, reason: str
) -> None:
    flag = "--" + field.replace("_", "-")
    args = {"train-and-compare": [str(tmp_path), str(tmp_path)], "audit": [str(tmp_path), "--no-fiftyone"]}.get(
        command, [str(tmp_path), "--out", str(tmp_path / "out")]
    )
    result = CliRunner().invoke(app, [command, *args, flag, value], terminal_width=200)
    assert result.exit_code == 1
    assert result.output.strip() == f"error: {flag}: {reason}"

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"stages:\n  {command}: {{}}\n", encoding="utf-8")
    with pytest.raises(pl.PipelineError) as info:
        pl.load_recipe(recipe, overrides=[f"{command}.{field}={value}"])
    assert str(info.value) == f"{recipe} + --set: stages.{command}.{field}: {reason}"


@pytest.mark.parametrize(
    "command, model",
    [
        ("audit", AuditOptions),
        ("review", ReviewOptions),
        ("export", ExportOptions),
        ("rebalance", RebalanceOptions),
        ("backgrounds", BackgroundsOptions),
        ("train-and-compare", TrainOptions),
    ],
)
def test_each_flag_is_a_field_of_the_model_with_its_default(command: str, model: type) -> None:
    """The flags other than ``--out`` are the model's fields (a recipe has the same options), with its defaults."""
    import typer.main

    click_command = typer.main.get_command(app).commands[command]
    flags = {p.name: p for p in click_command.params if p.param_type_name == "option" and p.name != "out_dir"}
    fields = {n for n in model.model_fields if n not in ("options", "extra")}  # recipe-only / key=value arguments
    assert set(flags) == fields
    for name, param in flags.items():
        default = model.model_fields[name].get_default(call_default_factory=True)
        assert param.default == (None if default == [] else default), name


@pytest.mark.parametrize(
    "command", ["audit", "review", "export", "rebalance", "backgrounds", "train-and-compare", "run"]
)
def test_help_text_has_no_markup_eaten_away(command: str) -> None:
    """rich reads ``[default: …]`` in a help text as markup and drops it, leaving "Output folder ." behind."""
    res = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "250"})
    assert res.exit_code == 0
    assert not re.search(r"\w \.(\s|$)", res.output), res.output
