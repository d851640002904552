"""Result objects of the speed-up study and the ratios it reports.

* :func:`ratio`, :func:`speedup_ratios`, :func:`speedup_label`, :func:`time_to_target`
  (from :mod:`~andersonn_lab.deq.study_ratios`) -- the forward / Anderson ratios of two
  measured rows and how to read them.
* :class:`SolverComparison` -- Anderson and forward iteration solving one batch through
  one model (what :func:`~andersonn_lab.deq.study_measure.compare_solvers` returns).
* :class:`TaskStudy` -- the whole study of one task, with the two trained models
  (:func:`~andersonn_lab.deq.study_measure.study_task`).
* :class:`StudyResult` -- every task (:func:`~andersonn_lab.deq.study_measure.run_study`).

:class:`TaskStudy` and :class:`StudyResult` are read-only mappings over the JSON-ready dicts
the study has always returned (``study["tasks"][0]["sweep"]`` still works), with methods
for the tables and figures of :mod:`~andersonn_lab.deq.study_report`.

Examples
--------
>>> row = {"fwd_nfe": 20, "fwd_steps_mean": 12.0, "fwd_time": 0.01, "fwd_unconverged": 0,
...        "bwd_nfe": 10, "bwd_steps_mean": 8.0, "bwd_time": 0.02, "bwd_unconverged": 0}
>>> comparison = SolverComparison(row, {**row, "fwd_nfe": 100})
>>> comparison.ratios["fwd_nfe_ratio"]
5.0
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .study_ratios import speedup_label, speedup_ratios
from .study_report import (
    crossover_figure,
    crossover_table,
    format_table,
    memory_figure,
    solve_table,
    study_figure,
    sweep_table,
    training_figure,
    training_table,
)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from .classifier import DEQClassifier

__all__ = [
    "SolverComparison",
    "StudyResult",
    "TaskStudy",
]


# --------------------------------------------------------------------------- result objects
_PLOTS = ("overview", "crossover", "memory", "training")


@dataclass(frozen=True)
class SolverComparison:
    """Anderson and forward iteration solving the same batch through the same model.

    Attributes
    ----------
    anderson, forward:
        The two :func:`~andersonn_lab.deq.study_measure.measure_solve` rows (dicts of
        evaluations, steps, median seconds and unconverged counts, forward and backward).

    Examples
    --------
    >>> row = {"fwd_nfe": 20, "fwd_steps_mean": 12.0, "fwd_time": 0.01, "fwd_unconverged": 0,
    ...        "bwd_nfe": 10, "bwd_steps_mean": 8.0, "bwd_time": 0.02, "bwd_unconverged": 0}
    >>> comparison = SolverComparison(row, {**row, "fwd_nfe": 100, "fwd_unconverged": 2})
    >>> comparison.labels["fwd"]
    'forward hit cap: ratio is a lower bound'
    >>> float(comparison.table().loc["forward / anderson", "fwd_nfe"])
    5.0
    """

    anderson: Mapping[str, Any]
    forward: Mapping[str, Any]

    @property
    def rows(self) -> list[Mapping[str, Any]]:
        """``[anderson, forward]``, the order of a study's ``solves``."""
        return [self.anderson, self.forward]

    @property
    def ratios(self) -> dict[str, Any]:
        """Forward / Anderson ratios and labels (:func:`speedup_ratios`)."""
        return speedup_ratios(self.anderson, self.forward)

    @property
    def labels(self) -> dict[str, str]:
        """How to read the ratios, per phase: ``{"fwd": ..., "bwd": ...}``."""
        return {
            phase: speedup_label(self.anderson, self.forward, phase) for phase in ("fwd", "bwd")
        }

    def table(self, *, pretty: bool = False) -> pd.DataFrame:
        """The speed-up rows as a DataFrame (:func:`solve_table`)."""
        return solve_table(self.anderson, self.forward, self.ratios, pretty=pretty)


class _ReadOnlyData(Mapping[str, Any]):
    """A read-only mapping over ``self._data`` (the JSON-ready dict a study has always been)."""

    _data: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class TaskStudy(_ReadOnlyData):
    """The study of one task: a read-only mapping over its JSON-ready dict, plus the models.

    The keys are those :func:`~andersonn_lab.deq.study_measure.study_task` has always
    returned: ``task``, ``settings``, ``sizes``, ``training``, ``target_acc``,
    ``target_source``, ``train_time_ratio``, ``solves``, ``speedup``,
    ``prediction_change`` and ``sweep``.

    Attributes
    ----------
    models:
        The trained models, ``{"anderson": DEQClassifier, "forward": DEQClassifier}`` (empty
        for a study read back from JSON).

    Examples
    --------
    >>> row = {"solver": "anderson", "m": 2, "beta": 1.0, "fwd_nfe": 20, "fwd_steps_mean": 12.0,
    ...        "fwd_time": 0.01, "fwd_unconverged": 0, "bwd_nfe": 10, "bwd_steps_mean": 8.0,
    ...        "bwd_time": 0.02, "bwd_unconverged": 0, "tol": 1e-5}
    >>> f = {**row, "solver": "forward", "m": 0, "fwd_nfe": 100}
    >>> task = TaskStudy({"task": "toy", "solves": [row, f], "sweep": [row, f]})
    >>> task.task, task["solves"][1]["fwd_nfe"], float(task.table().loc["forward", "fwd_nfe"])
    ('toy', 100, 100.0)
    """

    def __init__(
        self, data: Mapping[str, Any], models: Mapping[str, DEQClassifier] | None = None
    ) -> None:
        self._data = dict(data)
        self.models: dict[str, DEQClassifier] = dict(models or {})

    def __repr__(self) -> str:
        return f"TaskStudy({self._data.get('task')!r}, keys={list(self._data)})"

    @property
    def task(self) -> str:
        """The task's name."""
        return str(self._data["task"])

    @property
    def comparison(self) -> SolverComparison:
        """The Anderson / forward solves on the Anderson-trained model."""
        anderson, forward = self._data["solves"]
        return SolverComparison(anderson, forward)

    @property
    def ratios(self) -> dict[str, Any]:
        """The measured ratios and labels (the ``speedup`` entry, or computed from the solves)."""
        return dict(self._data.get("speedup") or self.comparison.ratios)

    def table(self, *, pretty: bool = False) -> pd.DataFrame:
        """Speed-up rows: Anderson, forward and forward / Anderson (:func:`solve_table`)."""
        comparison = self.comparison
        return solve_table(comparison.anderson, comparison.forward, self.ratios, pretty=pretty)

    def sweep_table(self) -> pd.DataFrame:
        """The window sweep, one row per solve."""
        return sweep_table(self._data["sweep"])

    def training_table(self) -> pd.DataFrame:
        """Training cost of the two runs (:func:`training_table`)."""
        return training_table(self._data["training"])

    def crossover_table(self, betas: Sequence[float] | None = None) -> pd.DataFrame:
        """Fastest window and mixing penalty per ``β`` (:func:`crossover_table`)."""
        return crossover_table({"tasks": [self]}, betas)

    def plot(self, kind: str = "crossover") -> Figure:
        """A matplotlib figure of this task: ``"crossover"``, ``"memory"``, ``"training"`` or
        ``"overview"`` (the study's PNG for this task)."""
        return _plot({"tasks": [self]}, kind)

    def as_dict(self) -> dict[str, Any]:
        """A shallow copy of the JSON-ready dict."""
        return dict(self._data)


class StudyResult(_ReadOnlyData):
    """The whole study: a read-only mapping over the dict ``run_study`` has always returned
    (``config``, ``device``, ``tasks``, ``skipped``, ``seconds``, ``json``, ``png``), whose
    ``tasks`` are :class:`TaskStudy` objects.

    Examples
    --------
    >>> row = {"solver": "anderson", "m": 2, "beta": 1.0, "fwd_nfe": 20, "fwd_steps_mean": 12.0,
    ...        "fwd_time": 0.01, "fwd_unconverged": 0, "bwd_nfe": 10, "bwd_steps_mean": 8.0,
    ...        "bwd_time": 0.02, "bwd_unconverged": 0, "tol": 1e-5}
    >>> f = {**row, "solver": "forward", "m": 0, "fwd_nfe": 100}
    >>> study = StudyResult({"tasks": [{"task": "toy", "solves": [row, f], "sweep": [row, f]}]})
    >>> float(study.table().loc[("toy", "forward / anderson"), "fwd_nfe"])
    5.0
    >>> study.models
    {'toy': {}}
    """

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = dict(data)
        self._data["tasks"] = [
            task if isinstance(task, TaskStudy) else TaskStudy(task)
            for task in self._data.get("tasks", [])
        ]

    def __repr__(self) -> str:
        names = [task.task for task in self.tasks]
        return f"StudyResult(tasks={names}, skipped={list(self._data.get('skipped', {}))})"

    @property
    def tasks(self) -> list[TaskStudy]:
        """One :class:`TaskStudy` per measured task."""
        return list(self._data["tasks"])

    @property
    def models(self) -> dict[str, dict[str, DEQClassifier]]:
        """``{task: {"anderson": model, "forward": model}}``: the trained models."""
        return {task.task: dict(task.models) for task in self.tasks}

    def task(self, name: str) -> TaskStudy:
        """The :class:`TaskStudy` of task ``name`` (``KeyError`` if it was not measured)."""
        for task in self.tasks:
            if task.task == name:
                return task
        raise KeyError(name)

    def _concat(self, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
        import pandas as pd

        if not tables:
            return pd.DataFrame()
        return pd.concat(tables, names=["task", None])

    def table(self, *, pretty: bool = False) -> pd.DataFrame:
        """Speed-up rows of every task, indexed by ``(task, solver)`` (:func:`solve_table`)."""
        return self._concat({task.task: task.table(pretty=pretty) for task in self.tasks})

    def sweep_table(self) -> pd.DataFrame:
        """The window sweeps, indexed by ``(task, row number)``."""
        return self._concat({task.task: task.sweep_table() for task in self.tasks})

    def training_table(self) -> pd.DataFrame:
        """Training cost of both runs, indexed by ``(task, solver)``."""
        return self._concat({task.task: task.training_table() for task in self.tasks})

    def crossover_table(self, betas: Sequence[float] | None = None) -> pd.DataFrame:
        """Fastest window and mixing penalty per task and ``β`` (:func:`crossover_table`)."""
        return crossover_table(self, betas)

    def report(self) -> str:
        """The study as text (:func:`~andersonn_lab.deq.study_report.format_table`)."""
        return format_table(self)

    def plot(self, kind: str = "overview") -> Figure:
        """A matplotlib figure: ``"overview"`` (the study's PNG: time, evaluations and
        memory against ``m`` per task), ``"crossover"``, ``"memory"`` or ``"training"``."""
        return _plot(self, kind)


def _plot(study: Mapping[str, Any], kind: str) -> Figure:
    if kind == "overview":
        return study_figure(study)
    if kind == "crossover":
        return crossover_figure(study)
    if kind == "memory":
        return memory_figure(study)
    if kind == "training":
        tasks = list(study["tasks"])
        if len(tasks) != 1:
            raise ValueError("kind='training' draws one task: use study.task(name).plot(...)")
        return training_figure(tasks[0]["training"])
    raise ValueError(f"kind must be one of {_PLOTS}, got {kind!r}")
