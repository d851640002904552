"""Forward iteration vs our Anderson vs TorchDEQ's Anderson, side by side in one run.

For every problem it prints function evaluations, median wall time to the same tolerance over
interleaved repeats, the share of wall time spent outside ``f`` (the solver's own cost), and
the ratio of our Anderson's time to TorchDEQ's (``pip install -e ".[bench]"``; skipped with a
note when TorchDEQ is missing). On CUDA it also measures what checking for convergence every
step (a host-device synchronisation per step) costs against the default of every 4 steps.

Window: our ``m`` counts past differences (``m + 1`` stored iterates); TorchDEQ's ``m``
counts stored iterates, so ours ``m = 5`` is compared with TorchDEQ ``m = 6``: the same window.
TorchDEQ's ridge is absolute, ours relative; both get ``lam = 1e-4``.

Usage::

    python benchmarks/bench_solvers.py [--quick] [--repeats 3] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from andersonn_lab.solvers import problems, solve

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Row:
    problem: str
    solver: str
    nfe: int
    converged: bool
    seconds: float
    outside_f: float


class TimedMap:
    """Wrap ``f``: count calls and time spent inside (synchronising on CUDA)."""

    def __init__(self, f: Callable[[torch.Tensor], torch.Tensor], device: torch.device) -> None:
        self.f, self.cuda = f, device.type == "cuda"
        self.calls, self.seconds = 0, 0.0

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        if self.cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = self.f(z)
        if self.cuda:
            torch.cuda.synchronize()
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return out


def run_ours(problem, method: str, tol: float, max_iter: int, **options):
    def go(f):
        result = solve(f, problem.z0, method=method, tol=tol, max_iter=max_iter, **options)
        return result.all_converged

    return go


def run_torchdeq(problem, tol: float, max_iter: int, window: int):
    from torchdeq.solver.anderson import anderson_solver

    def go(f):
        _, _, info = anderson_solver(
            f, problem.z0, max_iter=max_iter, tol=tol, stop_mode="rel", m=window, lam=1e-4
        )
        return bool((info["rel_lowest"] < tol).all())

    return go


def timed_run(problem, runner, device: torch.device) -> tuple[float, float, int, bool]:
    """One run: (total seconds, seconds inside f, calls to f, converged)."""
    timed = TimedMap(problem.f, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    converged = runner(timed)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, timed.seconds, timed.calls, converged


def measure_all(problem, runners: dict, repeats: int, device: torch.device) -> dict[str, Row]:
    """Run every solver ``repeats`` times, interleaved, so that machine noise hits all alike."""
    runs: dict[str, list] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, runner in runners.items():
            runs[name].append(timed_run(problem, runner, device))
    rows = {}
    for name, results in runs.items():
        totals = [total for total, *_ in results]
        outside = [(total - inside) / total for total, inside, _, _ in results]
        _, _, calls, converged = results[-1]
        rows[name] = Row(
            problem.name,
            name,
            calls,
            converged,
            statistics.median(totals),
            statistics.median(outside),
        )
    return rows


def state_pass_seconds(z0: torch.Tensor, repeats: int = 20) -> float:
    """Median time of one copy of the state: the unit of memory traffic per solver step."""
    src, dst = z0.clone().normal_(), torch.empty_like(z0)
    times = []
    for _ in range(repeats):
        if z0.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        dst.copy_(src)
        if z0.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cases(quick: bool, device: torch.device):
    batch = 8 if quick else 32
    conv_size = 16 if quick else 32
    return [
        (
            "linear clustered d=1000",
            problems.linear_map(
                1000, spectrum="clustered", radius=0.95, batch=8, dtype=torch.float32, device=device
            ),
            1e-5,
            500,
        ),
        (
            "linear disk d=1000",
            problems.linear_map(
                1000, spectrum="disk", radius=0.95, batch=8, dtype=torch.float32, device=device
            ),
            1e-5,
            500,
        ),
        (
            "tanh symmetric d=500",
            problems.tanh_layer(
                500,
                spectral_radius=0.95,
                symmetric=True,
                batch=16,
                dtype=torch.float32,
                device=device,
            ),
            1e-5,
            500,
        ),
        (
            f"conv 48x{conv_size}x{conv_size} b{batch} std .01",
            problems.conv_cell(size=conv_size, batch=batch, weight_std=0.01, device=device),
            1e-5,
            100,
        ),
        (
            f"conv 48x{conv_size}x{conv_size} b{batch} std .02",
            problems.conv_cell(size=conv_size, batch=batch, weight_std=0.02, device=device),
            1e-4,
            300,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller conv cell and batch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", type=Path, default=RESULTS / "solvers.json")
    args = parser.parse_args()
    device = torch.device(args.device)
    try:
        import torchdeq  # noqa: F401

        have_torchdeq = True
    except ImportError:
        have_torchdeq = False
        print("TorchDEQ not installed: pip install -e '.[bench]' to compare with it")
    print(f"device: {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")

    rows: list[Row] = []
    header = (
        f"{'problem':34} {'solver':17} {'nfe':>5} {'conv':>5} {'time s':>8} "
        f"{'outside f':>9} {'vs TorchDEQ':>11}"
    )
    print(header)
    print("-" * len(header))
    for label, problem, tol, max_iter in cases(args.quick, device):
        problem.name = label
        runners = {
            "forward": run_ours(problem, "forward", tol, max_iter),
            "anderson m=5": run_ours(problem, "anderson", tol, max_iter, m=5),
        }
        if have_torchdeq:
            runners["torchdeq m=6"] = run_torchdeq(problem, tol, max_iter, window=6)
        for runner in runners.values():  # warm-up
            runner(problem.f)
        measured = measure_all(problem, runners, args.repeats, device)
        rows.extend(measured.values())
        for name, row in measured.items():
            ratio = ""
            if name == "anderson m=5" and "torchdeq m=6" in measured:
                ratio = f"{row.seconds / measured['torchdeq m=6'].seconds:.2f}x"
            print(
                f"{label:34} {name:17} {row.nfe:5d} {str(row.converged):>5} "
                f"{row.seconds:8.3f} {row.outside_f:9.1%} {ratio:>11}"
            )
        if label.startswith("conv"):
            ours = measured["anderson m=5"]
            per_step = ours.seconds * ours.outside_f / max(ours.nfe - 1, 1)
            one_pass = state_pass_seconds(problem.z0)
            in_f = ours.seconds * (1 - ours.outside_f) / ours.nfe
            print(
                f"{'':34} anderson outside f per step {per_step * 1e3:.1f} ms = "
                f"{per_step / one_pass:.0f} copies of the state ({one_pass * 1e3:.2f} ms each); "
                f"one f call {in_f * 1e3:.1f} ms"
            )

    sync = None
    if device.type == "cuda":
        problem = cases(args.quick, device)[3][1]
        every = {}
        for check_every in (1, 4):
            runner = run_ours(problem, "anderson", 1e-5, 100, m=5, check_every=check_every)
            runner(problem.f)
            rows_ = measure_all(problem, {"anderson": runner}, args.repeats, device)
            every[check_every] = rows_["anderson"].seconds
        sync = {"check_every_1_s": every[1], "check_every_4_s": every[4]}
        print(
            f"\nCUDA convergence check every step: {every[1]:.4f} s; every 4 steps: "
            f"{every[4]:.4f} s (ratio {every[1] / every[4]:.2f})"
        )
    else:
        print("\nCUDA sync study skipped: no CUDA device")

    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "device": str(device),
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "rows": [asdict(row) for row in rows],
                "cuda_sync": sync,
            },
            indent=2,
        )
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
