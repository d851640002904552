"""One labelled structure of a task, and where the task data lives."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATA_DIR = Path(os.environ.get("ANDERSONN_LAB_DATA", Path(__file__).resolve().parents[2] / "data"))
"""Folder holding one sub-folder of data files per task (``drugs``, ``mofs``, ``crystals``).

Set the environment variable ``ANDERSONN_LAB_DATA`` to use another folder.
"""


@dataclass(frozen=True)
class Entry:
    """A labelled structure as stored in ``data/``.

    Parameters
    ----------
    id:
        Stable identifier, unique within its task (for example a ChEMBL id or a CoRE MOF name).
    label:
        Class index into the task's ``CLASS_NAMES``.
    structure:
        A SMILES string for molecules, or an :class:`ase.Atoms` for periodic structures.
    info:
        Task-specific values behind the label (dipole in debye, LCD in angstrom, gap in eV, ...).
    """

    id: str
    label: int
    structure: Any
    info: dict[str, Any] = field(default_factory=dict)
