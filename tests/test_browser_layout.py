"""Every widget in a real browser: no overlaps, nothing past the output, and quick answers.

A JupyterLab server runs one notebook written here, a cell per widget (StructureImageView of
a rock-salt crystal and of aspirin, ConvergenceExplorer, AndersonStepper, StructureViewer,
ImageViewer, TrainingDashboard after a tiny run, MisclassificationInspector of an untrained
tiny DEQ on ten molecules, and a figure drawn through ``sync_traces``). Playwright drives
Debian's Chromium and

* at 1600 and 1280 pixels wide reads the boxes of every leaf widget and figure from the DOM:
  no two overlap and none runs past its output area;
* clicks Stop during a 1000-step forward run at d = 2000 and times, in the page, the click
  until the status line says the run stopped (limit 5 s for busy CI machines; about 0.15 s
  on the 2-core development machine);
* chooses structures in the inspector and times, in the page, until the probability panel
  names the new structure (limit 5 s; 0.05 to 0.3 s on the development machine);
* restyles a lines trace and a markers trace in one batch: the markers stay markers.

Measured times go to ``test-artifacts/browser-timings.json`` (and are printed), screenshots
to ``test-artifacts/``. Without Chromium or Playwright the tests are skipped, except in CI,
where they fail.
"""

from __future__ import annotations

import json
import re
import time
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
)

NOTEBOOK = "layout.ipynb"
SETUP = """\
import os, torch
torch.set_num_threads(1)
from types import SimpleNamespace
from andersonn_lab import widgets as aw
"""
INSPECTOR = """\
from andersonn_lab.deq import DEQClassifier
from andersonn_lab.structures import from_smiles, node_neighbor_image

SMILES = ["CCO", "c1ccccc1", "CC(=O)O", "CCN", "OCCO", "CC#N", "C1CC1", "CCCl", "NCC(=O)O", "CO"]


class TinyTask(torch.utils.data.Dataset):  # ids, entries, class names, graphs: a task in small
    encoding, image_size = "adjacency", 8
    class_names = ("a small molecule of few atoms", "a larger molecule with more atoms")

    def __init__(self):
        self.ids = [f"molecule-{i}" for i in range(len(SMILES))]
        self.labels = [int(len(s) > 4) for s in SMILES]
        self._graphs = [from_smiles(s) for s in SMILES]
        self.images = torch.stack([node_neighbor_image(g, size=8) for g in self._graphs])

    def __len__(self):
        return len(SMILES)

    def __getitem__(self, i):
        return self.images[i], self.labels[i]

    def graph(self, i):
        return self._graphs[i]


torch.manual_seed(0)
model = DEQClassifier(3, 2, channels=4, hidden=4, groups=2, pool=2,
                      forward_solver={"tol": 1e-5, "max_iter": 40})
inspector = aw.MisclassificationInspector(model, TinyTask())
inspector
"""
DASHBOARD = """\
from torch.utils.data import TensorDataset
tiny = {"channels": 4, "hidden": 4, "groups": 2, "pool": 1}
data = TensorDataset(torch.rand(8, 3, 6, 6), torch.tensor([0, 1] * 4))
board = aw.TrainingDashboard.compare(
    {"anderson": {"model": tiny}, "forward": {"model": {**tiny, "forward_solver":
     {"method": "forward", "max_iter": 10}}}}, data, epochs=1, batch_size=4, threaded=False)
_ = board.run()
board.widget
"""
EXPLORER = """\
# the first solve (1000 steps at d = 2000) goes on in a worker thread after the cell ends
explorer = aw.ConvergenceExplorer(problem="linear", dim=2000, method="forward", max_iter=1000,
                                  tol=1e-14, radius=0.999)
explorer
"""
MARKERS = """\
import dataclasses
import ipywidgets as w
import plotly.graph_objects as go
from andersonn_lab.widgets.explorer import sync_traces
from andersonn_lab.widgets.explorer_records import PlotTrace

xs = tuple(float(x) for x in range(30))
line = PlotTrace("line", xs, tuple(1 + x for x in xs), "current", "anderson", "#1f77b4", key=(1,))
dots = PlotTrace("dots", xs, tuple(40 - x for x in xs), "unconverged", "anderson", "#d62728",
                 mode="markers", key=(1,))
marks_fig = go.FigureWidget(layout={"width": 420, "height": 300})
drawn = sync_traces(marks_fig, [line, dots], [])


def restyle(_):  # one batch: the line changes its mode, the dots only their data
    global drawn
    new = [dataclasses.replace(line, mode="lines", key=(2,)),
           dataclasses.replace(dots, y=tuple(30 - x for x in xs), key=(2,))]
    drawn = sync_traces(marks_fig, new, drawn)
    done.value = "restyled"


button, done = w.Button(description="restyle"), w.HTML("waiting")
button.on_click(restyle)
w.VBox([w.HBox([button, done]), marks_fig])
"""
CELLS = {
    "setup": SETUP,
    "linked-crystal": "from ase.build import bulk\n"
    "aw.StructureImageView(bulk('NaCl', 'rocksalt', a=5.64), cutoff_scale=1.1, "
    "encoding='electrons', size=8)",
    "linked-molecule": "aw.StructureImageView('CC(=O)Oc1ccccc1C(=O)O', size=16)",
    "explorer": EXPLORER,
    "stepper": "aw.AndersonStepper()",
    "structure": "aw.StructureViewer('CC(=O)Oc1ccccc1C(=O)O')",
    "image": "aw.ImageViewer('CC(=O)Oc1ccccc1C(=O)O', encoding='electrons', size=16)",
    "dashboard": DASHBOARD,
    "inspector": INSPECTOR,
    "markers": MARKERS,
}
"""Cell name → source; every cell but the first shows one widget."""
N_WIDGETS = len(CELLS) - 1
WIDTHS = (1600, 1280)
RENDER_TIMEOUT_MS = 480_000  # kernel start, imports, a tiny training run, many figures
STOP_LIMIT_S = 5.0  # generous for a busy CI machine; 0.12 to 0.18 s on the development machine
SELECT_LIMIT_S = 5.0
TIMINGS = ARTIFACTS / "browser-timings.json"

# True once every code cell has run (an execution count, none queued) and plotly has drawn
# every figure in the outputs; an error output is returned as its text.
ALL_DRAWN_JS = """
n => {
  const error = document.querySelector(
    '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]');
  if (error) return error.textContent;
  const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')];
  const ran = prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
  const outputs = [...document.querySelectorAll('.jp-OutputArea-output')]
    .filter(o => o.querySelector('.jupyter-widgets, .js-plotly-plot'));
  const plots = [...document.querySelectorAll('.jp-OutputArea-output .js-plotly-plot')];
  return ran && outputs.length >= n && plots.every(p => p.querySelector('.main-svg'));
}
"""

# Per widget output: its box, and the boxes of its leaf widgets (controls, figures, HTML,
# pictures), outermost first: a leaf inside another leaf (a picture in an HTML widget) is
# left out, so are hidden ones. Figures are listed apart too, to check their width.
BOXES_JS = """
() => [...document.querySelectorAll('.jp-OutputArea-output')]
  .filter(o => o.querySelector('.jupyter-widgets, .js-plotly-plot'))
  .map(o => {
    const box = e => { const b = e.getBoundingClientRect();
      return {x: b.left, y: b.top, w: b.width, h: b.height,
              what: (e.className && e.className.baseVal === undefined ? e.className : 'svg')
                    .toString().split(' ').filter(c => c.startsWith('widget-')
                    || c === 'js-plotly-plot').slice(0, 2).join(' ')}; };
    const leaves = [...o.querySelectorAll(
        '.js-plotly-plot, .jupyter-widgets:not(.widget-box):not(.widget-container)')]
      .filter(e => !e.closest('.js-plotly-plot') || e.classList.contains('js-plotly-plot'))
      .filter(e => e.getBoundingClientRect().width > 0 && e.getBoundingClientRect().height > 0);
    const outer = leaves.filter(e => !leaves.some(p => p !== e && p.contains(e)));
    return {area: box(o), scrollWidth: o.scrollWidth, clientWidth: o.clientWidth,
            items: outer.map(box),
            figures: [...o.querySelectorAll('.js-plotly-plot')].map(box)};
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
                    names = f"{items[i].get('what', '')!r}, {items[j].get('what', '')!r}"
                    problems.append(
                        f"output {n}: items {i} and {j} overlap ({shared:.0f} px²)"
                        + (f" [{names}]" if "what" in items[i] else "")
                    )
        right = area["x"] + area["w"]
        for i, item in enumerate([*items, *out.get("figures", [])]):
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


def _notebook(folder: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in CELLS.values()]
    nbformat.write(notebook, folder / NOTEBOOK)


def _screenshot(page: Any, name: str, element: Any | None = None) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    if element is None:
        page.screenshot(path=str(path), full_page=True)
    else:
        element.screenshot(path=str(path))
    return path


def _record(name: str, value: Any) -> None:
    """Keep a measured figure in ``test-artifacts/browser-timings.json`` (and print it)."""
    ARTIFACTS.mkdir(exist_ok=True)
    timings = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    timings[name] = value
    TIMINGS.write_text(json.dumps(timings, indent=2))
    print(f"{name}: {value}")


@pytest.fixture(scope="module")
def lab(chromium_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """A JupyterLab server on a folder holding the layout notebook."""
    source = tmp_path_factory.mktemp("layout-notebooks")
    _notebook(source)
    with jupyterlab_server(source, tmp_path_factory.mktemp("layout-lab")) as server:
        yield server


@pytest.fixture(scope="module")
def page(chromium_path: str, lab: LabServer) -> Iterator[Any]:
    """The layout notebook open in Chromium, every cell run and every figure drawn."""
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
                handle = page.wait_for_function(
                    ALL_DRAWN_JS, arg=N_WIDGETS, timeout=RENDER_TIMEOUT_MS, polling=1000
                )
            except Exception:
                _screenshot(page, "layout-timeout.png")
                raise
            error = handle.json_value()
            if isinstance(error, str):
                _screenshot(page, "layout-error.png")
                pytest.fail(f"a layout notebook cell raised:\n{error[-3000:]}")
            yield page
        finally:
            browser.close()


def _output(page: Any, name: str) -> Any:
    """The output area of the cell called ``name`` in :data:`CELLS`."""
    index = list(CELLS).index(name)
    cell = page.locator(".jp-Notebook .jp-CodeCell").nth(index)
    return cell.locator(".jp-OutputArea-output").first


@pytest.mark.parametrize("width", WIDTHS)
def test_every_widget_fits_without_overlaps(page: Any, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 2600})  # tall: whole widgets in view
    page.wait_for_timeout(3000)  # JupyterLab and plotly settle after a resize
    outputs = page.evaluate(BOXES_JS)
    shot = _screenshot(page, f"layout-{width}.png")
    for name in list(CELLS)[1:]:
        _screenshot(page, f"layout-{width}-{name}.png", _output(page, name))
    assert len(outputs) == N_WIDGETS, [len(o["items"]) for o in outputs]
    assert all(o["items"] for o in outputs)
    problems = layout_problems(outputs)
    assert not problems, f"at {width} px ({shot}): {problems}"
    # every widget computed what it shows: no failure in a status line (the inspector's
    # spectra once failed while the explorer's spectrum panel computed in its own thread)
    texts = page.locator(".jp-OutputArea-output").all_inner_texts()
    failures = [t.splitlines()[0] for t in texts if "failed" in t]
    assert not failures, failures


# Click ``button`` and wait until ``status`` shows text matching ``pattern``: the time in
# ms that the page itself saw (null when ``limit`` ms passed first), and the text.
CLICK_UNTIL_JS = """
([button, status, pattern, limit]) => new Promise(resolve => {
  const start = performance.now(), re = new RegExp(pattern);
  const check = () => {
    const text = status.textContent, ms = performance.now() - start;
    if (re.test(text)) resolve({ms, text});
    else if (ms > limit) resolve({ms: null, text});
    else setTimeout(check, 5);
  };
  button.click();
  check();
})
"""

# Keep every text ``status`` shows from now on in ``status.__seen`` (a MutationObserver sees
# each change, even one that a later message replaces before the page next paints).
WATCH_TEXTS_JS = """
el => {
  el.__seen = [];
  if (!el.__watcher) {
    el.__watcher = new MutationObserver(() => el.__seen.push(el.textContent));
    el.__watcher.observe(el, {childList: true, characterData: true, subtree: true});
  }
}
"""

# How long the page takes to answer: the delay of a 0 ms timeout, in ms.
RESPONSE_JS = """
() => new Promise(resolve => { const t = performance.now();
  setTimeout(() => resolve(performance.now() - t), 0); })
"""


def test_explorer_stop_ends_a_long_run_at_once(page: Any) -> None:
    """A 1000-step forward run on a 2000-dimensional problem: Stop ends it promptly."""
    out = _output(page, "explorer")
    out.scroll_into_view_if_needed()
    status = out.locator(".widget-html").first
    run = out.get_by_role("button", name="Run")
    stop = out.get_by_role("button", name="Stop")
    plot = out.locator(".js-plotly-plot").first
    # the constructor's run went on in the worker after its cell ended, drawn to its end
    page.wait_for_function(
        "el => /did not reach tol in 1000 steps/.test(el.textContent)",
        arg=status.element_handle(),
        timeout=180_000,
    )
    # On an idle machine the whole run takes a few seconds, so it can end between the checks
    # below and the click; then the click found nothing to stop, and the run is tried again.
    response: list[float] = []
    for _attempt in range(3):
        status.evaluate(WATCH_TEXTS_JS)
        run.click()
        # On a busy 2-core CI machine the kernel can take a while to answer the click, and
        # the page can take the run's first and last status messages in one go; the watcher
        # sees "solving" even then.
        try:
            page.wait_for_function(
                "el => el.__seen.some(t => /solving/.test(t))",
                arg=status.element_handle(),
                timeout=120_000,
            )
        except Exception:
            _screenshot(page, "explorer-run-not-started.png", out)
            seen = status.evaluate("el => el.__seen")
            pytest.fail(f"Run never started a solve in 120 s; the status showed {seen}")
        # The run draws live: wait until its line has grown on the page, then sample how
        # long the page takes to answer while it draws.
        page.wait_for_function(
            "el => [...el.querySelectorAll('.scatterlayer .trace path.js-line')]"
            ".some(p => (p.getAttribute('d') || '').length > 200)",
            arg=plot.element_handle(),
            timeout=30_000,
        )
        if not response:
            response = [page.evaluate(RESPONSE_JS) for _ in range(5)]
        result = page.evaluate(
            CLICK_UNTIL_JS,
            [
                stop.element_handle(),
                status.element_handle(),
                "stopped by the user|did not reach",
                60_000,
            ],
        )
        if result["ms"] is None or "stopped by the user" in result["text"]:
            break
    _screenshot(page, "explorer-stopped.png", out)
    # the spectrum of J (d = 2000, in a thread of the kernel) is left to finish, so that it
    # does not slow down the tests after this one
    page.wait_for_function(
        "el => [...el.querySelectorAll('.widget-html')]"
        ".some(h => /ρ\\(J\\) = |spectrum failed/.test(h.textContent))",
        arg=out.element_handle(),
        timeout=180_000,
    )
    _record("explorer_page_response_ms", [round(ms, 1) for ms in response])
    _record("explorer_stop_s", None if result["ms"] is None else round(result["ms"] / 1000, 3))
    assert result["ms"] is not None, f"the status never said the run ended: {result['text']}"
    steps = re.search(r"stopped by the user after (\d+) steps", result["text"])
    assert steps, f"the run was not stopped; it went to the end: {result['text']}"
    assert int(steps.group(1)) < 1000
    assert result["ms"] / 1000 < STOP_LIMIT_S, result


def test_inspector_shows_a_chosen_structure_quickly(page: Any) -> None:
    out = _output(page, "inspector")
    out.scroll_into_view_if_needed()
    cells = out.locator(".widget-dropdown select").first
    structures = out.locator(".widget-select select").first
    probabilities = out.locator(".inspector-probabilities").first
    plot = probabilities.element_handle()
    listbox = structures.element_handle()
    # the fullest cell of the confusion matrix, chosen in the cell list
    options = cells.locator("option").all_inner_texts()
    fullest = max(options, key=lambda o: int(o.rsplit("(", 1)[1].rstrip(")")))
    start = time.perf_counter()
    cells.select_option(label=fullest)
    page.wait_for_function(
        "el => /^molecule-\\d+:/.test(el.querySelector('.gtitle')?.textContent || '')",
        arg=plot,
        timeout=60_000,
    )
    _record("inspector_first_cell_s", round(time.perf_counter() - start, 3))
    page.wait_for_timeout(3000)  # the viewers built for the first structure draw
    ids = structures.locator("option").all_inner_texts()
    times = []
    for entry_id in [*ids[1:4], ids[1]]:  # three new structures, then one seen before
        # choose in the list the way a user does, and time until the probabilities' title
        # names the structure
        result = page.evaluate(
            """([select, value, plot, limit]) => new Promise(resolve => {
              const start = performance.now();
              select.value = value;
              select.dispatchEvent(new Event('change', {bubbles: true}));
              const check = () => {
                const text = plot.querySelector('.gtitle')?.textContent || '';
                const ms = performance.now() - start;
                if (text.startsWith(value + ':')) resolve(ms);
                else if (ms > limit) resolve(null);
                else setTimeout(check, 5);
              };
              check();
            })""",
            [listbox, entry_id, plot, 30_000],
        )
        times.append(None if result is None else round(result / 1000, 3))
        page.wait_for_timeout(500)  # let the viewers finish drawing
    page.set_viewport_size({"width": WIDTHS[0], "height": 2600})  # all of it in the picture
    page.wait_for_timeout(1500)
    _screenshot(page, "inspector.png", out)
    page.set_viewport_size({"width": WIDTHS[0], "height": 1400})
    _record("inspector_select_s", times)
    assert all(t is not None for t in times), times
    assert max(times) < SELECT_LIMIT_S, times


def test_sync_traces_keeps_a_markers_trace_as_markers_in_the_browser(page: Any) -> None:
    """A batched restyle that changes one trace's mode must leave the other's alone."""
    out = _output(page, "markers")
    out.scroll_into_view_if_needed()
    out.get_by_role("button", name="restyle").click()
    out.locator(".widget-html", has_text="restyled").wait_for(timeout=30_000)
    page.wait_for_timeout(1000)  # plotly redraws after the message
    traces = out.locator(".scatterlayer .trace")
    assert traces.count() == 2
    dots = traces.nth(1)
    lines = dots.locator("path.js-line").evaluate_all(
        "paths => paths.map(p => p.getAttribute('d') || '').filter(d => d.length > 0)"
    )
    _screenshot(page, "sync-traces-markers.png", out)
    assert not lines, "the markers-only trace is drawn with a line"
    assert dots.locator(".points path").count() == 30
