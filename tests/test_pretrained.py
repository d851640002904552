"""The shipped trained models: each matches its current recipe and reproduces its accuracy.

The accuracy is recomputed here from the shipped weights on the test split rebuilt from the
shipped data, by :func:`~andersonn_lab.deq.train.evaluate` (not by the code that wrote the
file), so a changed recipe, changed data, changed images or a changed model all fail here:
retrain with ``andersonn-lab pretrain --tasks <task>``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from andersonn_lab.deq.checkpoint import CheckpointError
from andersonn_lab.deq.pretrained import (
    PRETRAINED_DIR,
    PretrainedMismatchError,
    available_pretrained,
    load_pretrained,
    pretrained_info,
    recipe_settings,
    write_pretrained,
)
from andersonn_lab.deq.recipe import RECIPES, default_recipe
from andersonn_lab.deq.train import evaluate

TASKS = tuple(RECIPES)


def test_every_task_ships_a_model() -> None:
    assert available_pretrained() == list(TASKS)
    for task in TASKS:
        size = (PRETRAINED_DIR / f"{task}.pt").stat().st_size
        assert size < 2_000_000, f"{task}.pt is {size} bytes: the shipped models must stay small"


@pytest.mark.parametrize("task", TASKS)
def test_shipped_model_was_trained_with_the_current_full_recipe(task: str) -> None:
    info = pretrained_info(task)
    assert info["recipe"] == recipe_settings(default_recipe(task, smoke=False)), (
        f"the default {task} recipe changed: retrain with andersonn-lab pretrain --tasks {task}"
    )
    assert info["recipe"]["smoke"] is False
    assert info["command"] == f"andersonn-lab pretrain --tasks {task}"
    assert len(info["history"]) == info["recipe"]["training"]["epochs"]


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.filterwarnings("ignore::andersonn_lab.structures.ImageOverflowWarning")
def test_shipped_model_reproduces_its_recorded_test_accuracy(task: str) -> None:
    torch.set_num_threads(1)
    fit = load_pretrained(task)
    info = pretrained_info(task)
    _, _, test_set = fit.subsets
    assert len(test_set) == int(info["test"]["n"])
    again = evaluate(fit.model, test_set, batch_size=fit.recipe.training.get("batch_size", 32))
    # Same weights, same images: the same predictions, up to one structure that float
    # rounding (thread count, CPU kernels) may move across the decision boundary.
    assert abs(again["acc"] - info["test"]["acc"]) <= 1.0 / len(test_set) + 1e-9
    assert again["acc"] > 0.7  # far above chance on every task
    assert not fit.model.training


def _copy(task: str, folder: Path) -> Path:
    for suffix in (".pt", ".json"):
        shutil.copy(PRETRAINED_DIR / f"{task}{suffix}", folder / f"{task}{suffix}")
    return folder / f"{task}.json"


def test_a_changed_recipe_is_refused_with_the_field_and_the_command(tmp_path: Path) -> None:
    meta = _copy("crystals", tmp_path)
    info = json.loads(meta.read_text())
    info["recipe"]["training"]["epochs"] += 1
    meta.write_text(json.dumps(info))
    with pytest.raises(PretrainedMismatchError, match=r"training\.epochs.*pretrain --tasks"):
        load_pretrained("crystals", folder=tmp_path)


def test_a_different_test_split_is_refused(tmp_path: Path) -> None:
    meta = _copy("crystals", tmp_path)
    info = json.loads(meta.read_text())
    info["test_split"] = "0" * 16
    meta.write_text(json.dumps(info))
    with pytest.raises(PretrainedMismatchError, match="test split"):
        load_pretrained("crystals", folder=tmp_path)


def test_a_corrupt_weights_file_is_refused_naming_it(tmp_path: Path) -> None:
    _copy("crystals", tmp_path)
    weights = tmp_path / "crystals.pt"
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated
    with pytest.raises(CheckpointError, match=r"crystals\.pt: not a usable shipped model"):
        load_pretrained("crystals", folder=tmp_path)


def test_a_missing_model_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="andersonn-lab pretrain --tasks mofs"):
        load_pretrained("mofs", folder=tmp_path)
    with pytest.raises(ValueError, match="unknown task"):
        pretrained_info("proteins")


def test_written_model_loads_back_with_the_same_predictions(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    written = write_pretrained("crystals", folder=tmp_path, device="cpu", smoke=True)
    loaded = load_pretrained("crystals", folder=tmp_path, smoke=True)
    with pytest.raises(PretrainedMismatchError, match=r"model\.channels \(8 shipped, 32 now\)"):
        load_pretrained("crystals", folder=tmp_path)  # written with the smoke recipe
    images = torch.stack([loaded.dataset[p][0] for p in loaded.subsets[2].indices])
    with torch.no_grad():
        assert torch.equal(written.model.eval()(images), loaded.model(images))
    assert loaded.test == pytest.approx(written.test)
    assert [h["epoch"] for h in loaded.result.history] == [1, 2, 3]


def test_pretrain_command_refuses_an_unknown_task(capsys: pytest.CaptureFixture[str]) -> None:
    from andersonn_lab.cli import main

    assert main(["pretrain", "--tasks", "proteins"]) == 2
    assert "unknown task" in capsys.readouterr().err
