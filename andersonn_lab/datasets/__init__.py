"""Labelled structures for the three classification tasks, as torch datasets.

Examples
--------
>>> from andersonn_lab.datasets import TASKS, load_task
>>> TASKS
('drugs', 'mofs', 'crystals')
>>> task = load_task("mofs")  # doctest: +SKIP
"""

from andersonn_lab.datasets.entry import DATA_DIR, Entry
from andersonn_lab.datasets.tasks import TASKS, TaskDataset, load_task

__all__ = ["DATA_DIR", "TASKS", "Entry", "TaskDataset", "load_task"]
