"""Interactive widgets for JupyterLab.

Examples
--------
>>> from andersonn_lab.widgets import ConvergenceExplorer
>>> explorer = ConvergenceExplorer(threaded=False, problem="cosine", dim=2)
>>> explorer.controller.last_results[0].all_converged
True
"""

from .anderson_stepper import AndersonStepper
from .anderson_steps import AndersonStepController, StepFrame
from .attribution import atom_scores, gradient_x_input
from .dashboard import TrainingDashboard
from .dashboard_controller import DashboardController, RunRecord, TrainingStopped
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
from .explorer_spectrum import SpectrumController, SpectrumPanel, SpectrumSnapshot
from .image_data import ImageController
from .image_viewer import ImageViewer
from .inspector import MisclassificationInspector
from .inspector_controller import InspectorController
from .linked import StructureImageView, link
from .linked_data import LinkedController
from .structure_data import StructureController, load_structure
from .structure_viewer import StructureViewer

__all__ = [
    "PROBLEM_SPECS",
    "AndersonStepController",
    "AndersonStepper",
    "ConvergenceExplorer",
    "ExplorerController",
    "ExplorerSettings",
    "ExplorerStatus",
    "PlotData",
    "PlotTrace",
    "DashboardController",
    "ImageController",
    "ImageViewer",
    "InspectorController",
    "LinkedController",
    "MisclassificationInspector",
    "RunRecord",
    "SpectrumController",
    "SpectrumPanel",
    "SpectrumSnapshot",
    "StepFrame",
    "StructureController",
    "StructureImageView",
    "StructureViewer",
    "SweepPoint",
    "TrainingDashboard",
    "TrainingStopped",
    "atom_scores",
    "gradient_x_input",
    "link",
    "load_structure",
]
