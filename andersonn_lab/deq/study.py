"""The speed-up and crossover study: Anderson extrapolation against forward iteration.

For every task the study

1. trains the same DEQ classifier twice, with the same seed, data order, tolerance and
   iteration cap, once with Anderson and once with forward iteration (forward and backward
   solves use the same method), and reads the training wall time until a target validation
   accuracy is first reached, and the final accuracies;
2. on the Anderson-trained model, solves a fixed batch to a tight tolerance (``eval_tol``,
   default 1e-5 relative) with each solver under the same generous cap, and records
   function evaluations and wall time of the forward solve and of the backward (adjoint)
   solve, and how many samples did not converge;
3. counts the predictions that change when inference uses Anderson at the training
   tolerance instead of a solve to ``reference_tol`` (1e-6);
4. sweeps Anderson's window ``m`` (0 = forward iteration with mixing ``β``) and ``β``,
   recording evaluations, wall time to ``eval_tol`` and memory: the bytes of the solver's
   history buffers computed from their shapes, plus, on CUDA only, the measured peak
   (``torch.cuda.max_memory_allocated`` above the baseline). On the CPU nothing measures one
   solve's peak honestly: torch's CPU allocator keeps no peak counter, ``tracemalloc`` does not
   see tensor memory, and the process's peak resident set never falls (it read 0 for most
   rows), so the CPU rows carry the computed bytes only.

Fairness: both solvers get the same tolerance and cap. When a solver does not converge the
table says so; a speed-up where forward iteration stopped at its cap is labelled
``forward hit cap`` (the true ratio is then at least the printed one for evaluations).

The study is split by role: :mod:`~andersonn_lab.deq.study_config` (settings and targets),
:mod:`~andersonn_lab.deq.study_measure` (measuring), :mod:`~andersonn_lab.deq.study_ratios`
(the ratios), :mod:`~andersonn_lab.deq.study_results` (result objects),
:mod:`~andersonn_lab.deq.study_report` (text, DataFrames, figures) and
:mod:`~andersonn_lab.deq.study_cli` (``andersonn-lab bench deq``). This module re-exports
their public names, so ``from andersonn_lab.deq.study import ...`` keeps working.

Examples
--------
>>> from torch.utils.data import TensorDataset
>>> gen = torch.Generator().manual_seed(0)
>>> images = torch.rand(16, 3, 6, 6, generator=gen)
>>> data = TensorDataset(images, (images[:, 0].mean((1, 2)) > 0.5).long())
>>> config = StudyConfig.quick(channels=4, hidden=4, groups=2, pool=1, epochs=1,
...                            m_values=(0, 2), betas=(1.0,), eval_samples=8, repeats=1)
>>> study = study_task("toy", data, data, data, num_classes=2, config=config)
>>> [row["solver"] for row in study["solves"]]
['anderson', 'forward']
>>> bool(study.table().loc["forward / anderson", "fwd_nfe"] == study.ratios["fwd_nfe_ratio"])
True
"""

from __future__ import annotations

import torch  # noqa: F401  (the examples above use it)

from .study_cli import add_bench_arguments, config_from_args, main, results_dir, run_bench
from .study_config import (
    LITERATURE_TRAIN_SPEEDUP,
    TARGET_NFE_RATIO,
    TARGET_PREDICTION_CHANGE,
    StudyConfig,
)
from .study_measure import (
    anderson_buffer_bytes,
    compare_solvers,
    measure_solve,
    prediction_change,
    run_study,
    study_task,
    sweep_window,
)
from .study_ratios import ratio, speedup_label, speedup_ratios, time_to_target
from .study_report import (
    SOLVE_COLUMNS,
    crossover_figure,
    crossover_table,
    format_table,
    memory_figure,
    plot_study,
    solve_table,
    study_figure,
    sweep_table,
    training_figure,
    training_table,
)
from .study_results import SolverComparison, StudyResult, TaskStudy

__all__ = [
    "LITERATURE_TRAIN_SPEEDUP",
    "SOLVE_COLUMNS",
    "TARGET_NFE_RATIO",
    "TARGET_PREDICTION_CHANGE",
    "SolverComparison",
    "StudyConfig",
    "StudyResult",
    "TaskStudy",
    "add_bench_arguments",
    "anderson_buffer_bytes",
    "compare_solvers",
    "config_from_args",
    "crossover_figure",
    "crossover_table",
    "format_table",
    "main",
    "measure_solve",
    "memory_figure",
    "plot_study",
    "prediction_change",
    "ratio",
    "results_dir",
    "run_bench",
    "run_study",
    "solve_table",
    "speedup_label",
    "speedup_ratios",
    "study_figure",
    "study_task",
    "sweep_table",
    "sweep_window",
    "time_to_target",
    "training_figure",
    "training_table",
]
