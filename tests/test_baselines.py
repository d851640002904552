"""Baselines on the splits of ``bench accuracy`` (``andersonn_lab.deq.baselines``)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from ase.build import bulk

from andersonn_lab.cli import main
from andersonn_lab.datasets.entry import Entry
from andersonn_lab.datasets.tasks import stratified_split
from andersonn_lab.deq.baselines import (
    BaselineResult,
    descriptors,
    format_baselines,
    run_baselines,
)
from andersonn_lab.deq.recipe import Recipe, default_recipe

pytest.importorskip("sklearn")

_PROTOTYPES = [
    bulk("Cu", "fcc", a=3.615),
    bulk("Si", "diamond", a=5.431),
    bulk("NaCl", "rocksalt", a=5.64),
]


class _ToyTask:
    """36 crystals in three classes; the images tell the class apart by a bright channel."""

    class_names = ("metal", "semiconductor", "insulator")

    def __init__(self, split_seed: int):
        self.ids = [f"s{i}" for i in range(36)]
        self.labels = torch.arange(36) % 3
        self.entries = [Entry(f"s{i}", i % 3, _PROTOTYPES[i % 3].copy()) for i in range(36)]
        generator = torch.Generator().manual_seed(5)
        self.images = torch.rand(36, 3, 4, 4, generator=generator) * 0.2
        for i, label in enumerate(self.labels.tolist()):
            self.images[i, label] += 1.0
        self.split = stratified_split(self.ids, self.labels.tolist(), split_seed)

    def __len__(self):
        return 36


@dataclass(frozen=True)
class _ToyRecipe(Recipe):
    def load(self, **options):
        return _ToyTask(options.get("split_seed", 0))


def _recipe():
    base = default_recipe("crystals", smoke=False)
    return _ToyRecipe(
        task="crystals",
        encoding="adjacency",
        image_size=4,
        model=base.model,
        training=base.training,
    )


def test_baselines_score_the_recipe_test_split():
    results = run_baselines("crystals", [0, 1], recipe=_recipe(), n_trees=10)
    assert set(results) == {"logistic-images", "forest-descriptors"}
    for result in results.values():
        assert result.split_seeds == [0, 1]
        # the test split of each seed, exactly as bench accuracy takes it
        assert result.n_test == [len(_ToyTask(s).split["test"]) for s in (0, 1)]
        assert result.accuracies == [1.0, 1.0]  # both tasks are easy by construction
    assert "2 | 1.000, 1.000" in format_baselines(list(results.values()))


def test_bad_arguments():
    with pytest.raises(ValueError, match="distinct"):
        run_baselines("crystals", [0, 0], recipe=_recipe())
    with pytest.raises(ValueError, match="unknown baseline"):
        run_baselines("crystals", [0], recipe=_recipe(), models=["svm"])
    with pytest.raises(ValueError, match="unknown task"):
        descriptors("proteins", [])


def test_descriptors_per_task():
    crystals, names = descriptors("crystals", [Entry("x", 0, a) for a in _PROTOTYPES])
    assert crystals.shape == (3, len(names)) and np.isfinite(crystals).all()
    chi = crystals[:, names.index("range_electronegativity")]
    np.testing.assert_allclose(chi, [0.0, 0.0, 3.16 - 0.93])
    mofs, names = descriptors("mofs", [Entry("x", 0, a) for a in _PROTOTYPES])
    assert mofs[0, names.index("x_Cu")] == 1.0 and mofs[2, names.index("x_Na")] == 0.5
    assert mofs[0, names.index("density_g_cm3")] == pytest.approx(8.93, abs=0.05)
    drugs, names = descriptors("drugs", [Entry("a", 0, "CCO"), Entry("b", 1, "c1ccccc1")])
    assert drugs.shape[0] == 2 and len(names) > 100
    assert drugs[0, names.index("MolWt")] == pytest.approx(46.07, abs=0.01)


def test_result_summary():
    r = BaselineResult("mofs", "logistic-images", "images", [0, 1, 2], [0.5, 0.6, 0.7], [9] * 3)
    data = r.to_dict()
    assert data["mean"] == pytest.approx(0.6) and data["std"] == pytest.approx(0.1)


def test_cli_smoke_on_crystals(tmp_path, capsys):
    code = main(
        [
            "bench",
            "baselines",
            "--tasks",
            "crystals",
            "--splits",
            "2",
            "--smoke",
            "--trees",
            "10",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    payload = json.loads((tmp_path / "baselines.json").read_text())
    assert payload["splits"] == 2 and payload["smoke"] is True
    assert {r["model"] for r in payload["results"]} == {"logistic-images", "forest-descriptors"}
    assert all(len(r["accuracies"]) == 2 for r in payload["results"])
    assert "| crystals | forest-descriptors |" in capsys.readouterr().out


def test_cli_rejects_unknown_task(capsys):
    assert main(["bench", "baselines", "--tasks", "proteins"]) == 2
    assert "unknown task" in capsys.readouterr().err
