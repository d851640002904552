"""Interactive widgets for JupyterLab.

Examples
--------
>>> from andersonn_lab.widgets import ConvergenceExplorer
>>> explorer = ConvergenceExplorer(threaded=False, problem="cosine", dim=2)
>>> explorer.controller.last_results[0].all_converged
True
"""

from .explorer import ConvergenceExplorer
from .explorer_controller import (
    PROBLEM_SPECS,
    ExplorerController,
    ExplorerSettings,
    ExplorerStatus,
    PlotData,
    PlotTrace,
    SweepPoint,
)

__all__ = [
    "PROBLEM_SPECS",
    "ConvergenceExplorer",
    "ExplorerController",
    "ExplorerSettings",
    "ExplorerStatus",
    "PlotData",
    "PlotTrace",
    "SweepPoint",
]
