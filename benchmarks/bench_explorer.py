"""Benchmark: how fast the convergence explorer redraws after a slider change.

Drives :class:`~andersonn_lab.widgets.ConvergenceExplorer` without a browser
(``threaded=False``: setting a slider's value re-solves and redraws before returning) on a
linear teaching problem with ``d = 1000`` and ``tol = 1e-14``, so that every solve runs
the full ``max_iter = 50`` steps. Alternating changes of the window ``m`` and the mixing
β are timed from setting ``.value`` to the figure being updated (live throttled draws
included), and split into solving and drawing. Also timed: a full redraw of every trace
(history full), and one problem-slider change (which rebuilds the problem).

Target: median slider-change redraw under 100 ms.

Run with ``python benchmarks/bench_explorer.py [--dim 1000] [--changes 40]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

from andersonn_lab.widgets import ConvergenceExplorer

TARGET_MS = 100.0


def _quantiles(values: list[float]) -> tuple[float, float]:
    values = sorted(values)
    p90 = values[min(len(values) - 1, round(0.9 * (len(values) - 1)))]
    return statistics.median(values), p90


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=40)
    args = parser.parse_args()

    # Without the spectrum panel: it recomputes only when the problem changes, and in a
    # worker thread in the threaded widget; benchmarks/bench_spectrum.py times it.
    explorer = ConvergenceExplorer(
        threaded=False,
        spectrum_panel=False,
        problem="linear",
        spectrum="real",
        dim=args.dim,
        tol=1e-14,
        max_iter=50,
    )
    draw_time = [0.0]
    draw = explorer.draw_residuals

    def timed_draw() -> None:
        start = time.perf_counter()
        draw()
        draw_time[0] += time.perf_counter() - start

    explorer.draw_residuals = timed_draw  # the controller's listener calls this
    totals, draws = [], []
    for i in range(args.changes):
        slider, value = (
            (explorer.m, 1 + i % 10) if i % 2 == 0 else (explorer.beta, 0.5 + 0.05 * (i % 10))
        )
        draw_time[0] = 0.0
        start = time.perf_counter()
        slider.value = value
        totals.append(1000 * (time.perf_counter() - start))
        draws.append(1000 * draw_time[0])
        result = explorer.controller.last_results[0]
        assert result.n_iter == 50, result
        assert list(explorer.fig.data[-1].y) == result.rel_residuals[:, 0].tolist()
    solves = [t - d for t, d in zip(totals, draws, strict=True)]

    full = []
    for _ in range(10):
        explorer._drawn = []
        start = time.perf_counter()
        explorer.draw_residuals()
        full.append(1000 * (time.perf_counter() - start))

    start = time.perf_counter()
    explorer.radius.value = 0.9
    rebuild = 1000 * (time.perf_counter() - start)

    print(
        f"convergence explorer, linear problem d={args.dim}, 50 iterations, {len(totals)} changes"
    )
    for name, values in (
        ("slider change -> redrawn", totals),
        ("  of which solving", solves),
        ("  of which drawing", draws),
        (f"full redraw ({len(explorer.fig.data)} traces)", full),
    ):
        median, p90 = _quantiles(values)
        print(f"{name:32s} median {median:7.1f} ms   p90 {p90:7.1f} ms")
    print(f"{'problem slider (rebuild + solve)':32s} {rebuild:7.1f} ms (one change)")
    median = _quantiles(totals)[0]
    verdict = "meets" if median < TARGET_MS else "misses"
    print(f"median {median:.1f} ms {verdict} the {TARGET_MS:.0f} ms target")


if __name__ == "__main__":
    main()
