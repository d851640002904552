"""Anderson, step by step in the plane: an ipywidgets + plotly view of
:class:`~andersonn_lab.widgets.anderson_steps.AndersonStepController`.

Examples
--------
>>> from andersonn_lab.widgets import AndersonStepper
>>> stepper = AndersonStepper(m=2)
>>> stepper.next_button.click()
>>> stepper.alpha_fig.data[0].x
('z_0', 'z_1')
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as w
import plotly.graph_objects as go

from .anderson_steps import PROBLEMS_2D, AndersonStepController
from .explorer_spectrum import replace_traces


def wrap() -> w.Layout:
    """Layout of a row of panels that wraps onto the next line where the output is narrow."""
    return w.Layout(flex_flow="row wrap", align_items="flex-start")


__all__ = ["AndersonStepper"]


class AndersonStepper:
    """Watch Anderson choose its mixing weights, one step at a time, on a 2-D problem.

    Left: the iterates so far (grey), the window's iterates (blue) with their residual
    vectors ``g_i = f(z_i) − z_i`` (green segments to ``f(z_i)``), where a plain step would go
    (orange) and the extrapolated point (red), and the fixed point (black). Right: the mixing
    weights ``α`` as bars. Previous / Next move through the steps; the window ``m``, mixing
    ``β``, the problem and the rotation's scale recompute the run.

    Parameters
    ----------
    controller:
        The logic; by default a new :class:`AndersonStepController` from ``settings``.
    **settings:
        Arguments of :class:`AndersonStepController` (``problem``, ``m``, ``beta``, ...).

    Attributes
    ----------
    fig, alpha_fig:
        The plane and the weights (``go.FigureWidget``).
    prev_button, next_button, m, beta, problem, scale:
        The controls.
    status:
        ``HTML`` line describing the step shown.
    widget:
        Everything, to display.
    """

    def __init__(self, controller: AndersonStepController | None = None, **settings: Any) -> None:
        self.controller = controller or AndersonStepController(**settings)
        c = self.controller
        style = {"description_width": "70px"}
        self.prev_button = w.Button(description="Previous", icon="step-backward")
        self.next_button = w.Button(description="Next", icon="step-forward")
        self.m = w.IntSlider(value=c.m, min=0, max=6, description="window m", style=style)
        self.beta = w.FloatSlider(
            value=c.beta, min=0.1, max=2.0, step=0.05, description="mixing β", style=style
        )
        self.problem = w.Dropdown(
            options=list(PROBLEMS_2D), value=c.problem_name, description="problem"
        )
        self.problem.disabled = c.problem_name not in PROBLEMS_2D
        self.scale = w.FloatSlider(
            value=c.scale, min=0.5, max=1.2, step=0.01, description="scale s", style=style
        )
        self.status = w.HTML(layout=w.Layout(width="auto"))
        self.prev_button.on_click(lambda _: self.controller.previous())
        self.next_button.on_click(lambda _: self.controller.next())
        for name, control in (("m", self.m), ("beta", self.beta), ("scale", self.scale)):
            control.observe(lambda change, name=name: self._on_setting(name, change), "value")
        self.problem.observe(lambda change: self._on_setting("problem", change), "value")
        self.fig = go.FigureWidget(
            layout={
                "height": 420,
                "width": 520,
                "template": "plotly_white",
                "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
                "title": {"text": "Anderson in the plane"},
                "xaxis": {"title": {"text": "z[0]"}},
                "yaxis": {"title": {"text": "z[1]"}, "scaleanchor": "x", "scaleratio": 1},
                "legend": {"font": {"size": 10}},
            }
        )
        self.alpha_fig = go.FigureWidget(
            data=[go.Bar(x=(), y=(), marker={"color": "#1f77b4"})],
            layout={
                "height": 420,
                "width": 320,
                "template": "plotly_white",
                "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
                "title": {"text": "mixing weights α"},
                "yaxis": {"zeroline": True},
            },
        )
        self._drawn: list = []
        self.widget = w.VBox(
            [
                w.HBox([self.prev_button, self.next_button, self.problem], layout=wrap()),
                w.HBox([self.m, self.beta, self.scale], layout=wrap()),
                self.status,
                w.HBox([self.fig, self.alpha_fig], layout=wrap()),
            ]
        )
        self.controller.add_listener(self.draw)
        self.draw()

    def _on_setting(self, name: str, change: dict) -> None:
        try:
            self.controller.set(**{name: change["new"]})
        except ValueError as exc:
            self.status.value = f'<span style="color:#c62828">✗ {html.escape(str(exc))}</span>'
        self.scale.disabled = self.controller.problem_name != "rotation"

    def draw(self) -> None:
        """Copy the controller's frame into the figures and the status line."""
        c = self.controller
        self._drawn = replace_traces(self.fig, c.plane_data(), self._drawn)
        labels, weights = c.alpha_data()
        with self.alpha_fig.batch_update():
            bar = self.alpha_fig.data[0]
            bar.x, bar.y = labels, weights
            bar.marker.color = ["#d62728" if a < 0 else "#1f77b4" for a in weights]
        self.prev_button.disabled = c.index == 0
        self.next_button.disabled = c.index == len(c.frames) - 1
        self.status.value = html.escape(c.describe())

    def display(self) -> None:
        """Display the stepper in the notebook."""
        from IPython.display import display

        display(self.widget)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict | None:
        return self.widget._repr_mimebundle_(**kwargs)
