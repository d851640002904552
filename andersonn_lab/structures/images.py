"""Node-neighbour images: fixed-size, atom-order-invariant tensors made from atom-bond networks.

See ``docs/node_neighbor_images.md`` for the full definition; :func:`node_neighbor_image`
summarises it.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import networkx as nx
import numpy as np
import torch

from andersonn_lab._warnings import warn

from .elements import (
    COMPOSITION_PROPERTIES,
    composition_statistics,
    electronegativity,
    group,
    period,
)
from .errors import ImageOverflowWarning, StructureError
from .graph import (
    BondInstance,
    bond_instances,
    canonical_order,
    canonical_ranks,
    describe,
    has_odd_electron_count,
    node_atomic_number,
)
from .pores import VOID_RADII

__all__ = [
    "CHANNELS",
    "DISTANCE_SCALE",
    "GLOBAL_CHANNELS",
    "LAYOUTS",
    "image_atom_order",
    "node_neighbor_image",
    "pixel_atoms",
]

Encoding = Literal[
    "adjacency",
    "neighbors",
    "elements",
    "electrons",
    "composition",
    "charges",
    "framework",
    "framework_atoms",
    "void",
]
Overflow = Literal["crop", "error"]

DISTANCE_SCALE = 1.5
"""Length scale (A) of the distance term ``exp(-d / DISTANCE_SCALE)``."""

MAX_Z = 118.0
MAX_BOND_ORDER = 3.0
MAX_ELECTRONEGATIVITY = 4.0
MAX_GROUP = 18.0
MAX_PERIOD = 7.0
DIPOLE_SHARE_SCALE = 2.0
"""Debye per unit of the ``dipole_share`` channel."""
GLOBAL_DIPOLE_SCALE = 5.0
"""Debye per unit of the ``global_dipole`` channel."""

_ELEMENTS = ("atomic_number", "bond_order", "distance", "electronegativity", "group", "period")

# The "framework" encoding (periodic structures, MOFs): one row per class of equivalent
# atoms, per-atom environment channels, then whole-structure scalars. Built by
# _framework_image below; its quantities come from .environment.
_FRAMEWORK_ATOM = (
    "atomic_number",
    "bond_order",
    "distance",
    "multiplicity",
    "nonbonded_distance",
    "shell_0_4",
    "shell_4_6",
    "shell_6_8",
    "shell_8_10",
)
FRAMEWORK_GLOBAL_SCALES: dict[str, float] = {
    "density": 2.0,
    "volume_per_atom": 40.0,
    "packing_fraction": 1.0,
    "fraction_H": 1.0,
    "fraction_C": 1.0,
    "fraction_N": 1.0,
    "fraction_O": 1.0,
    "fraction_metal": 1.0,
    "mean_nonbonded_distance": 5.0,
    "mean_shell_0_4": 0.1,
    "mean_shell_4_6": 0.1,
    "mean_shell_6_8": 0.1,
    "mean_shell_8_10": 0.1,
    "p10_shell_0_4": 0.1,
    "p10_shell_4_6": 0.1,
    "p10_shell_6_8": 0.1,
    "p10_shell_8_10": 0.1,
    "p90_nonbonded_distance": 5.0,
}
"""Whole-structure scalars of the ``"framework"`` encoding (names of
:func:`~andersonn_lab.structures.environment.framework_descriptors`) and the unit each is
divided by: g cm⁻³, Å³, Å, atoms per Å³; fractions as they are."""

VOID_GLOBAL_SCALES: dict[str, float] = {
    "grid_lcd": 10.0,
    **{f"free_fraction_{radius:g}": 1.0 for radius in VOID_RADII},
}
"""Whole-structure scalars that the ``"void"`` encoding adds to ``"framework"`` (names of
:func:`~andersonn_lab.structures.pores.void_descriptors`) and the unit each is divided by
(Å for ``grid_lcd``; fractions as they are). They recompute the MOF label: a teaching
contrast, in no default recipe."""

NONBONDED_SCALE = 5.0
"""Å per unit of the ``nonbonded_distance`` channel."""
SHELL_DENSITY_SCALE = 0.1
"""Atoms per Å³ per unit of the ``shell_*`` channels."""

_PROPERTY_SCALES = {
    "electronegativity": 4.0,
    "group": 18.0,
    "period": 7.0,
    "valence_electrons": 12.0,
    "covalent_radius": 2.5,
    "atomic_number": 118.0,
}
COMPOSITION_GLOBAL_SCALES: dict[str, float] = {
    f"{stat}_{name}": _PROPERTY_SCALES[name]
    for name in COMPOSITION_PROPERTIES
    for stat in ("mean", "min", "max", "range")
}
COMPOSITION_GLOBAL_SCALES["n_elements"] = 5.0
"""Whole-structure scalars of the ``"composition"`` encoding (names of
:func:`~andersonn_lab.structures.elements.composition_statistics`) and the unit each is
divided by (Pauling units, group, period, electrons, A, atomic number, elements)."""

CHANNELS: dict[str, tuple[str, ...]] = {
    "adjacency": ("atomic_number", "bond_order", "distance"),
    "neighbors": ("atomic_number", "distance", "bond_order"),
    "elements": _ELEMENTS,
    "electrons": (*_ELEMENTS, "odd_electrons"),
    "composition": (
        *_ELEMENTS,
        "odd_electrons",
        *(f"global_{name}" for name in COMPOSITION_GLOBAL_SCALES),
    ),
    "charges": (
        "atomic_number",
        "bond_order",
        "distance",
        "partial_charge",
        "dipole_share",
        "global_dipole",
    ),
    "framework": (*_FRAMEWORK_ATOM, *(f"global_{name}" for name in FRAMEWORK_GLOBAL_SCALES)),
}
CHANNELS["framework_atoms"] = CHANNELS["framework"]
CHANNELS["void"] = (*CHANNELS["framework"], *(f"global_{name}" for name in VOID_GLOBAL_SCALES))
"""Channel names of each encoding, in channel order."""

POOLED_ENCODINGS = frozenset({"framework", "void"})
"""Encodings whose rows are classes of equivalent atoms (:func:`framework_rows`)."""

GLOBAL_CHANNELS: dict[str, int] = {name: 0 for name in CHANNELS}
GLOBAL_CHANNELS["framework"] = GLOBAL_CHANNELS["framework_atoms"] = len(FRAMEWORK_GLOBAL_SCALES)
GLOBAL_CHANNELS["void"] = len(FRAMEWORK_GLOBAL_SCALES) + len(VOID_GLOBAL_SCALES)
GLOBAL_CHANNELS["charges"] = 1
GLOBAL_CHANNELS["composition"] = len(COMPOSITION_GLOBAL_SCALES)
"""Number of trailing channels of each encoding that hold one number per structure (on the
diagonal of every atom row): the ``global_channels`` of
:class:`~andersonn_lab.deq.classifier.DEQClassifier`."""

LAYOUTS: dict[str, str] = {
    "adjacency": "adjacency",
    "neighbors": "neighbors",
    "elements": "adjacency",
    "electrons": "adjacency",
    "composition": "adjacency",
    "charges": "adjacency",
    "framework": "adjacency",
    "framework_atoms": "adjacency",
    "void": "adjacency",
}
"""Pixel layout of each encoding: ``"adjacency"`` (pixel ``(r, s)`` relates atoms ``r`` and
``s``) or ``"neighbors"`` (row ``r`` lists atom ``r`` and its nearest neighbours)."""


def image_atom_order(
    graph: nx.Graph, size: int | None = None, *, encoding: str = "adjacency"
) -> list[Any]:
    """Return the graph's atoms in image-row order (canonical breadth-first order).

    Parameters
    ----------
    graph:
        An atom-bond network.
    size:
        If given, only the first ``size`` atoms (those that fit in a ``size x size`` image).
    encoding:
        For ``"framework"``, one representative atom per class of equivalent atoms (the
        first of its class in canonical order, see :func:`framework_rows`); for every other
        encoding all atoms.

    Returns
    -------
    list
        Graph nodes; row ``r`` of an image describes ``order[r]``.

    Examples
    --------
    >>> from andersonn_lab.structures import from_smiles
    >>> image_atom_order(from_smiles("CCO"))
    [2, 1, 0]
    >>> image_atom_order(from_smiles("c1ccccc1"), encoding="framework")  # six equivalent C
    [0]
    """
    if encoding not in CHANNELS:
        raise ValueError(f"encoding must be one of {sorted(CHANNELS)}, got {encoding!r}")
    pooled = encoding in POOLED_ENCODINGS
    order = framework_rows(graph)[0] if pooled else canonical_order(graph)
    return order if size is None else order[:size]


def framework_rows(
    graph: nx.Graph, ranks: dict[Any, int] | None = None
) -> tuple[list[Any], dict[Any, int]]:
    """Rows of the ``"framework"`` encoding: one representative atom per equivalence class.

    Classes come from :func:`~andersonn_lab.structures.environment.equivalent_atoms`; each
    is represented by its first atom in the canonical breadth-first order
    (:func:`~andersonn_lab.structures.graph.canonical_order`), and rows follow the order of
    the representatives.

    Returns
    -------
    representatives:
        Graph nodes, one per class, in row order.
    row_of:
        Every node → the row of its class.

    Examples
    --------
    >>> from andersonn_lab.structures import from_smiles
    >>> reps, row_of = framework_rows(from_smiles("OCCO"))  # ethylene glycol: O and C classes
    >>> len(reps), sorted(set(row_of.values()))
    (2, [0, 1])
    """
    from .environment import equivalent_atoms

    classes = dict(zip(graph.nodes, equivalent_atoms(graph), strict=True))
    row_of_class: dict[int, int] = {}
    representatives: list[Any] = []
    for node in canonical_order(graph, ranks):
        if classes[node] not in row_of_class:
            row_of_class[classes[node]] = len(representatives)
            representatives.append(node)
    return representatives, {node: row_of_class[c] for node, c in classes.items()}


def node_neighbor_image(
    graph: nx.Graph,
    *,
    encoding: Encoding = "adjacency",
    size: int = 32,
    k: int | None = None,
    on_overflow: Overflow = "crop",
) -> torch.Tensor:
    """Turn an atom-bond network into a node-neighbour image of shape ``(channels, size, size)``.

    Rows are atoms in canonical order (:func:`image_atom_order`): breadth-first from the
    heaviest atom, ties broken by colour-refinement ranks, so the image does not depend on the
    order in which the input listed its atoms. Rows/columns beyond the atom count are zero.
    Unknown bond orders count as 1 (single); unknown distances give 0 in distance channels.
    A bond "instance" is one periodic image of a bond (molecules: one per bond).

    ``encoding="adjacency"`` (pixel ``[c, r, s]`` relates atoms ``order[r]`` and ``order[s]``):

    0. ``Z / 118`` on the diagonal (``r == s``), 0 elsewhere.
    1. ``sum(bond order) / 3`` over the bond instances between the two atoms (diagonal: bonds
       of the atom to its own periodic images, each neighbour counted); 0 if not bonded.
    2. ``sum(exp(-d / 1.5 A))`` over the same bond instances; 0 if not bonded.

    ``encoding="elements"``: the three ``"adjacency"`` channels, then three channels of element
    properties (:mod:`~andersonn_lab.structures.elements`) in the same layout. On the diagonal
    they hold the atom's own value; on the pixels of bonded pairs (``r != s``), values that
    describe the bond or the neighbour; elsewhere 0:

    3. Pauling electronegativity ``/ 4`` of the atom; bonded pixels: ``|difference| / 4``
       between the two atoms (how ionic the bond is). No Pauling value (noble gases): 0.
    4. Group ``/ 18`` of the atom; bonded pixels: the neighbour's (column atom's) group.
    5. Period ``/ 7`` of the atom; bonded pixels: the neighbour's period.

    ``encoding="electrons"``: the six ``"elements"`` channels, then one flag from electron
    counting, the same for every atom of the structure:

    6. On the diagonal, 1 if a formula unit holds an odd number of valence electrons
       (:func:`~andersonn_lab.structures.elements.valence_electrons`; implicit hydrogens
       count, formal charges are subtracted), else 0; 0 elsewhere. The formula unit of a
       periodic structure is its composition divided by the greatest common divisor of its
       element counts; a molecule (a graph without a cell) counts whole. An odd count leaves
       a band partly filled, so such a solid is a metal in band theory (2H-NbSe2:
       5 + 2 x 6 = 17, metallic; 2H-MoS2: 18, a semiconductor); a molecule with an odd count
       is a radical. All atoms of the graph count, also those cropped from the image.

    ``encoding="composition"`` (32 channels): the seven ``"electrons"`` channels, then the 25
    composition statistics of
    :func:`~andersonn_lab.structures.elements.composition_statistics` (mean, minimum,
    maximum and range of electronegativity, group, period, valence electrons, covalent radius
    and atomic number over the whole structure's atoms, and its number of elements), each
    divided by :data:`COMPOSITION_GLOBAL_SCALES` and written on the diagonal of every atom
    row: whole-structure scalars (the last :data:`GLOBAL_CHANNELS` ``["composition"]``
    channels), the descriptors of the crystals' random-forest baseline.

    ``encoding="charges"`` (molecules with a 3-D conformer and force-field charges, see
    :func:`~andersonn_lab.structures.charges.annotate_charges`): the three ``"adjacency"``
    channels, whose distance channel then holds real bond lengths, and three diagonal
    channels:

    3. The atom's partial charge in e (with those of its implicit hydrogens); 0 elsewhere.
    4. The atom's share of the molecule's point-charge dipole, ``/ 2 D``: the projection of
       ``q (r - centroid)`` on the dipole's direction (hydrogens included), so the shares of
       all atoms add up to the dipole's magnitude; 0 elsewhere.
    5. ``global_dipole``: the magnitude of that dipole ``/ 5 D``, a whole-structure scalar,
       the same on the diagonal of every atom row.
    ``encoding="framework"`` (3-D periodic structures such as MOFs; 27 channels, adjacency
    layout): rows are classes of equivalent atoms (:func:`framework_rows`: same element,
    bonds and neighbour classes, so the symmetry copies of an atom in a P1 cell share one
    row), represented by their first atom in canonical order. Pixel ``[c, r, s]`` relates
    class ``r`` to class ``s``:

    0. ``Z / 118`` on the diagonal.
    1. ``sum(bond order) / 3`` over the bond instances from one atom of class ``r`` to atoms
       of class ``s`` (every atom of a class has the same ones).
    2. ``sum(exp(-d / 1.5 A))`` over the same bond instances.
    3. ``multiplicity``: atoms in the class / atoms in the cell, on the diagonal.
    4. ``nonbonded_distance``: distance to the nearest non-bonded atom / 5 A, class mean.
    5-8. ``shell_*``: number density of atoms within 0-4, 4-6, 6-8, 8-10 A / 0.1 A^-3,
       class mean (:func:`~andersonn_lab.structures.environment.atom_environment`).
    9-26. ``global_*``: whole-structure scalars
       (:func:`~andersonn_lab.structures.environment.framework_descriptors` divided by
       :data:`FRAMEWORK_GLOBAL_SCALES`), the same on the diagonal of every row; they count
       every atom of the cell, also those of classes cropped from the rows. The last
       :data:`GLOBAL_CHANNELS` ``["framework"]`` channels are these.

    No channel looks at empty space (no probe, grid or cavity), so none recomputes a pore
    size.

    ``encoding="void"``: the ``"framework"`` channels plus nine whole-structure channels
    that do look at empty space (:func:`~andersonn_lab.structures.pores.void_descriptors`
    divided by :data:`VOID_GLOBAL_SCALES`): a grid estimate of the largest cavity diameter
    and the fractions of the cell farther than 0-5 Å from every atom surface. They
    recompute the MOF label (the largest cavity diameter), so ``"void"`` is a documented
    teaching contrast, "when the image holds the answer", never a default recipe.

    ``encoding="framework_atoms"``: the same channels with one row per atom in canonical
    order (multiplicity ``1 / atoms``), cropped like ``"adjacency"``: the contrast that
    measures what pooling equivalent atoms does.

    ``encoding="neighbors"`` (pixel ``[c, r, s]``: atom ``order[r]`` for ``s == 0``, else its
    ``s``-th nearest bond instance; instances sorted by distance, then by decreasing bond
    order, then by the neighbour's canonical rank; at most ``k`` columns of neighbours):

    0. ``Z / 118`` of the atom (``s == 0``) or of the neighbour.
    1. ``exp(-d / 1.5 A)``: 1 for ``s == 0`` (d = 0), then per neighbour.
    2. ``bond order / 3`` of the neighbour's bond (0 for ``s == 0``).

    Parameters
    ----------
    graph:
        An atom-bond network from this package.
    encoding:
        ``"adjacency"``, ``"neighbors"``, ``"elements"``, ``"electrons"``, ``"charges"`` or
        ``"framework"`` (:data:`CHANNELS` names each one's channels).
    size:
        Image height and width (atoms per image).
    k:
        Neighbour columns for ``"neighbors"`` (``0 <= k <= size - 1``; default ``size - 1``).
        Further neighbours are dropped (farthest first) without a warning.
    on_overflow:
        More than ``size`` atoms: ``"crop"`` keeps the first ``size`` atoms of the canonical
        order and warns with :class:`ImageOverflowWarning`; ``"error"`` raises
        :class:`StructureError`.

    Returns
    -------
    torch.Tensor
        ``float32`` tensor of shape ``(len(CHANNELS[encoding]), size, size)``: 3 channels,
        6 for ``"elements"`` and ``"charges"``, 7 for ``"electrons"``, 27 for
        ``"framework"``.

    Raises
    ------
    StructureError
        Empty graph, overflow with ``on_overflow="error"``, ``"charges"`` on a graph
        without charges, or ``"framework"`` for a structure that is not 3-D periodic.
    ValueError
        Bad ``encoding``, ``size``, ``k`` or ``on_overflow``.

    Examples
    --------
    >>> from andersonn_lab.structures import from_smiles
    >>> img = node_neighbor_image(from_smiles("c1ccccc1"), size=8)
    >>> tuple(img.shape), float(img[1, 0, 1])
    ((3, 8, 8), 0.5)
    """
    _check_args(encoding, size, k, on_overflow)
    if encoding in ("framework", "framework_atoms", "void"):
        image = _framework_image(graph, size, on_overflow, pooled=encoding != "framework_atoms")
        return _with_void_channels(graph, image) if encoding == "void" else image
    nodes, inst = bond_instances(graph)
    node_ranks = canonical_ranks(graph)
    order = _ordered_rows(graph, node_ranks, size, on_overflow)
    index = {node: p for p, node in enumerate(nodes)}
    rows = [index[node] for node in order]
    z = np.array([node_atomic_number(graph.nodes[node]) for node in nodes], dtype=np.float64)
    img = np.zeros((len(CHANNELS[encoding]), size, size), dtype=np.float32)
    if LAYOUTS[encoding] == "adjacency":
        _fill_adjacency(img, rows, z, inst)
        if encoding in ("elements", "electrons", "composition"):
            _fill_elements(img[3:6], img[1], z[rows])
        if encoding in ("electrons", "composition"):
            diag = np.arange(len(rows))
            img[6, diag, diag] = float(has_odd_electron_count(graph))
        if encoding == "composition":
            _fill_composition(img[7:], graph)
        if encoding == "charges":
            _fill_charges(img[3:6], graph, order)
    else:
        ranks = [node_ranks[node] for node in nodes]
        kk = size - 1 if k is None else k
        for r, p in enumerate(rows):
            neigh = sorted_neighbours(inst[p], ranks)[:kk]
            img[0, r, 0] = z[p] / MAX_Z
            img[1, r, 0] = 1.0
            for c, (q, d, o) in enumerate(neigh, start=1):
                img[0, r, c] = z[q] / MAX_Z
                img[1, r, c] = 0.0 if d is None else math.exp(-d / DISTANCE_SCALE)
                img[2, r, c] = o / MAX_BOND_ORDER
    return torch.from_numpy(img)


def pixel_atoms(
    graph: nx.Graph,
    row: int,
    col: int,
    *,
    encoding: Encoding = "adjacency",
    size: int = 32,
    k: int | None = None,
) -> tuple[Any, Any] | None:
    """Name the atoms a pixel of :func:`node_neighbor_image` encodes.

    Parameters
    ----------
    graph:
        The graph the image was made from.
    row, col:
        Pixel position (any channel).
    encoding, size, k:
        As passed to :func:`node_neighbor_image`.

    Returns
    -------
    tuple or None
        ``(atom, other)`` graph nodes: for the adjacency layout (:data:`LAYOUTS`) the atom pair
        of row and column (equal on the diagonal); for ``"neighbors"`` the row's atom and its
        ``col``-th nearest neighbour (``col == 0``: the atom itself; a periodic self-image gives
        the atom again).
        None for padding pixels.

    Examples
    --------
    >>> from andersonn_lab.structures import from_smiles
    >>> pixel_atoms(from_smiles("CCO"), 0, 1)
    (2, 1)
    """
    _check_args(encoding, size, k, "crop")
    if not (0 <= row < size and 0 <= col < size):
        raise ValueError(f"pixel ({row}, {col}) outside a {size}x{size} image")
    node_ranks = canonical_ranks(graph)
    if encoding in POOLED_ENCODINGS:
        order = framework_rows(graph, node_ranks)[0][:size]
    else:
        order = canonical_order(graph, node_ranks)[:size]
    if row >= len(order):
        return None
    if LAYOUTS[encoding] == "adjacency":
        return None if col >= len(order) else (order[row], order[col])
    if col == 0:
        return (order[row], order[row])
    nodes, inst = bond_instances(graph)
    index = {node: p for p, node in enumerate(nodes)}
    ranks = [node_ranks[node] for node in nodes]
    kk = size - 1 if k is None else k
    neigh = sorted_neighbours(inst[index[order[row]]], ranks)[:kk]
    if col > len(neigh):
        return None
    return (order[row], nodes[neigh[col - 1][0]])


def _check_args(encoding: str, size: int, k: int | None, on_overflow: str) -> None:
    if encoding not in CHANNELS:
        raise ValueError(f"encoding must be one of {sorted(CHANNELS)}, got {encoding!r}")
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    if k is not None and not 0 <= k <= size - 1:
        raise ValueError(f"k must be between 0 and size - 1 = {size - 1}, got {k!r}")
    if on_overflow not in ("crop", "error"):
        raise ValueError(f"on_overflow must be 'crop' or 'error', got {on_overflow!r}")


def _check_overflow(
    graph: nx.Graph, n: int, what: str, size: int, on_overflow: str, kept: str = ""
) -> None:
    """Warn (or with ``on_overflow="error"`` raise) when ``n`` rows of ``what`` exceed ``size``."""
    if n <= size:
        return
    message = (
        f"{describe(graph)}: {n} {what} do not fit in a {size}x{size} image; "
        f"{n - size} {what} dropped (kept the first {size}{kept})"
    )
    if on_overflow == "error":
        raise StructureError(message)
    warn(message, ImageOverflowWarning)


def _ordered_rows(graph: nx.Graph, ranks: dict[Any, int], size: int, on_overflow: str) -> list[Any]:
    if not ranks:
        raise StructureError(f"{describe(graph)}: the graph has no atoms")
    order = canonical_order(graph, ranks)
    n = len(order)
    _check_overflow(graph, n, "atoms", size, on_overflow, " of the canonical order")
    return order[:size]


def _fill_adjacency(
    img: np.ndarray, rows: list[int], z: np.ndarray, inst: list[list[BondInstance]]
) -> None:
    n = len(rows)
    pos = np.full(len(z), -1, dtype=np.int64)
    pos[rows] = np.arange(n)
    diag = np.arange(n)
    img[0, diag, diag] = z[rows] / MAX_Z
    r_idx: list[int] = []
    c_idx: list[int] = []
    orders: list[float] = []
    dists: list[float] = []
    for r, p in enumerate(rows):
        for q, d, o in inst[p]:
            c = pos[q]
            if c >= 0:
                r_idx.append(r)
                c_idx.append(int(c))
                orders.append(o)
                dists.append(math.nan if d is None else d)
    if not r_idx:
        return
    ri = np.asarray(r_idx)
    ci = np.asarray(c_idx)
    dist = np.asarray(dists)
    np.add.at(img[1], (ri, ci), np.asarray(orders) / MAX_BOND_ORDER)
    np.add.at(img[2], (ri, ci), np.where(np.isnan(dist), 0.0, np.exp(-dist / DISTANCE_SCALE)))


def _fill_elements(img: np.ndarray, bond_channel: np.ndarray, z_rows: np.ndarray) -> None:
    """Electronegativity, group and period channels (``img`` is ``(3, size, size)``).

    Bonded pairs are read off the filled adjacency bond-order channel (every bond instance
    adds at least 1/3 there), so the bond instances are not walked a second time.
    """
    n = len(z_rows)
    chi = np.array([electronegativity(int(x)) or np.nan for x in z_rows]) / MAX_ELECTRONEGATIVITY
    grp = np.array([group(int(x)) for x in z_rows]) / MAX_GROUP
    per = np.array([period(int(x)) for x in z_rows]) / MAX_PERIOD
    bonded = bond_channel[:n, :n] > 0
    np.fill_diagonal(bonded, False)
    diag = np.arange(n)
    img[0, :n, :n] = np.where(bonded, np.nan_to_num(np.abs(chi[:, None] - chi[None, :])), 0.0)
    img[1, :n, :n] = np.where(bonded, grp[None, :], 0.0)
    img[2, :n, :n] = np.where(bonded, per[None, :], 0.0)
    img[0, diag, diag] = np.nan_to_num(chi)
    img[1, diag, diag] = grp
    img[2, diag, diag] = per


def _fill_charges(img: np.ndarray, graph: nx.Graph, order: list[Any]) -> None:
    """Partial-charge, dipole-share and dipole diagonals (``img`` is ``(3, size, size)``)."""
    try:
        charge = np.array([float(graph.nodes[v]["partial_charge"]) for v in order])
        share = np.array([float(graph.nodes[v]["dipole_share"]) for v in order])
    except KeyError:
        raise StructureError(
            f"{describe(graph)}: the 'charges' encoding needs partial charges on the atoms; "
            "build the graph from a 3-D molecule and call "
            "andersonn_lab.structures.annotate_charges(graph, mol)"
        ) from None
    diag = np.arange(len(order))
    img[0, diag, diag] = charge
    img[1, diag, diag] = share / DIPOLE_SHARE_SCALE
    img[2, diag, diag] = float(graph.graph.get("dipole_debye", share.sum())) / GLOBAL_DIPOLE_SCALE


def _fill_composition(img: np.ndarray, graph: nx.Graph) -> None:
    """The ``"composition"`` scalars on the diagonal of every row that holds an atom."""
    numbers = []
    for _, data in graph.nodes(data=True):
        numbers.append(node_atomic_number(data))
        numbers += [1] * int(data.get("num_hs") or 0)
    stats = composition_statistics(numbers)
    n = min(graph.number_of_nodes(), img.shape[1])
    diag = np.arange(n)
    for channel, (name, scale) in enumerate(COMPOSITION_GLOBAL_SCALES.items()):
        img[channel, diag, diag] = stats[name] / scale


def _framework_image(
    graph: nx.Graph, size: int, on_overflow: str, pooled: bool = True
) -> torch.Tensor:
    """The ``"framework"`` image: equivalence-class rows, environments, global scalars.

    ``pooled=False`` (``"framework_atoms"``): one row per atom in canonical order instead.
    """
    from .environment import atom_environment, framework_descriptors

    try:
        env = atom_environment(graph)
    except StructureError as error:
        raise StructureError(f"encoding 'framework': {error}") from None
    descriptors = framework_descriptors(graph, env)
    node_ranks = canonical_ranks(graph)
    if pooled:
        reps, row_of = framework_rows(graph, node_ranks)
        what = "classes of equivalent atoms"
    else:
        reps = canonical_order(graph, node_ranks)
        row_of = {node: r for r, node in enumerate(reps)}
        what = "atoms"
    _check_overflow(graph, len(reps), what, size, on_overflow)
    nodes, inst = bond_instances(graph)
    index = {node: p for p, node in enumerate(nodes)}
    rows = [index[node] for node in reps[:size]]
    n = len(rows)
    z = np.array([node_atomic_number(graph.nodes[node]) for node in nodes], dtype=np.float64)
    img = np.zeros((len(CHANNELS["framework"]), size, size), dtype=np.float32)
    diag = np.arange(n)
    img[0, diag, diag] = z[rows] / MAX_Z
    for r, p in enumerate(rows):
        for q, d, o in inst[p]:
            c = row_of[nodes[q]]
            if c < n:
                img[1, r, c] += o / MAX_BOND_ORDER
                img[2, r, c] += 0.0 if d is None else math.exp(-d / DISTANCE_SCALE)
    # Per-atom values, averaged over each class (environment arrays are in sorted node order).
    sorted_nodes = sorted(graph.nodes)
    klass = np.array([row_of[node] for node in sorted_nodes])
    members = np.bincount(klass, minlength=len(reps)).astype(np.float64)
    img[3, diag, diag] = members[:n] / len(sorted_nodes)
    per_atom = [env.nonbonded_distance / NONBONDED_SCALE]
    per_atom += list((env.shell_densities / SHELL_DENSITY_SCALE).T)
    for channel, values in enumerate(per_atom, start=4):
        img[channel, diag, diag] = (np.bincount(klass, weights=values) / members)[:n]
    first = len(_FRAMEWORK_ATOM)
    for offset, (name, scale) in enumerate(FRAMEWORK_GLOBAL_SCALES.items()):
        img[first + offset, diag, diag] = descriptors[name] / scale
    return torch.from_numpy(img)


def _with_void_channels(graph: nx.Graph, image: torch.Tensor) -> torch.Tensor:
    """The ``"framework"`` image plus the ``"void"`` encoding's empty-space scalars."""
    from .crystals import to_atoms
    from .pores import void_descriptors

    void = void_descriptors(to_atoms(graph))
    extra = torch.zeros((len(VOID_GLOBAL_SCALES), *image.shape[1:]), dtype=image.dtype)
    diag = torch.arange(int((image[0].diagonal() > 0).sum()))
    for channel, (name, scale) in enumerate(VOID_GLOBAL_SCALES.items()):
        extra[channel, diag, diag] = void[name] / scale
    return torch.cat([image, extra])


def sorted_neighbours(inst: list[BondInstance], ranks: list[int]) -> list[BondInstance]:
    """Bond instances of one atom in ``"neighbors"`` column order.

    Sorted by distance (unknown last), then by decreasing bond order, then by the neighbour's
    canonical rank.
    """
    return sorted(inst, key=lambda t: (math.inf if t[1] is None else t[1], -t[2], ranks[t[0]]))
