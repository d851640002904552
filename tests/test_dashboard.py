"""Tests of the training dashboard: controller records, live figures, Stop, compare mode."""

from __future__ import annotations

import os

import pytest
import torch
from torch.utils.data import TensorDataset

from andersonn_lab.deq import DEQClassifier, load_checkpoint
from andersonn_lab.deq.checkpoint import read_checkpoint
from andersonn_lab.widgets.dashboard import TrainingDashboard
from andersonn_lab.widgets.dashboard_controller import DashboardController

os.environ.setdefault("PLOTLY_RENDERER", "json")

TINY = {"channels": 4, "hidden": 4, "groups": 2, "pool": 1}
FORWARD = {**TINY, "forward_solver": {"method": "forward", "max_iter": 8, "tol": 1e-3}}
FAST = {"batch_size": 4, "lr": 1e-2, "device": "cpu"}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread (the cores are shared)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _data(n: int = 8) -> TensorDataset:
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(n, 3, 6, 6, generator=gen)
    return TensorDataset(images, torch.arange(n) % 2)


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_compare_draws_both_runs_with_recorded_values():
    data = _data()
    board = TrainingDashboard.compare(
        {"anderson": {"model": TINY}, "forward": {"model": FORWARD, "lr": 5e-3}},
        data,
        data,
        epochs=1,
        threaded=False,
        interval=0,
        **FAST,
    )
    board.run_button.click()
    records = board.records
    assert [r.state for r in records.values()] == ["done", "done"]
    assert all(len(r.batches) == 2 and len(r.epochs) == 1 for r in records.values())
    lines = [t for t in board.loss_fig.data if t.mode == "lines"]
    assert [t.name for t in lines] == ["anderson", "forward"]
    for trace, record in zip(lines, records.values(), strict=True):
        assert list(trace.y) == pytest.approx(record.series("loss"))
        assert list(trace.x) == [b["step"] for b in record.batches]
    assert lines[0].line.color != lines[1].line.color
    val = [t for t in board.accuracy_fig.data if t.mode == "markers"]
    assert [t.y[0] for t in val] == pytest.approx(
        [r.epochs[0]["val_acc"] for r in records.values()]
    )
    iters = board.iterations_fig.data
    assert len(iters) == 4
    assert list(iters[2].y) == pytest.approx(records["forward"].series("fwd_iter_mean"))
    assert list(iters[3].y) == pytest.approx(records["forward"].series("bwd_iter_mean"))
    bars = board.time_fig.data
    assert [b.name for b in bars] == ["forward solve", "backward solve", "other"]
    assert tuple(bars[0].x) == ("anderson", "forward")
    split = records["anderson"].time_split()
    assert bars[0].y[0] == pytest.approx(split["forward"])
    assert bars[2].y[0] == pytest.approx(split["other"])
    assert "anderson" in board.table.value and "done" in board.status.value
    assert "val acc" in board.table.value
    # Two steps: whole-number ticks on the step axes, not 0.5, 1.5, 2.5
    for fig in (board.loss_fig, board.accuracy_fig, board.iterations_fig):
        assert fig.layout.xaxis.dtick == 1
    # The forward-iteration run really used forward iteration.
    assert board.controller.models["forward"].deq.forward_solver["method"] == "forward"
    board.run_button.click()  # nothing left to run: a warning, no exception
    assert board.controller.status.level == "warning"


def test_without_validation_data_no_validation_legend_or_title():
    board = TrainingDashboard.compare(
        {"anderson": {"model": TINY}}, _data(), epochs=1, threaded=False, interval=0, **FAST
    )
    board.run()
    for fig, metric in ((board.loss_fig, "loss"), (board.accuracy_fig, "accuracy")):
        assert [t.name for t in fig.data] == ["anderson"]  # no empty "(val_...)" rows
        assert fig.layout.title.text == f"{metric} per batch"
    assert "last loss" in board.table.value and "val acc" not in board.table.value
    with_val = TrainingDashboard.compare({"anderson": {"model": TINY}}, _data(), _data())
    assert "dots: validation" in with_val.loss_fig.layout.title.text


def test_stop_button_ends_at_batch_boundary_and_leaves_checkpoints(tmp_path):
    data = _data(16)  # 4 batches per epoch
    model = DEQClassifier(3, 2, **TINY)
    board = TrainingDashboard.single(
        model, data, epochs=3, run_dir=tmp_path / "run", threaded=True, interval=0, **FAST
    )

    def press_stop(event: str) -> None:
        if event == "batch" and len(board.records["run"].batches) == 6:
            board.stop_button.click()

    board.controller.add_listener(press_stop)
    board.run(block=False)
    assert board.join(timeout=60)
    record = board.records["run"]
    assert record.state == "stopped"
    assert len(record.batches) == 6  # stopped right after the batch that asked for it
    assert (record.batches[-1]["epoch"], record.batches[-1]["batch"]) == (2, 2)
    assert len(board.loss_fig.data[0].y) == 6
    assert "stopped" in board.status.value
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    assert read_checkpoint(last)["epoch"] == 1  # the last full epoch, from train()
    assert record.checkpoint == tmp_path / "run" / "checkpoints" / "stopped.pt"
    fresh = DEQClassifier(3, 2, **TINY)
    payload = load_checkpoint(record.checkpoint, fresh)
    assert payload["config"]["stopped_at"]["step"] == 6
    for key, value in _weights(model).items():
        assert torch.equal(fresh.state_dict()[key], value), key
    assert not board.controller.is_running and board.controller.current is None


def test_threaded_run_and_throttled_redraws():
    data = _data()
    board = TrainingDashboard.single(TINY, data, epochs=2, threaded=True, interval=1000, **FAST)
    seen: list[int] = []
    board.controller.add_listener(
        lambda event: seen.append(len(board.loss_fig.data[0].y)) if event == "batch" else None
    )
    board.run_button.click()  # returns at once; training runs in the worker thread
    assert board.join(timeout=60)
    assert seen == [1, 1, 1, 1]  # only the first batch was drawn while training
    assert len(board.loss_fig.data[0].y) == 4  # the end of the run always draws
    assert not board.run_button.disabled


def test_invalid_input_reports_status_not_exception(tmp_path):
    data = _data()
    for runs, words in (
        ({}, "non-empty"),
        ({"a": {"epochs": 1}}, "needs a 'model'"),
        ({"a": {"model": TINY, "window": 3}}, "unknown settings"),
        ({"a": {"model": "resnet"}}, "'model' must be"),
        ({"a": {"model": {**TINY, "channels": 5}}}, "invalid run configuration"),
    ):
        board = TrainingDashboard.compare(runs, data, threaded=False)
        assert board.controller.status.level == "error", runs
        assert words in board.controller.status.text
        board.run()
        assert board.controller.status.level == "error"
    run_dir = tmp_path / "used"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.pt").write_bytes(b"")
    ctrl = DashboardController({"a": {"model": TINY, "run_dir": run_dir}}, data, **FAST)
    ctrl.run(block=True)
    assert ctrl.records["a"].state == "failed"
    assert "FileExistsError" in ctrl.status.text and ctrl.status.level == "error"
    ctrl.stop()  # nothing running: no effect
    assert ctrl.status.level == "error"
    bad = DashboardController({"a": {"model": TINY, "lr": "fast"}}, data, batch_size=4)
    bad.run(block=False)  # the error happens in the worker thread
    assert bad.join(timeout=30)
    assert bad.records["a"].state == "failed" and "TypeError" in bad.status.text


def _broken(event: str) -> None:
    if event == "batch":
        raise RuntimeError("plot backend gone")


@pytest.mark.parametrize("threaded", [False, True])
def test_a_failing_listener_never_loses_the_training_run(threaded):
    data = _data()
    board = TrainingDashboard.single(TINY, data, epochs=2, threaded=threaded, interval=0, **FAST)
    board.controller.add_listener(_broken)
    board.run(block=not threaded)
    assert board.join(timeout=60)
    record = board.records["run"]
    assert record.state == "done" and len(record.batches) == 4 and len(record.epochs) == 2
    status = board.controller.status
    assert status.level == "warning"
    assert "done" in status.text and "drawing failed on 'batch'" in status.text
    assert "RuntimeError: plot backend gone" in status.text
    assert "plot backend gone" in board.status.value  # the widget's status line shows it
    assert len(board.loss_fig.data[0].y) == 4  # the dashboard's own drawing went on


def test_a_failing_figure_is_reported_in_the_status_line_and_training_goes_on(monkeypatch):
    from andersonn_lab.widgets import dashboard

    def no_drawing(fig, traces):
        raise ValueError("figure cannot be drawn")

    board = TrainingDashboard.single(TINY, _data(), epochs=1, threaded=False, interval=0, **FAST)
    monkeypatch.setattr(dashboard, "sync_panel", no_drawing)
    board.run_button.click()
    assert board.records["run"].state == "done" and len(board.records["run"].batches) == 2
    assert "figure cannot be drawn" in board.controller.status.text
    assert "figure cannot be drawn" in board.status.value
    assert not board.run_button.disabled
