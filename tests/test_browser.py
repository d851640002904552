"""Notebook 1 in a real browser: the ConvergenceExplorer renders, with its spectrum panel,
and answers its m slider.

A JupyterLab server runs on a copy of ``notebooks/`` (with ``CI=1``, so the notebook runs in
smoke mode) and Playwright drives Debian's Chromium through it: open the notebook, Run All
Cells, wait for the explorer's sliders and residual plot, press ArrowRight on the ``m``
slider and check that the plot changes. Screenshots go to ``test-artifacts/``; with
``ANDERSONN_LAB_UPDATE_SCREENSHOT=1`` the explorer's one is copied to ``docs/explorer.png``.

Without Chromium or Playwright the test is skipped, except in CI, where it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import (
    ARTIFACTS,
    CHROMIUM_ARGS,
    ROOT,
    SCREENSHOT_ENV,
    LabServer,
    jupyterlab_server,
)

NOTEBOOK = "01_fixed_points_and_anderson.ipynb"
RUN_ALL_TIMEOUT_MS = 360_000  # the whole notebook: ~1 min on a busy 2-core machine
WIDGET_TIMEOUT_MS = 180_000
PLOT_CHANGE_TIMEOUT_MS = 60_000
VIEWPORT = {"width": 1700, "height": 1300}

# True once every code cell shows an execution count ("[12]:"), none is queued ("[*]:").
ALL_CELLS_RAN_JS = """
() => {
  const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')];
  return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
}
"""

# The text of the first error output, if any ("" when none).
ERROR_TEXT_JS = """
() => {
  const error = document.querySelector(
    '.jp-Notebook .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]');
  return error ? error.textContent : '';
}
"""


@pytest.fixture(scope="module")
def lab(chromium_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """A JupyterLab server on a temporary copy of ``notebooks/``, in smoke mode (``CI=1``)."""
    workdir = tmp_path_factory.mktemp("lab")
    with jupyterlab_server(ROOT / "notebooks", workdir, env={"CI": "1"}) as server:
        yield server


@pytest.fixture()
def page(chromium_path: str, lab: LabServer) -> Iterator[Any]:
    """A fresh Chromium page (Playwright's sync API); closed after the test."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True
        )
        try:
            context = browser.new_context(viewport=VIEWPORT)
            page = context.new_page()
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


def _screenshot(page: Any, name: str, element: Any | None = None) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    (element or page).screenshot(path=str(path))
    return path


def _run_all_cells(page: Any) -> None:
    """Run → Run All Cells, through the menu bar like a user."""
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    menu = page.locator(".lm-Menu").last
    menu.get_by_text("Run All Cells", exact=True).click()


def _wait_for_all_cells(page: Any, lab: LabServer) -> None:
    """Wait until every code cell has run; fail with the error text if one raised."""
    deadline = time.monotonic() + RUN_ALL_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        error = page.evaluate(ERROR_TEXT_JS)
        if error:
            _screenshot(page, "explorer-error.png")
            pytest.fail(f"a notebook cell raised in the browser:\n{error[-3000:]}")
        if page.evaluate(ALL_CELLS_RAN_JS):
            return
        page.wait_for_timeout(1000)
    _screenshot(page, "explorer-timeout.png")
    pytest.fail(
        f"notebook cells did not all run within {RUN_ALL_TIMEOUT_MS / 1000:.0f} s; "
        f"server log:\n{lab.log_tail()}"
    )


def _trace_count(plot: Any) -> int:
    return plot.locator(".scatterlayer .trace").count()


def _paths(plot: Any) -> list[str]:
    return plot.locator(".scatterlayer .trace path.js-line").evaluate_all(
        "paths => paths.map(p => p.getAttribute('d') || '')"
    )


def test_explorer_renders_and_answers_the_m_slider(page: Any, lab: LabServer) -> None:
    page.goto(f"{lab.url}/lab/tree/{NOTEBOOK}", wait_until="domcontentloaded")
    notebook = page.locator(".jp-NotebookPanel .jp-Notebook").first
    notebook.locator(".jp-Cell").first.wait_for(state="visible", timeout=WIDGET_TIMEOUT_MS)
    lab.wait_for_kernel(timeout=WIDGET_TIMEOUT_MS / 1000)  # opening the notebook starts it
    _run_all_cells(page)

    # The explorer: the output that holds the "tolerance" slider (the AndersonStepper above
    # it has a "window m" slider too, but no tolerance).
    m_label = page.locator(".widget-label", has_text="window m")
    tol_label = page.locator(".widget-label", has_text="tolerance")
    explorer = page.locator(".jp-OutputArea-output", has=tol_label).first
    explorer.wait_for(state="visible", timeout=WIDGET_TIMEOUT_MS)
    _wait_for_all_cells(page, lab)  # slider moves wait while any cell runs
    assert "smoke mode" in notebook.inner_text(), "the server's CI=1 did not reach the kernel"

    sliders = explorer.locator(".widget-slider")
    assert sliders.count() >= 5, "the explorer's sliders are missing"
    plot = explorer.locator(".js-plotly-plot").first
    plot.wait_for(state="visible", timeout=WIDGET_TIMEOUT_MS)
    page.wait_for_function(
        "el => el.querySelectorAll('.scatterlayer .trace').length >= 1",
        arg=plot.element_handle(),
        timeout=WIDGET_TIMEOUT_MS,
    )
    before_count, before_paths = _trace_count(plot), _paths(plot)
    assert before_count >= 1 and any(before_paths), "no residual trace drawn"

    m_slider = explorer.locator(".widget-slider", has=m_label).first
    readout = m_slider.locator(".widget-readout")
    before_m = int(readout.inner_text().strip())
    handle = m_slider.locator(".noUi-handle").first
    handle.focus()
    presses = 3
    for _ in range(presses):
        handle.press("ArrowRight")
        page.wait_for_timeout(300)
    page.wait_for_function(
        "([el, text]) => el.textContent.trim() === text",
        arg=[readout.element_handle(), str(before_m + presses)],
        timeout=10_000,
    )
    # Each new m re-solves; the previous run stays as a faded line, so traces are added.
    page.wait_for_function(
        "([el, n]) => el.querySelectorAll('.scatterlayer .trace').length > n",
        arg=[plot.element_handle(), before_count],
        timeout=PLOT_CHANGE_TIMEOUT_MS,
    )
    page.wait_for_timeout(1500)  # let the live redraw (~10 Hz) settle before the picture
    after_paths = _paths(plot)
    assert after_paths != before_paths, "the residual plot did not change"
    legend = explorer.get_by_text(f"anderson m={before_m + presses}")
    legend.first.wait_for(timeout=PLOT_CHANGE_TIMEOUT_MS)  # the new run's trace is named

    # The spectrum panel: eigenvalues of J at the fixed point drawn as points, ρ(J) named.
    spectrum = explorer.locator(".js-plotly-plot", has_text="eigenvalues of J").first
    spectrum.wait_for(state="visible", timeout=WIDGET_TIMEOUT_MS)
    try:
        page.wait_for_function(
            "el => el.querySelectorAll('.scatterlayer .trace .points path').length >= 200",
            arg=spectrum.element_handle(),
            timeout=WIDGET_TIMEOUT_MS,
        )
    except Exception:
        _screenshot(page, "spectrum-missing.png")
        print(spectrum.inner_html()[:3000])
        raise
    explorer.locator(".widget-html", has_text="ρ(J) = 0.9500").first.wait_for(
        timeout=WIDGET_TIMEOUT_MS
    )

    _screenshot(page, "notebook-page.png")
    _screenshot(page, "explorer.png", explorer)
    if os.environ.get(SCREENSHOT_ENV) == "1":
        # For the README: room for forward iteration to converge (max iter → its maximum),
        # the crossover panel filled by a sweep, then a picture of the explorer.
        max_iter = explorer.locator(
            ".widget-slider", has=page.locator(".widget-label", has_text="max iter")
        ).first
        max_iter.locator(".noUi-handle").first.press("End")
        page.wait_for_function(
            "el => el.textContent.trim() === '1000'",
            arg=max_iter.locator(".widget-readout").element_handle(),
            timeout=10_000,
        )
        explorer.locator(".widget-html", has_text="converged").first.wait_for(
            timeout=PLOT_CHANGE_TIMEOUT_MS
        )
        crossover = explorer.locator(".js-plotly-plot", has_text="crossover").first
        explorer.get_by_role("button", name="Sweep m").click()
        page.wait_for_function(
            "el => el.querySelectorAll('.scatterlayer .trace').length >= 1",
            arg=crossover.element_handle(),
            timeout=PLOT_CHANGE_TIMEOUT_MS,
        )
        page.wait_for_timeout(3000)  # the sweep draws point by point
        shot = _screenshot(page, "explorer-readme.png", explorer)
        shutil.copy2(shot, ROOT / "docs" / "explorer.png")
