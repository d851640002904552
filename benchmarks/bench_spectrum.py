"""Benchmark: the ten leading Jacobian eigenvalues of a trained DEQ at one structure's fixed point.

Trains the crystals recipe (``default_recipe("crystals")``: contractive cell, 32 channels on
32 × 32 images, so the state of one structure has 32 × 32 × 32 = 32,768 entries) for a few
epochs on the CPU, solves one test structure's fixed point with Anderson to a relative
tolerance of 1e-5, and times :func:`andersonn_lab.solvers.jacobian_spectrum` with ``k = 10``
(ARPACK on forward-mode Jacobian-vector products, float32, ``tol = 1e-5``): once cold (the
first forward-mode product in the process pays a one-time set-up) and then ``--repeats``
times warm. It checks the answer two ways: ``ρ(J)`` against forward iteration's contraction
measured near the fixed point, and the leading eigenvalue against a power iteration.

Target: the ten leading eigenvalues in under 5 s on the 2-core CPU (warm).

Run with ``OMP_NUM_THREADS=1 python benchmarks/bench_spectrum.py [--epochs 3] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch

from andersonn_lab.deq.recipe import default_recipe
from andersonn_lab.solvers import forward_rate, jacobian_spectrum, make_solver
from andersonn_lab.solvers.spectrum import jvp
from andersonn_lab.structures import ImageOverflowWarning

TARGET_S = 5.0


def _power_iteration(f, z, steps: int = 300) -> float:
    """``|λ_max|`` from ``‖J^n v‖^(1/n)`` growth: an independent check of ``ρ(J)``."""
    v = torch.randn(z.shape, generator=torch.Generator().manual_seed(1), dtype=z.dtype)
    v = v / torch.linalg.vector_norm(v)
    norms = []
    for _ in range(steps):
        v = jvp(f, z, v)
        norm = torch.linalg.vector_norm(v)
        norms.append(float(norm))
        v = v / norm
    tail = norms[steps // 2 :]
    return float(torch.tensor(tail).log().mean().exp())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--item", type=int, default=0, help="index into the test split")
    args = parser.parse_args()

    recipe = default_recipe("crystals")
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImageOverflowWarning)
        fit = recipe.fit(device="cpu", epochs=args.epochs)
    train_s = time.perf_counter() - start
    model = fit.model.eval()
    image, _ = fit.subsets[2][args.item]
    problem = model.fixed_point_problem(image[None], device="cpu")
    solve = make_solver("anderson", m=5, tol=1e-5, max_iter=500).run(problem.f, problem.z0)
    z_star = solve.z
    d = z_star[0].numel()
    residual = float(solve.residual[0])
    print(
        f"crystals recipe, {args.epochs} epochs in {train_s:.0f} s (test accuracy "
        f"{fit.test['acc']:.3f}); test structure {args.item}: state {tuple(z_star.shape)}, "
        f"d = {d}; fixed point: {solve.n_iter} Anderson steps, residual {residual:.1e}"
    )

    def spectrum():
        return jacobian_spectrum(problem.f, z_star, k=args.k, method="arnoldi")

    start = time.perf_counter()
    cold = spectrum()
    cold_s = time.perf_counter() - start
    warm = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        result = spectrum()
        warm.append(time.perf_counter() - start)
    median = statistics.median(warm)
    start = time.perf_counter()
    f_calls = 50
    with torch.no_grad():
        for _ in range(f_calls):
            problem.f(z_star)
    f_ms = 1000 * (time.perf_counter() - start) / f_calls
    v = torch.randn_like(z_star)
    start = time.perf_counter()
    for _ in range(f_calls):
        jvp(problem.f, z_star, v)
    jvp_ms = 1000 * (time.perf_counter() - start) / f_calls

    values = result.eigenvalues[0]
    rho = float(result.spectral_radius[0])
    rates, _ = forward_rate(problem.f, z_star, steps=400)
    power = _power_iteration(problem.f, z_star)
    print(f"k = {args.k} leading eigenvalues (ARPACK, float32 JVPs, tol 1e-5):")
    print("  " + ", ".join(f"{complex(v).real:.5f}{complex(v).imag:+.5f}j" for v in values))
    print(
        f"  cold (first forward-mode product in the process): {cold_s:.2f} s; warm: median "
        f"{median:.2f} s of {args.repeats} ({', '.join(f'{t:.2f}' for t in warm)}); "
        f"{result.n_jvp} JVPs (warm run); one f {f_ms:.2f} ms, one JVP {jvp_ms:.2f} ms"
    )
    print(
        f"  rho(J) = {rho:.5f}; power iteration {power:.5f}; forward iteration measured near z* "
        f"{float(rates[0]):.5f} ({100 * abs(float(rates[0]) - rho) / rho:.2f}% off)"
    )
    assert torch.allclose(cold.eigenvalues, result.eigenvalues, atol=1e-4), "runs disagree"
    verdict = "meets" if median < TARGET_S else "misses"
    print(f"median {median:.2f} s {verdict} the {TARGET_S:.0f} s target (warm)")


if __name__ == "__main__":
    main()
