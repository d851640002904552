"""Interactive 3-D view of an atom-bond network (plotly ``Scatter3d``) with a 2-D depiction.

All logic lives in :class:`~andersonn_lab.widgets.structure_data.StructureController`; this
module copies its arrays into a ``go.FigureWidget`` and wires clicks and the status line.

Bad input: the **constructor raises** :class:`~andersonn_lab.structures.StructureError`
naming the input (nothing half-built is shown). Later changes through :meth:`StructureViewer.load`
never raise: the message appears in the red status line and the previous structure stays.

Examples
--------
>>> from andersonn_lab.widgets.structure_viewer import StructureViewer
>>> viewer = StructureViewer("CC(=O)Oc1ccccc1C(=O)O")
>>> len(viewer.trace("atoms").x)
13
>>> viewer.select_atom(3)
(3,)
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go

from andersonn_lab.structures import StructureError

from .structure_data import CONVENTIONAL, SELECTION_COLOR, StructureController, repeat_text

__all__ = ["StructureViewer", "status_html"]

_AXIS = {"visible": False, "showbackground": False}

CAMERA_EYE = {"x": 1.85, "y": 0.95, "z": 0.6}
"""Initial camera position. Not along a cell diagonal: plotly's default eye ``(1.25, 1.25,
1.25)`` looks down ``[111]`` of a cubic cell, and then an atom at the cell centre hides the one
at the corner (the Sr of the SrTiO3 perovskite cell, the Na of the rock-salt primitive cell)."""

REPEAT_CHOICES = ((1, 1, 1), (2, 2, 2), (3, 3, 3))
"""Supercells offered by the viewer's ``cell`` control (and ``"conventional"`` where the
conventional cell is larger than the cell)."""


def status_html(message: str, level: str = "info") -> str:
    """Return the HTML of a status line (``level``: ``"info"``, ``"warning"`` or ``"error"``).

    Examples
    --------
    >>> status_html("bad", "error").startswith("<span style='color:#c62828'>")
    True
    """
    styles = {"info": ("#2e7d32", "✓"), "warning": ("#e65100", "⚠"), "error": ("#c62828", "✗")}
    color, symbol = styles[level]
    return f"<span style='color:{color}'>{symbol} {html.escape(message)}</span>"


def _lines(name: str, xyz: Any, line: dict[str, Any]) -> go.Scatter3d:
    """A 3-D line trace (coordinates ``xyz[0..2]``, segments split by None) without hover."""
    return go.Scatter3d(
        name=name, x=xyz[0], y=xyz[1], z=xyz[2], mode="lines", line=line, hoverinfo="skip"
    )


class StructureViewer(w.VBox):
    """3-D structure viewer: atoms by element, bonds, periodic stubs, unit cell, 2-D depiction.

    Atoms are coloured by element (CPK) and sized by covalent radius; bonds inside the cell
    are grey lines, bonds crossing the cell boundary are dashed half-bond stubs (see
    :mod:`~andersonn_lab.widgets.structure_data`), and periodic structures show the 12 cell
    edges. Hovering an atom shows its index, element and neighbours (``[i j k]`` marks a
    neighbour in another cell). Clicking an atom selects it. Molecules built from SMILES or
    an RDKit ``Mol`` also get an RDKit 2-D depiction with atom indices.

    A periodic structure can be drawn as a small supercell or its conventional cell
    (``repeat``, or the ``cell`` dropdown above the view): the copies' atoms, the network's
    bonds replicated across them, stubs where a bond leaves the drawn cells, their outline
    and, lighter, the original cell's edges. The model's network and image stay those of the
    one cell: hovering a copy shows its original atom index and the copy's cell offset, and
    clicking any copy selects the original atom (all its copies are marked).

    Parameters
    ----------
    source:
        A graph, ``ase.Atoms``, SMILES, RDKit ``Mol`` or dataset ``Entry``
        (see :func:`~andersonn_lab.widgets.structure_data.load_structure`).
    task, id:
        A :class:`~andersonn_lab.datasets.TaskDataset` (or task name) and an entry id,
        instead of ``source``.
    cutoff_scale, seed:
        Bond cutoff multiplier for ``ase.Atoms``; seed of the 3-D embedding of molecules.
    controller:
        An existing :class:`StructureController` to show (then ``source`` etc. are ignored).
    height, width:
        Figure size in pixels (width None: plotly's default, 700).
    repeat:
        Draw a periodic structure as a supercell: an int ``n`` (``n × n × n`` copies of the
        cell) or ``(n1, n2, n3)``, each 1 to 5, at most 2000 atoms drawn; or
        ``"conventional"``: the conventional cell (the cube of rock salt, four primitive
        cells). None: one cell (or the given controller's choice). Molecules ignore it.
    boundary_atoms:
        Also draw the copies of atoms on the faces, edges and corners of the drawn cell(s)
        on the opposite ones (the textbook pictures: Sr at all eight corners of the
        perovskite cube). None: no (or the given controller's choice).

    Raises
    ------
    StructureError
        For invalid input, naming it.
    ValueError
        For a bad ``repeat`` (naming it).

    Attributes
    ----------
    controller, fig, depiction, status:
        The controller, the ``go.FigureWidget``, the 2-D depiction ``HTML`` (hidden for
        crystals) and the status ``HTML``.
    cell_choice, boundary_choice:
        The ``Dropdown`` of the supercell drawn: 1×1×1, 2×2×2, 3×3×3 and, where it is
        larger than the cell, the conventional cell; the ``Checkbox`` of ``boundary_atoms``
        (both hidden for molecules).

    Examples
    --------
    >>> from ase.build import bulk
    >>> viewer = StructureViewer(bulk("NaCl", "rocksalt", a=5.64), cutoff_scale=1.1)
    >>> viewer.trace("cell") is not None, viewer.depiction.value
    (True, '')
    >>> viewer.set_repeat(2), len(viewer.trace("atoms").x)
    ((2, 2, 2), 16)
    """

    def __init__(
        self,
        source: Any = None,
        *,
        task: Any = None,
        id: str | None = None,
        cutoff_scale: float | None = None,
        seed: int = 0,
        controller: StructureController | None = None,
        height: int = 420,
        width: int | None = None,
        repeat: int | Sequence[int] | str | None = None,
        boundary_atoms: bool | None = None,
    ) -> None:
        if controller is None:
            controller = StructureController(
                source,
                task=task,
                id=id,
                cutoff_scale=cutoff_scale,
                seed=seed,
                repeat=1 if repeat is None else repeat,
                boundary_atoms=bool(boundary_atoms),
            )
        else:
            if repeat is not None:
                controller.set_repeat(repeat)
            if boundary_atoms is not None:
                controller.set_boundary_atoms(boundary_atoms)
        self.controller = controller
        self._callbacks: list[Callable[[tuple[Any, ...]], None]] = []
        self.fig = go.FigureWidget(
            layout={
                "height": height,
                "width": width,
                "margin": {"l": 0, "r": 0, "t": 24, "b": 0},
                "showlegend": False,
                "scene": {
                    "xaxis": _AXIS,
                    "yaxis": _AXIS,
                    "zaxis": _AXIS,
                    "aspectmode": "data",
                    "camera": {"eye": CAMERA_EYE},
                },
                "uirevision": "keep",
            }
        )
        self.depiction = w.HTML(layout=w.Layout(min_width="0px"))
        self.status = w.HTML()
        self.cell_choice = w.Dropdown(
            description="cell:",
            tooltip="Draw the periodic cell alone or as a supercell (the model sees one cell)",
            layout=w.Layout(width="160px"),
            style={"description_width": "32px"},
        )
        self.boundary_choice = w.Checkbox(
            description="atoms on the cell boundary",
            indent=False,
            tooltip="Repeat atoms on faces, edges and corners on the opposite ones",
            layout=w.Layout(width="auto", margin="0 0 0 12px"),
        )
        self.cell_controls = w.HBox(
            [self.cell_choice, self.boundary_choice],
            layout=w.Layout(align_items="center"),
        )
        self._syncing = False
        self._sync_cell_choice()
        self.cell_choice.observe(self._on_cell_choice, names="value")
        self.boundary_choice.observe(self._on_boundary_choice, names="value")
        # the 2-D depiction goes below the 3-D view when the output is too narrow for both
        wrap = w.Layout(flex_flow="row wrap", align_items="flex-start")
        super().__init__(
            [self.status, self.cell_controls, w.HBox([self.fig, self.depiction], layout=wrap)]
        )
        self._draw()

    @classmethod
    def from_dataset(cls, task: Any, id: str, **kwargs: Any) -> StructureViewer:
        """Open the entry ``id`` of a task (a ``TaskDataset`` or a task name).

        Examples
        --------
        >>> viewer = StructureViewer.from_dataset("crystals", "Si-diamond")  # doctest: +SKIP
        """
        return cls(task=task, id=id, **kwargs)

    # ------------------------------------------------------------------ drawing
    def trace(self, name: str) -> Any:
        """Return the figure trace named ``name`` (``"bonds"``, ``"stubs"``, ``"cell"``,
        ``"unit_cell"``, ``"atoms"``, ``"selection"``), or None if the structure has none."""
        for trace in self.fig.data:
            if trace.name == name:
                return trace
        return None

    def _draw(self) -> None:
        ctrl = self.controller
        scene = ctrl.scene
        traces = [_lines("bonds", scene.bonds, {"color": "#777777", "width": 5})]
        if scene.cell is not None:
            traces.append(
                _lines("stubs", scene.stubs, {"color": "#999999", "width": 4, "dash": "dash"})
            )
            traces.append(_lines("cell", scene.cell, {"color": "#1f3b73", "width": 2}))
        if scene.unit_cell is not None:
            unit_cell = {"color": "#8fa3cc", "width": 1.5, "dash": "dot"}
            traces.append(_lines("unit_cell", scene.unit_cell, unit_cell))
        pos = scene.positions
        traces.append(
            go.Scatter3d(
                name="atoms",
                x=pos[:, 0],
                y=pos[:, 1],
                z=pos[:, 2],
                mode="markers",
                marker={"size": scene.sizes, "opacity": 1.0, "line": {"width": 0}},
                hovertext=scene.hover,
                hoverinfo="text",
            )
        )
        traces.append(
            go.Scatter3d(
                name="selection",
                x=[],
                y=[],
                z=[],
                mode="markers",
                marker={"color": SELECTION_COLOR, "opacity": 0.45},  # sizes: _draw_selection
                hoverinfo="skip",
            )
        )
        with self.fig.batch_update():
            if [trace.name for trace in self.fig.data] == [trace.name for trace in traces]:
                # the same kind of structure: new values into the traces drawn already
                for drawn, trace in zip(self.fig.data, traces, strict=True):
                    props = trace.to_plotly_json()
                    props.pop("type", None)
                    drawn.update(props)
            else:
                self.fig.data = []
                self.fig.add_traces(traces)
            self._draw_colors()
            self._draw_selection()
        self.trace("atoms").on_click(self.handle_click)
        self.status.value = status_html(ctrl.describe())

    def _draw_colors(self) -> None:
        atoms = self.trace("atoms")
        weights = self.controller.weights
        if weights is None:
            atoms.marker.update(color=self.controller.scene.colors, showscale=False)
        else:
            atoms.marker.update(
                color=weights,
                colorscale="Viridis",
                cmin=min(weights),
                cmax=max(weights) if max(weights) > min(weights) else min(weights) + 1.0,
                showscale=True,
                colorbar={"title": {"text": "weight"}, "len": 0.6},
            )

    def _draw_selection(self) -> None:
        x, y, z = self.controller.selection_points()
        # a halo a little larger than each atom: one as large as the largest atom hid the
        # neighbours of small atoms (and, in a supercell, whole copies)
        sizes = self.controller.selection_sizes()
        self.trace("selection").update(x=x, y=y, z=z, marker={"size": sizes})
        svg = self.controller.depiction_svg()
        self.depiction.value = svg or ""
        self.depiction.layout.display = None if svg else "none"

    # ------------------------------------------------------------------ supercell
    def _sync_cell_choice(self) -> None:
        """Show the supercell drawn in the dropdown (hidden for molecules)."""
        ctrl = self.controller
        current = ctrl.scene.repeat if ctrl.periodic else ctrl.repeat
        choices: list[Any] = list(REPEAT_CHOICES)
        if ctrl.conventional_cells > 1:
            choices.append(CONVENTIONAL)
        if current not in choices:
            choices.append(current)
        self._syncing = True
        try:
            self.cell_choice.options = [(repeat_text(c), c) for c in choices]
            self.cell_choice.value = current
            self.boundary_choice.value = ctrl.boundary_atoms
        finally:
            self._syncing = False
        self.cell_controls.layout.display = None if ctrl.periodic else "none"

    def _on_cell_choice(self, change: Mapping[str, Any]) -> None:
        self._apply_cell_option(self.set_repeat, change["new"], self.controller.scene.repeat)

    def _on_boundary_choice(self, change: Mapping[str, Any]) -> None:
        self._apply_cell_option(
            self.set_boundary_atoms, change["new"], self.controller.boundary_atoms
        )

    def _apply_cell_option(self, setter: Callable[[Any], Any], new: Any, current: Any) -> None:
        """Apply a cell menu's new value; on a bad one, restore the menus and say why."""
        if self._syncing or new == current:
            return
        try:
            setter(new)
        except ValueError as err:
            self._sync_cell_choice()
            self.status.value = status_html(str(err), "error")

    def set_boundary_atoms(self, boundary_atoms: bool) -> int:
        """Repeat (or not) the atoms on the boundary of the drawn cell(s) on the opposite
        faces, edges and corners; keeps the selection and highlight. Returns the atoms drawn.

        Raises
        ------
        ValueError
            Where that would draw too many atoms (the view is kept).
        """
        drawn = self.controller.set_boundary_atoms(boundary_atoms)
        self._sync_cell_choice()
        self._draw()
        return drawn

    def set_repeat(self, repeat: int | Sequence[int] | str) -> tuple[int, int, int] | str:
        """Draw a periodic structure as an ``n1 × n2 × n3`` supercell (an int: ``n × n × n``)
        or as its conventional cell (``"conventional"``).

        The selection and the highlight are kept. Molecules ignore it (one copy is drawn).

        Returns
        -------
        tuple
            The copies drawn along each cell vector.

        Raises
        ------
        ValueError
            Naming ``repeat``, for a bad value or a supercell of too many atoms (the view is
            kept).
        """
        drawn = self.controller.set_repeat(repeat)
        self._sync_cell_choice()
        self._draw()
        return drawn

    # ------------------------------------------------------------------ public API
    def load(self, source: Any = None, **kwargs: Any) -> bool:
        """Show another structure; on bad input show the error and keep the current one.

        Returns
        -------
        bool
            Whether the new structure was loaded.
        """
        try:
            self.controller.load(source, **kwargs)
        except (StructureError, ValueError, TypeError) as err:
            self.status.value = status_html(str(err), "error")
            return False
        self._sync_cell_choice()
        self._draw()
        self._notify()
        return True

    def select_atom(self, node: Any | None) -> tuple[Any, ...]:
        """Select one atom (graph node) or clear with None; redraws and notifies listeners."""
        return self.select_atoms(() if node is None else (node,))

    def select_atoms(self, nodes: Sequence[Any], *, notify: bool = True) -> tuple[Any, ...]:
        """Select several atoms (e.g. the two atoms of an image pixel)."""
        selected = self.controller.select_atoms(nodes)
        self.redraw_selection()
        if notify:
            self._notify()
        return selected

    def highlight(
        self, atom_weights: Mapping[Any, float] | Sequence[float] | np.ndarray | None
    ) -> list[float] | None:
        """Colour atoms by per-atom values (attribution maps); None restores element colours."""
        values = self.controller.highlight(atom_weights)
        with self.fig.batch_update():
            self._draw_colors()
        return values

    def on_select(self, callback: Callable[[tuple[Any, ...]], None]) -> None:
        """Call ``callback(selected_atoms)`` whenever the selection changes.

        A callback that raises is reported in the status line, never raised.
        """
        self._callbacks.append(callback)

    def _notify(self) -> None:
        for callback in list(self._callbacks):
            try:
                callback(self.controller.selected)
            except Exception as err:  # e.g. a linked viewer failing to draw
                message = f"drawing failed on select: {type(err).__name__}: {err}"
                self.status.value = status_html(message, "warning")

    def redraw_selection(self) -> None:
        """Redraw the selection halo and the depiction after the controller's selection changed."""
        with self.fig.batch_update():
            self._draw_selection()

    def handle_click(self, trace: Any, points: Any, selector: Any = None) -> None:
        """Plotly ``on_click`` handler of the atom markers: select the clicked atom (for a copy
        in a supercell, the original atom)."""
        if not points.point_inds:
            return
        self.select_atom(self.controller.node_at(points.point_inds[0]))
