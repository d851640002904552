"""The speed-up study's two claims on one task's default recipe, without the whole study.

Trains the default recipe once (Anderson, split 0), then on its test split measures the
forward evaluations Anderson and forward iteration need to reach a relative residual of 1e-5
(64 test structures, one batch, cap 500), and how many predictions change between solves at
the training tolerance and at 1e-6. ``andersonn-lab bench deq`` measures the same and more
(both solvers trained, window sweep) at several times the cost.

Run::

    OMP_NUM_THREADS=1 python benchmarks/bench_recipe_speedup.py drugs   # CPU, ~20 min
    python benchmarks/bench_recipe_speedup.py drugs --device cuda
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from andersonn_lab.deq.recipe import default_recipe
from andersonn_lab.deq.study import StudyConfig, measure_solve, prediction_change, results_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("task", choices=("drugs", "mofs", "crystals"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--samples", type=int, default=64)
    args = parser.parse_args()

    recipe = default_recipe(args.task, smoke=False)
    data = recipe.load()
    started = time.perf_counter()
    fit = recipe.fit(data, device=args.device)
    print(
        f"{args.task}: split 0, test accuracy {fit.test_accuracy:.3f} "
        f"(trained in {time.perf_counter() - started:.0f} s)"
    )
    test = fit.subsets[2]
    positions = test.indices[: args.samples]
    device = next(fit.model.parameters()).device
    images, labels = data.images[positions].to(device), data.labels[positions].to(device)
    m = recipe.forward_solver.get("m", 2)
    rows = {
        method: measure_solve(
            fit.model,
            images,
            labels,
            method=method,
            m=m,
            beta=1.0,
            tol=1e-5,
            max_iter=500,
            repeats=1,
        )
        for method in ("anderson", "forward")
    }
    anderson, forward = rows["anderson"], rows["forward"]
    print(
        f"forward evaluations to 1e-5: forward {forward['fwd_nfe']}, Anderson "
        f"{anderson['fwd_nfe']}, ratio {forward['fwd_nfe'] / anderson['fwd_nfe']:.2f}"
    )
    config = StudyConfig(device=args.device).for_task(args.task)
    change = prediction_change(fit.model, data.images[test.indices], config)
    print(
        f"predictions changed between tol {change['fast_tol']} and {change['reference_tol']}:"
        f" {change['changed']} of {change['n']} ({change['changed_fraction']:.2%})"
    )
    out = results_dir() / f"recipe_speedup_{args.task}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    keep = (int, float, bool, str, type(None))
    out.write_text(
        json.dumps(
            {
                "test_accuracy": fit.test_accuracy,
                "anderson": {k: v for k, v in anderson.items() if isinstance(v, keep)},
                "forward": {k: v for k, v in forward.items() if isinstance(v, keep)},
                "prediction_change": {k: v for k, v in change.items() if isinstance(v, keep)},
            },
            indent=1,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
