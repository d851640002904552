"""Logic of the misclassification inspector (no ipywidgets here).

:class:`InspectorController` classifies every structure of a dataset split once, recording
per structure the predicted class, the probabilities, the forward-solver steps, the final
residual and whether the solve converged. From that it builds the confusion matrix, lists
the structures of a cell, explains one structure (its residual trace, re-solved alone, and a
gradient × input attribution projected onto its atoms) and answers whether misclassified
structures converge more slowly than correctly classified ones.

Examples
--------
>>> import torch
>>> from torch.utils.data import TensorDataset
>>> from andersonn_lab.deq import DEQClassifier
>>> _ = torch.manual_seed(0)
>>> model = DEQClassifier(3, 2, channels=4, hidden=4, groups=2, pool=1)
>>> data = TensorDataset(torch.rand(6, 3, 6, 6), torch.tensor([0, 1] * 3))
>>> ctrl = InspectorController(model, data)
>>> int(ctrl.confusion.sum()), ctrl.ids[:2]
(6, ['0', '1'])
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from andersonn_lab.deq import SolverStatsCollector

from .attribution import ENCODINGS, atom_scores, gradient_x_input

__all__ = ["InspectorController", "InspectorStatus", "StructureDetail"]


@dataclass
class InspectorStatus:
    """Status line: ``level`` is info, warning or error."""

    level: str = "info"
    text: str = ""


@dataclass
class StructureDetail:
    """Everything the inspector shows about one structure.

    Attributes
    ----------
    id, position:
        Entry id and its position in the underlying dataset.
    label, predicted:
        True and predicted class.
    probabilities:
        ``(K,)`` class probabilities.
    residuals:
        Relative residual of the forward solve at each iteration (the structure solved
        alone), starting with the initial guess.
    steps, converged, final_residual:
        Forward-solver steps, whether the solve reached its tolerance, the final residual.
    attribution:
        ``(H, W)`` gradient × input (summed over channels) of the predicted class's logit.
    image:
        The ``(C, H, W)`` input image.
    graph:
        The atom-bond network, or None when the dataset has none.
    atom_scores:
        Atom → sum of ``|attribution|`` over its pixels (empty without a graph).
    spectral_radius:
        ``ρ(J)`` of the cell's Jacobian at this structure's fixed point (NaN when not
        computed): forward iteration contracts by about this much per step.
    """

    id: str
    position: int
    label: int
    predicted: int
    probabilities: np.ndarray
    residuals: np.ndarray
    steps: int
    converged: bool
    final_residual: float
    attribution: np.ndarray
    image: np.ndarray
    graph: Any = None
    atom_scores: dict[Hashable, float] = field(default_factory=dict)
    spectral_radius: float = math.nan

    @property
    def correct(self) -> bool:
        """Whether the prediction is right."""
        return self.label == self.predicted


def _unwrap(dataset: Dataset, split: str | None) -> tuple[Any, list[int]]:
    """The dataset holding ids/graphs, and the positions in it to inspect."""
    if isinstance(dataset, Subset):
        base, positions = dataset.dataset, [int(i) for i in dataset.indices]
    else:
        base, positions = dataset, list(range(len(dataset)))
    if split is not None:
        parts = getattr(base, "split", None)
        if not isinstance(parts, dict) or split not in parts:
            known = ", ".join(parts) if isinstance(parts, dict) else "none"
            raise ValueError(f"unknown split {split!r} (this dataset has: {known})")
        wanted = {int(i) for i in torch.as_tensor(parts[split]).tolist()}
        positions = [p for p in positions if p in wanted]
    return base, positions


def _median(values: Sequence[float]) -> float:
    return float(np.median(values)) if len(values) else math.nan


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else math.nan


class InspectorController:
    """Confusion matrix, per-structure explanations and a convergence summary.

    Parameters
    ----------
    model:
        A trained classifier (e.g. :class:`~andersonn_lab.deq.DEQClassifier`) returning logits.
    dataset:
        ``(image, label)`` items: a :class:`~andersonn_lab.datasets.TaskDataset`, a ``Subset``
        of one, or any dataset. ``ids``, ``class_names``, ``encoding`` and ``graph(i)`` are
        used when the (underlying) dataset has them.
    split:
        ``"train"``, ``"val"`` or ``"test"`` to inspect only that part (``dataset.split``).
    encoding:
        Image encoding for the atom projection; default ``dataset.encoding`` or adjacency.
    batch_size:
        Batch size of the classification pass.
    spectra:
        Also compute every structure's ``ρ(J)`` at its fixed point
        (:meth:`compute_spectra`; models with a ``fixed_point_problem`` method only).
    spectrum_options:
        Keyword arguments of :meth:`compute_spectra`.

    Attributes
    ----------
    ids, positions, labels, predicted, probabilities, steps, residuals, converged:
        Per inspected structure (lists / arrays in the same order).
    spectral_radius, fixed_point_residual:
        Per structure: ``ρ(J)`` at the fixed point and the relative residual of the point
        it was computed at (NaN where not computed).
    class_names:
        Names of the classes.
    status:
        :class:`InspectorStatus`; bad input is reported here instead of raising.

    Examples
    --------
    >>> from torch.utils.data import TensorDataset
    >>> from andersonn_lab.deq import DEQClassifier
    >>> model = DEQClassifier(3, 2, channels=4, hidden=4, groups=2, pool=1)
    >>> data = TensorDataset(torch.rand(4, 3, 6, 6), torch.tensor([0, 1, 1, 1]))
    >>> ctrl = InspectorController(model, data)
    >>> ctrl.select_cell(5, 0), ctrl.status.level
    ([], 'error')
    """

    def __init__(
        self,
        model: nn.Module,
        dataset: Dataset,
        *,
        split: str | None = None,
        encoding: str | None = None,
        batch_size: int = 64,
        spectra: bool = True,
        spectrum_options: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.status = InspectorStatus()
        self.base, self.positions = _unwrap(dataset, split)
        self.split = split
        encoding = encoding or getattr(self.base, "encoding", None) or "adjacency"
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
        self.encoding = encoding
        base_ids = getattr(self.base, "ids", None)
        self.ids = [str(base_ids[p]) if base_ids is not None else str(p) for p in self.positions]
        self._id_index = {entry_id: i for i, entry_id in enumerate(self.ids)}
        self._classify(batch_size)
        names = getattr(self.base, "class_names", None)
        k = self.probabilities.shape[1]
        self.class_names = (
            [str(n) for n in names] if names is not None else [str(c) for c in range(k)]
        )
        if len(self.class_names) < k:
            self.class_names += [str(c) for c in range(len(self.class_names), k)]
        self.selected_cell: tuple[int, int] | None = None
        self.cell_ids: list[str] = []
        self.detail: StructureDetail | None = None
        self._details: dict[int, StructureDetail] = {}  # what select_structure worked out
        self._notes: dict[int, str] = {}
        self.spectral_radius = np.full(len(self.ids), math.nan)
        self.fixed_point_residual = np.full(len(self.ids), math.nan)
        note = ""
        if spectra:
            note = self.compute_spectra(**(spectrum_options or {}))
        wrong = int((self.labels != self.predicted).sum())
        self._set(
            "warning" if note else "info",
            f"{len(self.ids)} structures, {wrong} misclassified{note}",
        )

    # ------------------------------------------------------------------ classification
    def _device(self) -> torch.device:
        return next((p.device for p in self.model.parameters()), torch.device("cpu"))

    def _image(self, position: int) -> tuple[torch.Tensor, int]:
        image, label = self.base[position]
        return torch.as_tensor(image, dtype=torch.float32), int(label)

    def _classify(self, batch_size: int) -> None:
        labels, probs, steps, residuals, converged = [], [], [], [], []
        device = self._device()
        was_training = self.model.training
        self.model.eval()
        try:
            with SolverStatsCollector(self.model) as stats, torch.no_grad():
                for start in range(0, len(self.positions), batch_size):
                    chunk = self.positions[start : start + batch_size]
                    items = [self._image(p) for p in chunk]
                    images = torch.stack([image for image, _ in items]).to(device)
                    labels += [label for _, label in items]
                    stats.reset()
                    logits = self.model(images)
                    probs.append(torch.softmax(logits.float(), 1).cpu())
                    n = len(chunk)
                    step = stats.forward_steps
                    steps.append(step if step.numel() == n else torch.zeros(n, dtype=torch.long))
                    if stats.forward:
                        res = torch.stack([s.forward.residual.float() for s in stats.forward])
                        conv = torch.stack([s.forward.converged for s in stats.forward])
                        residuals.append(res.max(0).values)
                        converged.append(conv.all(0))
                    else:
                        residuals.append(torch.zeros(n))
                        converged.append(torch.ones(n, dtype=torch.bool))
        finally:
            self.model.train(was_training)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.probabilities = torch.cat(probs).numpy() if probs else np.zeros((0, 1))
        self.predicted = self.probabilities.argmax(1).astype(np.int64)
        self.steps = torch.cat(steps).numpy().astype(np.int64) if steps else np.zeros(0, int)
        self.residuals = torch.cat(residuals).double().numpy() if residuals else np.zeros(0)
        self.converged = torch.cat(converged).numpy() if converged else np.zeros(0, bool)

    def compute_spectra(
        self,
        *,
        k: int = 4,
        tol: float = 1e-3,
        batch_size: int = 16,
        maxiter: int = 300,
    ) -> str:
        """Compute ``ρ(J)`` at every structure's fixed point (:attr:`spectral_radius`).

        Each batch of images becomes the model's fixed-point problem
        (``model.fixed_point_problem``), solved with the model's own forward-solver
        settings; then :func:`~andersonn_lab.solvers.jacobian_spectrum` finds the ``k``
        eigenvalues of largest modulus by Arnoldi iteration on Jacobian-vector products, the
        batch's structures in lockstep. ``tol`` is ARPACK's relative accuracy: ``1e-3`` is
        plenty to compare structures.

        Returns
        -------
        str
            ``""``, or a note on what could not be computed (also NaN in the arrays).
        """
        from ..solvers import jacobian_spectrum, make_solver

        problem_of = getattr(self.model, "fixed_point_problem", None)
        deq = getattr(self.model, "deq", None)
        if not callable(problem_of) or deq is None:
            return "; no spectra: the model has no fixed_point_problem"
        failures: list[str] = []
        was_training = self.model.training
        self.model.eval()
        try:
            for start in range(0, len(self.positions), batch_size):
                chunk = self.positions[start : start + batch_size]
                images = torch.stack([self._image(p)[0] for p in chunk])
                try:
                    problem = problem_of(images, device=self._device())
                    result = make_solver(**deq.forward_solver).run(problem.f, problem.z0)
                    d = problem.z0[0].numel()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        spectrum = jacobian_spectrum(
                            problem.f,
                            result.z,
                            k=k,
                            method="arnoldi" if d > k + 2 else "dense",
                            tol=tol,
                            maxiter=maxiter,
                        )
                except Exception as exc:  # one bad batch must not hide the rest
                    failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                part = slice(start, start + len(chunk))
                self.spectral_radius[part] = spectrum.spectral_radius.numpy()
                self.fixed_point_residual[part] = spectrum.residual.numpy()
        finally:
            self.model.train(was_training)
        return f"; spectra failed for some structures ({failures[0]})" if failures else ""

    def _set(self, level: str, text: str) -> None:
        self.status = InspectorStatus(level, text)

    # ------------------------------------------------------------------ confusion matrix
    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    @property
    def confusion(self) -> np.ndarray:
        """``(K, K)`` counts: rows are true classes, columns predicted classes."""
        matrix = np.zeros((self.n_classes, self.n_classes), dtype=np.int64)
        np.add.at(matrix, (self.labels, self.predicted), 1)
        return matrix

    def cell_members(self, true: int, pred: int) -> list[str]:
        """Ids of the structures of class ``true`` predicted as ``pred``."""
        mask = (self.labels == true) & (self.predicted == pred)
        return [self.ids[i] for i in np.flatnonzero(mask)]

    def select_cell(self, true: int, pred: int) -> list[str]:
        """Select a confusion-matrix cell; returns (and keeps in :attr:`cell_ids`) its ids.

        An invalid cell sets an error status and returns ``[]``.
        """
        try:
            true, pred = int(true), int(pred)
        except (TypeError, ValueError):
            self._set("error", f"not a cell: ({true!r}, {pred!r})")
            return []
        if not (0 <= true < self.n_classes and 0 <= pred < self.n_classes):
            self._set("error", f"no cell ({true}, {pred}): classes are 0..{self.n_classes - 1}")
            return []
        self.selected_cell = (true, pred)
        self.cell_ids = self.cell_members(true, pred)
        names = self.class_names
        self._set(
            "info",
            f"true {names[true]}, predicted {names[pred]}: {len(self.cell_ids)} structures",
        )
        return list(self.cell_ids)

    # ------------------------------------------------------------------ one structure
    def residual_trace(self, image: torch.Tensor) -> tuple[np.ndarray, int, bool, float]:
        """Solve one image's DEQ alone: ``(rel residuals per iteration, steps, converged,
        final residual)``; the first DEQ layer's solve is traced."""
        was_training = self.model.training
        self.model.eval()
        try:
            with SolverStatsCollector(self.model) as stats, torch.no_grad():
                self.model(image.unsqueeze(0).to(self._device()))
        finally:
            self.model.train(was_training)
        if not stats.forward:
            return np.zeros(0), 0, True, 0.0
        first = stats.forward[0].forward
        trace = first.rel_residuals[: int(first.steps[0]) + 1, 0].double().numpy()
        return trace, int(first.steps[0]), bool(first.converged[0]), float(first.residual[0])

    def select_structure(self, entry_id: str) -> StructureDetail | None:
        """Explain one structure: probabilities, residual trace, attribution, atom scores.

        Returns None (with an error status) for an id not in the inspected split.
        """
        index = self._id_index.get(str(entry_id))
        if index is None:
            self._set("error", f"unknown id {entry_id!r} in this split")
            return None
        detail = self._details.get(index)
        if detail is None:
            detail = self._explain(index)
        self.detail, note = detail, self._notes.get(index, "")
        label, steps, final = detail.label, detail.steps, detail.final_residual
        verdict = "converged" if detail.converged else "did NOT converge"
        rho = self.detail.spectral_radius
        if math.isfinite(rho):
            verdict = f"(ρ(J) = {rho:.4f}) {verdict}"
        self._set(
            "warning" if note else "info",
            f"{self.ids[index]}: true {self.class_names[label]}, predicted "
            f"{self.class_names[self.detail.predicted]}; forward solve {verdict} in {steps} "
            f"steps (residual {final:.2e}){note}",
        )
        return self.detail

    def _explain(self, index: int) -> StructureDetail:
        """Work out one structure's detail (a solve, a gradient, a graph) and keep it:
        the model does not change while the inspector is open, so neither does the detail."""
        position = self.positions[index]
        image, label = self._image(position)
        trace, steps, converged, final = self.residual_trace(image)
        attribution, _ = gradient_x_input(self.model, image, int(self.predicted[index]))
        graph, scores, note = None, {}, ""
        graph_of = getattr(self.base, "graph", None)
        if callable(graph_of):
            try:
                graph = graph_of(position)
                scores = atom_scores(attribution, graph, encoding=self.encoding)
            except Exception as err:  # a broken structure must not break the inspector
                graph, note = None, f" (no structure: {type(err).__name__}: {err})"
        detail = StructureDetail(
            id=self.ids[index],
            position=position,
            label=label,
            predicted=int(self.predicted[index]),
            probabilities=self.probabilities[index].copy(),
            residuals=trace,
            steps=steps,
            converged=converged,
            final_residual=final,
            attribution=attribution,
            image=image.numpy(),
            graph=graph,
            atom_scores=scores,
            spectral_radius=float(self.spectral_radius[index]),
        )
        self._details[index] = detail
        if note:
            self._notes[index] = note
        return detail

    # ------------------------------------------------------------------ summary
    def summary(self) -> dict[str, Any]:
        """Do misclassified structures converge more slowly than correctly classified ones?

        Returns
        -------
        dict
            ``rows``: for ``"correct"`` and ``"wrong"``: ``n``, ``iter_mean``,
            ``iter_median``, ``residual_mean``, ``residual_median``, ``converged_frac``.
            ``rho_mean``, ``rho_median`` (``ρ(J)`` at the fixed point; NaN without spectra).
            ``tests``: for ``"iterations"``, ``"residual"`` and ``"spectral_radius"``: the
            Mann–Whitney ``U`` of wrong against correct and its one-sided p-value
            (alternative: wrong is larger); NaN when a group is empty or no spectra were
            computed. ``answer``: one sentence on iterations, one on ``ρ(J)``.
        """
        from scipy.stats import mannwhitneyu

        right = self.labels == self.predicted
        rho = getattr(self, "spectral_radius", np.zeros(0))
        if rho.shape != right.shape:  # not computed for these structures
            rho = np.full(right.shape, math.nan)
        rows, tests = {}, {}
        for name, mask in (("correct", right), ("wrong", ~right)):
            steps = self.steps[mask].astype(float)
            res = self.residuals[mask]
            rows[name] = {
                "n": int(mask.sum()),
                "iter_mean": _mean(steps),
                "iter_median": _median(steps),
                "residual_mean": _mean(res),
                "residual_median": _median(res),
                "converged_frac": _mean(self.converged[mask].astype(float)),
                "rho_mean": _mean(rho[mask][np.isfinite(rho[mask])]),
                "rho_median": _median(rho[mask][np.isfinite(rho[mask])]),
            }
        for name, values in (
            ("iterations", self.steps.astype(float)),
            ("residual", self.residuals),
            ("spectral_radius", rho),
        ):
            keep = np.isfinite(values)
            wrong, correct = values[~right & keep], values[right & keep]
            u = p = math.nan
            if len(wrong) and len(correct):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    result = mannwhitneyu(wrong, correct, alternative="greater")
                u, p = float(result.statistic), float(result.pvalue)
            tests[name] = {"U": u, "p": p}
        p = tests["iterations"]["p"]
        if math.isnan(p):
            answer = "cannot tell: one of the groups (correct / wrong) is empty"
        elif p < 0.05:
            answer = f"yes: misclassified structures take more iterations (one-sided p = {p:.3g})"
        else:
            answer = f"no clear difference in iterations (one-sided p = {p:.3g})"
        p_rho = tests["spectral_radius"]["p"]
        if not math.isnan(p_rho):
            if p_rho < 0.05:
                answer += f"; yes: their ρ(J) is larger (one-sided p = {p_rho:.3g})"
            else:
                answer += f"; no clear difference in ρ(J) (one-sided p = {p_rho:.3g})"
        return {"rows": rows, "tests": tests, "answer": answer}
