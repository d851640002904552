"""Tests of the structure viewer, the image viewer and their linking (no browser needed)."""

from __future__ import annotations

import doctest
import importlib
import os

import numpy as np
import pytest
import torch
from ase.build import molecule
from plotly.callbacks import Points

from andersonn_lab.datasets import TaskDataset, crystals
from andersonn_lab.structures import (
    ImageOverflowWarning,
    StructureError,
    from_atoms,
    from_smiles,
    node_neighbor_image,
    pixel_atoms,
)
from andersonn_lab.widgets.image_data import ImageController, Rect, pixel_table
from andersonn_lab.widgets.image_viewer import ImageViewer
from andersonn_lab.widgets.linked import StructureImageView, link
from andersonn_lab.widgets.linked_data import LinkedController
from andersonn_lab.widgets.structure_data import StructureController
from andersonn_lab.widgets.structure_viewer import StructureViewer

os.environ.setdefault("PLOTLY_RENDERER", "json")

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
CRYSTAL_IDS = ("Al-fcc", "NaCl-B1", "Si-diamond", "TiO2-rutile")


@pytest.fixture(scope="module")
def crystal_entries() -> dict:
    entries = crystals.load_entries()
    return {e.id: e for e in entries if e.id in CRYSTAL_IDS}


@pytest.fixture(scope="module")
def crystal_task(crystal_entries) -> TaskDataset:
    entries = [crystal_entries[i] for i in CRYSTAL_IDS]
    return TaskDataset(
        "crystals",
        entries,
        torch.zeros(len(entries), 3, 32, 32),
        crystals.CLASS_NAMES,
        encoding="adjacency",
        image_size=32,
        graph_options={"cutoff_scale": 1.2},
    )


def n_segments(trace) -> int:
    """Number of ``None``-separated segments of a lines trace."""
    return sum(1 for x in trace.x if x is None)


def bond_instances(graph) -> tuple[int, int]:
    """(instances inside the cell, instances crossing it) of a periodic graph."""
    inside = crossing = 0
    for _, _, data in graph.edges(data=True):
        for shift in data["shifts"]:
            if any(shift):
                crossing += 1
            else:
                inside += 1
    return inside, crossing


def check_hover(viewer: StructureViewer) -> None:
    graph = viewer.controller.graph
    hover = viewer.trace("atoms").hovertext
    for p, node in enumerate(viewer.controller.scene.nodes):
        text = hover[p]
        assert text.startswith(f"atom {node} · {graph.nodes[node]['element']}")
        for nb in graph.adj[node]:
            assert f"{graph.nodes[nb]['element']}{nb}" in text


# --------------------------------------------------------------------------- structure viewer
def test_structure_viewer_from_smiles_draws_atoms_bonds_depiction():
    viewer = StructureViewer(ASPIRIN)
    graph = viewer.controller.graph
    atoms = viewer.trace("atoms")
    assert len(atoms.x) == graph.number_of_nodes() == 13
    assert n_segments(viewer.trace("bonds")) == graph.number_of_edges() == 13
    assert viewer.trace("cell") is None and viewer.trace("stubs") is None
    assert atoms.marker.color[1] == "#909090" and atoms.marker.color[2] == "#ff0d0d"
    pos = np.array([graph.nodes[n]["position"] for n in graph.nodes])
    assert np.allclose(np.column_stack([atoms.x, atoms.y, atoms.z]), pos)
    check_hover(viewer)
    assert viewer.depiction.value.startswith("<?xml") and "<svg" in viewer.depiction.value
    assert viewer.depiction.layout.display is None
    assert "molecule, 13 atoms, 13 bonds" in viewer.status.value


def test_structure_viewer_from_graph_without_and_with_positions():
    flat = from_smiles("CCO")
    viewer = StructureViewer(flat)  # embedded from the graph's SMILES
    assert all(p is not None for p in viewer.controller.scene.positions.ravel())
    assert viewer.controller.loaded.image_graph is flat
    assert viewer.depiction.value.startswith("<?xml")
    water = StructureViewer(from_atoms(molecule("H2O")))
    assert len(water.trace("atoms").x) == 3 and n_segments(water.trace("bonds")) == 2
    assert water.trace("cell") is None and water.depiction.value == ""
    assert water.depiction.layout.display == "none"
    check_hover(water)
    bare = from_smiles("CCO")
    bare.graph.pop("smiles")
    laid_out = StructureViewer(bare)
    assert "force-directed" in laid_out.status.value and laid_out.depiction.value == ""


def test_structure_viewer_from_atoms_draws_cell_and_periodic_stubs(crystal_entries):
    atoms = crystal_entries["TiO2-rutile"].structure
    viewer = StructureViewer(atoms, cutoff_scale=1.2)
    graph = viewer.controller.graph
    inside, crossing = bond_instances(graph)
    assert crossing > 0
    assert len(viewer.trace("atoms").x) == len(atoms) == 6
    assert n_segments(viewer.trace("bonds")) == inside
    assert n_segments(viewer.trace("stubs")) == 2 * crossing
    cell = viewer.trace("cell")
    assert n_segments(cell) == 12
    corners = {
        tuple(np.round([x, y, z], 6))
        for x, y, z in zip(cell.x, cell.y, cell.z, strict=True)
        if x is not None
    }
    far = np.asarray(atoms.cell).sum(axis=0)
    assert tuple(np.round(far, 6)) in corners and len(corners) == 8
    assert viewer.depiction.value == "" and viewer.depiction.layout.display == "none"
    check_hover(viewer)
    # each stub starts at an atom and is half as long as its bond instance
    stubs = viewer.trace("stubs")
    xyz = np.array([stubs.x, stubs.y, stubs.z], dtype=float).T.reshape(-1, 3, 3)[:, :2]
    starts, ends = xyz[:, 0], xyz[:, 1]
    nearest = np.linalg.norm(starts[:, None] - atoms.positions[None], axis=2).min(axis=1)
    assert np.all(nearest < 1e-9)
    expected = [
        d
        for _, _, data in graph.edges(data=True)
        for d, shift in zip(data["distances"], data["shifts"], strict=True)
        if any(shift)
        for _ in range(2)
    ]
    lengths = 2 * np.linalg.norm(ends - starts, axis=1)
    assert np.allclose(np.sort(lengths), np.sort(expected))


def test_structure_viewer_from_entry_and_from_dataset(crystal_entries, crystal_task):
    viewer = StructureViewer(crystal_entries["Si-diamond"], cutoff_scale=1.2)
    assert "Si-diamond" in viewer.status.value and len(viewer.trace("atoms").x) == 2
    assert n_segments(viewer.trace("stubs")) == 6 and n_segments(viewer.trace("bonds")) == 1
    metal = StructureViewer.from_dataset(crystal_task, "Al-fcc")
    assert len(metal.trace("atoms").x) == 1
    assert n_segments(metal.trace("bonds")) == 0 and n_segments(metal.trace("stubs")) == 12
    assert "12 neighbour(s): Al0 ×12" in metal.trace("atoms").hovertext[0]
    same = StructureViewer(task=crystal_task, id="NaCl-B1")
    assert same.controller.graph is crystal_task.graph(crystal_task.id_to_index["NaCl-B1"])
    with pytest.raises(StructureError, match="'nope'"):
        StructureViewer(task=crystal_task, id="nope")


def test_structure_viewer_bad_input_raises_or_shows_status():
    with pytest.raises(StructureError, match="'C1CC'"):
        StructureViewer("C1CC")
    with pytest.raises(StructureError, match="cannot show a int"):
        StructureViewer(42)
    with pytest.raises(StructureError, match="pentavalent|valence|Explicit"):
        StructureViewer("C(C)(C)(C)(C)C")
    viewer = StructureViewer("CCO")
    assert viewer.load("xyz(") is False
    assert "✗" in viewer.status.value and "xyz(" in viewer.status.value
    assert len(viewer.trace("atoms").x) == 3  # previous structure kept
    assert viewer.load("c1ccccc1") is True and len(viewer.trace("atoms").x) == 6


def test_select_atom_and_click_and_highlight():
    viewer = StructureViewer(ASPIRIN)
    plain_svg = viewer.depiction.value
    seen = []
    viewer.on_select(seen.append)
    assert viewer.select_atom(3) == (3,)
    halo = viewer.trace("selection")
    assert (halo.x[0], halo.y[0], halo.z[0]) == tuple(viewer.controller.scene.positions[3])
    assert viewer.depiction.value != plain_svg
    atoms = viewer.trace("atoms")
    viewer.handle_click(atoms, Points(point_inds=[], xs=[], ys=[]))  # other traces: ignored
    viewer.handle_click(atoms, Points(point_inds=[5], xs=[0.0], ys=[0.0], trace_index=1))
    assert viewer.controller.selected == (5,) and seen == [(3,), (5,)]
    viewer.select_atom(None)
    assert len(viewer.trace("selection").x) == 0
    weights = np.linspace(0.0, 1.0, 13)
    viewer.highlight(weights)
    assert list(atoms.marker.color) == pytest.approx(list(weights))
    assert atoms.marker.showscale is True
    viewer.highlight({0: 2.0})
    assert atoms.marker.color[0] == 2.0 and atoms.marker.color[1] == 0.0
    viewer.highlight(None)
    assert atoms.marker.color[0] == "#909090" and atoms.marker.showscale is False
    with pytest.raises(ValueError, match="13 atoms"):
        viewer.highlight([1.0, 2.0])
    with pytest.raises(ValueError, match="no atom 99"):
        viewer.select_atom(99)


# --------------------------------------------------------------------------- image viewer
@pytest.mark.parametrize("encoding", ["adjacency", "neighbors", "elements", "electrons"])
def test_image_viewer_heatmaps_equal_image_and_name_atoms(encoding):
    graph = from_smiles(ASPIRIN)
    k = 3 if encoding == "neighbors" else None
    viewer = ImageViewer(graph, encoding=encoding, size=16, k=k)
    image = node_neighbor_image(graph, encoding=encoding, size=16, k=k).numpy()
    assert len(viewer.fig.data) == len(image) == {"elements": 6, "electrons": 7}.get(encoding, 3)
    for c, trace in enumerate(viewer.fig.data):
        assert trace.xaxis == "x" + ("" if c == 0 else str(c + 1))
        assert np.array_equal(np.asarray(trace.z, dtype=np.float32), image[c])
        assert np.asarray(trace.z).dtype == np.float32
    names = [a.text for a in viewer.fig.layout.annotations]
    empty = [" (empty)" if not image[c].any() else "" for c in range(len(image))]
    assert names == [n + e for n, e in zip(viewer.controller.channels, empty, strict=True)]
    text = viewer.fig.data[0].text
    for r in range(16):
        for c in range(16):
            pair = pixel_atoms(graph, r, c, encoding=encoding, size=16, k=k)
            if pair is None:
                assert "padding" in text[r][c]
            else:
                a, b = (f"{graph.nodes[n]['element']}{n}" for n in pair)
                assert text[r][c].startswith(f"row {r}: {a}")
                assert c == 0 and encoding == "neighbors" or text[r][c].endswith(f": {b}")


def test_image_viewer_selectors_overflow_and_smiles_input():
    viewer = ImageViewer(ASPIRIN, size=8)  # SMILES: imaged without 3-D coordinates
    graph = viewer.controller.graph
    assert all(d["distance"] is None for _, _, d in graph.edges(data=True))
    assert "5 atoms dropped" in viewer.status.value
    viewer.encoding.value = "neighbors"
    with pytest.warns(ImageOverflowWarning, match="5 atoms dropped"):
        expected = node_neighbor_image(from_smiles(ASPIRIN), encoding="neighbors", size=8)
    assert np.array_equal(np.asarray(viewer.fig.data[1].z), expected[1].numpy())
    assert viewer.fig.layout.annotations[1].text == "distance"
    viewer.size.value = 16
    assert np.asarray(viewer.fig.data[0].z).shape == (16, 16)
    assert "dropped" not in viewer.status.value
    viewer.encoding.value = "elements"  # six panels in two rows, every one highlighted
    assert len(viewer.fig.data) == 6 and viewer.fig.layout.height == 2 * 260
    assert viewer.fig.layout.xaxis4.domain == viewer.fig.layout.xaxis.domain
    assert viewer.fig.layout.yaxis4.domain[1] < viewer.fig.layout.yaxis.domain[0]
    viewer.select_pixel(0, 1)
    assert {s.xref for s in viewer.fig.layout.shapes} == {"x", *(f"x{c}" for c in range(2, 7))}
    viewer.encoding.value = "electrons"  # seven panels in three rows
    assert len(viewer.fig.data) == 7 and viewer.fig.layout.height == 3 * 260
    assert viewer.fig.layout.annotations[6].text == "odd_electrons (empty)"  # even count
    assert viewer.fig.layout.yaxis7.domain[1] < viewer.fig.layout.yaxis4.domain[0]
    viewer.encoding.value = "adjacency"  # back to one row; the extra panels are hidden
    assert len(viewer.fig.data) == 3 and viewer.fig.layout.height == 260
    assert viewer.fig.layout.xaxis4.visible is False and viewer.fig.layout.xaxis.visible
    with pytest.raises(StructureError, match="'C1CC'"):
        ImageViewer("C1CC")


def test_pixel_table_matches_pixel_atoms_for_a_crystal(crystal_entries):
    graph = from_atoms(crystal_entries["TiO2-rutile"].structure, cutoff_scale=1.2)
    table = pixel_table(graph, encoding="neighbors", size=8)
    for r in range(8):
        for c in range(8):
            assert table[r][c] == pixel_atoms(graph, r, c, encoding="neighbors", size=8)


# --------------------------------------------------------------------------- linking
def test_linked_controller_selects_both_ways():
    structure = StructureController(ASPIRIN)
    image = ImageController(structure.loaded.image_graph, size=16)
    linked = LinkedController(structure, image)
    row = image.order.index(3)
    assert linked.select_atom(3) == [Rect(row, row, 0, 15), Rect(0, 15, row, row)]
    assert structure.selected == (3,)
    atoms = linked.select_pixel(0, 1)
    assert atoms == pixel_atoms(image.graph, 0, 1, size=16)
    assert structure.selected == atoms and image.highlights() == [Rect(0, 0, 1, 1)]
    assert linked.select_pixel(15, 15) is None and structure.selected == ()
    with pytest.raises(ValueError, match="not in the structure"):
        LinkedController(StructureController("CCO"), image)


def test_structure_image_view_clicks_propagate():
    view = StructureImageView(ASPIRIN, size=16)
    sv, iv = view.structure, view.image
    row = iv.controller.order.index(4)
    sv.handle_click(sv.trace("atoms"), Points(point_inds=[4], xs=[0.0], ys=[0.0]))
    shapes = iv.fig.layout.shapes
    assert len(shapes) == 6  # row + column in each of the 3 channels
    assert {(s.xref, s.y0, s.y1) for s in shapes if s.x1 - s.x0 > 1} == {
        (x, row - 0.5, row + 0.5) for x in ("x", "x2", "x3")
    }
    heat = iv.fig.data[2]
    iv.handle_click(heat, Points(point_inds=[[0, 1]], xs=[1], ys=[0]))
    pair = iv.controller.table[0][1]
    assert sv.controller.selected == pair and len(sv.trace("selection").x) == 2
    assert len(iv.fig.layout.shapes) == 3  # the pixel, kept after the structure update
    assert view.select_pixel(2, 2) == (iv.controller.order[2],) * 2
    assert sv.controller.selected == (iv.controller.order[2],)
    assert len(view.select_atom(0)) == 2 and len(iv.fig.layout.shapes) == 6
    assert view.load("C1CC") is False and "✗" in sv.status.value
    assert len(iv.controller.order) == 13
    assert view.load("c1ccccc1O") is True
    assert len(sv.trace("atoms").x) == 7 and len(iv.controller.order) == 7
    assert iv.fig.layout.shapes == () and view.select_pixel(0, 0) == (6, 6)


def test_link_neighbors_encoding_and_crystal(crystal_entries):
    sv = StructureViewer(crystal_entries["NaCl-B1"], cutoff_scale=1.2)
    iv = ImageViewer(sv.controller.graph, encoding="neighbors", size=8)
    link(sv, iv)
    sv.select_atom(1)
    rects = iv.controller.highlights()
    row = iv.controller.order.index(1)
    assert rects[0] == Rect(row, row, 0, 7)
    assert len(rects) == 1 + 6  # the Cl row and the 6 pixels where Cl is the Na neighbour
    assert iv.select_pixel(row, 1) == (1, 0)
    assert sv.controller.selected == (1, 0)


@pytest.mark.parametrize(
    "module",
    ["structure_data", "structure_viewer", "image_data", "image_viewer", "linked", "linked_data"],
)
def test_docstring_examples_run(module):
    mod = importlib.import_module(f"andersonn_lab.widgets.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_image_viewer_draws_empty_pixels_and_channels_white_and_fits_its_panels():
    """Zero is white (not the colour of the middle of a constant channel's scale)."""
    from andersonn_lab.widgets.image_viewer import COLORSCALE, figure_width

    viewer = ImageViewer(ASPIRIN, size=16)  # from SMILES: the distance channel is all zero
    distance = viewer.fig.data[2]
    assert not np.asarray(distance.z).any()
    assert viewer.fig.layout.annotations[2].text == "distance (empty)"
    assert (distance.zmin, distance.zmax) == (0.0, 1.0)
    assert COLORSCALE[0] == [0.0, "#ffffff"] and COLORSCALE[1][0] < 1e-6
    atoms = viewer.fig.data[0]
    assert atoms.zmin == 0.0 and atoms.zmax == pytest.approx(float(np.max(atoms.z)))
    assert tuple(tuple(c) for c in distance.colorscale)[0] == (0.0, "#ffffff")
    assert viewer.fig.layout.width == figure_width(3, viewer.fig.layout.height) < 800
    viewer.encoding.value = "electrons"  # seven panels in three rows: still no wider
    assert viewer.fig.layout.width == figure_width(7, viewer.fig.layout.height) < 800


def test_a_failing_selection_callback_is_shown_in_the_viewers_status_line():
    view = StructureImageView(ASPIRIN, size=16)
    sv, iv = view.structure, view.image
    seen: list = []

    def broken(selection) -> None:
        raise RuntimeError("linked panel gone")

    sv.on_select(broken)
    sv.on_select(seen.append)  # later callbacks still run
    sv.handle_click(sv.trace("atoms"), Points(point_inds=[4], xs=[0.0], ys=[0.0]))
    assert sv.controller.selected == (4,) and seen == [(4,)]
    assert "linked panel gone" in sv.status.value
    assert len(iv.fig.layout.shapes) == 6  # the linked image still followed the click
    iv.on_pixel(broken)
    atoms = iv.select_pixel(0, 1)
    assert sv.controller.selected == atoms  # the link ran before the broken callback
    assert "linked panel gone" in iv.status.value
