"""DEQ classifier, training loop, checkpoints, prediction and the train/predict commands.

Everything runs on tiny models (4 channels, 6×6 images, a few dozen samples) on the CPU.
"""

from __future__ import annotations

import argparse
import json
import math
import random

import numpy as np
import pytest
import torch
from torch.nn.utils import parametrize
from torch.utils.data import Subset, TensorDataset

from andersonn_lab.deq import cli
from andersonn_lab.deq.checkpoint import CheckpointError, load_checkpoint, read_checkpoint
from andersonn_lab.deq.classifier import DEQClassifier
from andersonn_lab.deq.recipe import default_recipe
from andersonn_lab.deq.train import NonFiniteLossError, evaluate, predict, train

TINY = {"channels": 4, "hidden": 4, "groups": 2, "pool": 2}
FAST = {"batch_size": 8, "lr": 1e-2, "device": "cpu", "progress": False}


def _data(n=24, size=6, seed=0):
    """Images whose label is whether the top half is brighter than the bottom half."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 3, size, size, generator=gen)
    labels = images[:, :, : size // 2].mean((1, 2, 3)) > images[:, :, size // 2 :].mean((1, 2, 3))
    return TensorDataset(images, labels.long())


def _model(seed=0, **options):
    torch.manual_seed(seed)
    return DEQClassifier(3, 2, **{**TINY, **options})


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# ------------------------------------------------------------------------------ classifier
def test_classifier_shapes_config_and_options():
    model = _model(weight_norm=True, init="x")
    logits = model(torch.rand(5, 3, 6, 6))
    assert logits.shape == (5, 2)
    assert parametrize.is_parametrized(model.deq.cell.conv1, "weight")
    rebuilt = DEQClassifier.from_config(json.loads(json.dumps(model.config)))
    assert rebuilt.config == model.config
    rebuilt.load_state_dict(model.state_dict())
    model.eval(), rebuilt.eval()
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(torch.ones(1, 3, 6, 6)), model(torch.ones(1, 3, 6, 6)))
    with pytest.raises(ValueError, match="init"):
        DEQClassifier(3, 2, init="random")
    with pytest.raises(ValueError, match="groups=3 must divide"):
        DEQClassifier(3, 2, channels=4, hidden=4, groups=3)
    with pytest.raises(ValueError, match="unknown DEQClassifier config keys: colour"):
        DEQClassifier.from_config({**model.config, "colour": 1})


def test_classifier_initial_state_is_zeros_or_x():
    images = torch.rand(3, 3, 6, 6)
    starts = {}
    for init in ("zeros", "x"):
        model = _model(init=init).eval()
        with torch.no_grad():
            model(images)
            x = model.stem(images)
            start_residual = model.deq.last_stats.forward.rel_residuals[0]
            z0 = torch.zeros_like(x) if init == "zeros" else x
            fz = model.deq.cell(z0, x)
        expected = (fz - z0).flatten(1).norm(dim=1) / (fz.flatten(1).norm(dim=1) + 1e-5)
        torch.testing.assert_close(start_residual, expected, rtol=1e-5, atol=1e-6)
        starts[init] = start_residual
    assert not torch.allclose(starts["zeros"], starts["x"])


# ---------------------------------------------------------------------------------- training
def test_training_records_metrics_callbacks_and_run_folder(tmp_path):
    events, epochs_seen = [], []

    class Dashboard:
        def on_epoch_end(self, metrics):
            epochs_seen.append(metrics["epoch"])

    data = _data(24)
    result = train(
        _model(),
        Subset(data, range(16)),
        Subset(data, range(16, 24)),
        epochs=2,
        run_dir=tmp_path / "run",
        callbacks=[lambda event, metrics: events.append((event, metrics)), Dashboard()],
        config={"task": "toy"},
        **FAST,
    )
    batches = [m for e, m in events if e == "batch"]
    assert len(batches) == 4 and [m["step"] for m in batches] == [1, 2, 3, 4]
    assert epochs_seen == [1, 2] and [e for e, _ in events].count("epoch") == 2
    for m in batches:
        assert m["fwd_iter_mean"] > 0 and m["bwd_iter_mean"] > 0 and m["fwd_nfe"] > 1
        assert m["time_forward_solve"] > 0 and m["time_backward_solve"] > 0
    first = result.history[0]
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "val_fwd_iter_mean"):
        assert math.isfinite(first[key])
    assert first["fwd_iter_max"] >= first["fwd_iter_mean"] > 0
    assert first["bwd_iter_max"] >= first["bwd_iter_mean"] > 0
    assert first["time_epoch"] >= first["time_forward_solve"] + first["time_backward_solve"]
    assert first["time_other"] > 0 and first["n_train"] == 16
    run = tmp_path / "run"
    config = json.loads((run / "config.json").read_text())
    assert config["task"] == "toy" and config["train"]["batch_size"] == 8
    assert config["model"]["channels"] == 4
    saved = json.loads((run / "metrics.json").read_text())["history"]
    assert [m["epoch"] for m in saved] == [1, 2]
    payload = read_checkpoint(run / "checkpoints" / "last.pt")
    assert payload["epoch"] == 2 and payload["optimizer"] and payload["scheduler"]
    assert set(payload["rng"]) >= {"torch", "numpy", "python"}
    assert (run / "checkpoints" / "best.pt").exists()
    assert not list((run / "checkpoints").glob("*.tmp"))
    with pytest.raises(FileExistsError, match="resume=True"):
        train(_model(), data, epochs=1, run_dir=run, **FAST)


def test_training_learns_a_separable_toy_task():
    data = _data(48, seed=3)
    result = train(_model(), data, epochs=6, scheduler="none", **FAST)
    losses = [m["train_loss"] for m in result.history]
    assert losses[-1] < 0.8 * losses[0]


def test_interrupted_run_resumes_to_the_same_weights_bit_for_bit(tmp_path):
    data = _data(20)
    train_set, val_set = Subset(data, range(16)), Subset(data, range(16, 20))
    options = dict(epochs=3, seed=5, **FAST)

    reference = _model(seed=1)
    full = train(reference, train_set, val_set, run_dir=tmp_path / "full", **options)
    numpy_keys = np.random.get_state()[1].copy()  # noqa: NPY002
    rng_after = (torch.get_rng_state(), numpy_keys, random.getstate())

    def stop_after_first_epoch(event, metrics):
        if event == "epoch" and metrics["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(
            _model(seed=1),
            train_set,
            val_set,
            run_dir=tmp_path / "cut",
            callbacks=[stop_after_first_epoch],
            **options,
        )
    assert read_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")["epoch"] == 1
    torch.manual_seed(123)  # the resumed run restores the generators from the checkpoint
    np.random.seed(123)  # noqa: NPY002 - perturbs the global state on purpose
    random.seed(123)
    resumed_model = _model(seed=99)  # different initial weights: they come from the checkpoint
    resumed = train(
        resumed_model, train_set, val_set, run_dir=tmp_path / "cut", resume=True, **options
    )
    assert resumed.resumed_from == 1
    assert torch.equal(torch.get_rng_state(), rng_after[0])
    assert np.array_equal(np.random.get_state()[1], rng_after[1])  # noqa: NPY002
    assert random.getstate() == rng_after[2]
    _assert_same_weights(_weights(resumed_model), _weights(reference))

    def untimed(history):
        return [{k: v for k, v in m.items() if not k.startswith("time_")} for m in history]

    assert untimed(resumed.history) == untimed(full.history)


def test_corrupt_or_incompatible_checkpoints_raise_and_load_nothing(tmp_path):
    data = _data(8)
    run = tmp_path / "run"
    train(_model(), data, epochs=1, run_dir=run, **FAST)
    last = run / "checkpoints" / "last.pt"
    good = last.read_bytes()

    wider = _model(channels=8, hidden=8)
    before = _weights(wider)
    with pytest.raises(CheckpointError, match=r"last\.pt: model architecture differs.*channels"):
        load_checkpoint(last, wider)
    _assert_same_weights(_weights(wider), before)

    with pytest.raises(CheckpointError, match="cannot resume with different training settings.*lr"):
        train(_model(), data, epochs=1, run_dir=run, resume=True, **{**FAST, "lr": 0.5})

    last.write_bytes(good[: len(good) // 2])
    model = _model(seed=7)
    before = _weights(model)
    with pytest.raises(CheckpointError, match=r"last\.pt: not a readable checkpoint"):
        train(model, data, epochs=2, run_dir=run, resume=True, **FAST)
    _assert_same_weights(_weights(model), before)

    torch.save({"format": "something-else"}, last)
    with pytest.raises(CheckpointError, match="unsupported checkpoint format"):
        load_checkpoint(last, model)
    payload = torch.load(tmp_path / "run" / "checkpoints" / "best.pt", weights_only=True)
    payload["model"]["head.2.weight"] = torch.full_like(payload["model"]["head.2.weight"], math.nan)
    torch.save(payload, last)
    with pytest.raises(CheckpointError, match="'head.2.weight' holds NaN"):
        load_checkpoint(last, model)
    _assert_same_weights(_weights(model), before)


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    data = _data(16)
    model = _model()

    def poison_after_first_epoch(event, metrics):
        if event == "epoch" and metrics["epoch"] == 1:
            with torch.no_grad():
                model.head[2].bias.fill_(math.nan)

    run = tmp_path / "run"
    with pytest.raises(NonFiniteLossError, match=r"nan at epoch 2, batch 1.*last\.pt \(epoch 1\)"):
        train(model, data, epochs=3, run_dir=run, callbacks=[poison_after_first_epoch], **FAST)
    payload = load_checkpoint(run / "checkpoints" / "last.pt", _model())
    assert payload["epoch"] == 1 and len(payload["history"]) == 1


def test_unconverged_forward_solves_are_counted_per_batch_not_fatal():
    batches = []
    model = _model(forward_solver={"method": "forward", "tol": 1e-12, "max_iter": 1})
    result = train(
        model,
        _data(12),
        epochs=1,
        callbacks=[lambda event, m: batches.append(m) if event == "batch" else None],
        **FAST,
    )
    assert [m["fwd_unconverged"] for m in batches] == [8, 4]
    assert [m["fwd_iter_max"] for m in batches] == [1, 1]
    assert result.history[0]["fwd_unconverged"] == 12


def test_predict_and_evaluate_report_classes_probabilities_and_iterations():
    model = _model()
    images = torch.rand(5, 3, 6, 6)
    classes, probs, iters = predict(model, images, batch_size=2)
    torch.testing.assert_close(probs.sum(1), torch.ones(5))
    assert torch.equal(classes, probs.argmax(1))
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(probs, torch.softmax(model(images), 1))
        model(images[4:])
    assert iters[4] == model.deq.last_stats.forward.steps[0] and bool((iters > 0).all())
    single = predict(model, images[0])
    assert single[0].shape == (1,) and single[2].tolist() == [int(iters[0])]
    scores = evaluate(model, TensorDataset(images, classes), batch_size=2)
    assert scores["acc"] == 1.0 and scores["n"] == 5 and scores["fwd_iter_max"] >= 1


# --------------------------------------------------------------------------------------- CLI
class _FakeTask:
    """Stands in for ``load_task``'s dataset: random images, two classes, fixed splits."""

    class_names = ("apolar", "polar")
    graph_options: dict = {}

    def __init__(self, image_size):
        self.data = _data(12, size=image_size)
        self.split = {"train": range(0, 8), "val": range(8, 10), "test": range(10, 12)}

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        return self.data[index]

    def subset(self, name):
        return Subset(self.data, list(self.split[name]))


def test_train_and_predict_commands(tmp_path, monkeypatch, capsys):
    import andersonn_lab.datasets

    seen = {}

    def fake_load_task(name, *, encoding, image_size, **options):
        seen.update(name=name, encoding=encoding, image_size=image_size)
        return _FakeTask(image_size)

    monkeypatch.setattr(andersonn_lab.datasets, "load_task", fake_load_task)
    parser = argparse.ArgumentParser()
    cli.add_train_arguments(parser)
    run = tmp_path / "run"
    argv = ["--task", "drugs", "--run-dir", str(run), "--image-size", "6", "--epochs", "2"]
    argv += ["--channels", "4", "--hidden", "4", "--groups", "2", "--pool", "1", "--m", "3"]
    argv += ["--encoding", "neighbors", "--device", "cpu", "--no-progress", "--batch-size", "4"]
    assert cli.run_train(parser.parse_args(argv)) == 0
    assert seen == {"name": "drugs", "encoding": "neighbors", "image_size": 6}
    config = json.loads((run / "config.json").read_text())
    assert config["encoding"] == "neighbors" and config["image_size"] == 6
    assert config["model"]["forward_solver"]["m"] == 3
    recipe_model = default_recipe("drugs", smoke=False).model
    assert config["model"]["cell"] == recipe_model["cell"]
    assert config["model"]["skip"] == recipe_model["skip"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert len(metrics["history"]) == 2 and metrics["test"]["n"] == 2
    assert (run / "training.png").read_bytes()[:4] == b"\x89PNG"
    assert "trained drugs for 2 epochs" in capsys.readouterr().out
    bad = parser.parse_args(argv[:4] + ["--solver", "forward", "--m", "2"])
    assert cli.run_train(bad) == 2
    assert "--m applies to --solver anderson only" in capsys.readouterr().err

    smi = tmp_path / "ethanol.smi"
    smi.write_text("CCO ethanol\n")
    predict_parser = argparse.ArgumentParser()
    cli.add_predict_arguments(predict_parser)
    inputs = ["c1ccccc1", "C1CC", str(smi), "missing.sdf", "CC(=O)O"]
    status = cli.run_predict(predict_parser.parse_args(["--run-dir", str(run), *inputs]))
    out, err = capsys.readouterr()
    assert status == 1
    rows = out.strip().splitlines()
    assert rows[0].split() == ["input", "class", "probability", "iterations"]
    assert [row.split()[0] for row in rows[1:]] == ["c1ccccc1", str(smi), "CC(=O)O"]
    for row in rows[1:]:
        _, name, prob, steps = row.split()[:4]
        assert name in ("apolar", "polar") and 0.5 <= float(prob) <= 1 and int(steps) >= 1
    assert "skipped 'C1CC'" in err and "skipped 'missing.sdf'" in err
    assert "2 of 5 inputs skipped" in err
    status = cli.run_predict(predict_parser.parse_args(["--run-dir", str(tmp_path), "CCO"]))
    assert status == 2 and "config.json: no such file" in capsys.readouterr().err
