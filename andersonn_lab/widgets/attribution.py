"""Gradient × input attributions of an image classifier, and their projection onto atoms.

* :func:`gradient_x_input` -- ``∂ logit / ∂ image × image`` summed over channels, ``(H, W)``.
* :func:`atom_scores` -- an atom's share of ``|attribution|``: the sum over its row and
  column (``"adjacency"`` encoding, each pixel counted once) or over its row
  (``"neighbors"`` encoding), atoms in image order (:func:`image_atom_order`).

Examples
--------
>>> import torch
>>> from andersonn_lab.structures import from_smiles
>>> attribution = np.ones((4, 4))
>>> atom_scores(attribution, from_smiles("CCO"), encoding="neighbors")
{2: 4.0, 1: 4.0, 0: 4.0}
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from typing import Any

import numpy as np
import torch
from torch import nn

from andersonn_lab.structures import image_atom_order
from andersonn_lab.structures.images import LAYOUTS, POOLED_ENCODINGS, framework_rows

__all__ = ["ENCODINGS", "atom_scores", "gradient_x_input"]

ENCODINGS = tuple(LAYOUTS)
"""Image encodings whose pixels :func:`atom_scores` knows how to map to atoms."""


def gradient_x_input(
    model: nn.Module, image: torch.Tensor, target: int | None = None
) -> tuple[np.ndarray, int]:
    """Gradient × input of one image, summed over channels.

    The gradient of the ``target`` logit (default: the predicted class) with respect to the
    input image is multiplied by the image and summed over channels. For a DEQ the gradient
    flows through the layer's own backward pass (implicit, phantom or one-step). The model's
    train/eval mode and its parameters' gradients are left as they were.

    Parameters
    ----------
    model:
        Classifier mapping ``(1, C, H, W)`` images to ``(1, K)`` logits.
    image:
        One ``(C, H, W)`` image.
    target:
        Class whose logit is explained; None for the predicted class.

    Returns
    -------
    attribution:
        ``(H, W)`` float64 array.
    target:
        The class explained.

    Examples
    --------
    >>> from andersonn_lab.deq import DEQClassifier
    >>> _ = torch.manual_seed(0)
    >>> model = DEQClassifier(3, 2, channels=4, hidden=4, groups=2, pool=1)
    >>> attribution, cls = gradient_x_input(model, torch.rand(3, 6, 6), target=1)
    >>> attribution.shape, cls
    ((6, 6), 1)
    """
    if not isinstance(image, torch.Tensor) or image.ndim != 3:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"image must be a (C, H, W) tensor, got {shape}")
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    saved_grads = [(p, p.grad) for p in model.parameters()]
    model.eval()
    try:
        x = image.detach().to(device=device, dtype=torch.float32).unsqueeze(0)
        x.requires_grad_(True)
        with torch.enable_grad():
            logits = model(x)
            if logits.ndim != 2 or logits.shape[0] != 1:
                raise ValueError(f"model must return (1, K) logits, got {tuple(logits.shape)}")
            if target is None:
                target = int(logits.argmax(1))
            if not 0 <= int(target) < logits.shape[1]:
                raise ValueError(f"target {target} outside 0..{logits.shape[1] - 1}")
            (grad,) = torch.autograd.grad(logits[0, int(target)], x)
    finally:
        model.train(was_training)
        for param, old in saved_grads:
            param.grad = old
    attribution = (grad * x.detach())[0].sum(0)
    return attribution.double().cpu().numpy(), int(target)


def atom_scores(
    attribution: np.ndarray | torch.Tensor,
    graph: Any,
    *,
    encoding: str = "adjacency",
    order: list[Hashable] | None = None,
) -> dict[Hashable, float]:
    """Project an ``(H, W)`` attribution map onto the atoms the image rows describe.

    Row ``r`` of a node-neighbour image describes atom ``order[r]`` (``order`` from
    :func:`~andersonn_lab.structures.image_atom_order`, cropped to ``H`` rows).

    * ``"adjacency"``, ``"elements"``, ``"electrons"``: pixel ``(r, s)`` relates atoms ``r``
      and ``s``; an atom's score is the sum of ``|attribution|`` over its row and its column,
      the diagonal pixel once.
    * ``"neighbors"``: row ``r`` holds atom ``r`` and its neighbours; the score is the sum
      of ``|attribution|`` over the row.
    * ``"framework"``: row ``r`` describes a class of equivalent atoms
      (:func:`~andersonn_lab.structures.images.framework_rows`); the row's score, computed as
      for ``"adjacency"``, is shared equally by the atoms of the class (unless ``order`` is
      given, which names one atom per row).

    Parameters
    ----------
    attribution:
        ``(H, W)`` map (see :func:`gradient_x_input`).
    graph:
        The atom-bond network the image was made from (ignored when ``order`` is given).
    encoding:
        ``"adjacency"``, ``"elements"``, ``"electrons"``, ``"framework"`` or ``"neighbors"``.
    order:
        Atoms in row order, to skip recomputing the canonical order.

    Returns
    -------
    dict
        Atom (graph node) → score, in row order.

    Examples
    --------
    >>> a = np.arange(9.0).reshape(3, 3)
    >>> atom_scores(a, None, order=["x", "y"])  # rows/columns 0 and 1
    {'x': 12.0, 'y': 20.0}
    """
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
    values = np.abs(np.asarray(attribution, dtype=np.float64))
    if values.ndim != 2:
        raise ValueError(f"attribution must be a 2-D (H, W) map, got shape {values.shape}")
    rows = values.shape[0]
    atoms = list(order) if order is not None else image_atom_order(graph, rows, encoding=encoding)
    atoms = atoms[:rows]
    scores: dict[Hashable, float] = {}
    for r, atom in enumerate(atoms):
        score = float(values[r].sum())
        if LAYOUTS[encoding] == "adjacency" and r < values.shape[1]:
            score += float(values[:, r].sum() - values[r, r])
        scores[atom] = scores.get(atom, 0.0) + score
    if encoding in POOLED_ENCODINGS and order is None:
        _, row_of = framework_rows(graph)
        members = Counter(row_of.values())
        row_score = [scores[atom] for atom in atoms]
        scores = {node: row_score[r] / members[r] for node, r in row_of.items() if r < len(atoms)}
    return scores
