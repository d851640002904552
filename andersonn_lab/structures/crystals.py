"""Periodic crystals, MOFs and plain ASE molecules to atom-bond networks through ASE."""

from __future__ import annotations

import warnings
from pathlib import Path

import networkx as nx
import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list

from .bonds import BOND_RULES, find_bonds
from .errors import StructureError
from .graph import MIN_DISTANCE, check_atomic_numbers, check_has_bonds, check_positions, set_degrees

__all__ = ["density_g_cm3", "from_atoms", "read_atoms", "to_atoms"]

AMU_PER_A3_TO_G_CM3 = 1.66053906660
"""Grams per cubic centimetre in one atomic mass unit per cubic angstrom."""


def density_g_cm3(atoms: Atoms) -> float:
    """Mass density of a periodic structure in g/cm^3 (standard atomic masses of its elements).

    Examples
    --------
    >>> from ase.build import bulk
    >>> round(density_g_cm3(bulk("Cu", "fcc", a=3.6149)), 2)
    8.94
    """
    from ase.data import atomic_masses

    mass = float(atomic_masses[atoms.numbers].sum())
    return mass / float(abs(atoms.cell.volume)) * AMU_PER_A3_TO_G_CM3


def from_atoms(
    atoms: Atoms,
    *,
    bonds: str | None = None,
    cutoff_scale: float | None = None,
    name: str | None = None,
    source: str = "atoms",
) -> nx.Graph:
    """Build the atom-bond network of an :class:`ase.Atoms`, periodic or not.

    Bonds come from :func:`~andersonn_lab.structures.bonds.find_bonds`, periodic images
    included along the periodic directions (``atoms.pbc``); neighbours are found with
    :func:`ase.neighborlist.neighbor_list`. Two rules (details in ``docs/bonds.md``):

    * ``"nearest-shell"`` (the default): covalent bonds between non-metals (1.1 x the sum
      of covalent radii) plus the nearest coordination shell of every metal atom (12 %
      relative tolerance on ``d / (R_i + R_j)``), with no metal-metal bond where a metal has
      a more electronegative non-metal neighbour (no cation-cation bonds in ionic solids).
      Textbook coordination numbers: diamond and zinc blende 4, rock salt 6, CsCl 8, fluorite
      8 / 4, rutile 6 / 3, perovskite Ti-O 6 and Sr-O 12, fcc and hcp 12, bcc 8.
    * ``"covalent"``: bonded when closer than the sum of covalent radii times
      ``cutoff_scale`` (default 1.0). Tight for many solids: at 1.0 diamond Si and NaCl get
      no bonds, at 1.2 MgO gets Mg-Mg bonds and bcc metals their second shell.

    Parameters
    ----------
    atoms:
        The structure. Periodic structures need a non-degenerate cell.
    bonds:
        ``"nearest-shell"`` or ``"covalent"``. None (the default) means ``"covalent"`` when
        ``cutoff_scale`` is given (the behaviour of earlier versions) and
        ``"nearest-shell"`` otherwise.
    cutoff_scale:
        Multiplier of the covalent-radius cutoffs of the ``"covalent"`` rule.
    name:
        Stored as ``graph.graph["name"]``; defaults to ``atoms.info.get("name")``.
    source:
        Stored as ``graph.graph["source"]`` (``"atoms"`` or the file path).

    Returns
    -------
    networkx.Graph
        Nodes are ASE atom indices with ``element``, ``atomic_number``, ``position`` (Cartesian
        tuple, A) and ``degree`` (coordination number, periodic images included). One edge per
        bonded pair ``u < v`` (self-loop ``u == v`` for bonds to the atom's own image) with
        ``bond_order`` None (unknown), ``distance`` and ``shift`` of the shortest bond instance,
        ``shifts``/``distances`` of all instances (shortest first) and ``multiplicity``. A shift
        ``S`` (integer cell vector) means the bond goes from atom ``min(u, v)`` to the image of
        ``max(u, v)`` at ``position + S @ cell``; for self-loops only one of ``S``/``-S`` is
        listed. Graph attributes: ``source``, ``name``, ``periodic``, ``pbc``, ``cell`` (3x3
        list, or None when not periodic), ``formula``, ``bonds`` (the rule) and
        ``cutoff_scale`` (None for the nearest-shell rule).

    Raises
    ------
    StructureError
        For no atoms, unknown elements, NaN coordinates or cell, a degenerate periodic cell,
        atoms closer than 0.5 A (periodic images included), or no bonds at all.
    ValueError
        For an unknown ``bonds`` rule, or ``cutoff_scale`` with ``bonds="nearest-shell"``.

    Examples
    --------
    >>> from ase.build import bulk
    >>> g = from_atoms(bulk("NaCl", "rocksalt", a=5.64))
    >>> g.nodes[0]["degree"], g.edges[0, 1]["multiplicity"], g.graph["bonds"]
    (6, 6, 'nearest-shell')
    >>> from_atoms(bulk("NaCl", "rocksalt", a=5.64), cutoff_scale=1.1).graph["bonds"]
    'covalent'
    """
    if bonds is None:
        bonds = "covalent" if cutoff_scale is not None else BOND_RULES[0]
    if bonds not in BOND_RULES:
        raise ValueError(f"unknown bond rule {bonds!r}; valid rules are {', '.join(BOND_RULES)}")
    if bonds == "covalent":
        cutoff_scale = 1.0 if cutoff_scale is None else float(cutoff_scale)
    elif cutoff_scale is not None:
        raise ValueError("cutoff_scale applies to bonds='covalent' only")
    if not isinstance(atoms, Atoms):
        raise StructureError(f"{source!r}: expected an ase.Atoms, got {type(atoms).__name__}")
    name = name if name is not None else atoms.info.get("name")
    label = _label(atoms, name, source)
    if len(atoms) == 0:
        raise StructureError(f"{label}: the structure has no atoms")
    check_atomic_numbers(atoms.numbers, label)
    check_positions(atoms.positions, label)
    periodic = bool(np.any(atoms.pbc))
    if periodic:
        cell = np.asarray(atoms.cell, dtype=float)
        if not np.all(np.isfinite(cell)):
            raise StructureError(f"{label}: non-finite (NaN/inf) cell")
        if (
            atoms.cell.rank < int(np.sum(atoms.pbc))
            or abs(atoms.cell.volume) < 1e-6
            and all(atoms.pbc)
        ):
            raise StructureError(f"{label}: degenerate cell for a periodic structure")
    _check_overlap(atoms, label)

    i, j, d, s = find_bonds(atoms, bonds, cutoff_scale=cutoff_scale or 1.0)
    graph = nx.Graph(
        source=source,
        name=name,
        periodic=periodic,
        pbc=tuple(bool(p) for p in atoms.pbc),
        cell=np.asarray(atoms.cell, dtype=float).tolist() if periodic else None,
        formula=atoms.get_chemical_formula(),
        bonds=bonds,
        cutoff_scale=cutoff_scale,
    )
    for k, (z, sym, pos) in enumerate(
        zip(atoms.numbers, atoms.get_chemical_symbols(), atoms.positions, strict=True)
    ):
        graph.add_node(
            k,
            element=sym,
            atomic_number=int(z),
            position=tuple(float(x) for x in pos),
        )
    # find_bonds lists each bond instance once: i < j, or i == j with the positive shift.
    pairs: dict[tuple[int, int], list[tuple[float, tuple[int, int, int]]]] = {}
    for a, b, dist, shift in zip(i, j, d, s, strict=True):
        pairs.setdefault((int(a), int(b)), []).append(
            (float(dist), (int(shift[0]), int(shift[1]), int(shift[2])))
        )
    for (a, b), inst in pairs.items():
        inst.sort()
        graph.add_edge(
            a,
            b,
            bond_order=None,
            distance=inst[0][0],
            shift=inst[0][1],
            shifts=tuple(sh for _, sh in inst),
            distances=tuple(dd for dd, _ in inst),
            multiplicity=len(inst),
        )
    hint = (
        f" at cutoff_scale={cutoff_scale}; try a larger cutoff_scale"
        if bonds == "covalent"
        else " (nearest-shell rule)"
    )
    check_has_bonds(graph, label, hint=hint)
    set_degrees(graph)
    return graph


def to_atoms(graph: nx.Graph) -> Atoms:
    """Rebuild an :class:`ase.Atoms` from a graph with coordinates.

    Parameters
    ----------
    graph:
        A graph from :func:`from_atoms` or a molecule graph with 3-D positions.

    Returns
    -------
    ase.Atoms
        Atoms in node order, with the graph's cell and periodicity.

    Raises
    ------
    StructureError
        If some atom has no position.

    Examples
    --------
    >>> from ase.build import bulk
    >>> to_atoms(from_atoms(bulk("Cu", "fcc", a=3.61))).get_chemical_formula()
    'Cu'
    """
    nodes = sorted(graph.nodes)
    data = [graph.nodes[n] for n in nodes]
    if any(d.get("position") is None for d in data):
        raise StructureError(
            f"{graph.graph.get('name') or graph.graph.get('source')!r}: "
            "some atoms have no coordinates"
        )
    cell = graph.graph.get("cell")
    pbc = graph.graph.get("pbc", (bool(graph.graph.get("periodic")),) * 3)
    return Atoms(
        symbols=[d["element"] for d in data],
        positions=[d["position"] for d in data],
        cell=cell if cell is not None else np.zeros((3, 3)),
        pbc=pbc,
    )


def read_atoms(path: Path, fmt: str) -> Atoms:
    """Read the first structure of a CIF/extxyz/VASP file, converting failures to errors."""
    import ase.io

    label = repr(str(path))
    if path.stat().st_size == 0:
        raise StructureError(f"{label}: the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            atoms = ase.io.read(str(path), index=0, format=fmt)
    except Exception as err:  # ASE raises many exception types for bad files
        raise StructureError(
            f"{label}: cannot be read as {fmt} ({type(err).__name__}: {err})".replace(": )", ")")
        ) from None
    if isinstance(atoms, list):  # pragma: no cover - index=0 gives one Atoms
        atoms = atoms[0]
    if len(atoms) == 0:
        raise StructureError(f"{label}: the file holds no atoms")
    return atoms


def _check_overlap(atoms: Atoms, label: str) -> None:
    i, j, d = neighbor_list("ijd", atoms, MIN_DISTANCE)
    if len(d):
        k = int(np.argmin(d))
        a, b = sorted((int(i[k]), int(j[k])))
        what = "its own periodic image" if a == b else f"atom {b}"
        raise StructureError(
            f"{label}: atom {a} overlaps {what} ({d[k]:.3f} A apart, minimum {MIN_DISTANCE} A)"
        )


def _label(atoms: Atoms, name: str | None, source: str) -> str:
    if source != "atoms":
        return repr(source)
    formula = atoms.get_chemical_formula() if len(atoms) else "(empty)"
    return f"{name!r} ({formula})" if name else f"structure {formula}"
