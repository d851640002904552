"""The speed-up and crossover study on a tiny synthetic task and a 4-channel model."""

from __future__ import annotations

import argparse
import json
import math

import pytest
import torch
from torch.utils.data import TensorDataset

from andersonn_lab.deq import study as st
from andersonn_lab.deq import study_measure
from andersonn_lab.deq.classifier import DEQClassifier


def _data(n: int, seed: int) -> TensorDataset:
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 3, 6, 6, generator=gen)
    labels = (images[:, :, :3].mean((1, 2, 3)) > images[:, :, 3:].mean((1, 2, 3))).long()
    return TensorDataset(images, labels)


def _config(**overrides) -> st.StudyConfig:
    base = {
        "channels": 4,
        "hidden": 4,
        "groups": 2,
        "pool": 1,
        "epochs": 2,
        "batch_size": 8,
        "lr": 1e-2,
        "m_values": (0, 1, 3),
        "betas": (0.5, 1.0),
        "eval_samples": 8,
        "repeats": 1,
        "eval_max_iter": 60,
        "device": "cpu",
    }
    return st.StudyConfig.quick(**{**base, **overrides})


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("study")
    sets = {"toy": (_data(24, 0), _data(8, 1), _data(8, 2), 2)}
    lines: list[str] = []
    result = st.run_study(_config(), out, datasets=sets, log=lines.append)
    return result, out, lines


def test_json_png_and_table_fields(study):
    result, out, lines = study
    assert (out / "deq_study.png").stat().st_size > 0
    saved = json.loads((out / "deq_study.json").read_text())
    assert saved["device"]["device"] == "cpu"
    task = saved["tasks"][0]
    for key in ("training", "target_acc", "train_time_ratio", "solves", "speedup", "sweep"):
        assert key in task
    a, f = task["solves"]
    assert (a["solver"], f["solver"]) == ("anderson", "forward")
    for row in (a, f):
        for key in ("fwd_nfe", "fwd_time", "fwd_unconverged", "bwd_nfe", "bwd_time"):
            assert row[key] is not None
        assert row["tol"] == f["tol"] and row["max_iter"] == f["max_iter"]  # same budget
    for method in ("anderson", "forward"):
        t = task["training"][method]
        assert len(t["history"]) == 2 and 0.0 <= t["final_val_acc"] <= 1.0
        assert "seconds" in t["to_target"]
    pc = task["prediction_change"]
    assert pc["n"] == 16 and 0 <= pc["changed"] <= 16
    table = lines[-1]
    for text in ("fwd nfe", "bwd nfe", "training-time ratio", "literature: 8.6x", "window sweep"):
        assert text in table
    assert "predictions changed" in table
    assert "CUDA peak" not in table.split("memory:")[0] and "rss" not in table


def test_sweep_covers_requested_windows_and_betas(study):
    result, _, _ = study
    sweep = result["tasks"][0]["sweep"]
    pairs = {(r["m"], r["beta"]) for r in sweep if r["solver"] == "anderson"}
    assert pairs == {(m, b) for m in (0, 1, 3) for b in (0.5, 1.0)}
    assert [r["solver"] for r in sweep].count("forward") == 1
    sizes = [r["history_bytes"] for r in sweep if r["solver"] == "anderson" and r["beta"] == 1.0]
    assert sizes == sorted(sizes) and sizes[0] > 0
    for row in sweep:  # measured only on CUDA (the study ran on the CPU): None, never a 0
        assert row["cuda_peak_bytes"] is None


def test_forward_hitting_its_cap_is_labelled():
    torch.manual_seed(0)
    model = DEQClassifier(3, 2, channels=4, hidden=4, groups=2, pool=1)
    images, labels = torch.rand(4, 3, 6, 6), torch.tensor([0, 1, 0, 1])
    common = {"tol": 1e-7, "max_iter": 3, "repeats": 1}
    a = st.measure_solve(
        model, images, labels, method="anderson", m=3, **{**common, "max_iter": 80}
    )
    f = st.measure_solve(model, images, labels, method="forward", **common)
    assert f["fwd_hit_cap"] and f["fwd_unconverged"] == 4 and f["fwd_nfe"] <= 4
    assert st.speedup_label(a, f) in (
        "forward hit cap: ratio is a lower bound",
        "neither converged: not comparable",
    )
    assert st.speedup_label({"fwd_unconverged": 0}, f) == "forward hit cap: ratio is a lower bound"
    study = {
        "device": {"device": "cpu"},
        "skipped": {},
        "tasks": [
            {
                "task": "capped",
                "sizes": {"train": 1, "val": 1, "test": 1},
                "solves": [a, f],
                "speedup": {
                    "fwd_nfe_ratio": f["fwd_nfe"] / a["fwd_nfe"],
                    "fwd_time_ratio": 1.0,
                    "fwd_label": st.speedup_label(a, f),
                    "bwd_nfe_ratio": None,
                    "bwd_time_ratio": None,
                    "bwd_label": st.speedup_label(a, f, "bwd"),
                },
                "training": {
                    m: {
                        "history": [],
                        "to_target": {"reached": False, "epoch": None, "seconds": 0.0},
                        "final_val_acc": 0.5,
                        "test_acc": None,
                        "fwd_unconverged": 0,
                        "bwd_unconverged": 0,
                    }
                    for m in ("anderson", "forward")
                },
                "target_acc": 0.5,
                "target_source": "given",
                "train_time_ratio": None,
                "prediction_change": {
                    "n": 2,
                    "changed": 0,
                    "changed_fraction": 0.0,
                    "fast_tol": 1e-4,
                    "reference_tol": 1e-6,
                    "fast_unconverged": 0,
                    "reference_unconverged": 0,
                },
                "sweep": [f],
            }
        ],
    }
    table = st.format_table(study)
    assert "forward hit cap" in table and "NO (4/4 hit cap)" in table
    assert "(forward hit its cap)" in table


def test_time_to_target_and_cli_options():
    history = [
        {"epoch": 1, "val_acc": 0.4, "time_epoch": 1.0},
        {"epoch": 2, "val_acc": math.nan, "time_epoch": 1.0},
        {"epoch": 3, "val_acc": 0.9, "time_epoch": 1.5},
    ]
    assert st.time_to_target(history, 0.9) == {"reached": True, "epoch": 3, "seconds": 3.5}
    parser = argparse.ArgumentParser()
    st.add_bench_arguments(parser)
    config = st.config_from_args(parser.parse_args(["--quick", "--m-values", "4", "0", "4"]))
    assert config.tasks == ("crystals",) and config.m_values == (0, 4)
    full = st.config_from_args(parser.parse_args([]))
    assert set(full.tasks) == {"crystals", "mofs", "drugs"} and max(full.m_values) >= 10


def test_result_objects_table_rows_equal_the_measured_rows(study):
    result, out, lines = study
    assert isinstance(result, st.StudyResult) and result.report() == lines[-1]
    task = result.task("toy")
    assert isinstance(task, st.TaskStudy) and result.tasks == [task]
    assert set(task.models) == {"anderson", "forward"}
    assert all(isinstance(model, DEQClassifier) for model in task.models.values())
    assert result.models == {"toy": task.models}
    assert task.models["anderson"] is not task.models["forward"]
    table = task.table()
    assert list(table.index) == ["anderson", "forward", "forward / anderson"]
    assert tuple(table.columns) == st.SOLVE_COLUMNS
    for solver, row in zip(("anderson", "forward"), task["solves"], strict=True):
        assert {key: table.loc[solver, key] for key in st.SOLVE_COLUMNS} == {
            key: row[key] for key in st.SOLVE_COLUMNS
        }
    sp = task["speedup"]
    for key, name in (("fwd_nfe", "fwd_nfe_ratio"), ("bwd_time", "bwd_time_ratio")):
        assert table.loc["forward / anderson", key] == sp[name]
    assert math.isnan(table.loc["forward / anderson", "fwd_unconverged"])
    both = result.table()
    assert both.loc[("toy", "forward"), "fwd_nfe"] == task["solves"][1]["fwd_nfe"]
    pretty = task.table(pretty=True)
    assert pretty.loc["anderson", "fwd ms"] == round(1e3 * task["solves"][0]["fwd_time"], 1)
    assert len(task.sweep_table()) == len(task["sweep"])
    assert result.sweep_table()["fwd_nfe"].tolist() == [r["fwd_nfe"] for r in task["sweep"]]
    history = task["training"]["forward"]["history"]
    training = task.training_table()
    assert training.loc["forward", "epochs s"] == pytest.approx(
        sum(h["time_epoch"] for h in history)
    )
    crossover = result.crossover_table()
    assert set(crossover.index) == {("toy", 0.5), ("toy", 1.0)}
    for kind, panels in (("overview", 3), ("crossover", 2), ("memory", 1)):
        assert len(result.plot(kind).axes) == panels
    assert len(task.plot("training").axes) == 4
    assert result.plot("memory")._repr_png_().startswith(b"\x89PNG")  # shows in a notebook
    with pytest.raises(ValueError, match="kind"):
        result.plot("pie")
    # The saved JSON reads back into the same tables (without the models).
    again = st.StudyResult(json.loads((out / "deq_study.json").read_text()))
    assert again.models == {"toy": {}}
    assert again.table()["fwd_nfe"].tolist() == both["fwd_nfe"].tolist()


def test_compare_solvers_measures_what_the_study_measured(study):
    result, _, _ = study
    task = result.tasks[0]
    settings = task["settings"]
    images, labels = _data(8, 1).tensors  # the first eval_samples of val + test: val
    comparison = st.compare_solvers(
        task.models["anderson"],
        images,
        labels,
        m=settings["m"],
        beta=settings["beta"],
        tol=settings["eval_tol"],
        max_iter=settings["eval_max_iter"],
        repeats=1,
    )
    for mine, theirs in zip(comparison.rows, task["solves"], strict=True):
        for key in ("solver", "m", "n", "fwd_nfe", "fwd_unconverged", "bwd_nfe", "history_bytes"):
            assert mine[key] == theirs[key], key
    assert comparison.labels == {
        "fwd": task["speedup"]["fwd_label"],
        "bwd": task["speedup"]["bwd_label"],
    }


def test_ratio_helpers_against_hand_computed_ratios():
    anderson = {
        "fwd_nfe": 18,
        "fwd_steps_mean": 12.4,
        "fwd_time": 0.010,
        "fwd_unconverged": 0,
        "bwd_nfe": 10,
        "bwd_steps_mean": 8.0,
        "bwd_time": 0.004,
        "bwd_unconverged": 0,
    }
    forward = {
        "fwd_nfe": 167,
        "fwd_steps_mean": 165.9,
        "fwd_time": 0.078,
        "fwd_unconverged": 2,
        "bwd_nfe": 187,
        "bwd_steps_mean": 150.0,
        "bwd_time": 0.0612,
        "bwd_unconverged": 0,
    }
    ratios = st.speedup_ratios(anderson, forward)
    assert ratios["fwd_nfe_ratio"] == pytest.approx(9.2777778)  # 167 / 18
    assert ratios["fwd_steps_ratio"] == pytest.approx(13.379032)  # 165.9 / 12.4
    assert ratios["fwd_time_ratio"] == pytest.approx(7.8)  # 0.078 / 0.010
    assert ratios["bwd_nfe_ratio"] == pytest.approx(18.7)
    assert ratios["bwd_steps_ratio"] == pytest.approx(18.75)
    assert ratios["bwd_time_ratio"] == pytest.approx(15.3)
    assert ratios["fwd_label"] == "forward hit cap: ratio is a lower bound"
    assert ratios["bwd_label"] == "both converged"
    assert st.ratio(160, 32) == 5.0
    assert st.ratio(1, 0) is None and st.ratio(None, 3) is None and st.ratio(3, None) is None
    assert st.speedup_ratios({**anderson, "bwd_nfe": None}, forward)["bwd_nfe_ratio"] is None
    comparison = st.SolverComparison(anderson, forward)
    assert comparison.ratios == ratios
    table = comparison.table()
    assert table.loc["forward / anderson", "fwd_steps_mean"] == pytest.approx(165.9 / 12.4)
    pretty = comparison.table(pretty=True)
    assert pretty.loc["forward / anderson", "fwd NFE"] == 9.28
    assert pretty.loc["forward", "bwd ms"] == 61.2


def test_window_skip_and_training_cap_come_from_the_recipe_unless_given():
    from andersonn_lab.deq.recipe import default_recipe
    from andersonn_lab.solvers import Anderson

    recipe = default_recipe("mofs", smoke=False)
    filled = st.StudyConfig().for_task("mofs")
    assert filled.m == recipe.forward_solver["m"]
    assert filled.skip == recipe.model["skip"]
    assert filled.train_max_iter == recipe.forward_solver["max_iter"]
    assert st.StudyConfig().for_task(None).m == Anderson().m
    parser = argparse.ArgumentParser()
    st.add_bench_arguments(parser)
    args = ["--m", "4", "--skip", "0.5", "--train-max-iter", "300"]
    given = st.config_from_args(parser.parse_args(args)).for_task("mofs")
    assert (given.m, given.skip, given.train_max_iter) == (4, 0.5, 300)


def test_the_study_runs_on_images_with_whole_structure_channels():
    """``bench deq`` on an encoding with global channels builds models that use them."""

    class FrameworkLike(TensorDataset):
        encoding = "framework"  # as a TaskDataset of the MOFs recipe

    from andersonn_lab.structures.images import CHANNELS, GLOBAL_CHANNELS

    gen = torch.Generator().manual_seed(0)
    images = torch.rand(24, len(CHANNELS["framework"]), 6, 6, generator=gen)
    labels = (images[:, -1, 0, 0] > 0.5).long()  # decided by one whole-structure scalar
    data = FrameworkLike(images, labels)
    subset = torch.utils.data.Subset(data, [0, 1])
    assert study_measure._global_channels(subset) == GLOBAL_CHANNELS["framework"]
    config = _config(m_values=(2,), betas=(1.0,), epochs=1)
    result = st.study_task("framework", data, data, data, num_classes=2, config=config)
    assert result["solves"] and all(row["fwd_nfe"] > 0 for row in result["solves"])


def test_speedup_ratios_are_the_ratios_of_the_rows_they_come_from(study):
    result, _, lines = study
    task = result["tasks"][0]
    a, f = task["solves"]
    sp = task["speedup"]
    columns = {"nfe": "nfe", "time": "time", "steps": "steps_mean"}
    for phase in ("fwd", "bwd"):
        for key, column in columns.items():
            numerator, denominator = f[f"{phase}_{column}"], a[f"{phase}_{column}"]
            assert numerator is not None and denominator > 0, (phase, key)
            ratio = sp[f"{phase}_{key}_ratio"]
            assert ratio == pytest.approx(numerator / denominator, rel=1e-12), (phase, key)
    # The table prints those ratios, forward over Anderson.
    assert f"fwd nfe {f['fwd_nfe'] / a['fwd_nfe']:.1f}x per batch" in lines[-1]
    assert f"bwd nfe {f['bwd_nfe'] / a['bwd_nfe']:.1f}x per batch" in lines[-1]
    # Training-time ratio: forward's seconds to the target over Anderson's, from the history.
    training = task["training"]
    seconds = {}
    for method in ("anderson", "forward"):
        reach = st.time_to_target(training[method]["history"], task["target_acc"])
        assert reach == training[method]["to_target"]
        seconds[method] = reach["seconds"] if reach["reached"] else None
    # The default target is the best accuracy both runs reached, so both reach it.
    assert None not in seconds.values()
    want = seconds["forward"] / seconds["anderson"]
    assert task["train_time_ratio"] == pytest.approx(want, rel=1e-12)
