"""Linked selection between a structure and its node-neighbour image (no widgets here).

Selecting an atom selects it in the structure and highlights its image row and column;
selecting a pixel selects that pixel and the atom(s) it encodes in the structure.

Examples
--------
>>> from andersonn_lab.widgets.image_data import ImageController
>>> from andersonn_lab.widgets.structure_data import StructureController
>>> structure = StructureController("CCO")
>>> linked = LinkedController(structure, ImageController(structure.loaded.image_graph, size=4))
>>> linked.select_pixel(0, 1)
(2, 1)
>>> structure.selected
(2, 1)
"""

from __future__ import annotations

from typing import Any

from .image_data import ImageController, Rect
from .structure_data import StructureController

__all__ = ["LinkedController"]


class LinkedController:
    """Keep the selections of a :class:`StructureController` and an :class:`ImageController`
    in step.

    Parameters
    ----------
    structure, image:
        The two controllers; the image must be made from a graph with the structure's nodes
        (``structure.loaded.image_graph`` or ``structure.graph``).

    Raises
    ------
    ValueError
        If the image's atoms are not atoms of the structure.

    Examples
    --------
    >>> from andersonn_lab.widgets.image_data import ImageController
    >>> from andersonn_lab.widgets.structure_data import StructureController
    >>> s = StructureController("CCO")
    >>> LinkedController(s, ImageController(s.graph, size=4)).select_atom(1)
    [Rect(row0=1, row1=1, col0=0, col1=3), Rect(row0=0, row1=3, col0=1, col1=1)]
    """

    def __init__(self, structure: StructureController, image: ImageController) -> None:
        missing = set(image.graph.nodes) - set(structure.graph.nodes)
        if missing:
            raise ValueError(f"image atoms {sorted(missing)[:10]} are not in the structure")
        self.structure = structure
        self.image = image

    def select_atom(self, node: Any | None) -> list[Rect]:
        """Select an atom in both; return the image pixel blocks highlighted."""
        self.structure.select_atom(node)
        return self.image.select_atom(node)

    def select_pixel(self, row: int, col: int) -> tuple[Any, Any] | None:
        """Select a pixel and the atoms it encodes (none for padding); return those atoms."""
        atoms = self.image.select_pixel(row, col)
        self.structure.select_atoms(() if atoms is None else atoms)
        return atoms
