"""A structure and its node-neighbour image side by side, with linked selection.

Clicking an atom in the 3-D view highlights its row and column of the image (``"neighbors"``
encoding: its row and the pixels where it is a neighbour); clicking a pixel highlights the
atom(s) it encodes in the 3-D view and the 2-D depiction. The logic is
:class:`~andersonn_lab.widgets.linked_data.LinkedController`; :func:`link` wires two existing
viewers through their click notifications.

Examples
--------
>>> view = StructureImageView("CCO", size=4)
>>> view.select_pixel(0, 1)
(2, 1)
>>> view.structure.controller.selected
(2, 1)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as w

from .image_data import ImageController, Rect
from .image_viewer import ImageViewer
from .linked_data import LinkedController
from .structure_viewer import StructureViewer

__all__ = ["StructureImageView", "link"]


def link(structure: StructureViewer, image: ImageViewer) -> LinkedController:
    """Link the selections of two viewers of the same structure (clicks in either update both).

    Parameters
    ----------
    structure, image:
        The viewers; the image must show a graph with the structure's atoms.

    Returns
    -------
    LinkedController
        The controller over both viewers' controllers. To change the structure of a linked
        pair use :meth:`StructureImageView.load` (loading into one viewer alone leaves the
        other showing the old structure).

    Examples
    --------
    >>> sv = StructureViewer("CCO")
    >>> iv = ImageViewer(sv.controller.loaded.image_graph, size=4)
    >>> linked = link(sv, iv)
    >>> _ = sv.select_atom(0)
    >>> iv.controller.selected_atom
    0
    """
    linked = LinkedController(structure.controller, image.controller)

    def atoms_selected(selected: tuple[Any, ...]) -> None:
        linked.image.select_atom(selected[0] if len(selected) == 1 else None)
        image.redraw_selection()

    def pixel_selected(atoms: tuple[Any, Any] | None) -> None:
        linked.structure.select_atoms(() if atoms is None else atoms)
        structure.redraw_selection()

    structure.on_select(atoms_selected)
    image.on_pixel(pixel_selected)
    return linked


class StructureImageView(w.HBox):
    """:class:`StructureViewer` and :class:`ImageViewer` of one structure, side by side, linked.

    The two views sit side by side when the output is wide enough and the image wraps below
    the structure when not.

    Parameters
    ----------
    source, task, id, cutoff_scale, seed:
        As for :class:`StructureViewer` (invalid input raises ``StructureError``).
    encoding, size, k:
        Image settings (see :func:`~andersonn_lab.structures.node_neighbor_image`).
    repeat, boundary_atoms:
        Draw a periodic structure as a supercell or its conventional cell in the 3-D view
        (see :class:`StructureViewer`); the image stays that of the one cell, and clicking
        any copy of an atom lights that atom's image row.

    Attributes
    ----------
    structure, image, linked:
        The two viewers and their :class:`LinkedController`.

    Examples
    --------
    >>> view = StructureImageView("c1ccccc1O", encoding="neighbors", size=8)
    >>> len(view.select_atom(6)) > 1
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
        encoding: str = "adjacency",
        size: int = 32,
        k: int | None = None,
        repeat: int | Sequence[int] | str | None = None,
        boundary_atoms: bool | None = None,
    ) -> None:
        self.structure = StructureViewer(
            source,
            task=task,
            id=id,
            cutoff_scale=cutoff_scale,
            seed=seed,
            height=380,
            width=420,
            repeat=repeat,
            boundary_atoms=boundary_atoms,
        )
        graph = self.structure.controller.loaded.image_graph
        image_ctrl = ImageController(graph, encoding=encoding, size=size, k=k)
        self.image = ImageViewer(controller=image_ctrl, height=240)
        self.linked = link(self.structure, self.image)
        # Figures have fixed pixel sizes; side by side where the output is wide enough, else
        # the image wraps below the structure (never overlapping it or running past the edge).
        for child in (self.structure, self.image):
            child.layout.flex = "0 1 auto"
            child.layout.max_width = "100%"
        self.structure.layout.width = "420px"  # its figure's; long status lines wrap inside
        self.structure.layout.margin = "0 16px 0 0"
        super().__init__(
            [self.structure, self.image],
            layout=w.Layout(flex_flow="row wrap", align_items="flex-start"),
        )

    def load(self, source: Any = None, **kwargs: Any) -> bool:
        """Show another structure in both views (as :meth:`StructureViewer.load`: on bad input
        the error goes to the status line and both views keep the current structure).

        Examples
        --------
        >>> view = StructureImageView("CCO", size=8)
        >>> view.load("c1ccccc1"), len(view.image.controller.order)
        (True, 6)
        """
        if not self.structure.load(source, **kwargs):
            return False
        self.image.set_graph(self.structure.controller.loaded.image_graph)
        return True

    def select_atom(self, node: Any | None) -> list[Rect]:
        """Select an atom in both views; return the highlighted image pixel blocks."""
        rects = self.linked.select_atom(node)
        self.structure.redraw_selection()
        self.image.redraw_selection()
        return rects

    def select_pixel(self, row: int, col: int) -> tuple[Any, Any] | None:
        """Select an image pixel and the atoms it encodes; return those atoms."""
        atoms = self.linked.select_pixel(row, col)
        self.structure.redraw_selection()
        self.image.redraw_selection()
        return atoms
