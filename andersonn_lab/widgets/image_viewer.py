"""Node-neighbour image of a structure, channel by channel, as plotly heatmaps.

All logic lives in :class:`~andersonn_lab.widgets.image_data.ImageController`; this module
draws one heatmap per channel (three per row; ``"elements"`` has six, ``"electrons"`` seven), an
encoding and a size selector, and a status
line (which reports cropping). Hovering a pixel names the atoms it encodes; clicking a pixel
selects it. Selections are drawn as rectangles (layout shapes).

Examples
--------
>>> from andersonn_lab.structures import from_smiles
>>> viewer = ImageViewer(from_smiles("CCO"), size=8)
>>> viewer.fig.data[0].text[0][1]
'row 0: O2 · col 1: C1'
>>> viewer.select_pixel(0, 1)
(2, 1)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as w
import networkx as nx
import plotly.graph_objects as go
from plotly.colors import sequential

from .image_data import ENCODINGS, ImageController, Rect
from .structure_data import load_structure
from .structure_viewer import status_html

__all__ = ["SIZES", "ImageViewer"]

SIZES: tuple[int, ...] = (8, 16, 32, 64, 128, 256)
"""Image sizes offered by the size selector (any other size given is added)."""

HIGHLIGHT = {"color": "#ff1744", "width": 2}
PANELS_PER_ROW = 3
_GAP = 0.04  # horizontal gap between panels (fraction of the figure width)
_ROW_GAP = 0.12  # vertical gap between panel rows (fraction of the figure height)
_MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}
_FRAME = {"showline": True, "mirror": True, "linecolor": "#bbbbbb", "showgrid": False}
"""A thin frame around each panel, so that an empty (white) channel still shows its extent."""

_VIRIDIS: list[str] = list(sequential.Viridis)
COLORSCALE: list[list[Any]] = [[0.0, "#ffffff"], [1e-9, _VIRIDIS[0]]] + [
    [i / (len(_VIRIDIS) - 1), color] for i, color in enumerate(_VIRIDIS) if i > 0
]
"""Viridis, but exactly 0 is white: empty pixels (padding, unbonded pairs) and all-zero
channels are drawn empty, not in a colour (each channel is scaled from 0 to its maximum)."""


def figure_width(n: int, height: int) -> int:
    """Width in pixels that makes the ``n`` square panels of a ``height``-pixel figure fit.

    Panels keep their aspect (``scaleanchor``), so a width set by plotly's default (700)
    either clips them or leaves them small; this one matches the panel rows.

    Examples
    --------
    >>> figure_width(3, 240), figure_width(7, 720)
    (640, 573)
    """
    rows = -(-n // PANELS_PER_ROW)
    cols = min(n, PANELS_PER_ROW)
    plot_height = height - _MARGIN["t"] - _MARGIN["b"]
    side = plot_height * (1 - _ROW_GAP * (rows - 1)) / rows
    plot_width = cols * side / (1 - _GAP * (cols - 1))
    return int(round(plot_width)) + _MARGIN["l"] + _MARGIN["r"]


def _suffix(c: int) -> str:
    return "" if c == 0 else str(c + 1)


def _panel_domains(c: int, n: int) -> tuple[list[float], list[float]]:
    """``(x domain, y domain)`` of panel ``c`` of ``n``, rows of :data:`PANELS_PER_ROW`."""
    rows = -(-n // PANELS_PER_ROW)
    row, col = divmod(c, PANELS_PER_ROW)
    width = (1 - _GAP * (PANELS_PER_ROW - 1)) / PANELS_PER_ROW
    height = (1 - _ROW_GAP * (rows - 1)) / rows
    x0 = col * (width + _GAP)
    y1 = 1 - row * (height + _ROW_GAP)
    return [round(x0, 6), round(x0 + width, 6)], [round(max(y1 - height, 0.0), 6), round(y1, 6)]


class ImageViewer(w.VBox):
    """Heatmaps of the channels of a node-neighbour image, with pixel hover names.

    Parameters
    ----------
    source:
        An atom-bond network, or anything
        :func:`~andersonn_lab.widgets.structure_data.load_structure` accepts (SMILES,
        ``ase.Atoms``, entry, ``task=``/``id=``, ...); molecules from SMILES are imaged
        without 3-D coordinates, as the ``drugs`` task does. Invalid input raises
        :class:`~andersonn_lab.structures.StructureError` naming it.
    encoding, size, k:
        As in :func:`~andersonn_lab.structures.node_neighbor_image`; the encoding and size
        can be changed in the widget.
    controller:
        An existing :class:`ImageController` (then ``source`` etc. are ignored).
    height:
        Height in pixels of one row of three panels; the figure's width follows from it
        (:func:`figure_width`: about 700 pixels at the default 260).
    **load_kwargs:
        Passed to :func:`load_structure` when ``source`` is not a graph (``cutoff_scale``,
        ``task``, ``id``, ...).

    Attributes
    ----------
    controller, fig, encoding, size, status:
        Controller, ``go.FigureWidget`` (trace ``c`` is channel ``c``, drawn on axes
        ``x{c+1}``/``y{c+1}``), the two selectors and the status ``HTML``.

    Examples
    --------
    >>> viewer = ImageViewer("c1ccccc1", encoding="neighbors", size=8)
    >>> viewer.encoding.value = "adjacency"  # recomputes and redraws
    >>> viewer.fig.layout.annotations[1].text
    'bond_order'
    """

    def __init__(
        self,
        source: Any = None,
        *,
        encoding: str = "adjacency",
        size: int = 32,
        k: int | None = None,
        controller: ImageController | None = None,
        height: int = 260,
        **load_kwargs: Any,
    ) -> None:
        if controller is None:
            graph = source if isinstance(source, nx.Graph) else None
            if graph is None:
                graph = load_structure(source, **load_kwargs).image_graph
            controller = ImageController(graph, encoding=encoding, size=size, k=k)
        self.controller = controller
        self._callbacks: list[Callable[[tuple[Any, Any] | None], None]] = []
        sizes = sorted({*SIZES, controller.size})
        self.encoding = w.Dropdown(
            options=list(ENCODINGS), value=controller.encoding, description="encoding"
        )
        self.size = w.Dropdown(options=sizes, value=controller.size, description="size")
        self.status = w.HTML()
        self._row_height = height
        self.fig = go.FigureWidget()
        self.fig.update_layout(margin=_MARGIN)
        self._build_traces()
        self.encoding.observe(self._on_settings, names="value")
        self.size.observe(self._on_settings, names="value")
        super().__init__([w.HBox([self.encoding, self.size]), self.status, self.fig])

    # ------------------------------------------------------------------ drawing
    def _build_traces(self) -> None:
        ctrl = self.controller
        axis = list(range(ctrl.size))
        n = len(ctrl.channels)
        rows = -(-n // PANELS_PER_ROW)
        with self.fig.batch_update():
            self.fig.data = []
            self.fig.layout.height = self._row_height * rows
            self.fig.layout.width = figure_width(n, self._row_height * rows)
            for c in range(n, len(self._axes_used())):  # panels of a previous encoding
                self.fig.layout["xaxis" + _suffix(c)].visible = False
                self.fig.layout["yaxis" + _suffix(c)].visible = False
            for c, name in enumerate(ctrl.channels):
                values = ctrl.channel(c)
                heat = go.Heatmap(
                    z=values,
                    zmin=0.0,
                    zmax=_top(values),
                    x=axis,
                    y=axis,
                    text=ctrl.hover,
                    name=name,
                    hovertemplate="%{text}<br>value %{z:.4g}<extra>" + name + "</extra>",
                    colorscale=COLORSCALE,
                    showscale=False,
                    xgap=0,
                    ygap=0,
                    xaxis="x" + _suffix(c),
                    yaxis="y" + _suffix(c),
                )
                self.fig.add_trace(heat)
                x_domain, y_domain = _panel_domains(c, n)
                self.fig.layout["yaxis" + _suffix(c)] = {
                    "domain": y_domain,
                    "anchor": "x" + _suffix(c),
                    "autorange": "reversed",
                    "scaleanchor": "x" + _suffix(c),
                    "constrain": "domain",
                    "visible": True,
                    **_FRAME,
                }
                self.fig.layout["xaxis" + _suffix(c)] = {
                    "domain": x_domain,
                    "anchor": "y" + _suffix(c),
                    "constrain": "domain",
                    "side": "top",
                    "visible": True,
                    **_FRAME,
                }
            self.fig.layout.annotations = self._titles()
            self._draw_shapes()
        for trace in self.fig.data:
            trace.on_click(self.handle_click)
        self._draw_status()

    def _update_traces(self) -> None:
        """Put another image into the heatmaps drawn already (same channels and size): one
        update of their values, not new traces and axes."""
        ctrl = self.controller
        with self.fig.batch_update():
            for c, heat in enumerate(self.fig.data):
                values = ctrl.channel(c)
                heat.update(z=values, zmax=_top(values), text=ctrl.hover)
            self.fig.layout.annotations = self._titles()
            self._draw_shapes()
        self._draw_status()

    def _titles(self) -> list[dict[str, Any]]:
        ctrl = self.controller
        return [
            {
                "text": name if ctrl.channel(c).any() else f"{name} (empty)",
                "xref": "x" + _suffix(c) + " domain",
                "yref": "y" + _suffix(c) + " domain",
                "x": 0.5,
                "y": 1.0,
                "yanchor": "bottom",
                "yshift": 22,
                "showarrow": False,
            }
            for c, name in enumerate(ctrl.channels)
        ]

    def _draw_status(self) -> None:
        ctrl = self.controller
        message = f"{ctrl.encoding} image {ctrl.size}x{ctrl.size} of {len(ctrl.order)} atoms"
        self.status.value = status_html(f"{message}; {ctrl.note}" if ctrl.note else message)

    def _draw_shapes(self) -> None:
        shapes = []
        for c in range(len(self.controller.channels)):
            suffix = _suffix(c)
            shapes += [_rect_shape(rect, "x" + suffix, "y" + suffix) for rect in self.shapes()]
        self.fig.layout.shapes = shapes

    def _axes_used(self) -> list[str]:
        """Names of the x axes the figure's layout holds (``xaxis``, ``xaxis2``, ...)."""
        return [name for name in self.fig.layout if name.startswith("xaxis")]

    def shapes(self) -> list[Rect]:
        """Pixel blocks currently highlighted (the same in every channel)."""
        return self.controller.highlights()

    def _on_settings(self, change: dict) -> None:
        try:
            self.controller.configure(encoding=self.encoding.value, size=int(self.size.value))
        except ValueError as err:
            self.status.value = status_html(str(err), "error")
            return
        self._build_traces()

    # ------------------------------------------------------------------ public API
    def set_graph(self, graph: nx.Graph) -> None:
        """Show the image of another graph with the current encoding and size."""
        ctrl = self.controller
        old, ctrl.graph = ctrl.graph, graph
        try:
            ctrl.configure(encoding=ctrl.encoding, size=ctrl.size, k=ctrl.k)
        except Exception:
            ctrl.graph = old
            raise
        drawn = [trace.name for trace in self.fig.data]
        if drawn == list(ctrl.channels) and len(self.fig.data[0].x) == ctrl.size:
            self._update_traces()
        else:
            self._build_traces()

    def select_atom(self, node: Any | None) -> list[Rect]:
        """Highlight an atom's row and column (``"neighbors"``: row and neighbour pixels)."""
        rects = self.controller.select_atom(node)
        self.redraw_selection()
        return rects

    def select_pixel(self, row: int, col: int, *, notify: bool = True) -> tuple[Any, Any] | None:
        """Select pixel ``(row, col)``; returns its atoms and notifies listeners."""
        atoms = self.controller.select_pixel(row, col)
        self.redraw_selection()
        if notify:
            for callback in list(self._callbacks):
                try:
                    callback(atoms)
                except Exception as err:  # e.g. a linked viewer failing to draw
                    message = f"drawing failed on select: {type(err).__name__}: {err}"
                    self.status.value = status_html(message, "warning")
        return atoms

    def on_pixel(self, callback: Callable[[tuple[Any, Any] | None], None]) -> None:
        """Call ``callback(atoms)`` (a pair of graph nodes, or None) when a pixel is selected.

        A callback that raises is reported in the status line, never raised.
        """
        self._callbacks.append(callback)

    def redraw_selection(self) -> None:
        """Redraw the highlight rectangles after the controller's selection changed."""
        with self.fig.batch_update():
            self._draw_shapes()

    def handle_click(self, trace: Any, points: Any, selector: Any = None) -> None:
        """Plotly ``on_click`` handler of the heatmaps: select the clicked pixel."""
        if not points.xs:
            return
        self.select_pixel(int(points.ys[0]), int(points.xs[0]))


def _top(values: Any) -> float:
    """Top of a channel's colour range: its maximum, or 1 for an all-zero channel."""
    top = float(values.max()) if values.size else 0.0
    return top if top > 0 else 1.0


def _rect_shape(rect: Rect, xref: str, yref: str) -> dict:
    return {
        "type": "rect",
        "xref": xref,
        "yref": yref,
        "x0": rect.col0 - 0.5,
        "x1": rect.col1 + 0.5,
        "y0": rect.row0 - 0.5,
        "y1": rect.row1 + 0.5,
        "line": HIGHLIGHT,
        "fillcolor": "rgba(0,0,0,0)",
    }
