"""Tests of the misclassification inspector and of gradient × input attributions."""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy.stats import mannwhitneyu
from torch.utils.data import Dataset

from andersonn_lab.deq import DEQClassifier
from andersonn_lab.structures import from_smiles, image_atom_order, node_neighbor_image
from andersonn_lab.widgets.attribution import atom_scores, gradient_x_input
from andersonn_lab.widgets.inspector import MisclassificationInspector
from andersonn_lab.widgets.inspector_controller import InspectorController

os.environ.setdefault("PLOTLY_RENDERER", "json")

SMILES = ["CCO", "c1ccccc1", "CC(=O)O", "CCN", "OCCO", "CC#N", "C1CC1", "CCCl", "NCC(=O)O", "CO"]
SIZE = 8


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread (the cores are shared)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class TinyTask(Dataset):
    """Mimics a TaskDataset: ids, entries (SMILES), class_names, encoding, split, graph(i)."""

    def __init__(self, encoding: str = "adjacency") -> None:
        self.encoding = encoding
        self.image_size = SIZE
        self.class_names = ("small", "large")
        self.entries = [
            SimpleNamespace(id=f"mol{i}", label=int(len(s) > 4), structure=s)
            for i, s in enumerate(SMILES)
        ]
        self.ids = [e.id for e in self.entries]
        self._graphs = [from_smiles(s) for s in SMILES]
        self.images = torch.stack(
            [node_neighbor_image(g, encoding=encoding, size=SIZE) for g in self._graphs]
        )
        self.split = {"train": torch.arange(0, 6), "test": torch.tensor([6, 7, 8, 9])}

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], self.entries[index].label

    def graph(self, index: int):
        return self._graphs[index]


def _model() -> DEQClassifier:
    torch.manual_seed(0)
    return DEQClassifier(
        3, 2, channels=4, hidden=4, groups=2, pool=2, forward_solver={"tol": 1e-5, "max_iter": 40}
    )


@pytest.fixture(scope="module")
def task() -> TinyTask:
    return TinyTask()


def _manual_predictions(model, images):
    model.eval()
    with torch.no_grad():
        return model(images).argmax(1).numpy()


# ------------------------------------------------------------------------ attribution
def test_gradient_x_input_of_a_linear_model_is_weight_times_input():
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 3))
    image = torch.rand(3, 4, 4)
    attribution, target = gradient_x_input(model, image, target=2)
    weight = model[1].weight[2].detach().reshape(3, 4, 4)
    assert target == 2 and attribution.shape == (4, 4)
    np.testing.assert_allclose(attribution, (weight * image).sum(0).numpy(), rtol=1e-5)
    _, predicted = gradient_x_input(model, image)
    assert predicted == int(model(image[None]).argmax())
    assert model[1].weight.grad is None  # the model's gradients are left alone
    with pytest.raises(ValueError, match="target"):
        gradient_x_input(model, image, target=7)
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        gradient_x_input(model, torch.rand(4, 4))


def test_atom_scores_project_rows_and_columns():
    graph = from_smiles("CC(=O)O")  # 4 heavy atoms
    order = image_atom_order(graph, SIZE)
    rng = np.random.default_rng(0)
    attribution = np.zeros((SIZE, SIZE))
    attribution[:4, :4] = rng.normal(size=(4, 4))
    adjacency = atom_scores(attribution, graph, encoding="adjacency")
    assert list(adjacency) == order
    a = np.abs(attribution)
    for r, atom in enumerate(order):
        assert adjacency[atom] == pytest.approx(a[r].sum() + a[:, r].sum() - a[r, r])
    assert sum(adjacency.values()) == pytest.approx(2 * a.sum() - np.trace(a))
    assert atom_scores(attribution, graph, encoding="elements") == adjacency  # same layout
    neighbors = atom_scores(attribution, graph, encoding="neighbors")
    assert sum(neighbors.values()) == pytest.approx(a.sum())
    assert neighbors[order[1]] == pytest.approx(a[1].sum())
    with pytest.raises(ValueError, match="encoding"):
        atom_scores(attribution, graph, encoding="pixels")


def test_attribution_of_a_deq_is_zero_on_padding(task):
    model = _model()
    attribution, _ = gradient_x_input(model, task.images[0])
    n = task.graph(0).number_of_nodes()
    assert attribution.shape == (SIZE, SIZE)
    assert np.all(attribution[n:, :] == 0) and np.all(attribution[:, n:] == 0)
    assert np.abs(attribution[:n, :n]).sum() > 0


# ------------------------------------------------------------------------ controller
def test_confusion_matrix_and_cells_match_manual_counts(task):
    model = _model()
    ctrl = InspectorController(model, task)
    predicted = _manual_predictions(model, task.images)
    labels = [e.label for e in task.entries]
    manual = np.zeros((2, 2), dtype=int)
    for t, p in zip(labels, predicted, strict=True):
        manual[t, p] += 1
    np.testing.assert_array_equal(ctrl.confusion, manual)
    for t in range(2):
        for p in range(2):
            expected = [
                task.ids[i] for i in range(len(task)) if labels[i] == t and predicted[i] == p
            ]
            assert ctrl.select_cell(t, p) == expected
            assert ctrl.cell_ids == expected and ctrl.selected_cell == (t, p)
    test_only = InspectorController(model, task, split="test")
    assert test_only.ids == ["mol6", "mol7", "mol8", "mol9"]
    assert int(test_only.confusion.sum()) == 4


def test_select_structure_details(task):
    model = _model()
    ctrl = InspectorController(model, task)
    detail = ctrl.select_structure("mol2")
    assert detail is not None and detail.id == "mol2" and detail.position == 2
    model.eval()
    with torch.no_grad():
        probs = torch.softmax(model(task.images[2:3]), 1)[0].numpy()
    np.testing.assert_allclose(detail.probabilities, probs, rtol=1e-5)
    assert detail.converged and detail.residuals[-1] <= 1e-5 < detail.residuals[0]
    assert len(detail.residuals) == detail.steps + 1
    assert detail.steps == ctrl.steps[2]  # alone or in a batch, the same solve
    assert detail.attribution.shape == (SIZE, SIZE)
    assert list(detail.atom_scores) == image_atom_order(task.graph(2), SIZE)
    a = np.abs(detail.attribution)
    assert sum(detail.atom_scores.values()) == pytest.approx(2 * a.sum() - np.trace(a))
    assert "converged" in ctrl.status.text


def test_summary_numbers():
    model = _model()
    ctrl = InspectorController(model, TinyTask())
    ctrl.labels = np.array([0, 0, 0, 1, 1])
    ctrl.predicted = np.array([0, 0, 0, 0, 0])
    ctrl.steps = np.array([3, 4, 5, 10, 12])
    ctrl.residuals = np.array([1e-6, 2e-6, 3e-6, 1e-3, 1e-2])
    ctrl.converged = np.array([True, True, True, False, True])
    summary = ctrl.summary()
    correct, wrong = summary["rows"]["correct"], summary["rows"]["wrong"]
    assert (correct["n"], wrong["n"]) == (3, 2)
    assert correct["iter_mean"] == pytest.approx(4.0) and correct["iter_median"] == 4.0
    assert wrong["iter_mean"] == pytest.approx(11.0) and wrong["iter_median"] == 11.0
    assert wrong["residual_mean"] == pytest.approx(0.0055)
    assert correct["residual_median"] == pytest.approx(2e-6)
    assert wrong["converged_frac"] == 0.5 and correct["converged_frac"] == 1.0
    expected = mannwhitneyu([10, 12], [3, 4, 5], alternative="greater")
    assert summary["tests"]["iterations"]["U"] == 6.0
    assert summary["tests"]["iterations"]["p"] == pytest.approx(expected.pvalue)
    ctrl.predicted = ctrl.labels.copy()  # nobody wrong: no test, an answer saying so
    assert np.isnan(ctrl.summary()["tests"]["iterations"]["p"])
    assert "cannot tell" in ctrl.summary()["answer"]


def test_invalid_input_gives_status(task):
    ctrl = InspectorController(_model(), task)
    assert ctrl.select_cell(2, 0) == [] and ctrl.status.level == "error"
    assert ctrl.select_cell("a", 0) == [] and ctrl.status.level == "error"
    assert ctrl.select_structure("nope") is None and "unknown id" in ctrl.status.text
    with pytest.raises(ValueError, match="unknown split"):
        InspectorController(_model(), task, split="holdout")


# ------------------------------------------------------------------------ widget
def test_widget_click_select_and_viewers(task):
    model = _model()
    inspector = MisclassificationInspector(model, task)
    ctrl = inspector.controller
    structure_panels = (inspector.prob_fig, inspector.residual_fig, inspector.atom_fig)
    # before a choice, the empty panels say what to do
    assert all("choose a cell" in fig.layout.title.text for fig in structure_panels)
    heat = inspector.confusion_fig.data[0]
    assert np.array_equal(np.array(heat.z), ctrl.confusion)
    t, p = int(ctrl.labels[0]), int(ctrl.predicted[0])
    names = ctrl.class_names
    inspector.handle_click(heat, SimpleNamespace(xs=[names[p]], ys=[names[t]]))
    assert list(inspector.structures.options) == ctrl.cell_members(t, p)
    assert inspector.structures.value == "mol0" and inspector.cells.value == (t, p)
    detail = ctrl.detail
    assert list(inspector.prob_fig.data[0].y) == pytest.approx(detail.probabilities.tolist())
    assert list(inspector.residual_fig.data[0].y) == pytest.approx(detail.residuals.tolist())
    assert np.array(inspector.attribution_fig.data[0].z).shape == (SIZE, SIZE)
    assert list(inspector.atom_fig.data[0].y) == pytest.approx(list(detail.atom_scores.values()))
    assert not any("choose" in fig.layout.title.text for fig in structure_panels)
    assert set(inspector.viewer_widgets) == {"structure", "image"}
    structure = inspector.viewer_widgets["structure"]
    nodes = structure.controller.scene.nodes
    assert structure.controller.weights == pytest.approx([detail.atom_scores[n] for n in nodes])
    # Keyboard path: the cell dropdown, then the structure list.
    other = next(v for _, v in inspector.cells.options if v != (t, p))
    inspector.cells.value = other
    assert list(inspector.structures.options) == ctrl.cell_members(*other)
    last = inspector.structures.options[-1]
    inspector.structures.value = last
    assert ctrl.detail.id == last and last in inspector.prob_fig.layout.title.text
    # Bad input: a message, no exception.
    inspector.select_structure("nope")
    assert "unknown id" in inspector.status.value
    inspector.handle_click(heat, SimpleNamespace(xs=[], ys=[]))  # a click on nothing
    assert "Mann–Whitney" in inspector.summary_html.value


def test_selection_updates_figures_and_viewers_in_place_and_reuses_the_detail(task, monkeypatch):
    inspector = MisclassificationInspector(_model(), task)
    ctrl = inspector.controller
    t, p = int(ctrl.labels[0]), int(ctrl.predicted[0])
    inspector.select_cell(t, p)
    [shape] = inspector.confusion_fig.layout.shapes  # the chosen cell is outlined
    assert (shape.x0, shape.x1, shape.y0, shape.y1) == (p - 0.5, p + 0.5, t - 0.5, t + 0.5)
    figures = [inspector.prob_fig, inspector.residual_fig, inspector.attribution_fig]
    traces = [fig.data for fig in figures]
    viewers = dict(inspector.viewer_widgets)
    viewer_traces = {name: viewer.fig.data for name, viewer in viewers.items()}
    first, second = ctrl.cell_ids[:2]
    inspector.structures.value = second
    # the same trace objects, updated
    for fig, old in zip(figures, traces, strict=True):
        assert all(a is b for a, b in zip(fig.data, old, strict=True))
    assert inspector.viewer_widgets == viewers  # the same viewer widgets, new structure
    for name, viewer in viewers.items():  # molecules all: the viewers' traces are kept too
        assert all(a is b for a, b in zip(viewer.fig.data, viewer_traces[name], strict=True))
    image = inspector.viewer_widgets["image"]
    assert image.controller.graph is task.graph(task.ids.index(second))
    solves = []
    monkeypatch.setattr(ctrl, "residual_trace", lambda image: solves.append(1) or 1 / 0)
    inspector.structures.value = first  # worked out before: nothing is solved again
    assert not solves and ctrl.detail.id == first and first in inspector.prob_fig.layout.title.text
    assert ctrl.status.level == "info"


def test_long_class_names_are_shortened_on_the_axes_and_in_the_cell_list(task):
    from andersonn_lab.widgets.inspector import SHORT_NAME, short_names

    names = ("a small molecule of very few atoms", "a large molecule of very many atoms")
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(task, "class_names", names)
    try:
        inspector = MisclassificationInspector(_model(), task, viewers={})
    finally:
        monkeypatch.undo()
    shown = short_names(list(names))
    assert len(set(shown)) == 2 and all(len(n) <= SHORT_NAME for n in shown)
    assert list(inspector.confusion_fig.data[0].x) == shown
    assert all(label.startswith(tuple(shown)) for label, _ in inspector.cells.options)
    heat = inspector.confusion_fig.data[0]
    inspector.handle_click(heat, SimpleNamespace(xs=[shown[0]], ys=[shown[1]]))
    assert inspector.controller.selected_cell == (1, 0)


def test_widget_without_viewers_and_neighbors_encoding():
    task = TinyTask("neighbors")
    inspector = MisclassificationInspector(_model(), task, viewers={}, split="train")
    assert inspector.controller.encoding == "neighbors"
    detail = inspector.select_structure("mol1")
    assert sum(detail.atom_scores.values()) == pytest.approx(np.abs(detail.attribution).sum())
    assert inspector.viewer_box.children == ()
    assert inspector.select_structure("mol9") is None  # not in the train split
    assert "unknown id" in inspector.controller.status.text


def test_a_drawing_failure_is_reported_in_the_inspector_status_line(task, monkeypatch):
    inspector = MisclassificationInspector(_model(), task, viewers={})

    def no_drawing(detail) -> None:
        raise ValueError("figure cannot be drawn")

    monkeypatch.setattr(inspector, "draw_detail", no_drawing)
    entry = inspector.controller.ids[0]
    detail = inspector.select_structure(entry)  # used to raise into the kernel
    assert detail is not None and detail.id == entry
    assert inspector.controller.status.level == "warning"
    assert "figure cannot be drawn" in inspector.status.value
    t, p = int(inspector.controller.labels[0]), int(inspector.controller.predicted[0])
    assert inspector.select_cell(t, p)  # through the structures observer: no exception
    assert "figure cannot be drawn" in inspector.status.value


# ---------------------------------------------------------------------- spectra (issue 20)
def test_spectral_radius_per_structure_matches_a_dense_reference(task):
    from andersonn_lab.solvers import jacobian_spectrum, make_solver

    model = _model()
    ctrl = InspectorController(model, task, split="test")
    assert ctrl.spectral_radius.shape == (4,) and np.isfinite(ctrl.spectral_radius).all()
    assert (ctrl.fixed_point_residual < 1e-3).all()
    model.eval()
    for i, position in enumerate(ctrl.positions):
        image, _ = task[position]
        problem = model.fixed_point_problem(image[None], device=None)
        z = make_solver(**model.deq.forward_solver).run(problem.f, problem.z0).z
        dense = jacobian_spectrum(problem.f, z, method="dense")
        assert ctrl.spectral_radius[i] == pytest.approx(float(dense.spectral_radius[0]), abs=2e-3)
    detail = ctrl.select_structure(ctrl.ids[0])
    assert detail.spectral_radius == ctrl.spectral_radius[0]
    assert "ρ(J) = " in ctrl.status.text


def test_summary_tests_spectral_radius():
    ctrl = InspectorController(_model(), TinyTask(), spectra=False)
    assert np.isnan(ctrl.spectral_radius).all()
    summary = ctrl.summary()
    assert np.isnan(summary["tests"]["spectral_radius"]["p"]) and "ρ(J)" not in summary["answer"]
    ctrl.labels = np.array([0, 0, 0, 1, 1])
    ctrl.predicted = np.array([0, 0, 0, 0, 0])
    ctrl.steps = np.array([3, 4, 5, 10, 12])
    ctrl.residuals = np.array([1e-6, 2e-6, 3e-6, 1e-3, 1e-2])
    ctrl.converged = np.array([True, True, True, False, True])
    ctrl.spectral_radius = np.array([0.5, 0.6, np.nan, 0.9, 0.95])
    summary = ctrl.summary()
    rows = summary["rows"]
    assert rows["correct"]["rho_mean"] == pytest.approx(0.55)  # NaN left out
    assert rows["wrong"]["rho_median"] == pytest.approx(0.925)
    expected = mannwhitneyu([0.9, 0.95], [0.5, 0.6], alternative="greater")
    assert summary["tests"]["spectral_radius"]["p"] == pytest.approx(expected.pvalue)
    assert "ρ(J)" in summary["answer"]


def test_models_without_a_fixed_point_problem_get_a_note(task):
    plain = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * SIZE * SIZE, 2))
    ctrl = InspectorController(plain, task)
    assert np.isnan(ctrl.spectral_radius).all()
    assert "no spectra" in ctrl.status.text and ctrl.status.level == "warning"


def test_inspector_draws_the_rate_rho_predicts(task):
    inspector = MisclassificationInspector(_model(), task, split="test", viewers={})
    ctrl = inspector.controller
    detail = inspector.select_structure(ctrl.ids[1])
    measured, predicted = inspector.residual_fig.data
    assert list(measured.y) == pytest.approx(detail.residuals.tolist())
    assert predicted.y[1] / predicted.y[0] == pytest.approx(detail.spectral_radius)
    assert "ρ(J)" in inspector.summary_html.value
