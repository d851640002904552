"""Crystals drawn as a supercell (``StructureViewer(repeat=...)``, issue #19), no browser."""

from __future__ import annotations

import os
from collections import Counter

import numpy as np
import pytest
from ase.build import bulk
from plotly.callbacks import Points

from andersonn_lab.datasets import crystals
from andersonn_lab.widgets.image_viewer import ImageViewer
from andersonn_lab.widgets.linked import StructureImageView, link
from andersonn_lab.widgets.structure_data import StructureController, build_scene
from andersonn_lab.widgets.structure_viewer import CAMERA_EYE, StructureViewer

os.environ.setdefault("PLOTLY_RENDERER", "json")

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
IDS = ("NaCl-B1", "SrTiO3-perovskite", "TiO2-rutile", "Si-diamond")


@pytest.fixture(scope="module")
def entries() -> dict:
    return {e.id: e for e in crystals.load_entries() if e.id in IDS}


def segments(trace) -> np.ndarray:
    """``(n, 2, 3)`` start and end points of a lines trace."""
    xyz = np.array([trace.x, trace.y, trace.z], dtype=float).T
    return xyz.reshape(-1, 3, 3)[:, :2]


def marker_positions(viewer: StructureViewer) -> np.ndarray:
    atoms = viewer.trace("atoms")
    return np.column_stack([atoms.x, atoms.y, atoms.z]).astype(float)


def marker_at(points: np.ndarray, xyz: np.ndarray) -> np.ndarray:
    """Index of the marker at each point, -1 where no marker is."""
    dist = np.linalg.norm(points[:, None] - xyz[None], axis=2)
    return np.where(dist.min(axis=1) < 1e-6, dist.argmin(axis=1), -1)


def degrees(graph) -> Counter:
    """Bond instances at each atom (a bond to its own image counts at both ends)."""
    count: Counter = Counter()
    for u, v, data in graph.edges(data=True):
        count[u] += len(data["shifts"])
        count[v] += len(data["shifts"])
    return count


@pytest.mark.parametrize(
    ("entry_id", "repeat", "counts"),
    [
        ("NaCl-B1", 2, (2, 2, 2)),
        ("SrTiO3-perovskite", (2, 1, 3), (2, 1, 3)),
        ("TiO2-rutile", (1, 2, 2), (1, 2, 2)),
        ("Si-diamond", 3, (3, 3, 3)),
    ],
)
def test_supercell_draws_every_copy_with_the_networks_bonds_and_boundary_stubs(
    entries, entry_id, repeat, counts
):
    viewer = StructureViewer(entries[entry_id], repeat=repeat)
    ctrl = viewer.controller
    graph, n = ctrl.graph, ctrl.graph.number_of_nodes()
    copies = int(np.prod(counts))
    assert ctrl.scene.n_atoms == copies * n
    assert ctrl.scene.repeat == counts and len(ctrl.nodes) == n
    assert sorted(set(ctrl.scene.offsets)) == sorted(np.ndindex(*counts))
    assert ctrl.scene.nodes[:n] == ctrl.nodes and ctrl.scene.offsets[:n] == [(0, 0, 0)] * n
    check_copies_and_bonds(viewer)
    cell = np.asarray(graph.graph["cell"], dtype=float)
    # the supercell's 12 edges and, lighter, the original cell's
    corners = {tuple(np.round(p, 6)) for p in segments(viewer.trace("cell")).reshape(-1, 3)}
    assert tuple(np.round(np.asarray(counts) @ cell, 6)) in corners and len(corners) == 8
    unit = {tuple(np.round(p, 6)) for p in segments(viewer.trace("unit_cell")).reshape(-1, 3)}
    assert tuple(np.round(cell.sum(axis=0), 6)) in unit and len(unit) == 8
    assert f"drawn as a {'×'.join(map(str, counts))} supercell of {copies * n} atoms" in (
        viewer.status.value
    )


def check_copies_and_bonds(viewer: StructureViewer) -> None:
    """Each marker is its atom shifted by its cell offset; bonds join drawn atoms, stubs point
    half-way to atoms not drawn, and every copy has all of its atom's bonds in the network."""
    ctrl = viewer.controller
    graph = ctrl.graph
    xyz = marker_positions(viewer)
    assert len(xyz) == ctrl.scene.n_atoms
    cell = np.asarray(graph.graph["cell"], dtype=float)
    base = np.array([graph.nodes[v]["position"] for v in ctrl.nodes], dtype=float)
    for p, (node, offset) in enumerate(zip(ctrl.scene.nodes, ctrl.scene.offsets, strict=True)):
        # the atom's copy, up to the move into the cell of an atom given outside it
        moved = xyz[p] - base[ctrl.nodes.index(node)] - np.asarray(offset) @ cell
        steps = np.linalg.solve(cell.T, moved)
        assert np.allclose(steps, np.round(steps), atol=1e-6)
    assert len(set(zip(ctrl.scene.nodes, ctrl.scene.offsets, strict=True))) == len(xyz)
    # bonds join two drawn atoms; stubs start at one and point half-way to an atom outside
    bonds, stubs = segments(viewer.trace("bonds")), segments(viewer.trace("stubs"))
    ends = marker_at(bonds.reshape(-1, 3), xyz).reshape(-1, 2)
    assert np.all(ends >= 0)
    starts = marker_at(stubs[:, 0], xyz)
    assert np.all(starts >= 0)
    far_ends = stubs[:, 0] + 2 * (stubs[:, 1] - stubs[:, 0])
    assert np.all(marker_at(far_ends, xyz) == -1)
    # every copy of an atom has all of its bonds in the network, as bonds or stubs
    per_marker = Counter(ends.ravel().tolist()) + Counter(starts.tolist())
    degree = degrees(graph)
    for p, node in enumerate(ctrl.scene.nodes):
        assert per_marker[p] == degree[node], (p, node)
    # and each bond or stub has the length of a bond of the network
    distances = sorted(
        {round(d, 4) for _, _, data in graph.edges(data=True) for d in data["distances"]}
    )
    lengths = np.concatenate(
        [
            np.linalg.norm(bonds[:, 1] - bonds[:, 0], axis=1),
            2 * np.linalg.norm(stubs[:, 1] - stubs[:, 0], axis=1),
        ]
    )
    assert set(np.round(lengths, 4).tolist()) <= set(distances)


def test_rock_salt_two_by_two_by_two_has_six_chlorine_neighbours_at_every_sodium(entries):
    viewer = StructureViewer(entries["NaCl-B1"], repeat=(2, 2, 2))
    scene = viewer.controller.scene
    assert scene.n_atoms == 16 and scene.elements.count("Na") == 8
    xyz = marker_positions(viewer)
    bonds, stubs = segments(viewer.trace("bonds")), segments(viewer.trace("stubs"))
    ends = marker_at(bonds.reshape(-1, 3), xyz).reshape(-1, 2)
    starts = marker_at(stubs[:, 0], xyz)
    for p, element in enumerate(scene.elements):
        partners = [scene.elements[q] for a, q in ends.tolist() if a == p]
        partners += [scene.elements[a] for a, q in ends.tolist() if q == p]
        n_stubs = int(np.sum(starts == p))
        other = "Cl" if element == "Na" else "Na"
        assert set(partners) <= {other} and len(partners) + n_stubs == 6
    # the whole supercell: 16 atoms × 6 bond ends = 2 per bond + 1 per stub
    assert 2 * scene.n_bonds + scene.n_stubs == 96 and scene.n_bonds > 0
    one_cell = StructureViewer(entries["NaCl-B1"])
    assert len(one_cell.trace("atoms").x) == 2 and one_cell.trace("unit_cell") is None


def test_clicking_any_copy_selects_the_original_atom_and_marks_all_its_copies(entries):
    viewer = StructureViewer(entries["SrTiO3-perovskite"], repeat=2)
    ctrl, n = viewer.controller, 5
    seen: list = []
    viewer.on_select(seen.append)
    atoms = viewer.trace("atoms")
    point = 3 * n + 1  # the Ti of the copy at cell offset (0, 1, 1)
    assert ctrl.copy_at(point) == (1, (0, 1, 1))
    hover = atoms.hovertext[point]
    assert hover.startswith("atom 1 · Ti") and "[0 +1 +1]" in hover and "2×2×2" in hover
    viewer.handle_click(atoms, Points(point_inds=[point], xs=[0.0], ys=[0.0]))
    assert ctrl.selected == (1,) and seen == [(1,)]
    halo = viewer.trace("selection")
    halo_xyz = np.column_stack([halo.x, halo.y, halo.z]).astype(float)
    assert sorted(marker_at(halo_xyz, marker_positions(viewer))) == ctrl.markers_of(1)
    assert len(ctrl.markers_of(1)) == 8
    viewer.select_atoms([0, 2])
    assert len(viewer.trace("selection").x) == 16
    weights = viewer.highlight({1: 2.0})
    assert len(weights) == 40 and [weights[p] for p in ctrl.markers_of(1)] == [2.0] * 8
    assert sum(weights) == 16.0
    assert viewer.highlight([0.0, 1.0, 2.0, 3.0, 4.0])[n:10] == [0.0, 1.0, 2.0, 3.0, 4.0]
    with pytest.raises(ValueError, match="got 40 weights for 5 atoms"):
        viewer.highlight(np.zeros(40))
    with pytest.raises(ValueError, match=r"no atom 7 in the structure \(5 atoms\)"):
        viewer.select_atom(7)
    # back to one cell: selection and highlight kept, in terms of the original atoms
    viewer.set_repeat(1)
    assert len(viewer.trace("atoms").x) == 5 and ctrl.selected == (0, 2)
    assert list(viewer.trace("atoms").marker.color) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert viewer.trace("unit_cell") is None and len(viewer.trace("selection").x) == 2


@pytest.mark.parametrize(
    ("repeat", "message"),
    [
        (0, "repeat=0: each count"),
        (-2, "repeat=-2: each count"),
        (6, "repeat=6: each count of copies must be an int from 1 to 5"),
        ((2, 0, 1), r"repeat=\(2, 0, 1\)"),
        (2.0, "repeat=2.0: expected an int"),
        (True, "repeat=True: expected an int"),
        ("2", "repeat='2': expected an int"),
        ((2, 2), r"repeat=\(2, 2\): expected"),
        ((2, 2, 1.5), "expected an int"),
    ],
)
def test_bad_repeat_values_raise_naming_the_argument(entries, repeat, message):
    with pytest.raises(ValueError, match=message):
        StructureViewer(entries["NaCl-B1"], repeat=repeat)
    with pytest.raises(ValueError, match=message):
        StructureViewer(ASPIRIN, repeat=repeat)  # even where it would be ignored


def test_a_supercell_of_too_many_atoms_is_refused_and_the_view_kept():
    big = bulk("NaCl", "rocksalt", a=5.64, cubic=True).repeat((3, 1, 1))  # 24 atoms
    with pytest.raises(ValueError, match=r"repeat=5×5×5 would draw 3000 atoms"):
        StructureViewer(big, repeat=5)
    viewer = StructureViewer(big, repeat=(4, 4, 4))  # 1536 atoms: allowed
    assert len(viewer.trace("atoms").x) == 1536
    with pytest.raises(ValueError, match="repeat=5×5×5"):
        viewer.set_repeat(5)
    assert len(viewer.trace("atoms").x) == 1536 and viewer.controller.repeat == (4, 4, 4)
    viewer.cell_choice.value = (2, 2, 2)  # the control switches it live
    assert len(viewer.trace("atoms").x) == 192
    # loading a structure whose supercell is too large falls back to one cell, noted
    viewer.set_repeat(3)
    assert viewer.load(big.repeat((2, 2, 2))) is True  # 192 atoms × 27 > 2000
    assert len(viewer.trace("atoms").x) == 192 and viewer.cell_choice.value == (1, 1, 1)
    assert "shown as one cell" in viewer.status.value


def test_the_cell_control_switches_live_and_molecules_ignore_repeat(entries):
    viewer = StructureViewer(entries["NaCl-B1"])
    choice = viewer.cell_choice
    assert viewer.cell_controls.layout.display is None and choice.value == (1, 1, 1)
    labels = ["1×1×1", "2×2×2", "3×3×3", "conventional"]
    assert [label for label, _ in choice.options] == labels
    viewer.select_atom(0)
    choice.value = (3, 3, 3)
    assert len(viewer.trace("atoms").x) == 54 and len(viewer.trace("selection").x) == 27
    assert viewer.controller.selected == (0,)
    choice.value = (1, 1, 1)
    assert len(viewer.trace("atoms").x) == 2 and viewer.trace("unit_cell") is None
    odd = StructureViewer(entries["NaCl-B1"], repeat=(2, 1, 1))
    assert odd.cell_choice.value == (2, 1, 1) and len(odd.cell_choice.options) == 5
    cubic = StructureViewer(entries["SrTiO3-perovskite"])  # its cell is the conventional one
    assert [label for label, _ in cubic.cell_choice.options] == labels[:3]
    # molecules: the control is hidden and repeat changes nothing
    molecule = StructureViewer(ASPIRIN, repeat=3)
    plain = StructureViewer(ASPIRIN)
    assert molecule.cell_controls.layout.display == "none"
    assert [t.name for t in molecule.fig.data] == [t.name for t in plain.fig.data]
    assert len(molecule.trace("atoms").x) == 13 and molecule.trace("cell") is None
    assert molecule.set_repeat(2) == (1, 1, 1) and len(molecule.trace("atoms").x) == 13
    assert molecule.status.value == plain.status.value
    # a crystal viewer keeps its supercell through loads; a molecule hides the control
    viewer.set_repeat(2)
    assert viewer.load(ASPIRIN) and viewer.cell_controls.layout.display == "none"
    assert viewer.load(entries["Si-diamond"]) and viewer.cell_controls.layout.display is None
    assert len(viewer.trace("atoms").x) == 16 and choice.value == (2, 2, 2)
    # a viewer of an existing controller keeps its supercell unless told otherwise
    shared = StructureController(entries["NaCl-B1"], repeat="conventional", boundary_atoms=True)
    assert len(StructureViewer(controller=shared).trace("atoms").x) == 27
    again = StructureViewer(controller=shared, repeat=2, boundary_atoms=False)
    assert len(again.trace("atoms").x) == 16 and again.cell_choice.value == (2, 2, 2)


def test_build_scene_of_one_cell_is_unchanged(entries):
    graph = StructureController(entries["TiO2-rutile"]).graph
    one, same = build_scene(graph), build_scene(graph, (1, 1, 1))
    assert one.n_atoms == 6 and one.unit_cell is None and one.offsets == [(0, 0, 0)] * 6
    assert one.bonds == same.bonds and one.stubs == same.stubs and one.hover == same.hover
    assert all("copy in cell" not in text for text in one.hover)


def test_linked_view_with_a_supercell_lights_the_original_atoms_image_row(entries):
    view = StructureImageView(entries["NaCl-B1"], repeat=2, encoding="neighbors", size=8)
    sv, iv = view.structure, view.image
    assert len(sv.trace("atoms").x) == 16
    assert iv.controller.graph.number_of_nodes() == 2  # the image is of the one cell
    row = iv.controller.order.index(1)
    point = 2 * 5 + 1  # the Cl of the copy at cell offset (1, 0, 1)
    assert sv.controller.copy_at(point) == (1, (1, 0, 1))
    sv.handle_click(sv.trace("atoms"), Points(point_inds=[point], xs=[0.0], ys=[0.0]))
    assert iv.controller.selected_atom == 1
    assert iv.controller.highlights()[0].row0 == row
    atoms = view.select_pixel(row, 1)
    assert atoms == (1, 0) and sv.controller.selected == (1, 0)
    assert len(sv.trace("selection").x) == 16  # every copy of both atoms
    sv.cell_choice.value = (1, 1, 1)
    assert sv.controller.selected == (1, 0) and len(sv.trace("selection").x) == 2
    # link() of a supercell viewer and an image of its network
    sv2 = StructureViewer(entries["SrTiO3-perovskite"], repeat=(1, 2, 1))
    iv2 = ImageViewer(sv2.controller.graph, encoding="adjacency", size=8)
    link(sv2, iv2)
    sv2.handle_click(sv2.trace("atoms"), Points(point_inds=[5 + 3], xs=[0.0], ys=[0.0]))
    assert sv2.controller.selected == (3,) and iv2.controller.selected_atom == 3


def test_the_first_camera_does_not_look_down_a_cell_diagonal(entries):
    """Plotly's default eye looks down [111] of a cubic cell: in the SrTiO3 cell the Ti at the
    centre then hides the Sr at the corner, and the rock-salt cell's two atoms are one blob."""
    for entry_id in ("SrTiO3-perovskite", "NaCl-B1"):
        for repeat in (1, 2):
            viewer = StructureViewer(entries[entry_id], repeat=repeat)
            eye = viewer.fig.layout.scene.camera.eye
            d = np.array([eye.x, eye.y, eye.z], dtype=float)
            assert np.allclose(d, [CAMERA_EYE[a] for a in "xyz"])
            d /= np.linalg.norm(d)
            xyz = marker_positions(viewer)
            flat = xyz - np.outer(xyz @ d, d)  # positions seen along the view direction
            gaps = np.linalg.norm(flat[:, None] - flat[None], axis=2)
            np.fill_diagonal(gaps, np.inf)
            assert gaps.min() > 0.5, (entry_id, repeat)


@pytest.mark.parametrize(
    ("entry_id", "n_atoms", "elements"),
    [("NaCl-B1", 8, {"Na": 4, "Cl": 4}), ("Si-diamond", 8, {"Si": 8})],
)
def test_conventional_cell_of_rock_salt_and_diamond_is_the_cube(
    entries, entry_id, n_atoms, elements
):
    viewer = StructureViewer(entries[entry_id], repeat="conventional")
    scene = viewer.controller.scene
    assert scene.n_atoms == n_atoms and Counter(scene.elements) == elements
    assert scene.repeat == "conventional" and viewer.cell_choice.value == "conventional"
    check_copies_and_bonds(viewer)
    edges = segments(viewer.trace("cell"))
    lengths = np.linalg.norm(edges[:, 1] - edges[:, 0], axis=1)
    a = float(np.round(lengths[0], 4))
    assert np.allclose(lengths, a)  # a cube: 12 edges of one length ...
    directions = np.abs(np.round((edges[:, 1] - edges[:, 0]) / a, 6))
    assert {tuple(d) for d in directions} == {(1, 0, 0), (0, 1, 0), (0, 0, 1)}  # ... on x, y, z
    volume = abs(np.linalg.det(np.asarray(viewer.controller.graph.graph["cell"])))
    assert a**3 == pytest.approx(4 * volume, rel=1e-6)
    assert viewer.trace("unit_cell") is not None
    hover = viewer.trace("atoms").hovertext
    assert all("of the conventional cell" in text for text in hover)
    assert f"drawn as its conventional cell of {n_atoms} atoms" in viewer.status.value
    # clicking a copy selects its atom; every copy is marked
    point = next(p for p, off in enumerate(scene.offsets) if any(off))
    node = scene.nodes[point]
    viewer.handle_click(viewer.trace("atoms"), Points(point_inds=[point], xs=[0.0], ys=[0.0]))
    assert viewer.controller.selected == (node,)
    assert len(viewer.trace("selection").x) == scene.nodes.count(node) == 4


def test_conventional_cell_of_a_cell_that_is_conventional_already_is_the_cell(entries):
    cubic = StructureController(entries["SrTiO3-perovskite"], repeat="conventional")
    assert cubic.scene.n_atoms == 5 and cubic.scene.unit_cell is None
    assert cubic.conventional_cells == 1 and "drawn as" not in cubic.describe()
    odd = bulk("Cu", "fcc", a=3.6)
    odd.set_cell([[0.0, 1.8, 1.9], [1.7, 0.1, 1.8], [1.8, 1.75, 0.05]], scale_atoms=True)
    triclinic = StructureController(odd, repeat="conventional", cutoff_scale=1.3)
    assert triclinic.scene.n_atoms == 1  # no larger conventional cell: the cell itself


@pytest.mark.parametrize(
    ("entry_id", "repeat", "elements", "plain"),
    [
        ("SrTiO3-perovskite", 1, {"Sr": 8, "Ti": 1, "O": 6}, 5),  # the textbook perovskite
        ("NaCl-B1", "conventional", {"Na": 14, "Cl": 13}, 8),  # the 27-atom rock-salt cube
        ("SrTiO3-perovskite", 2, {"Sr": 27, "Ti": 8, "O": 36}, 40),
    ],
)
def test_boundary_atoms_repeat_atoms_on_faces_edges_and_corners(
    entries, entry_id, repeat, elements, plain
):
    viewer = StructureViewer(entries[entry_id], repeat=repeat, boundary_atoms=True)
    scene = viewer.controller.scene
    assert Counter(scene.elements) == elements and scene.boundary_atoms
    assert viewer.boundary_choice.value is True
    check_copies_and_bonds(viewer)
    # every drawn atom lies inside the closed outline
    edges = segments(viewer.trace("cell")).reshape(-1, 3)
    origin = np.zeros(3)
    far = edges[np.argmax(np.linalg.norm(edges, axis=1))]
    outline = np.asarray(viewer.controller.graph.graph["cell"], dtype=float)
    if repeat == "conventional":
        outline = np.diag(far)  # the rock-salt cube is axis-aligned
    else:
        outline = outline * np.asarray(scene.repeat)[:, None]
    g = np.linalg.solve(outline.T, (marker_positions(viewer) - origin).T).T
    assert np.all(g > -1e-6) and np.all(g < 1 + 1e-6)
    assert "boundary atoms repeated" in viewer.status.value
    # clicking a repeated corner atom selects the original atom
    corner = next(p for p, row in enumerate(g) if np.allclose(row, 1.0))
    viewer.handle_click(viewer.trace("atoms"), Points(point_inds=[corner], xs=[0.0], ys=[0.0]))
    assert viewer.controller.selected == (0,)
    # switched off live: back to the plain cells
    viewer.boundary_choice.value = False
    assert len(viewer.trace("atoms").x) == plain and not viewer.controller.scene.boundary_atoms
    assert viewer.controller.selected == (0,)


def test_boundary_atoms_count_towards_the_atom_limit_and_molecules_ignore_them():
    big = bulk("NaCl", "rocksalt", a=5.64, cubic=True).repeat((3, 1, 1))  # 24 atoms
    viewer = StructureViewer(big, repeat=4)  # 1536 atoms
    viewer.boundary_choice.value = True  # would add the atoms on three faces: refused
    assert "✗" in viewer.status.value and "would draw" in viewer.status.value
    assert viewer.boundary_choice.value is False and len(viewer.trace("atoms").x) == 1536
    molecule = StructureViewer(ASPIRIN, boundary_atoms=True)
    assert len(molecule.trace("atoms").x) == 13 and not molecule.controller.scene.boundary_atoms


def test_atoms_given_outside_their_cell_are_drawn_inside_it():
    """ASE's rock salt has Cl at (a/2, 0, 0), outside its primitive cell: it is drawn at the
    equivalent place inside, with the bonds, stubs and hover texts to match."""
    atoms = bulk("NaCl", "rocksalt", a=5.64)
    cell = np.asarray(atoms.cell)
    assert (atoms.cell.scaled_positions(atoms.positions)[1] < 0).any()  # given outside
    for repeat, n_atoms in ((1, 2), (2, 16), ("conventional", 8)):
        viewer = StructureViewer(atoms, repeat=repeat)
        scene = viewer.controller.scene
        assert scene.n_atoms == n_atoms
        check_copies_and_bonds(viewer)
        region = cell if repeat == 1 else np.asarray(cell) * 2 if repeat == 2 else None
        if region is None:
            region = np.eye(3) * 5.64
        g = np.linalg.solve(region.T, marker_positions(viewer).T).T
        assert np.all(g > -1e-6) and np.all(g < 1 - 1e-6), repeat
    one = StructureViewer(atoms)
    assert n_segments(one.trace("bonds")) == 0 and n_segments(one.trace("stubs")) == 12
    assert one.trace("atoms").hovertext[1].startswith("atom 1 · Cl<br>6 neighbour(s): Na0 ×6")
    assert one.controller.graph.nodes[1]["position"] == (2.82, 0.0, 0.0)  # the model's: kept


def n_segments(trace) -> int:
    return sum(1 for x in trace.x if x is None)
