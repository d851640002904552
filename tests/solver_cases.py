"""Shared solver configurations and problems for the solver tests."""

from __future__ import annotations

import torch

from andersonn_lab.solvers import problems

SOLVER_CASES = {
    "forward": {"method": "forward"},
    "forward-damped": {"method": "forward", "beta": 0.8},
    "anderson-m1": {"method": "anderson", "m": 1},
    "anderson-m5": {"method": "anderson", "m": 5},
    "anderson-m5-damped": {"method": "anderson", "m": 5, "beta": 0.7},
}

PROBLEM_CASES = {
    "geometric": lambda dtype: problems.geometric_decay(0.6, dtype=dtype),
    "cosine": lambda dtype: problems.cosine(dtype=dtype),
    "affine": lambda dtype: problems.affine_contraction(0.7, dim=12, dtype=dtype),
    "linear-clustered": lambda dtype: problems.linear_map(
        30, spectrum="clustered", radius=0.8, batch=2, dtype=dtype
    ),
    "tanh-symmetric": lambda dtype: problems.tanh_layer(
        20, spectral_radius=0.7, symmetric=True, batch=3, dtype=dtype
    ),
}

TOL = {torch.float32: 1e-5, torch.float64: 1e-11}
