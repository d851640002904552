"""Logic of the structure viewer: input resolution, 3-D scene data, selection and highlights.

No ipywidgets or plotly here: :class:`StructureController` turns any supported input into an
atom-bond network plus plain arrays (atom positions, colours, sizes, hover texts, bond
segments, unit-cell edges) that :mod:`andersonn_lab.widgets.structure_viewer` copies into a
plotly figure.

Periodic bonds
--------------
A bond instance that crosses the cell boundary (shift ``S != 0``) is drawn as two **half-bond
stubs**: one from atom ``u`` to the midpoint between ``u`` and the image of ``v`` at
``v + S @ cell``, and one from ``v`` towards the image of ``u`` at ``u - S @ cell``. Every
stub starts at an atom inside the drawn cell, so no ghost atoms are needed, and each periodic
bond instance gives exactly two stubs (a bond of an atom to its own image gives its two stubs
to ``+S`` and ``-S``). Bonds inside the cell (``S == 0``) are full segments.
An atom given outside its cell (fractional coordinates outside ``[0, 1)``) is drawn at its
equivalent place inside, with the shifts of its bonds adjusted; the network itself is kept.

Supercells
----------
A periodic structure can be drawn as an ``n1 × n2 × n3`` supercell (``repeat``): the atoms of
every copy, shifted by ``c @ cell`` for the copy's cell offset ``c``, and the bonds of the
structure's own network replicated across the copies (no bond is recomputed). A bond instance
from ``u`` in copy ``c`` to ``v`` with shift ``S`` is a full segment when the copy ``c + S`` is
in the supercell, and a half-bond stub at the supercell boundary when not. Selections and
highlights stay in terms of the original atoms: every copy of a selected atom is marked.
``repeat="conventional"`` draws the conventional cell instead (the cube of rock salt or of
diamond; see :func:`conventional_matrix`): the copies of the atoms that lie inside it.

Examples
--------
>>> ctrl = StructureController("CCO")
>>> ctrl.scene.n_atoms, ctrl.scene.n_bonds, ctrl.scene.cell is None
(3, 2, True)
>>> ctrl.select_atom(2)
(2,)
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import networkx as nx
import numpy as np
from ase import Atoms
from ase.cell import Cell
from ase.data import atomic_numbers, covalent_radii
from ase.lattice import identify_lattice
from rdkit import Chem
from rdkit.Chem.Draw import rdMolDraw2D

from andersonn_lab.structures import StructureError, from_atoms, from_mol, from_smiles

__all__ = [
    "DEFAULT_COLOR",
    "ELEMENT_COLORS",
    "LoadedStructure",
    "CONVENTIONAL",
    "MAX_REPEAT",
    "MAX_SUPERCELL_ATOMS",
    "Segments",
    "StructureController",
    "StructureScene",
    "build_scene",
    "conventional_matrix",
    "element_color",
    "load_structure",
    "parse_repeat",
    "repeat_text",
]

ELEMENT_COLORS: dict[str, str] = {
    "H": "#ffffff", "He": "#d9ffff", "Li": "#cc80ff", "Be": "#c2ff00", "B": "#ffb5b5",
    "C": "#909090", "N": "#3050f8", "O": "#ff0d0d", "F": "#90e050", "Ne": "#b3e3f5",
    "Na": "#ab5cf2", "Mg": "#8aff00", "Al": "#bfa6a6", "Si": "#f0c8a0", "P": "#ff8000",
    "S": "#ffff30", "Cl": "#1ff01f", "Ar": "#80d1e3", "K": "#8f40d4", "Ca": "#3dff00",
    "Sc": "#e6e6e6", "Ti": "#bfc2c7", "V": "#a6a6ab", "Cr": "#8a99c7", "Mn": "#9c7ac7",
    "Fe": "#e06633", "Co": "#f090a0", "Ni": "#50d050", "Cu": "#c88033", "Zn": "#7d80b0",
    "Ga": "#c28f8f", "Ge": "#668f8f", "As": "#bd80e3", "Se": "#ffa100", "Br": "#a62929",
    "Kr": "#5cb8d1", "Rb": "#702eb0", "Sr": "#00ff00", "Y": "#94ffff", "Zr": "#94e0e0",
    "Nb": "#73c2c9", "Mo": "#54b5b5", "Ru": "#248f8f", "Rh": "#0a7d8c", "Pd": "#006985",
    "Ag": "#c0c0c0", "Cd": "#ffd98f", "In": "#a67573", "Sn": "#668080", "Sb": "#9e63b5",
    "Te": "#d47a00", "I": "#940094", "Xe": "#429eb0", "Cs": "#57178f", "Ba": "#00c900",
    "La": "#70d4ff", "Ce": "#ffffc7", "Gd": "#45ffc7", "Hf": "#4dc2ff", "Ta": "#4da6ff",
    "W": "#2194d6", "Re": "#267dab", "Os": "#266696", "Ir": "#175487", "Pt": "#d0d0e0",
    "Au": "#ffd123", "Hg": "#b8b8d0", "Tl": "#a6544d", "Pb": "#575961", "Bi": "#9e4fb5",
    "U": "#008fff",
}  # fmt: skip
"""CPK/Jmol-like colour of each element."""

DEFAULT_COLOR = "#ff1493"
"""Colour of elements missing from :data:`ELEMENT_COLORS`."""

SELECTION_COLOR = "#ffd400"
"""Colour of the halo drawn around selected atoms."""

MAX_REPEAT = 5
"""Most copies of the cell along one axis that a supercell view draws."""

MAX_SUPERCELL_ATOMS = 2000
"""Most atoms that a supercell view draws."""


def element_color(element: str) -> str:
    """Return the CPK-like colour of an element symbol.

    Examples
    --------
    >>> element_color("O"), element_color("Og")
    ('#ff0d0d', '#ff1493')
    """
    return ELEMENT_COLORS.get(element, DEFAULT_COLOR)


@dataclass(frozen=True)
class LoadedStructure:
    """An atom-bond network with 3-D positions, and the molecule behind it when known.

    Attributes
    ----------
    graph:
        The atom-bond network (every node has a ``position``).
    mol:
        RDKit molecule whose atom indices are the graph's nodes (for the 2-D depiction), or
        None (crystals, ASE molecules).
    label:
        Short description for the status line.
    note:
        Extra remark (e.g. that positions come from a force-directed layout), or "".
    source_graph:
        The graph as the datasets build it, for images (molecules from SMILES: without 3-D
        coordinates, so distance channels match the ``drugs`` task; same nodes as ``graph``);
        None means ``graph``.
    """

    graph: nx.Graph
    mol: Chem.Mol | None
    label: str
    note: str = ""
    source_graph: nx.Graph | None = None

    @property
    def image_graph(self) -> nx.Graph:
        """The graph to turn into node-neighbour images."""
        return self.graph if self.source_graph is None else self.source_graph


def _is_task(obj: Any) -> bool:
    return all(hasattr(obj, a) for a in ("entries", "id_to_index", "graph"))


def _from_entry(entry: Any, cutoff_scale: float | None, seed: int) -> LoadedStructure:
    if isinstance(entry.structure, str):
        return _from_smiles(entry.structure, seed, name=entry.id)
    graph = from_atoms(entry.structure, cutoff_scale=cutoff_scale, name=entry.id)
    return LoadedStructure(graph, None, f"{entry.id} ({graph.graph['formula']})")


def _from_smiles(smiles: str, seed: int, name: str | None = None) -> LoadedStructure:
    graph = from_smiles(smiles, embed_3d=True, seed=seed, name=name)
    label = f"{name} ({smiles})" if name else smiles
    flat = from_smiles(smiles, name=name)
    return LoadedStructure(graph, Chem.MolFromSmiles(smiles), label, source_graph=flat)


def _from_task(task: Any, entry_id: str, seed: int) -> LoadedStructure:
    if isinstance(task, str):
        from andersonn_lab.datasets import load_task

        task = load_task(task)
    if entry_id not in task.id_to_index:
        name = getattr(task, "name", "the task")
        raise StructureError(f"id {entry_id!r}: no such entry in {name!r}")
    index = task.id_to_index[entry_id]
    entry = task.entries[index]
    if isinstance(entry.structure, str):
        graph = task.graph(index)
        if all(graph.nodes[n].get("position") is not None for n in graph.nodes):
            # The task's own conformer (drugs): show the geometry the model saw.
            mol = Chem.RemoveHs(entry.info["mol"]) if "mol" in entry.info else None
            return LoadedStructure(graph, mol, f"{entry.id} ({entry.structure})")
        loaded = _from_smiles(entry.structure, seed, name=entry.id)
        return replace(loaded, source_graph=graph)
    graph = task.graph(index)
    return LoadedStructure(graph, None, f"{entry.id} ({graph.graph.get('formula', '')})")


def _from_graph(graph: nx.Graph, seed: int) -> LoadedStructure:
    label = str(graph.graph.get("name") or graph.graph.get("formula") or "graph")
    smiles = graph.graph.get("smiles")
    mol = Chem.MolFromSmiles(smiles) if smiles else None
    if mol is not None and mol.GetNumAtoms() != graph.number_of_nodes():
        mol = Chem.AddHs(mol)
        if mol.GetNumAtoms() != graph.number_of_nodes():
            mol = None
    if all(graph.nodes[n].get("position") is not None for n in graph.nodes):
        return LoadedStructure(graph, mol, label)
    if smiles:
        explicit_h = any(graph.nodes[n].get("element") == "H" for n in graph.nodes)
        embedded = from_smiles(
            smiles, explicit_h=explicit_h, embed_3d=True, seed=seed, name=graph.graph.get("name")
        )
        if embedded.number_of_nodes() == graph.number_of_nodes():
            return LoadedStructure(embedded, mol, label, source_graph=graph)
    layout = nx.spring_layout(graph, dim=3, seed=seed, scale=graph.number_of_nodes() ** 0.5)
    placed = graph.copy()
    for node, pos in layout.items():
        placed.nodes[node]["position"] = tuple(float(x) for x in pos)
    note = "no coordinates: force-directed layout"
    return LoadedStructure(placed, mol, label, note=note, source_graph=graph)


def load_structure(
    source: Any = None,
    *,
    task: Any = None,
    id: str | None = None,
    cutoff_scale: float | None = None,
    seed: int = 0,
) -> LoadedStructure:
    """Turn a graph, ``ase.Atoms``, SMILES, RDKit ``Mol``, dataset entry or task id into 3-D.

    Parameters
    ----------
    source:
        A :class:`networkx.Graph` from :mod:`andersonn_lab.structures`, an :class:`ase.Atoms`,
        a SMILES string, an RDKit ``Mol`` or a dataset :class:`~andersonn_lab.datasets.Entry`.
        Molecules without 3-D coordinates are embedded (``from_smiles(..., embed_3d=True)``);
        a graph without positions and without SMILES gets a 3-D force-directed layout.
    task, id:
        Instead of ``source``: a :class:`~andersonn_lab.datasets.TaskDataset` (or a task name
        for :func:`~andersonn_lab.datasets.load_task`) and an entry id. Crystals and MOFs use
        ``task.graph(i)`` (the task's graph options); so do molecules whose task graph has
        3-D coordinates (the drugs task's labelled conformers); other molecules are embedded
        from SMILES.
    cutoff_scale:
        For ``ase.Atoms`` and entries holding one: None (default) for the nearest-shell bond
        rule that the MOF and crystal tasks use, or a covalent-radius multiplier for the
        covalent rule (see :func:`~andersonn_lab.structures.from_atoms`).
    seed:
        Seed of the 3-D embedding.

    Returns
    -------
    LoadedStructure

    Raises
    ------
    StructureError
        For an invalid structure (the message names it), an unknown id, or an unsupported
        input type.

    Examples
    --------
    >>> load_structure("c1ccccc1").graph.number_of_nodes()
    6
    """
    if task is not None or id is not None:
        if task is None or id is None or source is not None:
            raise StructureError("give either a source, or both task= and id=")
        return _from_task(task, id, seed)
    if isinstance(source, nx.Graph):
        return _from_graph(source, seed)
    if isinstance(source, Atoms):
        graph = from_atoms(source, cutoff_scale=cutoff_scale)
        return LoadedStructure(graph, None, str(graph.graph.get("name") or graph.graph["formula"]))
    if isinstance(source, str):
        return _from_smiles(source, seed)
    if isinstance(source, Chem.Mol):
        has_3d = source.GetNumConformers() > 0 and source.GetConformer().Is3D()
        graph = from_mol(source, embed_3d=not has_3d, seed=seed)
        mol = Chem.Mol(source) if source.GetNumAtoms() == graph.number_of_nodes() else None
        return LoadedStructure(graph, mol, str(graph.graph.get("name") or graph.graph["formula"]))
    if hasattr(source, "structure") and hasattr(source, "id"):
        return _from_entry(source, cutoff_scale, seed)
    raise StructureError(
        f"cannot show a {type(source).__name__}: expected a networkx graph, ase.Atoms, SMILES "
        "string, RDKit Mol, dataset Entry, or task= and id="
    )


Segments = tuple[list[float | None], list[float | None], list[float | None]]
"""``(x, y, z)`` of line segments for one plotly trace, each segment followed by ``None``."""

Repeat = tuple[int, int, int]
"""Copies of the cell along the three cell vectors."""

CONVENTIONAL = "conventional"
"""The ``repeat`` that draws a crystal's conventional cell (e.g. the cube of rock salt)."""

RepeatSpec = Repeat | str
"""A checked ``repeat``: copies along each cell vector, or :data:`CONVENTIONAL`."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def parse_repeat(repeat: Any) -> RepeatSpec:
    """Check a supercell ``repeat``: an int ``n`` (meaning ``(n, n, n)``), three ints, or
    ``"conventional"``.

    Raises
    ------
    ValueError
        Naming ``repeat``, for anything but 1 to :data:`MAX_REPEAT` copies per axis.

    Examples
    --------
    >>> parse_repeat(2), parse_repeat((2, 1, 3)), parse_repeat("conventional")
    ((2, 2, 2), (2, 1, 3), 'conventional')
    >>> parse_repeat(0)
    Traceback (most recent call last):
    ...
    ValueError: repeat=0: each count of copies must be an int from 1 to 5
    """
    if isinstance(repeat, str) and repeat == CONVENTIONAL:
        return CONVENTIONAL
    if _is_int(repeat):
        counts = (int(repeat),) * 3
    elif (
        isinstance(repeat, Sequence | np.ndarray)
        and not isinstance(repeat, str)
        and len(repeat) == 3
        and all(_is_int(n) for n in repeat)
    ):
        counts = tuple(int(n) for n in repeat)
    else:
        raise ValueError(
            f"repeat={repeat!r}: expected an int n (an n×n×n supercell), three ints "
            f"(n1, n2, n3) or {CONVENTIONAL!r}"
        )
    if not all(1 <= n <= MAX_REPEAT for n in counts):
        raise ValueError(
            f"repeat={repeat!r}: each count of copies must be an int from 1 to {MAX_REPEAT}"
        )
    return counts  # type: ignore[return-value]


def repeat_text(repeat: RepeatSpec) -> str:
    """``"2×2×2"`` for ``(2, 2, 2)``; ``"conventional"`` for the conventional cell."""
    if isinstance(repeat, str):
        return repeat
    return "×".join(str(n) for n in repeat)


def conventional_matrix(cell: Any) -> np.ndarray:
    """Integer matrix ``M`` whose rows give the conventional cell ``M @ cell`` in the
    orientation of ``cell`` (identity where the cell is conventional already, or where ASE
    cannot tell its Bravais lattice).

    Examples
    --------
    >>> from ase.build import bulk
    >>> m = conventional_matrix(bulk("NaCl", "rocksalt", a=5.64).cell)
    >>> round(abs(np.linalg.det(m))), np.round(m @ bulk("NaCl", "rocksalt", a=5.64).cell, 2)[0]
    (4, array([5.64, 0.  , 0.  ]))
    """
    identity = np.eye(3, dtype=int)
    try:
        lattice, op = identify_lattice(Cell(np.asarray(cell, dtype=float)), eps=2e-4)
        primitive = np.asarray(lattice.tocell(), dtype=float)
        conventional = np.asarray(lattice.conventional().tocell(), dtype=float)
    except Exception:  # ASE raises several kinds for cells it cannot classify
        return identity
    q = conventional @ np.linalg.inv(primitive)
    if not np.allclose(q, np.round(q), atol=1e-6):
        return identity
    m = np.round(q).astype(int) @ np.round(np.asarray(op)).astype(int)
    det = round(float(np.linalg.det(m)))
    if det == 0:
        return identity
    return m if det > 0 else -m


def _check_supercell_size(repeat: RepeatSpec, drawn: int, n_atoms: int) -> None:
    if drawn > MAX_SUPERCELL_ATOMS:
        raise ValueError(
            f"repeat={repeat_text(repeat)} would draw {drawn} atoms ({n_atoms} per cell); "
            f"at most {MAX_SUPERCELL_ATOMS} are drawn: choose a smaller repeat"
        )


def _region_copies(frac: np.ndarray, m: np.ndarray, tol: float = 1e-6) -> list[tuple[int, Repeat]]:
    """``(atom, cell offset)`` of the atoms inside the parallelepiped ``m @ cell`` at the
    origin, from the atoms' fractional coordinates ``frac`` in the cell."""
    inv = np.linalg.inv(m)
    corners = np.array(list(itertools.product((0, 1), repeat=3)), dtype=float) @ m
    lo = np.floor(corners.min(axis=0) - frac.max(axis=0)).astype(int) - 1
    hi = np.ceil(corners.max(axis=0) - frac.min(axis=0)).astype(int) + 1
    copies = []
    for offset in itertools.product(*(range(a, b + 1) for a, b in zip(lo, hi, strict=True))):
        g = (frac + np.asarray(offset, dtype=float)) @ inv
        inside = np.all((g >= -tol) & (g < 1 - tol), axis=1)
        copies.extend((int(i), tuple(int(x) for x in offset)) for i in np.flatnonzero(inside))
    return copies  # type: ignore[return-value]


@dataclass(frozen=True)
class StructureScene:
    """Everything the 3-D figure draws, as plain lists.

    Attributes
    ----------
    nodes:
        Graph nodes in marker order (marker ``p`` is a copy of atom ``nodes[p]``); the
        first markers are the atoms of the cell itself, then one block per further copy.
    positions:
        ``(n, 3)`` Cartesian positions in angstrom.
    elements, colors, sizes, hover:
        Per-atom element symbol, CPK colour, marker size (from the covalent radius), hover text.
    bonds, n_bonds:
        Full segments of bonds inside the cell (supercell) and all bonds of molecules, and
        their count.
    stubs, n_stubs:
        Half-bond stubs of bonds that cross the cell (supercell) boundary (two per bond
        instance).
    cell:
        The 12 edges of the cell (of the supercell or conventional cell), or None for
        molecules.
    offsets:
        Cell offset of each marker's copy (``(0, 0, 0)`` for the cell itself).
    repeat:
        Copies of the cell drawn along each cell vector (``(1, 1, 1)``: the cell alone), or
        ``"conventional"``.
    unit_cell:
        The 12 edges of the original cell when a supercell (or a conventional cell larger
        than the cell) is drawn, else None.
    boundary_atoms:
        Whether atoms on the boundary of the drawn cell(s) are repeated on the opposite
        faces, edges and corners (see :func:`build_scene`).
    """

    nodes: list[Any]
    positions: np.ndarray
    elements: list[str]
    colors: list[str]
    sizes: list[float]
    hover: list[str]
    bonds: Segments
    n_bonds: int
    stubs: Segments
    n_stubs: int
    cell: Segments | None
    offsets: list[Repeat]
    repeat: RepeatSpec = (1, 1, 1)
    unit_cell: Segments | None = None
    boundary_atoms: bool = False

    @property
    def n_atoms(self) -> int:
        """Number of atoms drawn (all copies)."""
        return len(self.nodes)


def _add_segment(seg: Segments, a: np.ndarray, b: np.ndarray) -> None:
    for axis in range(3):
        seg[axis].extend((float(a[axis]), float(b[axis]), None))


def _cell_edges(cell: np.ndarray) -> Segments:
    seg: Segments = ([], [], [])
    for axis in range(3):
        others = [o for o in range(3) if o != axis]
        for i in (0, 1):
            for j in (0, 1):
                start = i * cell[others[0]] + j * cell[others[1]]
                _add_segment(seg, start, start + cell[axis])
    return seg


def _shift_text(shift: Sequence[int]) -> str:
    return "[" + " ".join(f"{s:+d}" if s else "0" for s in shift) + "]"


def _neighbour_shifts(graph: nx.Graph, node: Any, nb: Any) -> list[tuple[int, ...]]:
    """Cell shifts of every bond instance from ``node`` to ``nb``, seen from ``node``."""
    data = graph.edges[node, nb]
    shifts = [tuple(int(x) for x in s) for s in data.get("shifts") or (data.get("shift"),)]
    if nb == node:
        return [s for shift in shifts for s in (shift, tuple(-x for x in shift))]
    if node > nb:
        return [tuple(-x for x in s) for s in shifts]
    return shifts


def _hover_texts(graph: nx.Graph, nodes: list[Any], max_listed: int = 16) -> list[str]:
    """Hover text of each atom: index, element, hydrogens and its neighbours.

    A neighbour bonded once is written ``O4`` (same cell) or ``O4 [0 -1 0]`` (in the cell
    shifted by that cell vector); one bonded through several periodic images ``Ti1 ×8``.
    """
    texts = []
    for node in nodes:
        attrs = graph.nodes[node]
        items = []
        total = 0
        for nb in graph.adj[node]:
            shifts = _neighbour_shifts(graph, node, nb)
            total += len(shifts)
            name = f"{graph.nodes[nb]['element']}{nb}"
            if len(shifts) > 1:
                items.append(f"{name} ×{len(shifts)}")
            elif any(shifts[0]):
                items.append(f"{name} {_shift_text(shifts[0])}")
            else:
                items.append(name)
        shown = ", ".join(items[:max_listed])
        if len(items) > max_listed:
            shown += f", … +{len(items) - max_listed} more atoms"
        hs = int(attrs.get("num_hs") or 0)
        h_text = f" (+{hs} H)" if hs else ""
        texts.append(
            f"atom {node} · {attrs['element']}{h_text}<br>{total} neighbour(s): {shown or 'none'}"
        )
    return texts


def _wrapped(graph: nx.Graph, cell: np.ndarray, tol: float = 1e-6) -> nx.Graph:
    """The network with every atom moved into the cell (fractional coordinates in
    ``[0, 1)``) and the bond shifts adjusted to match; the graph itself if all are inside.

    ``ase.build.bulk("NaCl", "rocksalt")`` puts Cl at ``(a/2, 0, 0)``, outside its cell: drawn
    where it is, the atom would sit outside the cell's edges and a supercell's copies would
    spill out of its outline.
    """
    nodes = list(graph.nodes)
    pos = np.array([graph.nodes[n]["position"] for n in nodes], dtype=float).reshape(-1, 3)
    moves = np.floor(np.linalg.solve(cell.T, pos.T).T + tol).astype(int)
    if not moves.any():
        return graph
    move = {node: moves[k] for k, node in enumerate(nodes)}
    wrapped = graph.copy()
    for k, node in enumerate(nodes):
        wrapped.nodes[node]["position"] = tuple(float(x) for x in pos[k] - moves[k] @ cell)
    for u, v, data in wrapped.edges(data=True):
        a, b = sorted((u, v))
        delta = move[b] - move[a]  # shifts point from the lower node to the higher one
        if not delta.any():
            continue
        if data.get("shifts"):
            data["shifts"] = [tuple(int(x) for x in np.add(sh, delta)) for sh in data["shifts"]]
        if data.get("shift") is not None:
            data["shift"] = tuple(int(x) for x in np.add(data["shift"], delta))
    return wrapped


def _boundary_copies(
    frac: np.ndarray, region: np.ndarray, copies: list[tuple[int, Repeat]], tol: float = 1e-6
) -> list[tuple[int, Repeat]]:
    """The further copies of atoms on the faces, edges and corners at the origin of the
    region ``region @ cell``, shifted onto the opposite faces, edges and corners."""
    inv = np.linalg.inv(region)
    drawn = set(copies)
    extra: list[tuple[int, Repeat]] = []
    for i, offset in copies:
        g = (frac[i] + np.asarray(offset, dtype=float)) @ inv
        axes = [k for k in range(3) if abs(g[k]) < tol]
        for r in range(1, len(axes) + 1):
            for subset in itertools.combinations(axes, r):
                moved = np.asarray(offset) + region[list(subset)].sum(axis=0)
                copy = (i, tuple(int(x) for x in moved))
                if copy not in drawn:
                    drawn.add(copy)
                    extra.append(copy)  # type: ignore[arg-type]
    return extra


def build_scene(graph: nx.Graph, repeat: Any = 1, boundary_atoms: bool = False) -> StructureScene:
    """Compute the drawable arrays of an atom-bond network whose nodes all have positions.

    Parameters
    ----------
    graph:
        An atom-bond network with a ``position`` on every node.
    repeat:
        For periodic networks: copies of the cell along each cell vector (an int ``n`` for
        ``(n, n, n)``), or ``"conventional"`` for the conventional cell (see
        :func:`conventional_matrix`); the network's bonds are replicated across the copies.
        Molecules ignore it.
    boundary_atoms:
        For periodic networks: also draw the copies of atoms on the faces, edges and corners
        of the drawn cell(s) on the opposite ones (the textbook pictures: Sr at all eight
        corners of the perovskite cube, the 27-atom rock-salt cube).

    Returns
    -------
    StructureScene

    Raises
    ------
    ValueError
        For a bad ``repeat`` (see :func:`parse_repeat`) or a supercell of more than
        :data:`MAX_SUPERCELL_ATOMS` atoms.

    Examples
    --------
    >>> from ase.build import bulk
    >>> from andersonn_lab.structures import from_atoms
    >>> scene = build_scene(from_atoms(bulk("Cu", "fcc", a=3.6), cutoff_scale=1.2))
    >>> scene.n_atoms, scene.n_bonds, scene.n_stubs, len(scene.cell[0]) // 3
    (1, 0, 12, 12)
    >>> big = build_scene(from_atoms(bulk("Cu", "fcc", a=3.6), cutoff_scale=1.2), repeat=2)
    >>> big.n_atoms, big.n_bonds, big.n_stubs, big.offsets[-1]
    (8, 18, 60, (1, 1, 1))
    >>> cube = build_scene(from_atoms(bulk("Cu", "fcc", a=3.6)), repeat="conventional")
    >>> cube.n_atoms, cube.n_bonds + cube.n_stubs // 2
    (4, 24)
    >>> closed = build_scene(from_atoms(bulk("Cu", "fcc", a=3.6)), "conventional", True)
    >>> closed.n_atoms  # 8 corners and 6 face centres
    14
    """
    spec = parse_repeat(repeat)
    if graph.graph.get("periodic") and graph.graph.get("cell") is not None:
        graph = _wrapped(graph, np.asarray(graph.graph["cell"], dtype=float))
    base_nodes = list(graph.nodes)
    index = {node: p for p, node in enumerate(base_nodes)}
    base = np.array([graph.nodes[n]["position"] for n in base_nodes], dtype=float).reshape(-1, 3)
    elements = [str(graph.nodes[n]["element"]) for n in base_nodes]
    sizes = [6.0 + 10.0 * float(covalent_radii[atomic_numbers.get(e, 0)]) for e in elements]
    cell_matrix = graph.graph.get("cell") if graph.graph.get("periodic") else None
    cell = None if cell_matrix is None else np.asarray(cell_matrix, dtype=float)
    n_base = len(base_nodes)
    # the copies drawn: (atom, cell offset), the cell itself first for supercells
    if cell is None:
        spec, region = (1, 1, 1), None
        copies = [(i, (0, 0, 0)) for i in range(n_base)]
    elif isinstance(spec, str):
        region = conventional_matrix(cell)
        n_cells = round(float(np.linalg.det(region)))
        _check_supercell_size(spec, n_cells * n_base, n_base)
        frac = np.linalg.solve(cell.T, base.T).T
        copies = _region_copies(frac, region)
        if len(copies) != n_cells * n_base:  # positions the region test cannot place
            region = np.eye(3, dtype=int)
            copies = [(i, (0, 0, 0)) for i in range(n_base)]
    else:
        region = np.diag(spec)
        _check_supercell_size(spec, int(np.prod(spec)) * n_base, n_base)
        copies = [
            (i, tuple(int(x) for x in offset))
            for offset in itertools.product(*(range(n) for n in spec))
            for i in range(n_base)
        ]
    if boundary_atoms and cell is not None:
        frac = np.linalg.solve(cell.T, base.T).T
        copies = copies + _boundary_copies(frac, region, copies)
        _check_supercell_size(spec, len(copies), n_base)
    marker = {copy: p for p, copy in enumerate(copies)}
    offsets = np.array([offset for _, offset in copies], dtype=float).reshape(-1, 3)
    atom_of = [i for i, _ in copies]
    positions = base[atom_of] + (offsets @ cell if cell is not None else 0.0)
    by_atom: dict[int, list[tuple[int, Repeat]]] = {i: [] for i in range(n_base)}
    for p, (i, offset) in enumerate(copies):
        by_atom[i].append((p, offset))
    bonds: Segments = ([], [], [])
    stubs: Segments = ([], [], [])
    n_bonds = n_stubs = 0
    for u, v, data in graph.edges(data=True):
        a, b = sorted((u, v))
        ia, ib = index[a], index[b]
        shifts = data.get("shifts") or (data.get("shift") or (0, 0, 0),)
        for shift in shifts:
            if cell is None:
                _add_segment(bonds, positions[ia], positions[ib])
                n_bonds += 1
                continue
            s = tuple(int(x) for x in shift)
            vector = base[ib] + np.asarray(s, dtype=float) @ cell - base[ia]  # a to b's image
            # a in copy c bonds to b in copy c + s: a full bond when that copy is drawn
            for p, c in by_atom[ia]:
                ahead = (ib, tuple(ci + si for ci, si in zip(c, s, strict=True)))
                if ahead in marker:
                    _add_segment(bonds, positions[p], positions[marker[ahead]])
                    n_bonds += 1
                else:
                    _add_segment(stubs, positions[p], positions[p] + vector / 2)
                    n_stubs += 1
            # b in copy c bonds to a in copy c - s: a stub when that copy is not drawn
            for p, c in by_atom[ib]:
                behind = (ia, tuple(ci - si for ci, si in zip(c, s, strict=True)))
                if behind not in marker:
                    _add_segment(stubs, positions[p], positions[p] - vector / 2)
                    n_stubs += 1
    grown = region is not None and not np.array_equal(region, np.eye(3, dtype=int))
    hover = _hover_texts(graph, base_nodes)
    if grown or len(copies) > n_base:
        where = "conventional cell" if isinstance(spec, str) else f"{repeat_text(spec)} supercell"
        where = where if grown else "cell"
        hover = [
            f"{hover[i]}<br>copy in cell {_shift_text(offset)} of the {where}"
            for i, offset in copies
        ]
    else:
        hover = [hover[i] for i in atom_of]
    return StructureScene(
        nodes=[base_nodes[i] for i in atom_of],
        positions=positions,
        elements=[elements[i] for i in atom_of],
        colors=[element_color(elements[i]) for i in atom_of],
        sizes=[sizes[i] for i in atom_of],
        hover=hover,
        bonds=bonds,
        n_bonds=n_bonds,
        stubs=stubs,
        n_stubs=n_stubs,
        cell=None if cell is None else _cell_edges(region @ cell),
        offsets=[offset for _, offset in copies],
        repeat=spec,
        unit_cell=_cell_edges(cell) if cell is not None and grown else None,
        boundary_atoms=bool(boundary_atoms and cell is not None),
    )


class StructureController:
    """State of a structure viewer: the structure, its scene, the selection and the highlight.

    Parameters
    ----------
    source, task, id, cutoff_scale, seed:
        As in :func:`load_structure`. Invalid input raises :class:`StructureError`.
    repeat:
        Draw a periodic structure as a supercell of this many copies of the cell (an int
        ``n`` for ``n × n × n``, or ``(n1, n2, n3)``), or ``"conventional"`` for the
        conventional cell; 1 draws the cell alone. Molecules ignore it. A bad value raises
        ``ValueError`` naming ``repeat``.
    boundary_atoms:
        Also draw the copies of atoms on the faces, edges and corners of the drawn cell(s)
        on the opposite ones (see :func:`build_scene`).

    Attributes
    ----------
    loaded:
        The :class:`LoadedStructure`.
    scene:
        The :class:`StructureScene` drawn.
    nodes:
        The atoms (graph nodes) of the structure, once each, in node order.
    repeat, boundary_atoms:
        The supercell asked for (a periodic structure is drawn with it; see ``scene.repeat``)
        and whether boundary atoms are repeated.
    selected:
        Selected atoms (graph nodes), possibly empty.
    weights:
        Per-atom highlight values in marker order (every copy gets its atom's value), or None.

    Examples
    --------
    >>> ctrl = StructureController("CC(=O)O")
    >>> ctrl.highlight({0: 1.0, 3: 0.5})[:4]
    [1.0, 0.0, 0.0, 0.5]
    >>> ctrl.depiction_svg().startswith("<?xml")
    True
    """

    def __init__(
        self,
        source: Any = None,
        *,
        task: Any = None,
        id: str | None = None,
        cutoff_scale: float | None = None,
        seed: int = 0,
        repeat: Any = 1,
        boundary_atoms: bool = False,
    ) -> None:
        self.repeat: RepeatSpec = parse_repeat(repeat)
        self.boundary_atoms = bool(boundary_atoms)
        self.repeat_note = ""
        self.load(source, task=task, id=id, cutoff_scale=cutoff_scale, seed=seed, repeat=repeat)

    def load(
        self,
        source: Any = None,
        *,
        task: Any = None,
        id: str | None = None,
        cutoff_scale: float | None = None,
        seed: int = 0,
        repeat: Any = None,
    ) -> LoadedStructure:
        """Load a new structure (see :func:`load_structure`); clears selection and highlight.

        ``repeat`` None keeps the current supercell, or falls back to the cell alone (with a
        note in :meth:`describe`) where the new structure's supercell would be too large.

        On error the previous structure is kept and :class:`StructureError` (``ValueError``
        for a bad ``repeat``) is raised.
        """
        counts = self.repeat if repeat is None else parse_repeat(repeat)
        loaded = load_structure(source, task=task, id=id, cutoff_scale=cutoff_scale, seed=seed)
        note = ""
        try:
            scene = build_scene(loaded.graph, counts, self.boundary_atoms)
        except ValueError as err:
            if repeat is not None:
                raise
            note = f"shown as one cell: {err}"
            counts = (1, 1, 1)
            scene = build_scene(loaded.graph, counts, self.boundary_atoms)
        self.loaded = loaded
        self.repeat = counts
        self.repeat_note = note
        self._set_scene(scene)
        self.selected: tuple[Any, ...] = ()
        self.weights: list[float] | None = None
        self._atom_weights: list[float] | None = None
        return loaded

    def _set_scene(self, scene: StructureScene) -> None:
        self.scene = scene
        self.nodes = list(self.loaded.graph.nodes)
        self._index: dict[Any, list[int]] = {node: [] for node in self.nodes}
        for p, node in enumerate(scene.nodes):
            self._index[node].append(p)

    def set_repeat(self, repeat: Any) -> RepeatSpec:
        """Draw the structure as another supercell; keeps the selection and the highlight.

        Returns
        -------
        tuple
            The copies drawn along each cell vector (``(1, 1, 1)`` for molecules), or
            ``"conventional"``.

        Raises
        ------
        ValueError
            Naming ``repeat``, for a bad value or a supercell of more than
            :data:`MAX_SUPERCELL_ATOMS` atoms (the current view is kept).
        """
        counts = parse_repeat(repeat)
        self._rebuild(build_scene(self.graph, counts, self.boundary_atoms))
        self.repeat = counts
        return self.scene.repeat

    def set_boundary_atoms(self, boundary_atoms: bool) -> int:
        """Repeat (or not) the atoms on the boundary of the drawn cell(s); keeps the selection
        and the highlight. Returns the number of atoms drawn.

        Raises
        ------
        ValueError
            Where that would draw more than :data:`MAX_SUPERCELL_ATOMS` atoms (the current
            view is kept).
        """
        self._rebuild(build_scene(self.graph, self.scene.repeat, bool(boundary_atoms)))
        self.boundary_atoms = bool(boundary_atoms)
        return self.scene.n_atoms

    def _rebuild(self, scene: StructureScene) -> None:
        self.repeat_note = ""
        self._set_scene(scene)
        if self._atom_weights is not None:
            self.weights = self._expand(self._atom_weights)

    @property
    def conventional_cells(self) -> int:
        """How many cells make the conventional cell (1: the cell is conventional; 0 for
        molecules)."""
        if not self.periodic:
            return 0
        return round(float(np.linalg.det(conventional_matrix(self.graph.graph["cell"]))))

    def _expand(self, values: Sequence[float]) -> list[float]:
        position = {node: i for i, node in enumerate(self.nodes)}
        return [float(values[position[node]]) for node in self.scene.nodes]

    @property
    def graph(self) -> nx.Graph:
        """The atom-bond network shown."""
        return self.loaded.graph

    @property
    def periodic(self) -> bool:
        """Whether the structure is a periodic cell."""
        return self.scene.cell is not None

    def node_at(self, point: int) -> Any:
        """Return the graph node drawn as marker ``point`` (any copy: the original atom)."""
        return self.scene.nodes[point]

    def copy_at(self, point: int) -> tuple[Any, Repeat]:
        """Return the atom drawn as marker ``point`` and its copy's cell offset."""
        return self.scene.nodes[point], self.scene.offsets[point]

    def markers_of(self, node: Any) -> list[int]:
        """Return the markers that draw ``node`` (one per copy of the cell)."""
        return list(self._index[self._check_node(node)])

    def _check_node(self, node: Any) -> Any:
        if node not in self._index:
            raise ValueError(f"no atom {node!r} in the structure ({len(self.nodes)} atoms)")
        return node

    def select_atom(self, node: Any | None) -> tuple[Any, ...]:
        """Select one atom (a graph node), or clear the selection with None.

        Returns
        -------
        tuple
            The selected atoms.
        """
        return self.select_atoms(() if node is None else (node,))

    def select_atoms(self, nodes: Sequence[Any]) -> tuple[Any, ...]:
        """Select several atoms (duplicates dropped, order kept); ``()`` clears."""
        picked: list[Any] = []
        for node in nodes:
            if self._check_node(node) not in picked:
                picked.append(node)
        self.selected = tuple(picked)
        return self.selected

    def selection_points(self) -> Segments:
        """``(x, y, z)`` of every copy of the selected atoms, for the selection halo trace."""
        pts = [self.scene.positions[p] for n in self.selected for p in self._index[n]]
        return tuple([float(p[axis]) for p in pts] for axis in range(3))  # type: ignore[return-value]

    def selection_sizes(self, margin: float = 10.0) -> list[float]:
        """Marker sizes of the selection halo: each selected copy's size plus ``margin``."""
        return [self.scene.sizes[p] + margin for n in self.selected for p in self._index[n]]

    def highlight(
        self, atom_weights: Mapping[Any, float] | Sequence[float] | np.ndarray | None
    ) -> list[float] | None:
        """Colour atoms by a per-atom value (e.g. an attribution map); None restores CPK colours.

        Parameters
        ----------
        atom_weights:
            ``{node: value}`` (missing atoms get 0) or one value per atom in node order.

        Returns
        -------
        list or None
            The values in marker order (every copy of an atom gets its value).
        """
        if atom_weights is None:
            self.weights = self._atom_weights = None
            return None
        if isinstance(atom_weights, Mapping):
            for node in atom_weights:
                self._check_node(node)
            values = [float(atom_weights.get(n, 0.0)) for n in self.nodes]
        else:
            arr = np.asarray(atom_weights, dtype=float).ravel()
            if arr.size != len(self.nodes):
                raise ValueError(f"got {arr.size} weights for {len(self.nodes)} atoms")
            values = [float(x) for x in arr]
        if not np.all(np.isfinite(values)):
            raise ValueError("atom weights must be finite")
        self._atom_weights = values
        self.weights = self._expand(values)
        return self.weights

    def depiction_svg(self, width: int = 320, height: int = 240) -> str | None:
        """Return the RDKit 2-D depiction (SVG) with the selected atoms highlighted, or None.

        Only molecules built from SMILES or an RDKit ``Mol`` have a depiction.
        """
        mol = self.loaded.mol
        if mol is None:
            return None
        drawer = rdMolDraw2D.MolDraw2DSVG(width, height)
        drawer.drawOptions().addAtomIndices = True
        highlight = [int(n) for n in self.selected if 0 <= int(n) < mol.GetNumAtoms()]
        copy = Chem.Mol(mol)
        copy.RemoveAllConformers()
        rdMolDraw2D.PrepareAndDrawMolecule(drawer, copy, highlightAtoms=highlight)
        drawer.FinishDrawing()
        return drawer.GetDrawingText()

    def describe(self) -> str:
        """One-line summary for the status line."""
        scene = self.scene
        kind = "periodic cell" if self.periodic else "molecule"
        parts = [f"{self.loaded.label}: {kind}, {len(self.nodes)} atoms"]
        if scene.repeat == CONVENTIONAL and scene.unit_cell is not None:
            parts[0] += f"; drawn as its conventional cell of {scene.n_atoms} atoms"
        elif scene.unit_cell is not None:
            parts[0] += (
                f"; drawn as a {repeat_text(scene.repeat)} supercell of {scene.n_atoms} atoms"
            )
        elif scene.n_atoms > len(self.nodes):
            parts[0] += f"; drawn with {scene.n_atoms} atoms"
        if scene.n_atoms > len(self.nodes) and scene.boundary_atoms:
            parts[0] += " (boundary atoms repeated)"
        parts[0] += f", {scene.n_bonds} bonds"
        if self.periodic:
            where = "cell"
            if scene.unit_cell is not None:
                where = "conventional cell" if scene.repeat == CONVENTIONAL else "supercell"
            parts.append(f"{scene.n_stubs} half-bond stubs across the {where} boundary")
        if self.repeat_note:
            parts.append(self.repeat_note)
        if self.loaded.note:
            parts.append(self.loaded.note)
        return "; ".join(parts)
