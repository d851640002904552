"""Read structure files into atom-bond networks, choosing the reader by file name.

It sits above :mod:`~andersonn_lab.structures.molecules` (RDKit) and
:mod:`~andersonn_lab.structures.crystals` (ASE), which both build on
:mod:`~andersonn_lab.structures.graph`, so no import runs back down.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import networkx as nx

from .crystals import from_atoms, read_atoms
from .errors import StructureError
from .molecules import iter_mol_file

__all__ = ["MOLECULE_SUFFIXES", "read_molecules", "read_structure"]

MOLECULE_SUFFIXES = frozenset({".smi", ".smiles", ".sdf", ".sd", ".mol"})
"""File suffixes read as molecules through RDKit."""

_ASE_FORMATS = {".cif": "cif", ".xyz": "extxyz", ".extxyz": "extxyz", ".vasp": "vasp"}
_VASP_NAMES = ("POSCAR", "CONTCAR")


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in MOLECULE_SUFFIXES:
        return suffix
    if suffix in _ASE_FORMATS:
        return _ASE_FORMATS[suffix]
    if path.name.upper().startswith(_VASP_NAMES):
        return "vasp"
    raise StructureError(
        f"{str(path)!r}: unknown structure file type; expected .smi, .sdf, .mol, .cif, .xyz, "
        ".extxyz, .vasp, POSCAR or CONTCAR"
    )


def read_structure(path: str | Path, **kwargs: Any) -> nx.Graph:
    """Read one structure file into an atom-bond network, choosing the reader by file name.

    ``.smi``/``.smiles`` (first line: ``SMILES [name]``), ``.sdf``/``.sd`` (first record),
    ``.mol`` go through RDKit (:func:`from_mol`); ``.cif``, ``.xyz``/``.extxyz`` (first frame),
    ``.vasp`` and files named ``POSCAR*``/``CONTCAR*`` go through :func:`ase.io.read` and
    :func:`from_atoms`. Use :func:`read_molecules` for every record of a multi-record file.

    Parameters
    ----------
    path:
        The file.
    **kwargs:
        Passed on to :func:`from_mol` (``explicit_h``, ``embed_3d``, ``seed``) or to
        :func:`from_atoms` (``bonds``, ``cutoff_scale``; by default the nearest-shell bond
        rule); ``name`` overrides the name taken from the file.

    Returns
    -------
    networkx.Graph
        The atom-bond network; ``graph.graph["source"]`` is the path.

    Raises
    ------
    StructureError
        For an unknown file type, a file that cannot be parsed, or an invalid structure.
    FileNotFoundError
        If the file does not exist.

    Examples
    --------
    >>> g = read_structure("data/crystals/Si.cif", cutoff_scale=1.1)  # doctest: +SKIP
    """
    path = Path(path)
    kind = _kind(path)
    if not path.is_file():
        raise FileNotFoundError(f"{str(path)!r}: no such structure file")
    if kind in MOLECULE_SUFFIXES:
        for graph in read_molecules(path, **kwargs):
            return graph
        raise StructureError(f"{str(path)!r}: the file holds no molecule")
    atoms = read_atoms(path, kind)
    kwargs.setdefault("name", path.stem if path.suffix else path.name)
    return from_atoms(atoms, source=str(path), **kwargs)


def read_molecules(path: str | Path, **kwargs: Any) -> Iterator[nx.Graph]:
    """Yield one atom-bond network per record of a ``.sdf``, ``.smi`` or ``.mol`` file.

    Parameters
    ----------
    path:
        The file. SMILES files hold one ``SMILES [name]`` per line (blank lines and lines
        starting with ``#`` are skipped).
    **kwargs:
        Passed on to :func:`from_mol`.

    Yields
    ------
    networkx.Graph
        One graph per record, in file order. A bad record raises :class:`StructureError`
        naming the file and the record number (1-based).

    Examples
    --------
    >>> graphs = list(read_molecules("ligands.sdf"))  # doctest: +SKIP
    """
    path = Path(path)
    kind = _kind(path)
    if kind not in MOLECULE_SUFFIXES:
        raise StructureError(f"{str(path)!r}: not a molecule file (.smi, .sdf, .mol)")
    if not path.is_file():
        raise FileNotFoundError(f"{str(path)!r}: no such structure file")
    yield from iter_mol_file(path, kind, **kwargs)
