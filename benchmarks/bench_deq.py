"""The DEQ speed-up and crossover study: Anderson vs forward iteration on each task.

Trains the same DEQ with both solvers (same seed, data, tolerance and cap), then measures
forward/backward evaluations and wall time to a tight tolerance, training time to a target
validation accuracy, the predictions changed by inference at the training tolerance, and a
sweep of Anderson's window ``m`` and mixing ``β`` (wall time, evaluations, memory). Prints a
table and writes ``deq_study.json`` and ``deq_study.png`` to ``benchmarks/results/``. See
:mod:`andersonn_lab.deq.study`.

Usage::

    python benchmarks/bench_deq.py --quick          # tiny model on crystals, a few minutes
    python benchmarks/bench_deq.py                  # all tasks, the default recipe
    python benchmarks/bench_deq.py --tasks mofs --m-values 0 2 5 10 --betas 0.5 1.0
"""

from __future__ import annotations

from andersonn_lab.deq.study_cli import main

if __name__ == "__main__":
    raise SystemExit(main())
