"""The misclassification inspector: confusion matrix → structures → why (and did it converge?).

All logic lives in :class:`~andersonn_lab.widgets.inspector_controller.InspectorController`;
this module draws a clickable confusion-matrix heatmap, a list of the structures in the
chosen cell and, for the chosen structure: the structure and image viewers (atoms coloured
by attribution), its class probabilities, its forward residual trace, its gradient × input
map and per-atom scores, plus a table comparing the convergence of correct and wrong
predictions.

Examples
--------
>>> import torch
>>> from torch.utils.data import TensorDataset
>>> from andersonn_lab.deq import DEQClassifier
>>> _ = torch.manual_seed(0)
>>> model = DEQClassifier(3, 2, channels=4, hidden=4, groups=2, pool=1)
>>> data = TensorDataset(torch.rand(6, 3, 6, 6), torch.tensor([0, 1] * 3))
>>> inspector = MisclassificationInspector(model, data)
>>> inspector.select_cell(0, int(inspector.controller.predicted[0]))[0]
'0'
>>> inspector.structures.value
'0'
>>> len(inspector.residual_fig.data[0].y) >= 1
True
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from typing import Any

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go
from torch import nn
from torch.utils.data import Dataset

from .inspector_controller import InspectorController, StructureDetail

__all__ = ["MisclassificationInspector", "ViewerFactory"]

LEVEL_STYLE = {
    "info": ("#2e7d32", "✓"),
    "warning": ("#e65100", "⚠"),
    "error": ("#c62828", "✗"),
}

ViewerFactory = Callable[[Any, "MisclassificationInspector"], Any]
"""``factory(graph, inspector) -> widget`` building a viewer for one structure's graph."""


def _default_viewers() -> dict[str, ViewerFactory]:
    """The project's StructureViewer and ImageViewer, where importable."""
    factories: dict[str, ViewerFactory] = {}
    try:
        from .structure_viewer import StructureViewer
    except ImportError:
        pass
    else:
        factories["structure"] = lambda graph, _inspector: StructureViewer(graph, height=320)
    try:
        from .image_viewer import ImageViewer
    except ImportError:
        pass
    else:
        factories["image"] = lambda graph, inspector: ImageViewer(
            graph,
            encoding=inspector.controller.encoding,
            size=int(inspector.controller.detail.image.shape[-1]),
            height=260,
        )
    return factories


SHORT_NAME = 16
"""Longest class name shown on the confusion matrix's axes and in the cell list (longer
ones are cut with "…"; hovering a cell shows the full names)."""

SELECTED_CELL = {"color": "#ff6f00", "width": 3}
"""Outline of the selected confusion-matrix cell."""


def short_names(names: list[str], most: int = SHORT_NAME) -> list[str]:
    """Class names cut to ``most`` characters, kept distinct (a number is added if needed).

    Examples
    --------
    >>> short_names(["a small molecule of few atoms", "large"], most=10)
    ['a small m…', 'large']
    >>> short_names(["molecule one", "molecule two"], most=6)
    ['0 mol…', '1 mol…']
    """

    def shorten(name: str, room: int) -> str:
        return name if len(name) <= room else name[: room - 1].rstrip() + "…"

    cut = [shorten(name, most) for name in names]
    if len(set(cut)) < len(cut):  # numbered, so that two cut names never look the same
        cut = [f"{k} " + shorten(name, most - len(f"{k} ")) for k, name in enumerate(names)]
    return cut


CHOOSE_HINT = "(choose a cell, then a structure)"
"""Title of a structure's panels until one is chosen (a newcomer sees empty axes first)."""


def _figure(
    title: str, height: int = 280, width: int = 420, css: str = "", **layout: Any
) -> go.FigureWidget:
    fig = go.FigureWidget(
        layout={
            "height": height,
            "width": width,
            "template": "plotly_white",
            "margin": {"l": 55, "r": 15, "t": 40, "b": 40},
            "title": {"text": title, "font": {"size": 13}},
            **layout,
        }
    )
    if css:
        fig.add_class(css)  # a stable handle for tests and styles
    return fig


def _atom_label(graph: Any, node: Any) -> str:
    attrs = graph.nodes[node] if graph is not None and node in graph.nodes else {}
    return f"{attrs.get('element', '')}{node}"


class MisclassificationInspector:
    """Click a confusion-matrix cell, pick a structure, and see why the model got it wrong.

    Parameters
    ----------
    model:
        A trained classifier.
    dataset:
        The data (a ``TaskDataset``, a ``Subset`` of one, or any ``(image, label)`` dataset).
    split:
        Inspect only ``dataset.split[split]`` (``"train"``, ``"val"`` or ``"test"``).
    viewers:
        Name → ``factory(graph, inspector)`` of extra viewers for the chosen structure; by
        default the project's ``StructureViewer`` and ``ImageViewer`` when importable. A
        viewer with a ``highlight(atom_scores)`` method gets the atom attribution; one with
        ``select_atom(node)`` gets the most important atom selected. Pass ``{}`` for none.
    **options:
        Passed to :class:`InspectorController` (``encoding``, ``batch_size``).

    Attributes
    ----------
    confusion_fig, prob_fig, residual_fig, attribution_fig, atom_fig:
        The plotly panels.
    cells:
        ``Dropdown`` of the non-empty cells (the keyboard alternative to clicking).
    structures:
        ``Select`` listing the ids of the chosen cell.
    summary_html, status:
        The convergence summary table and the status line.
    viewer_widgets:
        Name → the viewer widget built for the current structure.
    widget:
        The whole inspector, to display.
    """

    def __init__(
        self,
        model: nn.Module,
        dataset: Dataset,
        *,
        split: str | None = None,
        viewers: dict[str, ViewerFactory] | None = None,
        **options: Any,
    ) -> None:
        self.controller = InspectorController(model, dataset, split=split, **options)
        self.viewer_factories = _default_viewers() if viewers is None else dict(viewers)
        self.viewer_widgets: dict[str, Any] = {}
        self._muted = False
        names = self.controller.class_names
        self.axis_names = short_names(names)
        matrix = self.controller.confusion
        self.confusion_fig = _figure(
            "confusion matrix (click a cell)",
            height=320,
            width=380,
            css="inspector-confusion",
            xaxis={"title": {"text": "predicted"}, "type": "category", "tickangle": -30},
            yaxis={"title": {"text": "true"}, "type": "category", "autorange": "reversed"},
        )
        self.confusion_fig.add_heatmap(
            z=matrix.tolist(),
            x=self.axis_names,
            y=self.axis_names,
            customdata=[[[t, p] for p in names] for t in names],
            colorscale="Blues",
            texttemplate="%{z}",
            hovertemplate="true %{customdata[0]}<br>predicted %{customdata[1]}<br>"
            "%{z} structures<extra></extra>",
            showscale=False,
        )
        self.confusion_fig.data[0].on_click(self.handle_click)
        self.cells = w.Dropdown(
            description="cell",
            options=self._cell_options(),
            value=None,
            style={"description_width": "80px"},
            layout=w.Layout(width="390px"),
        )
        self.cells.observe(self._on_cell, "value")
        self.structures = w.Select(
            options=[],
            rows=8,
            description="structures",
            style={"description_width": "80px"},
            layout=w.Layout(width="390px"),
        )
        self.structures.observe(self._on_structure, "value")
        # Every panel's traces are made once; a structure is drawn by updating them in place.
        self.prob_fig = _figure(
            f"class probabilities {CHOOSE_HINT}",
            css="inspector-probabilities",
            yaxis={"range": [0, 1], "title": {"text": "p"}},
            xaxis={"type": "category"},
        )
        self.prob_fig.add_bar(x=self.axis_names, y=[0.0] * len(names), name="p")
        self.residual_fig = _figure(
            f"forward solve {CHOOSE_HINT}",
            css="inspector-residuals",
            xaxis={"title": {"text": "iteration"}},
            yaxis={
                "title": {"text": "relative residual"},
                "type": "log",
                "exponentformat": "power",
            },
            legend={"x": 1, "xanchor": "right", "y": 1, "bgcolor": "rgba(255,255,255,0.7)"},
        )
        self.residual_fig.add_scatter(x=[], y=[], mode="lines+markers", name="residual")
        self.residual_fig.add_scatter(
            x=[],
            y=[],
            mode="lines",
            line={"dash": "dashdot", "color": "#ff7f0e"},
            name="ρ(J)ⁿ",
            visible=False,
        )
        self.attribution_fig = _figure(
            "gradient × input (sum over channels)",
            height=340,
            width=380,
            css="inspector-attribution",
            yaxis={"autorange": "reversed", "title": {"text": "row (atom)"}},
            xaxis={"title": {"text": "column"}},
        )
        self.attribution_fig.add_heatmap(z=[], colorscale="RdBu", zmid=0)
        self.atom_fig = _figure(
            f"atom attribution {CHOOSE_HINT}",
            css="inspector-atoms",
            yaxis={"title": {"text": "score"}},
        )
        self.atom_fig.add_bar(x=[], y=[], marker={"color": "#6a1b9a"})
        self.summary_html = w.HTML(
            self._summary_table(), layout=w.Layout(min_width="0px", flex="1 1 420px")
        )
        self.status = w.HTML()
        wrap = {"flex_flow": "row wrap", "align_items": "flex-start"}
        self.viewer_box = w.HBox([], layout=w.Layout(**wrap))
        self.widget = w.VBox(
            [
                self.status,
                w.HBox(
                    [
                        self.confusion_fig,
                        w.VBox(
                            [self.cells, self.structures],
                            layout=w.Layout(flex="0 0 auto", width="400px"),
                        ),
                        self.summary_html,
                    ],
                    layout=w.Layout(**wrap),
                ),
                self.viewer_box,
                w.HBox([self.prob_fig, self.residual_fig], layout=w.Layout(**wrap)),
                w.HBox([self.attribution_fig, self.atom_fig], layout=w.Layout(**wrap)),
            ]
        )
        self.draw_status()

    # ------------------------------------------------------------------ controls
    def _cell_options(self) -> list[tuple[str, tuple[int, int]]]:
        names, matrix = short_names(self.controller.class_names), self.controller.confusion
        return [
            (f"{names[t]} → {names[p]} ({matrix[t, p]})", (t, p))
            for t in range(len(names))
            for p in range(len(names))
            if matrix[t, p] > 0
        ]

    def _on_cell(self, change: dict) -> None:
        if not self._muted and change["new"] is not None:
            self.select_cell(*change["new"])

    def _on_structure(self, change: dict) -> None:
        if not self._muted and change["new"] is not None:
            self.select_structure(change["new"])

    def handle_click(self, trace: Any, points: Any, selector: Any = None) -> None:
        """Plotly click on the confusion heatmap: select the clicked cell."""
        if not getattr(points, "xs", None) or not getattr(points, "ys", None):
            return
        names, shown = self.controller.class_names, self.axis_names
        x, y = points.xs[0], points.ys[0]

        def index(value: Any) -> int:
            if value in shown:
                return shown.index(value)
            return names.index(value) if value in names else int(value)

        try:
            pred, true = index(x), index(y)
        except (TypeError, ValueError):
            self.controller._set("error", f"cannot read the clicked cell ({x!r}, {y!r})")
            self.draw_status()
            return
        self.select_cell(true, pred)

    # ------------------------------------------------------------------ public
    def select_cell(self, true: int, pred: int) -> list[str]:
        """Select a cell: list its structures and show the first one."""
        ids = self.controller.select_cell(true, pred)
        if (
            self.controller.selected_cell == (true, pred)
            and self.controller.status.level != "error"
        ):
            self._muted = True
            try:
                options = [value for _, value in self.cells.options]
                self.cells.value = (true, pred) if (true, pred) in options else None
                self.structures.options = ids
                self.structures.value = None
            finally:
                self._muted = False
            self.mark_cell(true, pred)
            if ids:
                self.structures.value = ids[0]  # shows it through the observer
        self.draw_status()
        return ids

    def mark_cell(self, true: int, pred: int) -> None:
        """Outline the confusion-matrix cell (``true`` row, ``pred`` column)."""
        self.confusion_fig.layout.shapes = [
            {
                "type": "rect",
                "xref": "x",
                "yref": "y",
                "x0": pred - 0.5,
                "x1": pred + 0.5,
                "y0": true - 0.5,
                "y1": true + 0.5,
                "line": SELECTED_CELL,
                "fillcolor": "rgba(0,0,0,0)",
            }
        ]

    def select_structure(self, entry_id: str) -> StructureDetail | None:
        """Show one structure (by id): viewers, probabilities, residuals, attribution."""
        detail = self.controller.select_structure(entry_id)
        if detail is not None:
            try:
                self.draw_detail(detail)
            except Exception as err:  # a drawing failure is reported, never raised
                self.controller._set(
                    "warning", f"drawing {entry_id} failed: {type(err).__name__}: {err}"
                )
            if entry_id in self.structures.options and self.structures.value != entry_id:
                self._muted = True
                try:
                    self.structures.value = entry_id
                finally:
                    self._muted = False
        self.draw_status()
        return detail

    def summary(self) -> dict[str, Any]:
        """See :meth:`InspectorController.summary`."""
        return self.controller.summary()

    # ------------------------------------------------------------------ drawing
    def draw_detail(self, detail: StructureDetail) -> None:
        """Draw the panels and viewers of one structure, updating every figure in place."""
        names, shown = self.controller.class_names, self.axis_names
        colors = ["#2e7d32" if k == detail.label else "#9e9e9e" for k in range(len(names))]
        if detail.predicted != detail.label:
            colors[detail.predicted] = "#c62828"
        with self.prob_fig.batch_update():
            bar = self.prob_fig.data[0]
            bar.update(x=shown, y=detail.probabilities.tolist(), marker={"color": colors})
            self.prob_fig.layout.title.text = (
                f"{html.escape(detail.id)}: true {html.escape(shown[detail.label])},"
                f"<br>predicted {html.escape(shown[detail.predicted])}"
            )
        verdict = "converged" if detail.converged else "did not converge"
        residuals = [r if r > 0 and math.isfinite(r) else None for r in detail.residuals]
        rho, start = detail.spectral_radius, residuals[0] if residuals else None
        title = f"forward solve: {verdict} in {detail.steps} steps"
        with self.residual_fig.batch_update():
            line, rate = self.residual_fig.data
            line.update(x=list(range(len(residuals))), y=residuals, name=detail.id)
            if math.isfinite(rho) and 0 < rho and start is not None:
                # what forward iteration at rate ρ(J) would do from the same start
                n = max(len(residuals), 2)
                rate.update(
                    x=list(range(n)),
                    y=[start * rho**i or None for i in range(n)],
                    name=f"ρ(J)ⁿ, ρ(J) = {rho:.4f}",
                    visible=True,
                )
                title += f";<br>ρ(J) = {rho:.4f}"
            else:
                rate.update(x=[], y=[], visible=False)
            self.residual_fig.layout.title.text = title
        attribution = detail.attribution
        limit = float(np.abs(attribution).max()) or 1.0
        with self.attribution_fig.batch_update():
            self.attribution_fig.data[0].update(z=attribution.tolist(), zmin=-limit, zmax=limit)
        atoms = list(detail.atom_scores)
        with self.atom_fig.batch_update():
            self.atom_fig.data[0].update(
                x=[_atom_label(detail.graph, a) for a in atoms],
                y=[detail.atom_scores[a] for a in atoms],
            )
            self.atom_fig.layout.title.text = (
                "atom attribution Σ|grad × input|"
                if atoms
                else "atom attribution: no structure for this entry"
            )
        self._draw_viewers(detail)

    def _draw_viewers(self, detail: StructureDetail) -> None:
        """Show the structure in the viewers: those built before get the new graph in place
        (``set_graph`` or ``load``), which is far quicker in the browser than new widgets."""
        if detail.graph is None or not self.viewer_factories:
            self.viewer_widgets = {}
            self.viewer_box.children = ()
            return
        top = max(detail.atom_scores, key=detail.atom_scores.get) if detail.atom_scores else None
        problems, viewers = [], {}
        for name, factory in self.viewer_factories.items():
            try:
                viewer = self.viewer_widgets.get(name)
                update = getattr(viewer, "set_graph", None) or getattr(viewer, "load", None)
                if viewer is None or update is None or update(detail.graph) is False:
                    viewer = factory(detail.graph, self)
                if hasattr(viewer, "highlight") and detail.atom_scores:
                    viewer.highlight(detail.atom_scores)
                elif hasattr(viewer, "select_atom") and top is not None:
                    viewer.select_atom(top)
            except Exception as err:  # a viewer failing must not hide the rest
                problems.append(f"{name} viewer: {type(err).__name__}: {err}")
                continue
            viewers[name] = viewer
        self.viewer_widgets = viewers
        children = tuple(viewers.values())
        if self.viewer_box.children != children:
            self.viewer_box.children = children
        if problems:
            self.controller._set("warning", "; ".join(problems))

    def _summary_table(self) -> str:
        summary = self.controller.summary()
        rows, tests = summary["rows"], summary["tests"]

        def fmt(value: float, spec: str) -> str:
            return "–" if isinstance(value, float) and math.isnan(value) else format(value, spec)

        lines = [
            ("structures", "n", "d"),
            ("mean iterations", "iter_mean", ".1f"),
            ("median iterations", "iter_median", ".1f"),
            ("mean final residual", "residual_mean", ".2e"),
            ("median final residual", "residual_median", ".2e"),
            ("converged", "converged_frac", ".0%"),
            ("mean ρ(J) at z*", "rho_mean", ".4f"),
            ("median ρ(J) at z*", "rho_median", ".4f"),
        ]
        cell = "style='padding:2px 8px'"
        body = "".join(
            f"<tr><td {cell}>{label}</td><td {cell}>{fmt(rows['correct'][key], spec)}</td>"
            f"<td {cell}>{fmt(rows['wrong'][key], spec)}</td></tr>"
            for label, key, spec in lines
        )
        stats = "".join(
            f"<tr><td {cell}>Mann–Whitney {name}</td><td {cell} colspan=2>"
            f"U = {fmt(test['U'], '.1f')}, p = {fmt(test['p'], '.3g')}</td></tr>"
            for name, test in tests.items()
        )
        return (
            "<b>Do misclassified structures converge more slowly, with a larger ρ(J)?</b>"
            f"<table><thead><tr><th></th><th {cell}>correct</th><th {cell}>wrong</th></tr>"
            f"</thead><tbody>{body}{stats}</tbody></table>"
            f"<i>{html.escape(summary['answer'])}</i>"
        )

    def draw_status(self) -> None:
        """Show the controller's status."""
        status = self.controller.status
        color, symbol = LEVEL_STYLE.get(status.level, ("#333333", ""))
        self.status.value = (
            f'<span style="color:{color}">{symbol} {html.escape(status.text)}</span>'
        )

    def display(self) -> None:
        """Display the inspector in the notebook."""
        from IPython.display import display

        display(self.widget)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict | None:
        return self.widget._repr_mimebundle_(**kwargs)
