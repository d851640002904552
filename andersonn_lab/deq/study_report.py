"""Tables and figures of the speed-up study: text, pandas DataFrames and matplotlib figures.

Every function here reads measured rows and study dicts (or the result objects of
:mod:`~andersonn_lab.deq.study_results`, which behave like those dicts) and measures
nothing. pandas is imported only by the functions that return a DataFrame.

Examples
--------
>>> a = {"fwd_nfe": 20, "fwd_steps_mean": 12.5, "fwd_time": 0.01, "fwd_unconverged": 0,
...      "bwd_nfe": 10, "bwd_steps_mean": 8.0, "bwd_time": 0.02, "bwd_unconverged": 0}
>>> f = {**a, "fwd_nfe": 100, "fwd_time": 0.04}
>>> float(solve_table(a, f).loc["forward / anderson", "fwd_nfe"])
5.0
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .study_config import LITERATURE_TRAIN_SPEEDUP, TARGET_NFE_RATIO, TARGET_PREDICTION_CHANGE
from .study_ratios import speedup_ratios

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = [
    "SOLVE_COLUMNS",
    "crossover_figure",
    "crossover_table",
    "format_table",
    "memory_figure",
    "plot_study",
    "solve_table",
    "study_figure",
    "sweep_table",
    "training_figure",
    "training_table",
]

SOLVE_COLUMNS = (
    "fwd_nfe",
    "fwd_steps_mean",
    "fwd_time",
    "fwd_unconverged",
    "bwd_nfe",
    "bwd_steps_mean",
    "bwd_time",
    "bwd_unconverged",
)
"""Columns of :func:`solve_table`: the measured keys of a :func:`measure_solve` row."""

_RATIO_OF = {
    "fwd_nfe": "fwd_nfe_ratio",
    "fwd_steps_mean": "fwd_steps_ratio",
    "fwd_time": "fwd_time_ratio",
    "bwd_nfe": "bwd_nfe_ratio",
    "bwd_steps_mean": "bwd_steps_ratio",
    "bwd_time": "bwd_time_ratio",
}


def _fmt(value: float | None, spec: str = ".2f", suffix: str = "") -> str:
    return (
        "n/a"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else (f"{value:{spec}}{suffix}")
    )


def _conv(unconverged: int | None, n: int) -> str:
    if unconverged is None:
        return "n/a"
    return "yes" if unconverged == 0 else f"NO ({unconverged}/{n} hit cap)"


def _nfe_verdict(ratio: float | None, anderson_row: Mapping[str, Any]) -> str:
    """'met' when the evaluation ratio reaches the target and Anderson converged everywhere."""
    met = ratio is not None and ratio >= TARGET_NFE_RATIO and anderson_row["fwd_unconverged"] == 0
    return "met" if met else "NOT met"


def format_table(study: Mapping[str, Any]) -> str:
    """The study as text: solver comparison, training, accuracy at speed, window sweep and
    the targets (our numbers next to them; nothing is marked met unless measured so).

    Examples
    --------
    >>> format_table({"device": {"device": "cpu"}, "tasks": [], "skipped": {}}).splitlines()[0]
    'DEQ speed-up study on cpu (torch ?, ? thread(s))'
    """
    dev = study["device"]
    lines = [
        f"DEQ speed-up study on {dev.get('name', dev['device'])} "
        f"(torch {dev.get('torch', '?')}, {dev.get('threads', '?')} thread(s))"
    ]
    for name, reason in study.get("skipped", {}).items():
        lines.append(f"  skipped {name}: {reason}")
    for task in study["tasks"]:
        a, f = task["solves"]
        sp = task["speedup"]
        lines.append("")
        lines.append(
            f"== {task['task']} (train {task['sizes']['train']}, val {task['sizes']['val']}, "
            f"test {task['sizes']['test']}); solves of {a['n']} samples to tol {a['tol']:g}, "
            f"cap {a['max_iter']}, on the Anderson-trained model"
        )
        if "settings" in task:
            st = task["settings"]
            cell = st.get("cell") or "resnet"
            if cell == "contractive":
                cell = f"contractive cell (Lipschitz <= {st['contraction']:g}, skip {st['skip']:g})"
            else:
                cell = f"{cell} cell"
            lines.append(
                f"  model: {cell}, {st['channels']} channels, hidden {st['hidden']}, "
                f"pool {st['pool']}; "
                f"training: {st['epochs']} epochs, batch {st['batch_size']}, lr {st['lr']:g}, "
                f"Jacobian penalty {st['jacobian_penalty']:g}, solver tol {st['train_tol']:g}"
            )
        head = (
            f"  {'solver':<14} {'fwd nfe':>8} {'steps/sample':>12} {'fwd ms':>9} "
            f"{'fwd converged':<22} {'bwd nfe':>8} {'steps/sample':>12} {'bwd ms':>9} "
            f"{'bwd converged':<22}"
        )
        lines.append(head)
        for row in (a, f):
            label = f"anderson m={row['m']}" if row["solver"] == "anderson" else "forward"
            lines.append(
                f"  {label:<14} {row['fwd_nfe']:>8d} {_fmt(row.get('fwd_steps_mean'), '.1f'):>12} "
                f"{row['fwd_time'] * 1e3:>9.1f} "
                f"{_conv(row['fwd_unconverged'], row['n']):<22} "
                f"{row['bwd_nfe'] if row['bwd_nfe'] is not None else 'n/a':>8} "
                f"{_fmt(row.get('bwd_steps_mean'), '.1f'):>12} "
                f"{_fmt(row['bwd_time'] and row['bwd_time'] * 1e3, '.1f'):>9} "
                f"{_conv(row['bwd_unconverged'], row['n']):<22}"
            )
        lines.append(
            f"  forward/anderson: fwd nfe {_fmt(sp['fwd_nfe_ratio'], '.1f', 'x')} per batch, "
            f"{_fmt(sp.get('fwd_steps_ratio'), '.1f', 'x')} per sample, "
            f"fwd time {_fmt(sp['fwd_time_ratio'], '.2f', 'x')} [{sp['fwd_label']}]; "
            f"bwd nfe {_fmt(sp['bwd_nfe_ratio'], '.1f', 'x')} per batch, "
            f"{_fmt(sp.get('bwd_steps_ratio'), '.1f', 'x')} per sample, "
            f"bwd time {_fmt(sp['bwd_time_ratio'], '.2f', 'x')} [{sp['bwd_label']}]"
        )
        tr = task["training"]
        lines.append(
            f"  training ({len(tr['anderson']['history'])} epochs, same seed/data; target val "
            f"acc {task['target_acc']:.3f} = {task['target_source']}):"
        )
        for method in ("anderson", "forward"):
            t = tr[method]
            reach = t["to_target"]
            when = (
                f"{reach['seconds']:.1f} s (epoch {reach['epoch']})"
                if reach["reached"]
                else f"not reached ({reach['seconds']:.1f} s total)"
            )
            lines.append(
                f"    {method:<9} to target {when}; final val acc {t['final_val_acc']:.3f}, "
                f"test acc {_fmt(t['test_acc'], '.3f')}; unconverged solves during training: "
                f"fwd {t['fwd_unconverged']}, bwd {t['bwd_unconverged']}"
            )
        lines.append(
            f"    training-time ratio forward/anderson to target: "
            f"{_fmt(task['train_time_ratio'], '.2f', 'x')} "
            f"(literature: {LITERATURE_TRAIN_SPEEDUP}x, CIFAR-10 on a V100)"
        )
        pc = task["prediction_change"]
        lines.append(
            f"  accuracy at speed: anderson at tol {pc['fast_tol']:g} vs {pc['reference_tol']:g} "
            f"changes {pc['changed']}/{pc['n']} predictions ({100 * pc['changed_fraction']:.2f}%); "
            f"unconverged: {pc['fast_unconverged']} fast, {pc['reference_unconverged']} reference"
        )
        lines.append(f"  window sweep (forward solve to tol {a['tol']:g}):")
        on_cuda = any(row.get("cuda_peak_bytes") is not None for row in task["sweep"])
        lines.append(
            f"    {'solver':<10} {'m':>3} {'beta':>5} {'nfe':>5} {'ms':>9} {'converged':<22} "
            f"{'history KiB':>12}" + (f" {'CUDA peak KiB':>14}" if on_cuda else "")
        )
        for row in task["sweep"]:
            peak = row.get("cuda_peak_bytes")
            lines.append(
                f"    {row['solver']:<10} {row['m']:>3} {row['beta']:>5.2f} {row['fwd_nfe']:>5d} "
                f"{row['fwd_time'] * 1e3:>9.1f} {_conv(row['fwd_unconverged'], row['n']):<22} "
                f"{row['history_bytes'] / 1024:>12.1f}"
                + (f" {(peak or 0) / 1024:>14.0f}" if on_cuda else "")
            )

        time_ok = sp["fwd_time_ratio"] is not None and sp["fwd_time_ratio"] > 1.0
        change_ok = pc["changed_fraction"] < TARGET_PREDICTION_CHANGE
        capped = " (forward hit its cap)" if f["fwd_unconverged"] else ""
        lines.append(
            f"  targets: >= {TARGET_NFE_RATIO:g}x fewer fwd nfe: "
            f"{_nfe_verdict(sp['fwd_nfe_ratio'], a)} per batch, "
            f"{_nfe_verdict(sp.get('fwd_steps_ratio'), a)} per sample{capped}; faster wall time: "
            f"{'met' if time_ok else 'NOT met'}; < {100 * TARGET_PREDICTION_CHANGE:g}% "
            f"predictions changed: {'met' if change_ok else 'NOT met'}"
        )
    lines.append("")
    lines.append(
        "memory: 'history KiB' is Anderson's buffers computed from their shapes; 'CUDA peak "
        "KiB' (on CUDA only) is torch.cuda.max_memory_allocated above the baseline during "
        "the solve. On the CPU no peak is measured: torch's CPU allocator keeps no peak counter."
    )
    if "json" in study:
        lines.append(f"wrote {study['json']} and {study['png']}")
    return "\n".join(lines)


def study_figure(study: Mapping[str, Any]) -> Figure:
    """The study's figure: per task, wall time to tolerance, evaluations and history memory
    against ``m`` (one line per ``β``; plain forward iteration as a dashed line).

    Examples
    --------
    >>> len(study_figure({"tasks": []}).axes)
    3
    """
    tasks = list(study["tasks"])
    rows = max(len(tasks), 1)
    fig = _figure(13, 3.4 * rows)
    axes = fig.subplots(rows, 3, squeeze=False)
    if not tasks:
        axes[0][0].set_title("no tasks measured")
    for task, (ax_time, ax_nfe, ax_mem) in zip(tasks, axes, strict=False):
        sweep = task["sweep"]
        anderson = [r for r in sweep if r["solver"] == "anderson"]
        forward = [r for r in sweep if r["solver"] == "forward"]
        for beta in sorted({r["beta"] for r in anderson}):
            part = sorted((r for r in anderson if r["beta"] == beta), key=lambda r: r["m"])
            ms = [r["m"] for r in part]
            for axis, key, scale in ((ax_time, "fwd_time", 1e3), (ax_nfe, "fwd_nfe", 1)):
                axis.plot(
                    ms, [r[key] * scale for r in part], marker="o", label=f"anderson β={beta:g}"
                )
                capped = [r for r in part if r["fwd_unconverged"]]
                if capped:
                    axis.scatter(
                        [r["m"] for r in capped],
                        [r[key] * scale for r in capped],
                        marker="x",
                        s=80,
                        color="red",
                        zorder=3,
                    )
            ax_mem.plot(
                ms, [r["history_bytes"] / 2**20 for r in part], marker="o", label=f"β={beta:g}"
            )
        for row in forward:
            label = "forward" + (" (hit cap)" if row["fwd_unconverged"] else "")
            ax_time.axhline(row["fwd_time"] * 1e3, ls="--", color="grey", label=label)
            ax_nfe.axhline(row["fwd_nfe"], ls="--", color="grey", label=label)
        tol = sweep[0]["tol"] if sweep else math.nan
        ax_time.set_title(f"{task['task']}: wall time to tol {tol:g}")
        ax_time.set_ylabel("ms")
        ax_nfe.set_title("function evaluations (x: not converged)")
        ax_mem.set_title("Anderson history buffers")
        ax_mem.set_ylabel("MiB")
        for axis in (ax_time, ax_nfe, ax_mem):
            axis.set_xlabel("window m")
            axis.grid(alpha=0.3)
            if axis.lines:
                axis.legend(fontsize="small")
    return fig


def plot_study(study: Mapping[str, Any], path: str | Path) -> Path:
    """Save :func:`study_figure` as a PNG at ``path``; returns the path.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = plot_study({"tasks": []}, pathlib.Path(tempfile.mkdtemp()) / "s.png")
    >>> p.stat().st_size > 0
    True
    """
    fig = study_figure(study)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    return path


# --------------------------------------------------------------------------- DataFrames
_PRETTY = {
    "fwd_nfe": "fwd NFE",
    "fwd_steps_mean": "fwd steps/sample",
    "fwd_time": "fwd ms",
    "fwd_unconverged": "fwd unconverged",
    "bwd_nfe": "bwd NFE",
    "bwd_time": "bwd ms",
    "bwd_unconverged": "bwd unconverged",
}


def solve_table(
    anderson: Mapping[str, Any],
    forward: Mapping[str, Any],
    speedup: Mapping[str, Any] | None = None,
    *,
    pretty: bool = False,
) -> pd.DataFrame:
    """The speed-up rows: Anderson, forward iteration, and forward / Anderson.

    Parameters
    ----------
    anderson, forward:
        :func:`~andersonn_lab.deq.study_measure.measure_solve` rows of the two solvers.
    speedup:
        Their ratios (:func:`~andersonn_lab.deq.study_ratios.speedup_ratios`); None:
        computed from the rows.
    pretty:
        False: the measured values under their keys (:data:`SOLVE_COLUMNS`, seconds), the
        ratio row with NaN under the ``*_unconverged`` columns. True: the notebooks' display
        (milliseconds, steps to 0.1, ratios to 0.01, no backward steps column).

    Examples
    --------
    >>> a = {"fwd_nfe": 20, "fwd_steps_mean": 12.5, "fwd_time": 0.01, "fwd_unconverged": 0,
    ...      "bwd_nfe": 10, "bwd_steps_mean": 8.0, "bwd_time": 0.02, "bwd_unconverged": 0}
    >>> f = {**a, "fwd_nfe": 100, "fwd_time": 0.04}
    >>> float(solve_table(a, f, pretty=True).loc["forward", "fwd ms"])
    40.0
    """
    import pandas as pd

    if speedup is None:
        speedup = speedup_ratios(anderson, forward)
    rows: dict[str, dict[str, Any]] = {
        "anderson": {key: anderson.get(key) for key in SOLVE_COLUMNS},
        "forward": {key: forward.get(key) for key in SOLVE_COLUMNS},
    }
    ratio_row = {
        key: speedup.get(_RATIO_OF[key]) if key in _RATIO_OF else None for key in SOLVE_COLUMNS
    }
    rows["forward / anderson"] = ratio_row
    if not pretty:
        table = pd.DataFrame.from_dict(rows, orient="index", columns=list(SOLVE_COLUMNS))
        return table.fillna(value=math.nan)
    shown: dict[str, dict[str, Any]] = {}
    for name, row in rows.items():
        ratio = name == "forward / anderson"
        out: dict[str, Any] = {}
        for key, label in _PRETTY.items():
            value = row[key]
            if key.endswith("_unconverged"):
                out[label] = "" if ratio else value
            elif value is None:
                out[label] = None
            elif ratio:
                out[label] = round(value, 2)
            elif key.endswith("_time"):
                out[label] = round(1e3 * value, 1)
            elif key.endswith("_steps_mean"):
                out[label] = round(value, 1)
            else:
                out[label] = value
        shown[name] = out
    return pd.DataFrame.from_dict(shown, orient="index")


def sweep_table(sweep: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The window sweep, one row per solve (the :func:`measure_solve` keys as columns).

    Examples
    --------
    >>> rows = [{"solver": "anderson", "m": 2, "beta": 1.0, "fwd_nfe": 9},
    ...         {"solver": "forward", "m": 0, "beta": 1.0, "fwd_nfe": 30}]
    >>> sweep_table(rows)["fwd_nfe"].tolist()
    [9, 30]
    """
    import pandas as pd

    return pd.DataFrame([dict(row) for row in sweep])


def _history_of(run: Any) -> Sequence[Mapping[str, Any]]:
    """The epoch history of a ``Fit``, a ``TrainResult``, a training dict or a plain list."""
    if hasattr(run, "result"):  # recipe Fit
        run = run.result
    if hasattr(run, "history"):  # TrainResult
        return run.history
    if isinstance(run, Mapping):
        return run["history"]
    return run


def _test_acc_of(run: Any) -> float | None:
    if hasattr(run, "test_accuracy"):
        return float(run.test_accuracy)
    if isinstance(run, Mapping):
        return run.get("test_acc")
    return None


def training_table(runs: Mapping[str, Any]) -> pd.DataFrame:
    """Training cost per solver, summed over the epochs.

    Parameters
    ----------
    runs:
        ``{solver: run}``; a run is a recipe ``Fit``, a ``TrainResult``, a study's training
        dict (``study["training"]["anderson"]``) or a list of epoch metrics.

    Returns
    -------
    pandas.DataFrame
        Indexed by solver: forward and backward steps per sample of the last epoch,
        unconverged forward solves, seconds in forward and backward solves and in the epochs
        (validation excluded), and test accuracy where the run has one.

    Examples
    --------
    >>> epoch = {"fwd_iter_mean": 9.0, "bwd_iter_mean": 7.0, "fwd_unconverged": 0,
    ...          "time_forward_solve": 1.0, "time_backward_solve": 0.5, "time_epoch": 2.0}
    >>> float(training_table({"anderson": [epoch, epoch]}).loc["anderson", "epochs s"])
    4.0
    """
    import pandas as pd

    rows = []
    for method, run in runs.items():
        history = _history_of(run)
        rows.append(
            {
                "solver": method,
                "fwd steps/sample (last epoch)": history[-1]["fwd_iter_mean"],
                "bwd steps/sample (last epoch)": history[-1]["bwd_iter_mean"],
                "unconverged fwd solves": int(sum(h["fwd_unconverged"] for h in history)),
                "fwd solve s": sum(h["time_forward_solve"] for h in history),
                "bwd solve s": sum(h["time_backward_solve"] for h in history),
                "epochs s": sum(h["time_epoch"] for h in history),
                "test acc": _test_acc_of(run),
            }
        )
    return pd.DataFrame(rows).set_index("solver")


def _sweep_by_beta(
    sweep: Sequence[Mapping[str, Any]], betas: Sequence[float] | None
) -> tuple[Mapping[str, Any], list[tuple[float, list[Mapping[str, Any]]]]]:
    """A window sweep's forward-iteration row, and its Anderson rows per mixing ``β`` (all
    the sweep's values when ``betas`` is None), each list sorted by window ``m``."""
    forward = next(r for r in sweep if r["solver"] == "forward")
    anderson = [r for r in sweep if r["solver"] == "anderson"]
    wanted = betas if betas is not None else sorted({r["beta"] for r in anderson})
    return forward, [
        (beta, sorted((r for r in anderson if r["beta"] == beta), key=lambda r: r["m"]))
        for beta in wanted
    ]


def crossover_table(study: Mapping[str, Any], betas: Sequence[float] | None = None) -> pd.DataFrame:
    """Where the window pays off, per task and ``β``: the fastest ``m``, forward iteration's
    time and evaluations, the cost of one step at the largest ``m`` against the smallest
    (the mixing penalty) and the windows slower than plain forward iteration.

    Examples
    --------
    >>> row = lambda solver, m, t, n: {"solver": solver, "m": m, "beta": 1.0, "fwd_time": t,
    ...                                "fwd_nfe": n}
    >>> sweep = [row("anderson", 0, 0.1, 100), row("anderson", 3, 0.03, 20),
    ...          row("forward", 0, 0.1, 100)]
    >>> crossover_table({"tasks": [{"task": "t", "sweep": sweep}]})["fastest m"].tolist()
    [3]
    """
    import pandas as pd

    rows = []
    for task in study["tasks"]:
        forward, by_beta = _sweep_by_beta(task["sweep"], betas)
        for beta, part in by_beta:
            if not part:
                continue
            best = min(part, key=lambda r: r["fwd_time"])
            first, last = part[0], part[-1]
            penalty = (last["fwd_time"] / last["fwd_nfe"]) / (first["fwd_time"] / first["fwd_nfe"])
            slower = [r["m"] for r in part if r["m"] > 0 and r["fwd_time"] > forward["fwd_time"]]
            rows.append(
                {
                    "task": task["task"],
                    "beta": beta,
                    "fastest m": best["m"],
                    "fastest ms": 1e3 * best["fwd_time"],
                    "fastest nfe": best["fwd_nfe"],
                    "forward ms": 1e3 * forward["fwd_time"],
                    "forward nfe": forward["fwd_nfe"],
                    "smallest m": first["m"],
                    "largest m": last["m"],
                    "step cost largest / smallest m": penalty,
                    "m slower than forward": slower,
                }
            )
    return pd.DataFrame(rows).set_index(["task", "beta"]) if rows else pd.DataFrame(rows)


# --------------------------------------------------------------------------- figures
@functools.cache
def _figure_class() -> type:
    from matplotlib.figure import Figure

    class StudyFigure(Figure):
        """A matplotlib figure that shows itself in a notebook (``display(fig)``, or as a
        cell's last value) without pyplot and without ``%matplotlib inline``."""

        def _repr_png_(self) -> bytes:
            buffer = io.BytesIO()
            self.savefig(buffer, format="png", dpi=90)
            return buffer.getvalue()

    return StudyFigure


def _figure(width: float, height: float) -> Figure:
    """A new figure on the Agg canvas (no pyplot state); it displays itself as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = _figure_class()(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def training_figure(runs: Mapping[str, Any]) -> Figure:
    """Loss, validation accuracy, solver steps per sample (forward solid, backward dashed)
    and seconds in the solves, per epoch, one colour per run (as :func:`training_table`).

    Examples
    --------
    >>> epoch = {"epoch": 1, "train_loss": 0.7, "val_loss": 0.6, "val_acc": 0.5,
    ...          "fwd_iter_mean": 9.0, "bwd_iter_mean": 7.0, "time_forward_solve": 1.0,
    ...          "time_backward_solve": 0.5}
    >>> len(training_figure({"anderson": [epoch]}).axes)
    4
    """
    fig = _figure(15, 3.4)
    axes = fig.subplots(1, 4)
    for index, (method, run) in enumerate(runs.items()):
        color = f"C{index}"
        history = _history_of(run)
        epochs = [h["epoch"] for h in history]
        axes[0].plot(
            epochs, [h["train_loss"] for h in history], color=color, label=f"{method} train"
        )
        axes[0].plot(
            epochs, [h["val_loss"] for h in history], "--", color=color, label=f"{method} val"
        )
        axes[1].plot(epochs, [h["val_acc"] for h in history], "o-", color=color, label=method)
        axes[2].plot(epochs, [h["fwd_iter_mean"] for h in history], "o-", color=color, label=method)
        axes[2].plot(epochs, [h["bwd_iter_mean"] for h in history], "s--", color=color)
        solve = [h["time_forward_solve"] + h["time_backward_solve"] for h in history]
        axes[3].plot(epochs, solve, "o-", color=color, label=method)
    axes[0].set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    axes[1].set(xlabel="epoch", ylabel="accuracy", title="validation accuracy")
    axes[2].set(xlabel="epoch", ylabel="steps per sample", title="solver steps (bwd dashed)")
    axes[3].set(xlabel="epoch", ylabel="seconds", title="time in forward + backward solves")
    for axis in axes:
        axis.legend(fontsize=8)
    return fig


def crossover_figure(study: Mapping[str, Any], betas: Sequence[float] | None = None) -> Figure:
    """Per task: wall time to tolerance and milliseconds per evaluation against the window
    ``m``, one line per ``β``, forward iteration dashed.

    Examples
    --------
    >>> row = lambda solver, m: {"solver": solver, "m": m, "beta": 1.0, "fwd_time": 0.1,
    ...                          "fwd_nfe": 10, "tol": 1e-5}
    >>> study = {"tasks": [{"task": "t", "sweep": [row("anderson", 2), row("forward", 0)]}]}
    >>> len(crossover_figure(study).axes)
    2
    """
    tasks = list(study["tasks"])
    fig = _figure(11, 3.4 * max(len(tasks), 1))
    axes = fig.subplots(max(len(tasks), 1), 2, squeeze=False)
    for (ax_time, ax_step), task in zip(axes, tasks, strict=False):
        forward, by_beta = _sweep_by_beta(task["sweep"], betas)
        for beta, part in by_beta:
            ms = [r["m"] for r in part]
            ax_time.plot(
                ms, [1e3 * r["fwd_time"] for r in part], "o-", label=f"anderson β={beta:g}"
            )
            per_eval = [1e3 * r["fwd_time"] / max(r["fwd_nfe"], 1) for r in part]
            ax_step.plot(ms, per_eval, "o-", label=f"anderson β={beta:g}")
        ax_time.axhline(1e3 * forward["fwd_time"], color="gray", ls="--", label="forward iteration")
        ax_step.axhline(
            1e3 * forward["fwd_time"] / max(forward["fwd_nfe"], 1),
            color="gray",
            ls="--",
            label="forward iteration",
        )
        ax_time.set(
            xlabel="window m",
            ylabel="ms to tolerance",
            title=f"{task['task']}: wall time to tol {forward['tol']:g}",
        )
        ax_step.set(
            xlabel="window m",
            ylabel="ms per evaluation",
            title=f"{task['task']}: cost of one step (mixing penalty)",
        )
        for axis in (ax_time, ax_step):
            axis.grid(alpha=0.3)
            axis.legend(fontsize="small")
    return fig


def memory_figure(study: Mapping[str, Any], beta: float | None = None) -> Figure:
    """Anderson's history buffers (computed) and, on CUDA, the measured peak against ``m``,
    per task, at one ``β`` (default: the largest swept).

    Examples
    --------
    >>> rows = [{"solver": "anderson", "m": m, "beta": 1.0, "history_bytes": 1000 * (m + 1),
    ...          "cuda_peak_bytes": None} for m in (0, 2)]
    >>> len(memory_figure({"tasks": [{"task": "t", "sweep": rows}]}).axes)
    1
    """
    fig = _figure(6.5, 3.6)
    axis = fig.subplots()
    for task in study["tasks"]:
        anderson = [r for r in task["sweep"] if r["solver"] == "anderson"]
        chosen = beta if beta is not None else max(r["beta"] for r in anderson)
        part = sorted((r for r in anderson if r["beta"] == chosen), key=lambda r: r["m"])
        ms = [r["m"] for r in part]
        axis.plot(
            ms,
            [r["history_bytes"] / 2**20 for r in part],
            "o-",
            label=f"{task['task']}: history buffers",
        )
        cuda = [r.get("cuda_peak_bytes") for r in part]
        if any(value is not None for value in cuda):  # measured on CUDA only
            axis.plot(
                ms,
                [(b or 0) / 2**20 for b in cuda],
                "s:",
                label=f"{task['task']}: measured CUDA peak",
            )
    axis.set(xlabel="window m", ylabel="MiB", title="Anderson memory as m grows")
    axis.grid(alpha=0.3)
    if axis.lines:
        axis.legend(fontsize="small")
    return fig
