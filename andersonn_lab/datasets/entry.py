"""One labelled structure of a task, and where the task data lives."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATA_ENV = "ANDERSONN_LAB_DATA"
"""Environment variable naming a data folder to use instead of the shipped one."""

PACKAGED_DATA = Path(__file__).resolve().parents[1] / "data"
"""Where an installed wheel keeps the data: ``andersonn_lab/data`` (``[tool.setuptools]``
maps the repository's ``data/`` there)."""

REPO_DATA = Path(__file__).resolve().parents[2] / "data"
"""The repository's ``data/`` folder (a checkout or an editable install)."""


def find_data_dir() -> Path:
    """Return the folder holding one sub-folder of data files per task.

    In order: the folder named by the environment variable ``ANDERSONN_LAB_DATA``, the data
    shipped inside the installed package (``andersonn_lab/data``), the repository's ``data/``.
    The folder is not required to exist; :func:`require_task_dir` says what to do if not.

    Returns
    -------
    Path
        The data folder.
    """
    override = os.environ.get(DATA_ENV)
    if override:
        return Path(override).expanduser()
    if PACKAGED_DATA.is_dir():
        return PACKAGED_DATA
    return REPO_DATA


DATA_DIR: Path = find_data_dir()
"""Folder holding one sub-folder of data files per task (``drugs``, ``mofs``, ``crystals``).

The package's own data: ``data/`` of the repository in a checkout or an editable install,
``andersonn_lab/data`` in an installed wheel. Set the environment variable
``ANDERSONN_LAB_DATA`` (before importing andersonn_lab) to use another folder.
"""


def require_task_dir(folder: Path, task: str) -> Path:
    """Return ``folder`` if it is a directory, else raise an error that says how to get it.

    Parameters
    ----------
    folder:
        The task's data folder.
    task:
        The task's name, for the message.

    Returns
    -------
    Path
        ``folder``.

    Raises
    ------
    FileNotFoundError
        If ``folder`` is not a directory.

    Examples
    --------
    >>> require_task_dir(Path("/no/such/folder/crystals"), "crystals")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: no data for task 'crystals' at /no/such/folder/crystals; ...
    """
    if folder.is_dir():
        return folder
    if os.environ.get(DATA_ENV):
        hint = (
            f"the environment variable {DATA_ENV}={os.environ[DATA_ENV]} names a folder "
            f"without it: unset {DATA_ENV} to use the data shipped with andersonn_lab, or "
            "point it at a folder holding drugs/, mofs/ and crystals/"
        )
    else:
        hint = (
            "the data ships inside the andersonn_lab package (andersonn_lab/data) and in "
            "data/ of the repository: reinstall andersonn_lab (pip install --force-reinstall "
            f"andersonn_lab), set {DATA_ENV} to a folder holding drugs/, mofs/ and "
            f"crystals/ (for example data/ of a clone of the repository), or rebuild it with "
            f"andersonn-lab data build {task}"
        )
    raise FileNotFoundError(f"no data for task {task!r} at {folder}; {hint}")


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
