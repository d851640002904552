"""StructureImageView in a real browser: its figures never overlap or run past the output.

A JupyterLab server runs a two-cell notebook written here (a rock-salt crystal with the
seven-channel ``electrons`` image, and aspirin with its 2-D depiction); Playwright drives
Debian's Chromium at 1600 and then 1280 pixels wide and reads the boxes of every plotly
figure and picture from the DOM. Screenshots go to ``test-artifacts/``.

Without Chromium or Playwright the test is skipped, except in CI, where it fails.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from browser_helpers import (
    ARTIFACTS,
    CHROMIUM_ARGS,
    LabServer,
    jupyterlab_server,
    require_chromium,
    require_playwright,
)

NOTEBOOK = "layout.ipynb"
CELLS = (
    "from ase.build import bulk\n"
    "from andersonn_lab.widgets import StructureImageView\n"
    "StructureImageView(bulk('NaCl', 'rocksalt', a=5.64), cutoff_scale=1.1, "
    "encoding='electrons', size=8)",
    "StructureImageView('CC(=O)Oc1ccccc1C(=O)O', size=16)",
)
N_FIGURES = 4  # a 3-D view and an image per cell
WIDTHS = (1600, 1280)
RENDER_TIMEOUT_MS = 360_000  # kernel start, imports and four figures on a busy 2-core machine

# True once n figures are in the outputs and plotly has drawn every one of them.
ALL_DRAWN_JS = """
n => {
  const plots = [...document.querySelectorAll('.jp-OutputArea-output .js-plotly-plot')];
  return plots.length >= n && plots.every(p => p.querySelector('.main-svg'));
}
"""

# Per output area that holds a figure: its box, and the boxes of its figures and pictures.
BOXES_JS = """
() => [...document.querySelectorAll('.jp-OutputArea-output')]
  .filter(o => o.querySelector('.js-plotly-plot'))
  .map(o => {
    const box = e => { const b = e.getBoundingClientRect();
      return {x: b.left, y: b.top, w: b.width, h: b.height}; };
    return {area: box(o), scrollWidth: o.scrollWidth, clientWidth: o.clientWidth,
            items: [...o.querySelectorAll('.js-plotly-plot, .widget-html svg')].map(box)};
  })
"""


def _overlap(a: dict[str, float], b: dict[str, float]) -> float:
    """Area shared by two boxes (0 when they only touch)."""
    dx = min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"])
    dy = min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"])
    return max(dx, 0.0) * max(dy, 0.0)


def layout_problems(outputs: list[dict[str, Any]], tolerance: float = 1.0) -> list[str]:
    """What is wrong with the boxes :data:`BOXES_JS` read: overlaps and overflows.

    Examples
    --------
    >>> area = {"x": 0, "y": 0, "w": 500, "h": 400}
    >>> ok = {"x": 0, "y": 0, "w": 200, "h": 100}
    >>> layout_problems([{"area": area, "scrollWidth": 500, "clientWidth": 500,
    ...                   "items": [ok, {**ok, "x": 200}]}])
    []
    >>> problems = layout_problems([{"area": area, "scrollWidth": 600, "clientWidth": 500,
    ...                              "items": [ok, {**ok, "x": 150, "w": 400}]}])
    >>> len(problems), problems[0]
    (3, 'output 0: items 0 and 1 overlap (5000 px²)')
    """
    problems = []
    for n, out in enumerate(outputs):
        area, items = out["area"], out["items"]
        for i in range(len(items)):
            for j in range(i + 1, len(items)):
                shared = _overlap(items[i], items[j])
                if shared > tolerance**2:
                    problems.append(f"output {n}: items {i} and {j} overlap ({shared:.0f} px²)")
        right = area["x"] + area["w"]
        for i, item in enumerate(items):
            if item["x"] + item["w"] > right + tolerance:
                problems.append(
                    f"output {n}: item {i} ends at {item['x'] + item['w']:.0f} px, "
                    f"past the edge of the output area at {right:.0f} px"
                )
        if out["scrollWidth"] > out["clientWidth"] + tolerance:
            problems.append(
                f"output {n}: content {out['scrollWidth']} px wide in {out['clientWidth']} px"
            )
    return problems


@pytest.fixture(scope="module")
def chromium_path() -> str:
    """The system Chromium (skips, or fails in CI, when Chromium or Playwright is missing)."""
    path = require_chromium()
    require_playwright()
    return path


@pytest.fixture(scope="module")
def lab(chromium_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """A JupyterLab server on a folder holding the layout notebook."""
    source = tmp_path_factory.mktemp("layout-notebooks")
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    nbformat.write(notebook, source / NOTEBOOK)
    with jupyterlab_server(source, tmp_path_factory.mktemp("layout-lab")) as server:
        yield server


def _screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def test_structure_image_view_fits_at_1600_and_1280_pixels(chromium_path: str, lab: LabServer):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = browser.new_context(viewport={"width": WIDTHS[0], "height": 1400}).new_page()
            page.set_default_timeout(60_000)
            page.goto(f"{lab.url}/lab/tree/{NOTEBOOK}")
            page.wait_for_selector(".jp-Notebook .jp-CodeCell")
            lab.wait_for_kernel()
            page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
            page.locator(".lm-Menu").last.get_by_text("Run All Cells", exact=True).click()
            try:
                page.wait_for_function(ALL_DRAWN_JS, arg=N_FIGURES, timeout=RENDER_TIMEOUT_MS)
            except Exception:
                _screenshot(page, "layout-timeout.png")
                raise
            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": 1400})
                page.wait_for_timeout(3000)  # JupyterLab and plotly settle after a resize
                outputs = page.evaluate(BOXES_JS)
                shot = _screenshot(page, f"layout-{width}.png")
                assert len(outputs) == len(CELLS), outputs
                assert sum(len(o["items"]) for o in outputs) >= N_FIGURES + 1  # + depiction
                problems = layout_problems(outputs)
                assert not problems, f"at {width} px ({shot}): {problems}"
        finally:
            browser.close()
