"""Deep equilibrium models: the implicit layer, cells, an image classifier and its training.

* :class:`DEQLayer` -- ``z* = f(z*, x)`` solved by :mod:`andersonn_lab.solvers`, with
  implicit, phantom or one-step gradients and per-call solver statistics.
* :class:`ResNetCell`, :class:`ContractiveCell`, :class:`TanhCell` -- cells ``f(z, x)``.
* :class:`DEQClassifier` -- stem, DEQ, pooled linear head.
* :func:`train`, :func:`evaluate`, :func:`predict` -- training (resumable, checkpointed),
  evaluation and inference; :mod:`andersonn_lab.deq.cli` holds the command-line handlers.

Examples
--------
>>> import torch
>>> from andersonn_lab.deq import DEQLayer, TanhCell
>>> layer = DEQLayer(TanhCell(4), forward_solver={"method": "anderson", "m": 3, "tol": 1e-6})
>>> z = layer(torch.randn(2, 4))
>>> layer.last_stats.forward.all_converged
True
"""

from .cells import ContractiveCell, ResNetCell, TanhCell
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .classifier import DEQClassifier
from .gradients import (
    GRADIENTS,
    Gradient,
    ImplicitGradient,
    OneStepGradient,
    PhantomGradient,
    make_gradient,
)
from .layer import SOLVER_KEYS, DEQLayer, DEQStats, SolveStats
from .train import (
    NonFiniteLossError,
    SolverStatsCollector,
    TrainConfig,
    TrainResult,
    evaluate,
    plot_history,
    predict,
    train,
)

__all__ = [
    "GRADIENTS",
    "SOLVER_KEYS",
    "CheckpointError",
    "ContractiveCell",
    "DEQClassifier",
    "DEQLayer",
    "DEQStats",
    "Gradient",
    "ImplicitGradient",
    "NonFiniteLossError",
    "OneStepGradient",
    "PhantomGradient",
    "ResNetCell",
    "SolveStats",
    "SolverStatsCollector",
    "TanhCell",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "load_checkpoint",
    "make_gradient",
    "plot_history",
    "predict",
    "save_checkpoint",
    "train",
]
