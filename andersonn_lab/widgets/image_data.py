"""Logic of the image viewer: the node-neighbour image of a graph, pixel names and selections.

No ipywidgets or plotly here. :class:`ImageController` computes the image with
:func:`~andersonn_lab.structures.node_neighbor_image` and, once, the atoms behind every pixel
(the same answer as :func:`~andersonn_lab.structures.pixel_atoms`, for all pixels at once)
and their hover texts. Selections are returned as rectangles in pixel coordinates.

Examples
--------
>>> from andersonn_lab.structures import from_smiles
>>> ctrl = ImageController(from_smiles("CCO"), size=4)
>>> ctrl.pixel_atoms(0, 1)
(2, 1)
>>> ctrl.select_atom(2)
[Rect(row0=0, row1=0, col0=0, col1=3), Rect(row0=0, row1=3, col0=0, col1=0)]
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import networkx as nx
import numpy as np

from andersonn_lab.structures import (
    CHANNELS,
    ImageOverflowWarning,
    image_atom_order,
    node_neighbor_image,
)
from andersonn_lab.structures.graph import bond_instances, canonical_ranks
from andersonn_lab.structures.images import (
    LAYOUTS,
    POOLED_ENCODINGS,
    framework_rows,
    sorted_neighbours,
)

__all__ = ["ImageController", "Rect", "pixel_table"]

ENCODINGS: tuple[str, ...] = tuple(CHANNELS)
"""Encodings the viewer offers."""


class Rect(NamedTuple):
    """Inclusive block of pixels ``rows row0..row1`` x ``cols col0..col1``."""

    row0: int
    row1: int
    col0: int
    col1: int


def pixel_table(
    graph: nx.Graph, *, encoding: str = "adjacency", size: int = 32, k: int | None = None
) -> list[list[tuple[Any, Any] | None]]:
    """Return ``table[row][col]``, the atoms each pixel encodes (as :func:`pixel_atoms`).

    Parameters
    ----------
    graph, encoding, size, k:
        As passed to :func:`~andersonn_lab.structures.node_neighbor_image`.

    Returns
    -------
    list of lists
        ``(atom, other)`` graph nodes, or None for padding.

    Examples
    --------
    >>> from andersonn_lab.structures import from_smiles
    >>> pixel_table(from_smiles("CO"), encoding="neighbors", size=2)
    [[(1, 1), (1, 0)], [(0, 0), (0, 1)]]
    """
    order = image_atom_order(graph, size, encoding=encoding)
    n = len(order)
    table: list[list[tuple[Any, Any] | None]] = [[None] * size for _ in range(size)]
    if LAYOUTS[encoding] == "adjacency":
        for r, a in enumerate(order):
            table[r][:n] = [(a, b) for b in order]
        return table
    nodes, inst = bond_instances(graph)
    index = {node: p for p, node in enumerate(nodes)}
    node_ranks = canonical_ranks(graph)
    ranks = [node_ranks[node] for node in nodes]
    kk = size - 1 if k is None else k
    for r, a in enumerate(order):
        table[r][0] = (a, a)
        neigh = sorted_neighbours(inst[index[a]], ranks)[:kk]
        for c, (q, _d, _o) in enumerate(neigh, start=1):
            table[r][c] = (a, nodes[q])
    return table


def _name(graph: nx.Graph, node: Any) -> str:
    return f"{graph.nodes[node]['element']}{node}"


class ImageController:
    """State of an image viewer: graph, image, pixel names, hover texts and selection.

    Parameters
    ----------
    graph:
        The atom-bond network.
    encoding, size, k:
        As in :func:`~andersonn_lab.structures.node_neighbor_image`.

    Attributes
    ----------
    image:
        ``float32`` numpy array ``(3, size, size)``, exactly the tensor's values.
    order:
        Graph nodes of the image rows (:func:`image_atom_order`).
    table:
        :func:`pixel_table` of the image.
    hover:
        ``size x size`` hover texts naming the pixel's atoms.
    note:
        The overflow warning (atoms cropped) or "".
    selected_atom, selected_pixel:
        The current selection (at most one of them is set).

    Examples
    --------
    >>> from andersonn_lab.structures import from_smiles
    >>> ctrl = ImageController(from_smiles("CCO"), encoding="neighbors", size=4)
    >>> ctrl.hover[0][1]
    'row 0: O2 · neighbour 1: C1'
    """

    def __init__(
        self, graph: nx.Graph, *, encoding: str = "adjacency", size: int = 32, k: int | None = None
    ) -> None:
        self.graph = graph
        self.configure(encoding=encoding, size=size, k=k)

    def configure(
        self, *, encoding: str | None = None, size: int | None = None, k: int | None = None
    ) -> None:
        """Recompute the image for a new encoding and/or size (``k`` is always replaced).

        Raises
        ------
        ValueError
            For a bad encoding, size or k (the previous image is kept).
        """
        encoding = self.__dict__.get("encoding", "adjacency") if encoding is None else encoding
        size = self.__dict__.get("size", 32) if size is None else size
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ImageOverflowWarning)
            image = node_neighbor_image(self.graph, encoding=encoding, size=size, k=k)
        notes = [str(m.message) for m in caught if issubclass(m.category, ImageOverflowWarning)]
        self.encoding, self.size, self.k = encoding, size, k
        self.image = image.numpy()
        self.order = image_atom_order(self.graph, size, encoding=encoding)
        # "framework" rows stand for classes of equivalent atoms: every member maps to its row.
        pooled = encoding in POOLED_ENCODINGS
        self._class_row = framework_rows(self.graph)[1] if pooled else None
        self.table = pixel_table(self.graph, encoding=encoding, size=size, k=k)
        self.hover = self._hover_texts()
        self.note = notes[0] if notes else ""
        self.selected_atom: Any | None = None
        self.selected_pixel: tuple[int, int] | None = None

    @property
    def channels(self) -> tuple[str, ...]:
        """Channel names of the current encoding."""
        return CHANNELS[self.encoding]

    def _hover_texts(self) -> list[list[str]]:
        g = self.graph
        texts = []
        for r, row in enumerate(self.table):
            line = []
            for c, pair in enumerate(row):
                if pair is None:
                    line.append(f"row {r}, col {c}: padding")
                elif LAYOUTS[self.encoding] == "adjacency":
                    line.append(f"row {r}: {_name(g, pair[0])} · col {c}: {_name(g, pair[1])}")
                elif c == 0:
                    line.append(f"row {r}: {_name(g, pair[0])} · itself")
                else:
                    line.append(
                        f"row {r}: {_name(g, pair[0])} · neighbour {c}: {_name(g, pair[1])}"
                    )
            texts.append(line)
        return texts

    def pixel_atoms(self, row: int, col: int) -> tuple[Any, Any] | None:
        """Return the atoms pixel ``(row, col)`` encodes, or None for padding."""
        if not (0 <= row < self.size and 0 <= col < self.size):
            raise ValueError(f"pixel ({row}, {col}) outside a {self.size}x{self.size} image")
        return self.table[row][col]

    def row_of(self, node: Any) -> int | None:
        """Image row of an atom (``"framework"``: of its class), or None if it was cropped."""
        if self._class_row is not None:
            row = self._class_row.get(node)
            return row if row is not None and row < len(self.order) else None
        try:
            return self.order.index(node)
        except ValueError:
            return None

    def select_atom(self, node: Any | None) -> list[Rect]:
        """Select an atom; return the pixel blocks to highlight.

        Adjacency layout (``"adjacency"``, ``"elements"``, ``"electrons"``): the atom's row
        and column.
        ``"neighbors"``: the atom's row and every
        pixel where it appears as a neighbour. Empty for None or a cropped atom.
        """
        self.selected_atom, self.selected_pixel = node, None
        return self.highlights()

    def select_pixel(self, row: int, col: int) -> tuple[Any, Any] | None:
        """Select a pixel; return the atoms it encodes (None for padding)."""
        atoms = self.pixel_atoms(row, col)
        self.selected_atom, self.selected_pixel = None, (int(row), int(col))
        return atoms

    def clear(self) -> None:
        """Clear the selection."""
        self.selected_atom = self.selected_pixel = None

    def highlights(self) -> list[Rect]:
        """Pixel blocks of the current selection."""
        last = self.size - 1
        if self.selected_pixel is not None:
            r, c = self.selected_pixel
            return [Rect(r, r, c, c)]
        node = self.selected_atom
        if node is None:
            return []
        rects = []
        row = self.row_of(node)
        if row is not None:
            rects.append(Rect(row, row, 0, last))
        if LAYOUTS[self.encoding] == "adjacency":
            if row is not None:
                rects.append(Rect(0, last, row, row))
            return rects
        for r, line in enumerate(self.table):
            for c in range(1, self.size):
                pair = line[c]
                if pair is not None and pair[1] == node:
                    rects.append(Rect(r, r, c, c))
        return rects

    def channel(self, index: int) -> np.ndarray:
        """Return channel ``index`` of the image (``size x size`` float32)."""
        return self.image[index]
