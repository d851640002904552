"""Benchmark: how long opening the structure and image viewers takes.

Cases (each the median of 5 runs, after one warm-up that pays plotly's one-off
``FigureWidget`` start-up, which is also reported):

* the largest shipped MOF (``andersonn_lab.datasets.mofs.load_entries()``, 200 atoms): graph
  (``from_atoms``, timed separately) → :class:`StructureViewer`, :class:`ImageViewer`
  (32 x 32, cropped) and the linked :class:`StructureImageView`;
* a drug-like molecule (cetirizine, 26 heavy atoms): SMILES → :class:`StructureViewer`
  (includes the ETKDG + MMFF 3-D embedding) and graph → :class:`StructureViewer`;
* another structure into viewers already shown (what the misclassification inspector does
  on each selection): ``StructureViewer.load(graph)`` and ``ImageViewer.set_graph(graph)``
  switching between the two largest MOFs, which update the drawn traces in place.

Target: graph → figure under 1 s for the 200-atom MOF.

Run with ``python benchmarks/bench_viewers.py``.
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

from andersonn_lab.datasets import mofs
from andersonn_lab.structures import ImageOverflowWarning, from_atoms
from andersonn_lab.widgets.image_viewer import ImageViewer
from andersonn_lab.widgets.linked import StructureImageView
from andersonn_lab.widgets.structure_viewer import StructureViewer

TARGET_S = 1.0
REPEATS = 5
CETIRIZINE = "Clc1ccc(cc1)C(c1ccccc1)N1CCN(CC1)CCOCC(=O)O"


def median_seconds(make: Callable[[], Any], repeats: int = REPEATS) -> float:
    """Median wall time of ``make()`` over ``repeats`` runs."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        make()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> dict[str, float]:
    """Run the benchmark, print a table and return ``{case: seconds}``."""
    warnings.simplefilter("ignore", ImageOverflowWarning)
    start = time.perf_counter()
    StructureViewer("CCO")
    results = {"first viewer in the process (plotly/anywidget start-up)": 0.0}
    results["first viewer in the process (plotly/anywidget start-up)"] = time.perf_counter() - start

    entries = mofs.load_entries()
    biggest = max(entries, key=lambda e: len(e.structure))
    n = len(biggest.structure)
    results[f"MOF {biggest.id} ({n} atoms): from_atoms"] = median_seconds(
        lambda: from_atoms(biggest.structure, name=biggest.id)
    )
    graph = from_atoms(biggest.structure, name=biggest.id)
    mof_key = f"MOF {biggest.id}: graph -> StructureViewer"
    results[mof_key] = median_seconds(lambda: StructureViewer(graph))
    results[f"MOF {biggest.id}: graph -> ImageViewer 32x32"] = median_seconds(
        lambda: ImageViewer(graph)
    )
    results[f"MOF {biggest.id}: graph -> StructureImageView"] = median_seconds(
        lambda: StructureImageView(graph)
    )
    results["cetirizine: SMILES -> StructureViewer (with 3-D embedding)"] = median_seconds(
        lambda: StructureViewer(CETIRIZINE)
    )
    embedded = StructureViewer(CETIRIZINE).controller.graph
    results["cetirizine: graph -> StructureViewer"] = median_seconds(
        lambda: StructureViewer(embedded)
    )
    results["cetirizine: SMILES -> StructureImageView"] = median_seconds(
        lambda: StructureImageView(CETIRIZINE)
    )

    second = sorted(entries, key=lambda e: len(e.structure))[-2]
    graphs = [graph, from_atoms(second.structure, name=second.id)]
    viewer, image = StructureViewer(graph), ImageViewer(graph)
    turn = iter(range(10**6))
    results["MOF -> MOF: StructureViewer.load (in place)"] = median_seconds(
        lambda: viewer.load(graphs[next(turn) % 2])
    )
    results["MOF -> MOF: ImageViewer.set_graph (in place)"] = median_seconds(
        lambda: image.set_graph(graphs[next(turn) % 2])
    )

    width = max(len(k) for k in results)
    for key, seconds in results.items():
        print(f"{key:<{width}}  {seconds * 1000:8.1f} ms")
    verdict = "OK" if results[mof_key] < TARGET_S else "TOO SLOW"
    print(f"target: MOF graph -> figure < {TARGET_S:.0f} s: {verdict}")
    return results


if __name__ == "__main__":
    main()
