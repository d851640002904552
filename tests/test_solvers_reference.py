"""Anderson's iterates against a textbook implementation written here, in float64.

The reference is a direct transcription of Anderson extrapolation (type II, Walker & Ni
2011) with a relative ridge and the documented safeguard, one sample at a time, with plain
Python lists and a dense KKT solve: nothing is shared with the solver's ring buffers,
incremental Gram matrix or batching. Also here: the accelerator code path of the solvers
(no per-step host synchronisation), forced on the CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from andersonn_lab.solvers import Anderson, ForwardIteration, base, problems

F64 = torch.float64
Vec = torch.Tensor


def textbook_anderson(
    f: Callable[[Vec], Vec],
    z0: Vec,
    *,
    m: int,
    beta: float,
    lam: float,
    steps: int,
    safeguard: float = math.inf,
) -> list[Vec]:
    """Iterates ``z_0 .. z_steps`` of Anderson(m) on ``z = f(z)`` for one 1-D ``z0``.

    Each step: with the window of the last ``m + 1`` evaluated points ``z_i`` and residuals
    ``g_i = f(z_i) − z_i``, solve the KKT system of

        min_α ‖Σ α_i g_i‖² + lam Σ α_i² ‖g_i‖²   subject to   Σ α_i = 1

    and take ``z = Σ α_i [(1 − β) z_i + β f(z_i)]``. The safeguard: if the residual at a
    point proposed by such a mix exceeds ``safeguard`` times the residual at the last
    accepted point, the next point is the plain damped step from that accepted point; the
    rejected evaluation stays in the window (the window is not restarted).
    """
    zs, fs = [z0], [f(z0)]
    iterates = [z0]
    base_i, from_mix = 0, False
    for _ in range(steps):
        res = float(torch.linalg.vector_norm(fs[-1] - zs[-1]))
        base_res = float(torch.linalg.vector_norm(fs[base_i] - zs[base_i]))
        rejected = from_mix and res > safeguard * base_res
        if not rejected:
            base_i = len(zs) - 1
        window = list(range(max(0, len(zs) - (m + 1)), len(zs)))
        if rejected or len(window) < 2:
            z_next = (1 - beta) * zs[base_i] + beta * fs[base_i]
            from_mix = False
        else:
            g = torch.stack([fs[i] - zs[i] for i in window])  # (n, d)
            n = len(window)
            gram = g @ g.T
            gram = gram + lam * torch.diag(torch.diag(gram))
            kkt = torch.zeros(n + 1, n + 1, dtype=F64)
            kkt[:n, :n] = 2 * gram
            kkt[:n, n] = 1.0
            kkt[n, :n] = 1.0
            rhs = torch.zeros(n + 1, dtype=F64)
            rhs[n] = 1.0
            alpha = torch.linalg.solve(kkt, rhs)[:n]
            z_next = sum(
                a * ((1 - beta) * zs[i] + beta * fs[i]) for a, i in zip(alpha, window, strict=True)
            )
            from_mix = True
        zs.append(z_next)
        fs.append(f(z_next))
        iterates.append(z_next)
    return iterates


def _tanh_maps(dim: int, batch: int, radius: float, seed: int, wiggle: float = 0.0):
    """A batched ``tanh(W z + x_b) + wiggle·sin(3z)`` and the same map for one sample."""
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(dim, dim, generator=gen, dtype=F64)
    weight *= radius / float(torch.linalg.matrix_norm(weight, ord=2))
    inject = torch.randn(batch, dim, generator=gen, dtype=F64)

    def batched(z: Vec) -> Vec:
        return torch.tanh(z @ weight.T + inject) + wiggle * torch.sin(3 * z)

    def single(b: int) -> Callable[[Vec], Vec]:
        return lambda z: torch.tanh(weight @ z + inject[b]) + wiggle * torch.sin(3 * z)

    return batched, single


def _record_iterates(solver, f, z0) -> tuple[list[Vec], object]:
    seen: list[Vec] = []
    result = solver.run(f, z0, callback=lambda state: seen.append(state.z.clone()))
    return seen, result


@pytest.mark.parametrize("beta", [1.0, 0.6, 1.3])
def test_iterates_match_the_textbook_algorithm(beta):
    batched, single = _tanh_maps(12, batch=2, radius=0.97, seed=3)
    z0 = torch.zeros(2, 12, dtype=F64)
    steps = 14
    solver = Anderson(m=4, beta=beta, lam=1e-6, tol=1e-300, max_iter=steps, safeguard=math.inf)
    seen, _ = _record_iterates(solver, batched, z0)
    assert len(seen) == steps + 1
    for b in range(2):
        want = textbook_anderson(single(b), z0[b], m=4, beta=beta, lam=1e-6, steps=steps)
        for k, (got, ref) in enumerate(zip(seen, want, strict=True)):
            torch.testing.assert_close(got[b], ref, rtol=1e-9, atol=1e-11, msg=f"step {k}")


def test_per_sample_beta_matches_the_textbook_algorithm_for_each_sample():
    batched, single = _tanh_maps(10, batch=3, radius=0.95, seed=5)
    z0 = torch.zeros(3, 10, dtype=F64)
    betas = [1.0, 0.6, 1.5]
    steps = 12
    solver = Anderson(
        m=3, beta=torch.tensor(betas, dtype=F64), lam=1e-6, tol=1e-300, max_iter=steps
    )
    seen, _ = _record_iterates(solver, batched, z0)
    for b, beta in enumerate(betas):
        want = textbook_anderson(single(b), z0[b], m=3, beta=beta, lam=1e-6, steps=steps)
        for k, (got, ref) in enumerate(zip(seen, want, strict=True)):
            torch.testing.assert_close(got[b], ref, rtol=1e-9, atol=1e-11, msg=f"{b}, {k}")


def test_safeguard_rejections_keep_the_window():
    # safeguard=1: every Anderson step that raises the residual at all is rejected.
    # The wiggle makes the map nonlinear enough for Anderson steps to overshoot.
    batched, single = _tanh_maps(16, batch=2, radius=0.5, seed=0, wiggle=0.3)
    z0 = torch.zeros(2, 16, dtype=F64)
    steps = 25
    solver = Anderson(m=5, beta=0.8, lam=1e-6, tol=1e-300, max_iter=steps, safeguard=1.0)
    seen, result = _record_iterates(solver, batched, z0)
    assert int(result.n_rejected.min()) >= 1  # the case exercises the safeguard
    assert result.n_restarts.tolist() == [0, 0]  # a rejection is not a restart
    for b in range(2):
        want = textbook_anderson(
            single(b), z0[b], m=5, beta=0.8, lam=1e-6, steps=steps, safeguard=1.0
        )
        for k, (got, ref) in enumerate(zip(seen, want, strict=True)):
            torch.testing.assert_close(got[b], ref, rtol=1e-8, atol=1e-10, msg=f"{b}, {k}")


# ---------------------------------------------------------------- accelerator path on CPU
@pytest.fixture
def host_syncs(monkeypatch):
    """Count the solvers' host synchronisations (reads of a device value)."""
    calls = {"n": 0}
    real = base._host_bool

    def counting(mask: torch.Tensor) -> bool:
        calls["n"] += 1
        return real(mask)

    monkeypatch.setattr(base, "_host_bool", counting)
    return calls


# Tolerances chosen so that the synchronous solve ends between two checks (3 or 4 steps).
SOLVERS = {
    "anderson": lambda **kw: Anderson(m=5, tol=1e-9, max_iter=300, **kw),
    "forward": lambda **kw: ForwardIteration(tol=3e-10, max_iter=300, **kw),
}


@pytest.mark.parametrize("method", list(SOLVERS))
@pytest.mark.parametrize("check_every", [None, 3])
def test_async_path_gives_the_synchronous_result(monkeypatch, method, check_every):
    problem = problems.tanh_layer(30, spectral_radius=0.9, batch=4, seed=1)
    make = SOLVERS[method]
    reference = make().run(problem.f, problem.z0)
    monkeypatch.setattr(base, "_ASYNC_ON_CPU", True)
    result = make(check_every=check_every).run(problem.f, problem.z0)
    every = check_every or 4
    assert result.all_converged and reference.all_converged
    assert reference.n_iter % every != 0  # the case shows the difference
    assert result.n_iter % every == 0  # the end is only noticed when the device is asked
    assert reference.n_iter < result.n_iter < reference.n_iter + every
    # Samples that converged between two checks stayed frozen: same iterates, same counts.
    assert torch.equal(result.z, reference.z)
    assert torch.equal(result.n_steps, reference.n_steps)
    assert torch.equal(result.status, reference.status)
    assert torch.equal(result.residual, reference.residual)


@pytest.mark.parametrize("check_every", [None, 3])
def test_async_path_asks_the_device_only_every_check_every_steps(
    monkeypatch, host_syncs, check_every
):
    problem = problems.linear_map(20, spectrum="disk", radius=0.99, batch=2)
    solver = Anderson(m=5, tol=1e-300, max_iter=20, check_every=check_every)
    counts: list[int] = []
    solver.run(problem.f, problem.z0, callback=lambda state: counts.append(host_syncs["n"]))
    assert counts[-1] >= 2 * 20  # the CPU path reads the device several times per step
    monkeypatch.setattr(base, "_ASYNC_ON_CPU", True)
    host_syncs["n"] = 0
    counts = []
    solver.run(problem.f, problem.z0, callback=lambda state: counts.append(host_syncs["n"]))
    every = check_every or 4
    # done() runs before each step; only at iterations 0, every, 2·every, ... does it sync.
    want = [sum(1 for i in range(k) if i % every == 0) for k in range(21)]
    assert counts == want
