"""Shared helpers for atom-bond networks: validation, bond instances, canonical ranks, file reading.

Every graph built by :mod:`andersonn_lab.structures` is a plain :class:`networkx.Graph` whose
nodes are the integer atom indices of the input (RDKit atom index or ASE atom index).

* One edge per bonded pair of atoms. In a periodic crystal the same pair can be bonded several
  times through different periodic images (small cells); the edge then describes its shortest
  bond instance (``distance``, ``shift``) and lists every instance in ``shifts``/``distances``,
  with ``multiplicity = len(shifts)``.
* A bond between an atom and its own periodic image is a self-loop ``(i, i)``. Each of its
  ``multiplicity`` instances stands for the pair of neighbours ``+S`` and ``-S``, so it counts
  twice towards the atom's coordination number (as networkx counts self-loops twice).
* Hence ``dict(G.degree(weight="multiplicity"))`` is the coordination number of every atom; the
  same number is stored as node attribute ``degree``.
"""

from __future__ import annotations

import math
from collections import Counter
from functools import reduce
from typing import Any

import networkx as nx
import numpy as np

from .elements import valence_electrons
from .errors import StructureError

__all__ = [
    "MIN_DISTANCE",
    "canonical_ranks",
    "canonical_order",
    "coordination_numbers",
    "describe",
    "has_odd_electron_count",
]

MIN_DISTANCE = 0.5
"""Two atoms closer than this many angstrom (periodic images included) are overlapping."""


def describe(graph: nx.Graph) -> str:
    """Return a short human-readable name of a graph for messages.

    Parameters
    ----------
    graph:
        A graph built by this package (or any graph; falls back to its size).

    Returns
    -------
    str
        The graph's ``name``, else its ``source``, plus its formula when known.

    Examples
    --------
    >>> from andersonn_lab.structures import from_smiles
    >>> describe(from_smiles("CCO", name="ethanol"))
    "'ethanol'"
    """
    attrs = graph.graph
    label = attrs.get("name") or attrs.get("source")
    if label:
        return repr(str(label))
    formula = attrs.get("formula")
    if formula:
        return f"structure {formula}"
    return f"graph with {graph.number_of_nodes()} atoms"


def coordination_numbers(graph: nx.Graph) -> dict[Any, int]:
    """Return the number of bonds of every atom, periodic images included.

    Parameters
    ----------
    graph:
        An atom-bond network from :func:`from_smiles`, :func:`from_atoms`, ...

    Returns
    -------
    dict
        ``{node: coordination number}``.

    Examples
    --------
    >>> from ase.build import bulk
    >>> from andersonn_lab.structures import from_atoms
    >>> coordination_numbers(from_atoms(bulk("Si", "diamond", a=5.431), cutoff_scale=1.1))
    {0: 4, 1: 4}
    """
    return {
        node: int(round(deg)) for node, deg in graph.degree(weight="multiplicity")
    }  # self-loops count twice


def has_odd_electron_count(graph: nx.Graph) -> bool:
    """True if a formula unit of the structure has an odd number of valence electrons.

    Electron counting in its simplest form: a solid whose formula unit holds an odd number of
    electrons cannot fill its bands with pairs, so it is metallic unless correlation or a
    larger cell intervenes. Implicit hydrogens (``num_hs``) count as atoms with one electron
    each, and a formal charge ``q`` removes ``q`` electrons. A periodic structure's formula
    unit divides the element counts (and the net charge) by their greatest common divisor; a
    molecule counts whole.

    Examples
    --------
    >>> from ase.build import bulk
    >>> from andersonn_lab.structures import from_atoms
    >>> has_odd_electron_count(from_atoms(bulk("Na", "bcc", a=4.23)))
    True
    >>> has_odd_electron_count(from_atoms(bulk("NaCl", "rocksalt", a=5.64)))  # 1 + 7 electrons
    False
    """
    counts: Counter[int] = Counter()
    electrons = charge = 0
    for _, data in graph.nodes(data=True):
        z, hydrogens = node_atomic_number(data), int(data.get("num_hs") or 0)
        counts[z] += 1
        counts[1] += hydrogens
        charge += int(data.get("formal_charge") or 0)
        electrons += valence_electrons(z) + hydrogens
    unit = 1
    if graph.graph.get("periodic"):
        unit = reduce(math.gcd, [n for n in counts.values() if n], abs(charge))
    return bool((electrons - charge) // unit % 2)


def check_positions(positions: np.ndarray, label: str) -> None:
    """Raise :class:`StructureError` if any coordinate is NaN or infinite."""
    if not np.all(np.isfinite(positions)):
        bad = sorted({int(i) for i in np.argwhere(~np.isfinite(positions))[:, 0]})
        raise StructureError(f"{label}: non-finite (NaN/inf) coordinates for atom(s) {bad[:10]}")


def check_atomic_numbers(numbers: list[int] | np.ndarray, label: str) -> None:
    """Raise :class:`StructureError` for atomic numbers outside 1..118 (dummy atoms included)."""
    bad = [int(z) for z in numbers if not 1 <= int(z) <= 118]
    if bad:
        raise StructureError(
            f"{label}: unknown element(s) with atomic number {sorted(set(bad))}; "
            "only real elements (1..118) are allowed"
        )


def check_overlap_molecule(positions: np.ndarray, label: str) -> None:
    """Raise :class:`StructureError` if two atoms of a non-periodic structure overlap."""
    n = len(positions)
    if n < 2:
        return
    diff = positions[:, None, :] - positions[None, :, :]
    dist = np.sqrt((diff * diff).sum(-1))
    dist[np.diag_indices(n)] = np.inf
    i, j = np.unravel_index(int(np.argmin(dist)), dist.shape)
    if dist[i, j] < MIN_DISTANCE:
        raise StructureError(
            f"{label}: atoms {min(i, j)} and {max(i, j)} overlap "
            f"({dist[i, j]:.3f} A apart, minimum {MIN_DISTANCE} A)"
        )


def check_has_bonds(graph: nx.Graph, label: str, hint: str = "") -> None:
    """Raise :class:`StructureError` if the graph has no bond at all (isolated atoms only)."""
    if graph.number_of_edges() == 0:
        raise StructureError(
            f"{label}: no bonds found, the structure is only isolated atoms "
            f"({graph.number_of_nodes()} atom(s)){hint}"
        )


def set_degrees(graph: nx.Graph) -> None:
    """Store the coordination number of every atom as node attribute ``degree``."""
    for node, cn in coordination_numbers(graph).items():
        graph.nodes[node]["degree"] = cn


# --------------------------------------------------------------------------------------------
# Bond instances and canonical ranks (shared by the image encodings)
# --------------------------------------------------------------------------------------------

BondInstance = tuple[int, float | None, float]
"""``(neighbour index, distance in A or None, bond order)`` of one bond seen from one atom."""


def bond_instances(graph: nx.Graph) -> tuple[list[Any], list[list[BondInstance]]]:
    """Return the nodes and, per node (by position), the list of its bond instances.

    Every periodic image of a bond is one instance; a self-loop with multiplicity ``m`` gives
    ``2 m`` instances to its atom. Unknown bond orders (``None``) count as 1.0.
    """
    nodes = list(graph.nodes)
    index = {node: k for k, node in enumerate(nodes)}
    inst: list[list[BondInstance]] = [[] for _ in nodes]
    for u, v, data in graph.edges(data=True):
        a, b = index[u], index[v]
        order = data.get("bond_order")
        order = 1.0 if order is None else float(order)
        dists = data.get("distances")
        if dists is None:
            dists = (data.get("distance"),) * int(data.get("multiplicity", 1))
        for d in dists:
            if a == b:
                inst[a].append((a, d, order))
                inst[a].append((a, d, order))
            else:
                inst[a].append((b, d, order))
                inst[b].append((a, d, order))
    return nodes, inst


def _dense_ranks(keys: list) -> list[int]:
    """Rank keys densely (equal keys, equal rank), in increasing key order."""
    uniq = {key: r for r, key in enumerate(sorted(set(keys)))}
    return [uniq[key] for key in keys]


def _refine(ranks: list[int], neigh: list[list[tuple[float, float, int]]]) -> list[int]:
    """Refine ranks by neighbour ranks until the number of classes stops growing."""
    n_classes = len(set(ranks))
    while True:
        keys = [
            (ranks[i], tuple(sorted([(o, d, ranks[j]) for o, d, j in neigh[i]])))
            for i in range(len(ranks))
        ]
        new = _dense_ranks(keys)
        n_new = max(new) + 1 if new else 0
        if n_new == n_classes:
            return new
        ranks, n_classes = new, n_new


def canonical_ranks(graph: nx.Graph) -> dict[Any, int]:
    """Rank the atoms of a graph independently of the order in which they were listed.

    Atoms start with the invariant ``(-atomic number, -coordination number, formal charge,
    -hydrogen count, multiset of (bond order, distance, neighbour atomic number))``, with exact
    (unrounded) distances; ranks are refined with the neighbours' ranks (1-dimensional
    Weisfeiler-Lehman colour refinement) until stable. Remaining ties are broken by
    individualisation-refinement: one atom of the lowest tied class is given its own rank and
    the ranks are refined again, until every atom has a distinct rank. Tied atoms that are
    symmetry-equivalent (automorphic) give the same image whichever is picked. Atoms whose
    bonds differ only by floating-point noise are ordered by that noise, which is harmless:
    swapping them changes the image by the same noise.

    Parameters
    ----------
    graph:
        An atom-bond network.

    Returns
    -------
    dict
        ``{node: rank}`` with ranks ``0..n-1``; rank 0 is the heaviest, most connected atom.

    Examples
    --------
    >>> from andersonn_lab.structures import from_smiles
    >>> canonical_ranks(from_smiles("CCO"))[2]  # the O comes first
    0
    """
    nodes, inst = bond_instances(graph)
    n = len(nodes)
    if n == 0:
        return {}
    attrs = [graph.nodes[node] for node in nodes]
    z = [node_atomic_number(a) for a in attrs]
    neigh = [[(-o, -1.0 if d is None else float(d), j) for j, d, o in inst[i]] for i in range(n)]
    keys = [
        (
            -z[i],
            -len(inst[i]),
            int(attrs[i].get("formal_charge", 0) or 0),
            -int(attrs[i].get("num_hs", 0) or 0),
            tuple(sorted((o, d, -z[j]) for o, d, j in neigh[i])),
        )
        for i in range(n)
    ]
    ranks = _refine(_dense_ranks(keys), neigh)
    while max(ranks) + 1 < n:
        counts: dict[int, int] = {}
        for r in ranks:
            counts[r] = counts.get(r, 0) + 1
        tied = min(r for r, c in counts.items() if c > 1)
        chosen = ranks.index(tied)
        ranks = _refine(
            _dense_ranks([(r, 0 if i == chosen else 1) for i, r in enumerate(ranks)]), neigh
        )
    return dict(zip(nodes, ranks, strict=True))


def canonical_order(graph: nx.Graph, ranks: dict[Any, int] | None = None) -> list[Any]:
    """Return the atoms in canonical breadth-first order.

    The search starts at the atom of canonical rank 0 (the heaviest); neighbours are visited in
    increasing rank. Each further connected component starts at its lowest-ranked atom.

    Parameters
    ----------
    graph:
        An atom-bond network.
    ranks:
        Precomputed :func:`canonical_ranks` of the graph (computed if None).

    Returns
    -------
    list
        All nodes of the graph, in canonical order.

    Examples
    --------
    >>> from andersonn_lab.structures import from_smiles
    >>> canonical_order(from_smiles("CCO"))
    [2, 1, 0]
    """
    if ranks is None:
        ranks = canonical_ranks(graph)
    adj = graph.adj
    seen: set[Any] = set()
    order: list[Any] = []
    for root in sorted(ranks, key=ranks.__getitem__):
        if root in seen:
            continue
        seen.add(root)
        queue = [root]
        head = 0
        while head < len(queue):
            node = queue[head]
            head += 1
            order.append(node)
            for nb in sorted(adj[node], key=ranks.__getitem__):
                if nb not in seen:
                    seen.add(nb)
                    queue.append(nb)
    return order


def node_atomic_number(attrs: dict[str, Any]) -> int:
    """The atomic number of a node from its attributes (``atomic_number``, else ``element``).

    Examples
    --------
    >>> node_atomic_number({"element": "Fe"})
    26
    """
    z = attrs.get("atomic_number")
    if z is None:
        from ase.data import atomic_numbers

        z = atomic_numbers.get(str(attrs.get("element")), 0)
    return int(z)


def distance_or_none(value: float) -> float | None:
    """Return ``value`` as float, or None if it is not finite."""
    return float(value) if math.isfinite(value) else None


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------
