"""Test accuracy over several random splits (``andersonn_lab.deq.holdout``)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import torch

from andersonn_lab.cli import main
from andersonn_lab.datasets.tasks import stratified_split
from andersonn_lab.deq.holdout import (
    HoldoutResult,
    SplitScore,
    format_holdout,
    repeated_holdout,
)
from andersonn_lab.deq.recipe import Recipe, default_recipe


class _ToyTask:
    """36 images in three classes told apart by which channel is bright."""

    class_names = ("a", "b", "c")

    def __init__(self, split_seed: int, flipped: str | None = None):
        self.ids = [f"s{i}" for i in range(36)]
        self.labels = torch.arange(36) % 3
        generator = torch.Generator().manual_seed(123)
        self.images = torch.rand(36, 3, 4, 4, generator=generator) * 0.2
        for i, label in enumerate(self.labels.tolist()):
            self.images[i, label] += 1.0
        if flipped is not None:  # a wrong label on one structure
            position = self.ids.index(flipped)
            self.labels[position] = (self.labels[position] + 1) % 3
        self.split = stratified_split(self.ids, self.labels.tolist(), split_seed)

    def __len__(self):
        return 36

    def __getitem__(self, index):
        return self.images[index], int(self.labels[index])


@dataclass(frozen=True)
class _ToyRecipe(Recipe):
    flipped: str | None = None

    def load(self, **options):
        return _ToyTask(options.get("split_seed", 0), self.flipped)


def _recipe(flipped=None):
    base = default_recipe("crystals", smoke=True)
    training = {**base.training, "epochs": 6, "batch_size": 8, "lr": 1e-2}
    return _ToyRecipe(
        task="toy",
        encoding="adjacency",
        model={**base.model, "pool": 1},
        training=training,
        smoke=True,
        flipped=flipped,
    )


def test_each_split_is_trained_and_scored_on_its_own_test_split():
    seen = []
    result = repeated_holdout(_recipe(), [0, 1, 2], device="cpu", on_split=seen.append)
    assert [s.split_seed for s in result.scores] == [0, 1, 2] and seen == result.scores
    tests = [set(_ToyTask(seed).split["test"].tolist()) for seed in (0, 1, 2)]
    assert tests[0] != tests[1] and tests[1] != tests[2]
    for score, test in zip(result.scores, tests, strict=True):
        assert score.n_test == len(test)
        assert {item[0] for item in score.wrong} <= {f"s{i}" for i in test}
        assert score.train_seconds > 0
    # the score from the predictions agrees with evaluate() after a plain fit of that split
    fit = _recipe().fit(_ToyTask(1), device="cpu", seed=1)
    assert result.scores[1].accuracy == pytest.approx(fit.test_accuracy)
    assert result.mean == pytest.approx(sum(result.accuracies) / 3)
    assert result.solver == "anderson" and result.task == "toy"


def test_a_mislabelled_test_structure_is_reported_with_both_classes():
    clean = _ToyTask(0)
    for candidate in clean.ids:  # a structure that stays in the test split once flipped
        task = _ToyTask(0, candidate)
        position = task.ids.index(candidate)
        if position in task.split["test"].tolist():
            break
    result = repeated_holdout(_recipe(candidate), [0], device="cpu")
    names = task.class_names
    expected = (candidate, names[int(task.labels[position])], names[int(clean.labels[position])])
    assert expected in result.scores[0].wrong


def test_results_repeat_exactly():
    first = repeated_holdout(_recipe(), [3], device="cpu")
    second = repeated_holdout(_recipe(), [3], device="cpu")
    assert first.scores[0].accuracy == second.scores[0].accuracy
    assert first.scores[0].wrong == second.scores[0].wrong


@pytest.mark.parametrize(
    ("seeds", "overrides", "match"),
    [([], {}, "empty"), ([0, 0], {}, "repeats"), ([0], {"seed": 1}, "training seed")],
)
def test_bad_arguments_are_refused(seeds, overrides, match):
    with pytest.raises(ValueError, match=match):
        repeated_holdout(_recipe(), seeds, device="cpu", **overrides)


def test_summary_table_and_often_wrong():
    scores = [
        SplitScore(0, 0.75, 4, (("x", "a", "b"),), 1.0),
        SplitScore(1, 0.5, 4, (("x", "a", "c"), ("y", "b", "a")), 1.0),
    ]
    result = HoldoutResult("toy", "elements", "forward", scores)
    assert result.mean == 0.625 and result.std == pytest.approx(0.1767767)
    assert result.often_wrong() == {"x": 2} and result.often_wrong(1) == {"x": 2, "y": 1}
    summary = result.to_dict()
    assert summary["min"] == 0.5 and summary["max"] == 0.75 and len(summary["scores"]) == 2
    json.dumps(summary)
    table = format_holdout([result])
    assert "0.750, 0.500" in table and "0.625 ± 0.177" in table and "x (2)" in table
    assert "|\n\ntoy: wrong in two" in table  # a blank line ends the Markdown table
    single = HoldoutResult("toy", "adjacency", "anderson", scores[:1])
    assert single.std == 0.0


def test_table_names_at_most_max_listed_often_wrong_structures():
    wrong = tuple((f"s{i}", "a", "b") for i in range(5))
    scores = [SplitScore(k, 0.5, 10, wrong, 1.0) for k in range(2)]
    result = HoldoutResult("toy", "adjacency", "anderson", scores)
    short = format_holdout([result], max_listed=2).splitlines()[-1]
    assert short == "toy: wrong in two or more splits: s0 (2), s1 (2), and 3 more"
    assert format_holdout([result], max_listed=0).endswith("splits: and 5 more")
    assert format_holdout([result]).endswith("s3 (2), s4 (2)")
    assert len(result.to_dict()["often_wrong"]) == 5
    with pytest.raises(ValueError, match="max_listed"):
        format_holdout([result], max_listed=-1)


def test_bench_accuracy_command(tmp_path, capsys):
    code = main(
        ["bench", "accuracy", "--tasks", "crystals", "--splits", "2", "--smoke"]
        + ["--epochs", "1", "--device", "cpu", "--out", str(tmp_path)]
    )
    assert code == 0
    payload = json.loads((tmp_path / "accuracy.json").read_text())
    (crystals,) = payload["results"]
    assert crystals["encoding"] == "electrons" and len(crystals["scores"]) == 2
    assert 0.0 <= crystals["mean"] <= 1.0
    out = capsys.readouterr().out
    assert "crystals: split 1: test accuracy" in out and "| crystals | electrons |" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--tasks", "proteins"], "unknown task"), (["--splits", "0"], "at least 1")],
)
def test_bench_accuracy_command_refuses_bad_input(argv, message, capsys):
    assert main(["bench", "accuracy", *argv]) == 2
    assert message in capsys.readouterr().err


def test_bench_accuracy_command_takes_another_encoding(tmp_path):
    code = main(
        ["bench", "accuracy", "--tasks", "crystals", "--splits", "1", "--smoke"]
        + ["--epochs", "1", "--device", "cpu", "--out", str(tmp_path)]
        + ["--encoding", "composition"]
    )
    assert code == 0
    (crystals,) = json.loads((tmp_path / "accuracy.json").read_text())["results"]
    assert crystals["encoding"] == "composition"
