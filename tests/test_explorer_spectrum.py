"""The explorer's spectrum panel, driven without a browser."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from andersonn_lab.solvers import fit_rate, problems
from andersonn_lab.widgets import ConvergenceExplorer
from andersonn_lab.widgets.explorer_controller import ExplorerController, ExplorerSettings
from andersonn_lab.widgets.explorer_spectrum import SpectrumController


def _follow(**settings):
    explorer = ExplorerController(ExplorerSettings(**settings))
    return explorer, SpectrumController(explorer, threaded=False)


def test_spectrum_is_the_matrix_spectrum_and_follows_the_problem():
    explorer, spectrum = _follow(problem="linear", dim=60, radius=0.9, spectrum="clustered")
    explorer.run()
    values = spectrum.snapshot.spectrum.eigenvalues[0]
    reference = torch.linalg.eigvals(problems.spectrum_matrix(60, "clustered", 0.9, seed=0))
    assert values.shape == (60,)
    distance = (values[:, None] - reference[None, :]).abs().min(dim=1).values.max()
    assert float(distance) < 1e-8
    first = spectrum.snapshot
    explorer.settings.m = 2  # not a problem setting: no new spectrum
    explorer.run()
    assert spectrum.snapshot is first
    explorer.settings.spectrum = "disk"
    explorer.run()
    disk = spectrum.snapshot.spectrum.eigenvalues[0]
    assert spectrum.snapshot is not first
    assert float(disk.imag.abs().max()) > 0.1  # a disk has complex eigenvalues
    assert float(values.imag.abs().max()) < 1e-8  # the clustered matrix is symmetric
    assert spectrum.snapshot.spectral_radius == pytest.approx(0.9, abs=1e-8)
    x, y = spectrum.plane_data()[0].x, spectrum.plane_data()[0].y
    np.testing.assert_allclose(x, disk.real.numpy())
    np.testing.assert_allclose(y, disk.imag.numpy())


@pytest.mark.parametrize("spectrum_shape", ["clustered", "real", "disk"])
def test_predicted_line_matches_measured_forward_rate(spectrum_shape):
    explorer, spectrum = _follow(
        problem="linear",
        dim=80,
        radius=0.9,
        spectrum=spectrum_shape,
        method="forward",
        tol=1e-12,
        max_iter=300,
    )
    [result] = explorer.run()
    data = explorer.plot_data()
    line = spectrum.rate_trace(data)
    predicted = line.y[1] / line.y[0]
    measured = fit_rate(result.abs_residuals[:, 0])
    assert abs(measured - predicted) / predicted < 0.05
    assert line.y[0] == data.traces[-1].y[0]  # starts where the run starts
    assert len(line.x) == len(data.traces[-1].y)
    assert "forward iteration (β = 1) contracts by 0.9000" in spectrum.describe()


def test_beta_changes_the_prediction_without_recomputing():
    explorer, spectrum = _follow(problem="linear", dim=40, radius=0.9, spectrum="real")
    explorer.run()
    snapshot = spectrum.snapshot
    assert spectrum.predicted_rate() == pytest.approx(0.9, abs=1e-9)
    explorer.settings.beta = 0.5
    explorer.run()
    assert spectrum.snapshot is snapshot
    assert spectrum.predicted_rate() == pytest.approx(0.95, abs=1e-9)  # 1 − β + β · 0.9


def test_problems_without_a_known_fixed_point_are_solved_first():
    explorer, spectrum = _follow(problem="conv", dim=72, radius=1.0)
    explorer.run()
    snap = spectrum.snapshot
    assert snap.error == "" and snap.fixed_point_residual < 1e-4
    assert snap.spectrum.dim == 72 and 0 < snap.spectral_radius < 1


def test_custom_problem_and_arnoldi():
    problem = problems.tanh_layer(300, spectral_radius=0.95, batch=1)
    explorer = ExplorerController()
    spectrum = SpectrumController(explorer, threaded=False, k=6, dense_max=100)
    explorer.set_problem(SimpleNamespace(f=problem.f, z0=problem.z0), "my tanh")
    explorer.run()
    snap = spectrum.snapshot
    assert snap.spectrum.method == "arnoldi" and snap.label.startswith("my tanh")
    fz = problem.f(problem.z_star)
    weight = problems.spectrum_matrix(300, "disk", 0.95, seed=0)
    reference = torch.linalg.eigvals((1 - fz[0] ** 2)[:, None] * weight)
    assert snap.spectral_radius == pytest.approx(float(reference.abs().max()), abs=1e-5)


def test_failures_land_in_the_status():
    explorer = ExplorerController()
    spectrum = SpectrumController(explorer, threaded=False)

    def numpy_map(z):  # forward-mode autograd cannot see through numpy
        return torch.from_numpy(np.cos(z.detach().numpy()))

    explorer.set_problem(SimpleNamespace(f=numpy_map, z0=torch.zeros(1, 3, dtype=torch.float64)))
    explorer.run()
    assert spectrum.snapshot.spectrum is None
    assert spectrum.describe().startswith("spectrum failed")
    assert math.isnan(spectrum.predicted_rate())
    assert spectrum.rate_trace(explorer.plot_data()) is None


def test_widget_draws_plane_and_predicted_line():
    explorer = ConvergenceExplorer(threaded=False, problem="rotation", dim=4, radius=0.8)
    plane = explorer.eigen.fig.data
    assert [t.meta for t in plane] == ["eigenvalues", "circle", "circle"]
    np.testing.assert_allclose(np.hypot(plane[0].x, plane[0].y), 0.8, atol=1e-12)
    predicted = [s for s in explorer.fig.layout.shapes if s.name and "predicted" in s.name]
    assert len(predicted) == 1
    shape = predicted[0]
    slope = (math.log10(shape.y1) - math.log10(shape.y0)) / (shape.x1 - shape.x0)
    assert slope == pytest.approx(math.log10(0.8))
    assert [t.mode for t in plane] == ["markers", "lines", "lines"]
    assert "ρ(J) = 0.8000" in explorer.eigen.status.value
    explorer.radius.value = 0.5  # a new problem: a new spectrum, a new line
    np.testing.assert_allclose(np.hypot(plane[0].x, plane[0].y), 0.5, atol=1e-12)
    bare = ConvergenceExplorer(threaded=False, dim=20, spectrum_panel=False)
    assert bare.eigen is None and len(bare.fig.layout.shapes) == 1


def test_threaded_panel_computes_off_the_calling_thread():
    explorer = ConvergenceExplorer(threaded=True, problem="linear", dim=50, spectrum="real")
    explorer.controller.join(30)
    explorer.eigen.controller.join(30)
    explorer.spectrum.value = "disk"
    explorer.controller.join(30)
    assert explorer.eigen.controller.join(30)
    eigen = explorer.eigen.fig.data[0]
    assert len(eigen.x) == 50 and max(abs(v) for v in eigen.y) > 0.1
    assert "ρ(J) = 0.9500" in explorer.eigen.status.value
