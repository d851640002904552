"""The speed-up study's two claims on one task's default recipe, without the whole study.

Takes the task's shipped model (the default recipe trained with Anderson on split 0,
:mod:`andersonn_lab.deq.pretrained`; ``--retrain`` trains it again here), then on its test
split measures the forward evaluations Anderson and forward iteration need to reach a
relative residual of 1e-5 (64 test structures, one batch, cap 500), counted per batch (until
its slowest sample stops) and per structure, and how many predictions change between solves
at the training tolerance and at 1e-6. ``andersonn-lab bench deq`` measures the same and
more (both solvers trained, window sweep) at several times the cost.

Run::

    OMP_NUM_THREADS=1 python benchmarks/bench_recipe_speedup.py drugs   # CPU, ~1 min
    OMP_NUM_THREADS=1 python benchmarks/bench_recipe_speedup.py drugs --retrain  # ~20 min
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from andersonn_lab.deq.pretrained import load_pretrained
from andersonn_lab.deq.recipe import default_recipe
from andersonn_lab.deq.study import StudyConfig, measure_solve, prediction_change, results_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("task", choices=("drugs", "mofs", "crystals"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--retrain", action="store_true", help="train instead of shipped model")
    args = parser.parse_args()

    recipe = default_recipe(args.task, smoke=False)
    data = recipe.load()
    started = time.perf_counter()
    if args.retrain:
        fit = recipe.fit(data, device=args.device)
        origin = f"trained in {time.perf_counter() - started:.0f} s"
    else:
        fit = load_pretrained(args.task, dataset=data, device=args.device)
        origin = "shipped model"
    print(f"{args.task}: split 0, test accuracy {fit.test_accuracy:.3f} ({origin})")
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
        f"forward evaluations to 1e-5, per batch: forward {forward['fwd_nfe']}, Anderson "
        f"{anderson['fwd_nfe']}, ratio {forward['fwd_nfe'] / anderson['fwd_nfe']:.2f}; "
        f"per structure: {forward['fwd_steps_mean']:.1f} / {anderson['fwd_steps_mean']:.1f} = "
        f"{forward['fwd_steps_mean'] / anderson['fwd_steps_mean']:.2f}"
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
                "model": "retrained" if args.retrain else "shipped",
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
