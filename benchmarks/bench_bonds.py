"""Benchmark: bond rules on the shipped MOFs (speed, and what each rule finds).

For ``--n`` MOFs of ``data/mofs/mofs.npz`` (a seeded sample; ``--n 0`` for all of them) it builds
the atom-bond network with ``bonds="covalent"`` (``cutoff_scale=1.0``, the MOFs' setting
before the nearest-shell rule) and with the default ``bonds="nearest-shell"``, and reports:

* the time of :func:`~andersonn_lab.structures.from_atoms` on 200-atom MOFs (median of 5);
* bonds per MOF, metal-non-metal bonds, and metal atoms without any bond under each rule;
* how many non-metal-non-metal bonds and metal-non-metal bonds of the covalent rule the
  nearest-shell rule keeps.

Run with ``OMP_NUM_THREADS=1 python benchmarks/bench_bonds.py --n 100``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from andersonn_lab.datasets.mofs import load_entries
from andersonn_lab.structures import StructureError, from_atoms
from andersonn_lab.structures.bonds import is_metal


def _pairs(graph) -> set[tuple[int, int, tuple[int, int, int]]]:
    """Every bond instance of a graph as (u, v, shift)."""
    return {(u, v, shift) for u, v, data in graph.edges(data=True) for shift in data["shifts"]}


def _median_ms(func, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="MOFs sampled (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    entries = load_entries()
    big = [e for e in entries if len(e.structure) == 200][:5]
    for rule in ("covalent", "nearest-shell"):
        times = [_median_ms(lambda e=e, r=rule: from_atoms(e.structure, bonds=r)) for e in big]
        print(
            f"from_atoms, bonds={rule!r}, {len(big)} MOFs of 200 atoms: "
            f"median {statistics.median(times):.0f} ms (range {min(times):.0f}-{max(times):.0f})"
        )

    if args.n:
        picked = np.random.default_rng(args.seed).choice(len(entries), args.n, replace=False)
        entries = [entries[int(k)] for k in sorted(picked)]
    totals = dict.fromkeys(
        (
            "bonds_old",
            "bonds_new",
            "mx_old",
            "mx_new",
            "nn_old",
            "nn_kept",
            "mx_kept",
            "bare_metal_old",
            "bare_metal_new",
            "metal_atoms",
            "mm_old",
            "mm_new",
            "failed_old",
            "failed_new",
        ),
        0,
    )
    for entry in entries:
        atoms = entry.structure
        metal = np.array([is_metal(z) for z in atoms.numbers])
        try:
            old = from_atoms(atoms, bonds="covalent")
        except StructureError:
            totals["failed_old"] += 1
            continue
        try:
            new = from_atoms(atoms)
        except StructureError:
            totals["failed_new"] += 1
            continue
        old_pairs, new_pairs = _pairs(old), _pairs(new)
        for key, graph, pairs in (("old", old, old_pairs), ("new", new, new_pairs)):
            totals[f"bonds_{key}"] += len(pairs)
            totals[f"mx_{key}"] += sum(metal[u] != metal[v] for u, v, _ in pairs)
            totals[f"mm_{key}"] += sum(metal[u] and metal[v] for u, v, _ in pairs)
            degree = dict(graph.degree)
            totals[f"bare_metal_{key}"] += sum(
                1 for n in graph.nodes if metal[n] and degree.get(n, 0) == 0
            )
        totals["metal_atoms"] += int(metal.sum())
        nn_old = {p for p in old_pairs if not metal[p[0]] and not metal[p[1]]}
        mx_old = {p for p in old_pairs if metal[p[0]] != metal[p[1]]}
        totals["nn_old"] += len(nn_old)
        totals["nn_kept"] += len(nn_old & new_pairs)
        totals["mx_kept"] += len(mx_old & new_pairs)
    n = len(entries) - totals["failed_old"] - totals["failed_new"]
    print(
        f"{n} MOFs compared, {totals['metal_atoms']} metal atoms; no bonds at all: "
        f"covalent {totals['failed_old']}, nearest-shell {totals['failed_new']} (left out)"
    )
    print("| | covalent (1.0) | nearest-shell |")
    print("|---|---|---|")
    print(f"| bonds per MOF | {totals['bonds_old'] / n:.1f} | {totals['bonds_new'] / n:.1f} |")
    print(f"| metal-non-metal bonds | {totals['mx_old']} | {totals['mx_new']} |")
    print(f"| metal-metal bonds | {totals['mm_old']} | {totals['mm_new']} |")
    print(
        f"| metal atoms without a bond | {totals['bare_metal_old']} | {totals['bare_metal_new']} |"
    )
    print(
        f"non-metal bonds of the covalent rule kept: {totals['nn_kept']} / {totals['nn_old']}; "
        f"metal-non-metal bonds kept: {totals['mx_kept']} / {totals['mx_old']}"
    )


if __name__ == "__main__":
    main()
