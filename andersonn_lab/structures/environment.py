"""Atomic environments and whole-structure descriptors of periodic structures.

Quantities anyone can compute from atom positions and a cell, used by the ``"framework"``
node-neighbour image encoding (:mod:`andersonn_lab.structures.images`):

* per atom: the distance to the nearest atom it is not bonded to, and the number density of
  atoms in spherical shells around it (0-4, 4-6, 6-8 and 8-10 Å), periodic images included,
  from :func:`periodic_pairs` (the same pairs as :func:`ase.neighborlist.neighbor_list`,
  found with a k-d tree over the periodic images, about ten times faster at 10 Å);
* per structure: mass density, volume per atom, van der Waals packing fraction, element
  fractions and the whole-cell means of the per-atom values;
* per structure, from the bonds: :func:`bonding_statistics` (coordination, bond ionicity,
  metal-metal bonds, electron-count parity), the structural half of the crystals' baseline
  descriptors (:func:`andersonn_lab.deq.baselines.descriptors`).

None of them looks at empty space: there is no probe, no grid and no cavity search (compare
:func:`andersonn_lab.structures.pores.largest_cavity_diameter`, which does).

Examples
--------
>>> from ase import Atoms
>>> from andersonn_lab.structures import from_atoms
>>> cube = Atoms("C", positions=[[0, 0, 0]], cell=[3.0, 3.0, 3.0], pbc=True)
>>> env = atom_environment(from_atoms(cube, cutoff_scale=2.1))
>>> float(env.nonbonded_distance[0]), int(env.shell_counts[0, 0])
(4.242640687119285, 6)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
from ase import Atoms
from ase.data import vdw_radii
from scipy.spatial import cKDTree

from .bonds import is_metal
from .crystals import density_g_cm3, to_atoms
from .elements import electronegativity
from .errors import StructureError
from .graph import bond_instances, describe, has_odd_electron_count, node_atomic_number

__all__ = [
    "DEFAULT_VDW_RADIUS",
    "SHELL_EDGES",
    "AtomEnvironment",
    "atom_environment",
    "bonding_statistics",
    "equivalent_atoms",
    "framework_descriptors",
    "periodic_pairs",
]

SHELL_EDGES: tuple[float, ...] = (0.0, 4.0, 6.0, 8.0, 10.0)
"""Radii (Å) of the spherical shells in which neighbours are counted: 0-4, 4-6, 6-8, 8-10."""

DEFAULT_VDW_RADIUS = 2.0
"""Van der Waals radius (Å) used for elements without one in :data:`ase.data.vdw_radii`."""

METALLOIDS_AND_NONMETALS = frozenset(
    {1, 2, 5, 6, 7, 8, 9, 10, 14, 15, 16, 17, 18, 33, 34, 35, 36, 52, 53, 54, 85, 86}
)
"""Atomic numbers that do not count as metals in the ``metal`` element fraction."""

GLOBAL_NAMES: tuple[str, ...] = (
    "density",
    "volume_per_atom",
    "packing_fraction",
    "fraction_H",
    "fraction_C",
    "fraction_N",
    "fraction_O",
    "fraction_metal",
    "mean_nonbonded_distance",
    "mean_shell_0_4",
    "mean_shell_4_6",
    "mean_shell_6_8",
    "mean_shell_8_10",
    "p10_shell_0_4",
    "p10_shell_4_6",
    "p10_shell_6_8",
    "p10_shell_8_10",
    "p90_nonbonded_distance",
)
"""Names of :func:`framework_descriptors`, in order."""


@dataclass(frozen=True)
class AtomEnvironment:
    """Per-atom environment of a periodic structure (atoms in the graph's node order).

    Attributes
    ----------
    nonbonded_distance:
        ``(n,)`` distance (Å) to the nearest atom, periodic images included, that is not one
        of the atom's bond instances; ``SHELL_EDGES[-1]`` if there is none that close.
    shell_counts:
        ``(n, len(SHELL_EDGES) - 1)`` number of other atoms (periodic images included, bonded
        or not) at distance ``SHELL_EDGES[k] < d <= SHELL_EDGES[k + 1]``.
    shell_volumes:
        ``(len(SHELL_EDGES) - 1,)`` volume (Å³) of each shell.
    """

    nonbonded_distance: np.ndarray
    shell_counts: np.ndarray
    shell_volumes: np.ndarray

    @property
    def shell_densities(self) -> np.ndarray:
        """``(n, shells)`` number density (atoms per Å³) in each shell."""
        return self.shell_counts / self.shell_volumes


def periodic_pairs(
    atoms: Atoms, cutoff: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All atom pairs of a 3-D periodic structure closer than ``cutoff``, images included.

    The same pairs as ``ase.neighborlist.neighbor_list("ijdS", atoms, cutoff)`` (in another
    order): every ordered pair ``(i, j, S)`` with ``0 < |r_j + S @ cell - r_i| < cutoff``.

    Parameters
    ----------
    atoms:
        A structure periodic in all three directions.
    cutoff:
        Largest distance in Å (positive).

    Returns
    -------
    i, j, d, S:
        Atom indices, distances (Å) and integer cell shifts ``(pairs, 3)`` of ``j``.

    Raises
    ------
    ValueError
        If ``cutoff`` is not positive or the structure is not periodic in 3-D.

    Examples
    --------
    >>> from ase.build import bulk
    >>> i, j, d, S = periodic_pairs(bulk("Cu", "fcc", a=3.61), 2.6)
    >>> len(d), round(float(d.max()), 3)  # the 12 nearest neighbours
    (12, 2.553)
    """
    if not math.isfinite(cutoff) or cutoff <= 0:
        raise ValueError(f"cutoff must be a positive number of Å, got {cutoff!r}")
    if not all(atoms.pbc) or atoms.cell.rank < 3:
        raise ValueError("periodic_pairs needs a structure periodic in all three directions")
    cell = np.asarray(atoms.cell, dtype=float)
    volume = abs(float(np.linalg.det(cell)))
    widths = [
        volume / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3])) for k in range(3)
    ]
    reach = [int(math.ceil(cutoff / w)) + 1 for w in widths]
    grid = np.stack(
        np.meshgrid(*[np.arange(-r, r + 1) for r in reach], indexing="ij"), axis=-1
    ).reshape(-1, 3)
    frac = atoms.cell.scaled_positions(atoms.positions) % 1.0
    home = frac @ cell
    n = len(home)
    images = (home[None, :, :] + (grid @ cell)[:, None, :]).reshape(-1, 3)
    pairs = cKDTree(home).sparse_distance_matrix(cKDTree(images), cutoff, output_type="ndarray")
    i = pairs["i"].astype(np.int64)
    img, j = np.divmod(pairs["j"].astype(np.int64), n)
    d = pairs["v"].astype(float)
    keep = d > 0
    # Shifts relative to the input positions (which may lie outside the cell).
    wrap = np.floor(atoms.cell.scaled_positions(atoms.positions)).astype(np.int64)
    shifts = grid[img[keep]] + wrap[i[keep]] - wrap[j[keep]]
    return i[keep], j[keep], d[keep], shifts


def _periodic_atoms(graph: nx.Graph) -> Any:
    if not graph.graph.get("periodic") or graph.graph.get("cell") is None:
        raise StructureError(
            f"{describe(graph)}: atomic environments need a periodic structure with a cell"
        )
    atoms = to_atoms(graph)
    if not all(atoms.pbc):
        raise StructureError(f"{describe(graph)}: atomic environments need a 3-D periodic cell")
    return atoms


def atom_environment(graph: nx.Graph) -> AtomEnvironment:
    """Nearest non-bonded distance and shell counts of every atom of a periodic structure.

    Parameters
    ----------
    graph:
        An atom-bond network of a 3-D periodic structure
        (:func:`~andersonn_lab.structures.from_atoms`); its bonds decide which neighbours
        count as bonded.

    Returns
    -------
    AtomEnvironment

    Raises
    ------
    StructureError
        If the graph is not a 3-D periodic structure with coordinates.

    Examples
    --------
    >>> from ase.build import bulk
    >>> from andersonn_lab.structures import from_atoms
    >>> env = atom_environment(from_atoms(bulk("Cu", "fcc", a=3.61)))
    >>> round(float(env.nonbonded_distance[0]), 3)  # second shell, a = 3.61 Å
    3.61
    """
    atoms = _periodic_atoms(graph)
    n = len(atoms)
    edges = np.asarray(SHELL_EDGES)
    i, j, d, shifts = periodic_pairs(atoms, float(edges[-1]))
    nodes = sorted(graph.nodes)
    index = {node: k for k, node in enumerate(nodes)}
    bonded: set[tuple[int, int, int, int, int]] = set()
    longest = 0.0
    for u, v, data in graph.edges(data=True):
        a, b = index[u], index[v]
        lo, hi = min(a, b), max(a, b)
        for shift, dist in zip(data.get("shifts") or (), data.get("distances") or (), strict=False):
            bonded.add((lo, hi, *shift))
            bonded.add((hi, lo, *(-s for s in shift)))
            longest = max(longest, float(dist))
    near = np.flatnonzero(d <= longest + 1e-6)
    is_bond = np.zeros(len(d), dtype=bool)
    for k in near:
        key = (int(i[k]), int(j[k]), *(int(s) for s in shifts[k]))
        is_bond[k] = key in bonded
    nonbonded = np.full(n, float(edges[-1]))
    free = ~is_bond
    np.minimum.at(nonbonded, i[free], d[free])
    shell = np.searchsorted(edges, d, side="left") - 1
    counts = np.zeros((n, len(edges) - 1), dtype=np.int64)
    np.add.at(counts, (i, np.clip(shell, 0, len(edges) - 2)), 1)
    volumes = 4.0 / 3.0 * math.pi * np.diff(edges**3)
    return AtomEnvironment(nonbonded, counts, volumes)


def framework_descriptors(
    graph: nx.Graph, environment: AtomEnvironment | None = None
) -> dict[str, float]:
    """Whole-structure descriptors of a periodic structure, named as :data:`GLOBAL_NAMES`.

    * ``density``: mass density in g cm⁻³;
    * ``volume_per_atom``: cell volume / number of atoms, Å³;
    * ``packing_fraction``: summed van der Waals sphere volumes / cell volume (radii from
      :data:`ase.data.vdw_radii`, :data:`DEFAULT_VDW_RADIUS` where missing; overlaps are
      counted twice, so dense solids exceed 1);
    * ``fraction_H``, ``_C``, ``_N``, ``_O``, ``fraction_metal``: fractions of the atoms;
    * ``mean_nonbonded_distance`` (Å) and ``mean_shell_*`` (atoms per Å³): whole-cell means
      of :func:`atom_environment`;
    * ``p10_shell_*`` (atoms per Å³): the 10th percentile over the atoms of each shell
      density (the sparsest surroundings), ``p90_nonbonded_distance`` (Å): the 90th
      percentile of the nearest non-bonded distance.

    Parameters
    ----------
    graph:
        An atom-bond network of a 3-D periodic structure.
    environment:
        Its :func:`atom_environment`, if already computed.

    Returns
    -------
    dict
        ``{name: value}`` in the order of :data:`GLOBAL_NAMES`.

    Examples
    --------
    >>> from ase.build import bulk
    >>> from andersonn_lab.structures import from_atoms
    >>> d = framework_descriptors(from_atoms(bulk("Cu", "fcc", a=3.61)))
    >>> round(d["density"], 2), round(d["volume_per_atom"], 2), d["fraction_metal"]
    (8.97, 11.76, 1.0)
    """
    atoms = _periodic_atoms(graph)
    env = atom_environment(graph) if environment is None else environment
    z = atoms.numbers
    volume = float(atoms.cell.volume)
    radii = np.nan_to_num(vdw_radii[z], nan=DEFAULT_VDW_RADIUS)
    values = {
        "density": density_g_cm3(atoms),
        "volume_per_atom": volume / len(z),
        "packing_fraction": float((4.0 / 3.0 * math.pi * radii**3).sum()) / volume,
        "fraction_H": float(np.mean(z == 1)),
        "fraction_C": float(np.mean(z == 6)),
        "fraction_N": float(np.mean(z == 7)),
        "fraction_O": float(np.mean(z == 8)),
        "fraction_metal": float(np.mean([int(x) not in METALLOIDS_AND_NONMETALS for x in z])),
        "mean_nonbonded_distance": float(env.nonbonded_distance.mean()),
    }
    names = [f"{lo:g}_{hi:g}" for lo, hi in zip(SHELL_EDGES[:-1], SHELL_EDGES[1:], strict=True)]
    mean = env.shell_densities.mean(axis=0)
    low = np.percentile(env.shell_densities, 10, axis=0)
    values.update({f"mean_shell_{name}": float(v) for name, v in zip(names, mean, strict=True)})
    values.update({f"p10_shell_{name}": float(v) for name, v in zip(names, low, strict=True)})
    values["p90_nonbonded_distance"] = float(np.percentile(env.nonbonded_distance, 90))
    return values


def equivalent_atoms(graph: nx.Graph, decimals: int = 2) -> list[int]:
    """Classes of equivalent atoms: same element, same bonds, equivalent neighbours.

    Colour refinement (1-dimensional Weisfeiler-Lehman) from ``(atomic number, sorted bond
    lengths rounded to decimals)``, refined by the sorted ``(rounded bond length, neighbour
    class)`` of each bond instance until the number of classes stops growing. Atoms that a
    symmetry operation of the crystal maps onto each other always share a class (a P1 cell
    lists every symmetry copy separately; rounding absorbs the noise of their coordinates);
    atoms of one class have the same number of bonds to every other class (the partition is
    equitable), so one representative row per class loses no bond of the network.

    Parameters
    ----------
    graph:
        An atom-bond network.
    decimals:
        Bond lengths are compared after rounding to this many decimals (Å).

    Returns
    -------
    list of int
        Class of each node in ``graph.nodes`` order, numbered ``0..k-1`` by sorted colour
        (independent of the order in which atoms were listed).

    Examples
    --------
    >>> from andersonn_lab.structures import from_smiles
    >>> equivalent_atoms(from_smiles("c1ccccc1")) == [0] * 6
    True
    """
    nodes, inst = bond_instances(graph)
    z = [node_atomic_number(graph.nodes[node]) for node in nodes]

    def dense(keys: list[Any]) -> list[int]:
        rank = {key: r for r, key in enumerate(sorted(set(keys)))}
        return [rank[key] for key in keys]

    def length(d: float | None) -> float:
        return -1.0 if d is None else round(float(d), decimals)

    colours = dense(
        [(-z[a], tuple(sorted((length(d), o) for _, d, o in inst[a]))) for a in range(len(nodes))]
    )
    n_colours = len(set(colours))
    while True:
        new = dense(
            [
                (colours[a], tuple(sorted((length(d), o, colours[b]) for b, d, o in inst[a])))
                for a in range(len(nodes))
            ]
        )
        if len(set(new)) == n_colours:
            return new
        colours, n_colours = new, len(set(new))


BONDING_NAMES: tuple[str, ...] = (
    "odd_electrons",
    "mean_coordination",
    "mean_bond_ionicity",
    "max_bond_ionicity",
    "fraction_metal_metal_bonds",
    "volume_per_atom",
)
"""Names of :func:`bonding_statistics`, in order."""


def bonding_statistics(graph: nx.Graph) -> dict[str, float]:
    """Whole-structure numbers read from a crystal's bonds, named as :data:`BONDING_NAMES`.

    * ``odd_electrons``: 1.0 if a formula unit has an odd number of valence electrons
      (:func:`~andersonn_lab.structures.graph.has_odd_electron_count`), else 0.0;
    * ``mean_coordination``: the mean number of bonds per atom, periodic images included;
    * ``mean_bond_ionicity`` and ``max_bond_ionicity``: the mean and largest difference of
      Pauling electronegativity across a bond, over every bond instance (bonds to elements
      without an electronegativity are left out; 0.0 if none is left);
    * ``fraction_metal_metal_bonds``: the fraction of bond instances between two metals
      (:func:`~andersonn_lab.structures.bonds.is_metal`);
    * ``volume_per_atom``: cell volume / number of atoms, Å³.

    Parameters
    ----------
    graph:
        An atom-bond network of a 3-D periodic structure (:func:`from_atoms`).

    Returns
    -------
    dict
        ``{name: value}`` in the order of :data:`BONDING_NAMES`.

    Examples
    --------
    >>> from ase.build import bulk
    >>> from andersonn_lab.structures import from_atoms
    >>> stats = bonding_statistics(from_atoms(bulk("NaCl", "rocksalt", a=5.64)))
    >>> stats["mean_coordination"], round(stats["mean_bond_ionicity"], 2)
    (6.0, 2.23)
    >>> stats["fraction_metal_metal_bonds"], round(stats["volume_per_atom"], 2)
    (0.0, 22.43)
    """
    atoms = _periodic_atoms(graph)
    nodes, instances = bond_instances(graph)
    numbers = [node_atomic_number(graph.nodes[node]) for node in nodes]
    chi = [electronegativity(z) for z in numbers]
    ionicity: list[float] = []
    metal_metal = total = 0
    for a, bonds in enumerate(instances):
        for b, _, _ in bonds:
            total += 1
            metal_metal += is_metal(numbers[a]) and is_metal(numbers[b])
            if chi[a] is not None and chi[b] is not None:
                ionicity.append(abs(chi[a] - chi[b]))
    return {
        "odd_electrons": float(has_odd_electron_count(graph)),
        "mean_coordination": total / len(nodes),
        "mean_bond_ionicity": float(np.mean(ionicity)) if ionicity else 0.0,
        "max_bond_ionicity": max(ionicity, default=0.0),
        "fraction_metal_metal_bonds": metal_metal / total if total else 0.0,
        "volume_per_atom": float(atoms.cell.volume) / len(atoms),
    }
