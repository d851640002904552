"""The "framework" image encoding, its environment descriptors, the classifier's global path
and the MOF split groups."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.neighborlist import neighbor_list

from andersonn_lab.datasets.mofs import load_entries, split_group, split_groups
from andersonn_lab.datasets.tasks import stratified_split
from andersonn_lab.deq.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from andersonn_lab.deq.classifier import DEQClassifier
from andersonn_lab.structures import (
    CHANNELS,
    StructureError,
    from_atoms,
    from_smiles,
    image_atom_order,
    node_neighbor_image,
    pixel_atoms,
)
from andersonn_lab.structures.environment import (
    BONDING_NAMES,
    GLOBAL_NAMES,
    atom_environment,
    bonding_statistics,
    equivalent_atoms,
    framework_descriptors,
    periodic_pairs,
)
from andersonn_lab.structures.images import FRAMEWORK_GLOBAL_SCALES, GLOBAL_CHANNELS

A = 3.1  # simple cubic carbon, one atom per cell
AMU_PER_A3_TO_G_PER_CM3 = 1.66053906660


def _cubic() -> Atoms:
    return Atoms("C", positions=[[0.0, 0.0, 0.0]], cell=[A, A, A], pbc=True)


def _channel(name: str) -> int:
    return CHANNELS["framework"].index(name)


def test_hand_computed_pixels_of_a_simple_cubic_cell() -> None:
    # Bonds to the 6 face neighbours at 3.1 A (2 x 0.76 A x 2.5 = 3.8 A > 3.1 A, < 4.38 A).
    graph = from_atoms(_cubic(), cutoff_scale=2.5)
    img = node_neighbor_image(graph, encoding="framework", size=3).numpy()
    assert img.shape == (len(CHANNELS["framework"]), 3, 3)
    # Neighbours by distance: 6 at a, 12 at a*sqrt(2), 8 at a*sqrt(3), 6 at 2a, 24 at a*sqrt(5),
    # 24 at a*sqrt(6), 12 at a*sqrt(8), 30 at 3a (6 of (3,0,0) + 24 of (2,2,1)), 24 at a*sqrt(10);
    # a*sqrt(11) = 10.28 A is beyond 10 A. Shells (0,4], (4,6], (6,8], (8,10]:
    counts = [6, 12 + 8, 6 + 24 + 24, 12 + 30 + 24]
    shells = ((0, 4), (4, 6), (6, 8), (8, 10))
    density = [
        c / (4 / 3 * math.pi * (hi**3 - lo**3)) / 0.1
        for (lo, hi), c in zip(shells, counts, strict=True)
    ]
    expected = {
        "atomic_number": 6 / 118,
        "bond_order": 6 * 1.0 / 3,  # six single bond instances to its own images
        "distance": 6 * math.exp(-A / 1.5),
        "multiplicity": 1.0,
        "nonbonded_distance": A * math.sqrt(2) / 5.0,  # nearest non-bonded: face diagonal
        **{f"shell_{lo}_{hi}": v for (lo, hi), v in zip(shells, density, strict=True)},
        "global_density": 12.011 / A**3 * AMU_PER_A3_TO_G_PER_CM3 / 2.0,
        "global_volume_per_atom": A**3 / 40.0,
        "global_packing_fraction": 4 / 3 * math.pi * 1.70**3 / A**3,  # vdW radius of C
        "global_fraction_C": 1.0,
        "global_mean_nonbonded_distance": A * math.sqrt(2) / 5.0,
        "global_p90_nonbonded_distance": A * math.sqrt(2) / 5.0,
        **{f"global_mean_shell_{lo}_{hi}": v for (lo, hi), v in zip(shells, density, strict=True)},
        **{f"global_p10_shell_{lo}_{hi}": v for (lo, hi), v in zip(shells, density, strict=True)},
    }
    for name in CHANNELS["framework"]:
        value = expected.get(name, 0.0)  # fractions of H, N, O and metals: 0
        assert img[_channel(name), 0, 0] == pytest.approx(value, rel=1e-5, abs=1e-7), name
    mask = np.ones((3, 3), dtype=bool)
    mask[0, 0] = False
    assert np.all(img[:, mask] == 0.0)  # one class, one row: everything else is padding


def test_equivalent_atoms_share_one_row_and_a_supercell_gives_the_same_image() -> None:
    salt = bulk("NaCl", "rocksalt", a=5.64)  # Na-Cl 2.82 A; Na-Na 3.99 A stays unbonded
    small = node_neighbor_image(from_atoms(salt, cutoff_scale=1.1), encoding="framework", size=4)
    big_atoms = salt.repeat((2, 2, 1))
    rng = np.random.default_rng(0)
    big_atoms = big_atoms[rng.permutation(len(big_atoms))]  # input order must not matter
    big_graph = from_atoms(big_atoms, cutoff_scale=1.1)
    big = node_neighbor_image(big_graph, encoding="framework", size=4)
    assert torch.allclose(small, big, atol=1e-5)
    assert small[_channel("multiplicity")].diagonal().tolist()[:2] == [0.5, 0.5]
    assert float(small[_channel("bond_order"), 0, 1]) == pytest.approx(6 / 3)  # 6 Cl per Na
    assert len(set(equivalent_atoms(big_graph))) == 2
    rows = image_atom_order(big_graph, encoding="framework")
    assert [big_graph.nodes[r]["element"] for r in rows] == ["Cl", "Na"]  # heaviest first
    assert pixel_atoms(big_graph, 0, 1, encoding="framework", size=4) == (rows[0], rows[1])


def test_framework_needs_a_periodic_structure_and_names_it() -> None:
    with pytest.raises(StructureError, match="framework.*aspirin|aspirin.*periodic"):
        node_neighbor_image(
            from_smiles("CC(=O)Oc1ccccc1C(=O)O", name="aspirin", embed_3d=True),
            encoding="framework",
        )


def _pair_set(i, j, d, shifts) -> list[tuple]:
    return sorted(zip(i.tolist(), j.tolist(), map(tuple, shifts.tolist()), strict=True))


def test_periodic_pairs_match_ase_neighbor_list_in_a_skewed_cell() -> None:
    atoms = bulk("Si", "diamond", a=5.43)  # fcc primitive cell: a skewed cell
    atoms.positions += [7.3, -4.1, 2.2]  # atoms outside the cell
    for cutoff in (2.5, 6.0, 10.0):
        ours = periodic_pairs(atoms, cutoff)
        theirs = neighbor_list("ijdS", atoms, cutoff)
        assert _pair_set(*ours) == _pair_set(*theirs)
    with pytest.raises(ValueError, match="cutoff"):
        periodic_pairs(atoms, -1.0)


def test_environment_and_descriptors_of_fcc_copper() -> None:
    graph = from_atoms(bulk("Cu", "fcc", a=3.61))
    env = atom_environment(graph)
    assert env.nonbonded_distance[0] == pytest.approx(3.61)  # second shell, a
    assert env.shell_counts[0, 0] == 12 + 6  # a/sqrt(2) and a; a*sqrt(3/2) = 4.42 A is beyond
    descriptors = framework_descriptors(graph, env)
    assert list(descriptors) == list(GLOBAL_NAMES) == list(FRAMEWORK_GLOBAL_SCALES)
    assert descriptors["fraction_metal"] == 1.0
    assert GLOBAL_CHANNELS["framework"] == len(GLOBAL_NAMES) and GLOBAL_CHANNELS["adjacency"] == 0


def _global_model(seed: int = 0) -> DEQClassifier:
    torch.manual_seed(seed)
    return DEQClassifier(
        5, 3, channels=8, hidden=8, groups=4, pool=2, cell="contractive", global_channels=2
    )


def _perovskite_srtio3() -> Atoms:
    from ase.spacegroup import crystal

    return crystal(
        ["Sr", "Ti", "O"],
        [(0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0.5, 0)],
        spacegroup=221,
        cellpar=[3.905, 3.905, 3.905, 90, 90, 90],
    )


@pytest.mark.parametrize(
    ("atoms", "expected"),
    [
        # odd electrons, mean coordination, mean and max |chi_a - chi_b|, metal-metal, A^3/atom
        (bulk("Cu", "fcc", a=3.615), (1.0, 12.0, 0.0, 0.0, 1.0, 3.615**3 / 4)),
        (
            bulk("Mg", "hcp", a=3.21, c=5.21),
            (0.0, 12.0, 0.0, 0.0, 1.0, 3**0.5 / 4 * 3.21**2 * 5.21),
        ),
        (bulk("Si", "diamond", a=5.431), (0.0, 4.0, 0.0, 0.0, 0.0, 5.431**3 / 8)),
        (bulk("CsCl", "cesiumchloride", a=4.12), (0.0, 8.0, 2.37, 2.37, 0.0, 4.12**3 / 2)),
        # Ti-O (6 per Ti, 1.90) and Sr-O (12 per Sr, 2.49) seen from both ends: 12 and 24
        # instances over 5 atoms
        (
            _perovskite_srtio3(),
            (0.0, 36 / 5, (12 * 1.90 + 24 * 2.49) / 36, 2.49, 0.0, 3.905**3 / 5),
        ),
    ],
    ids=["Cu-fcc", "Mg-hcp", "Si-diamond", "CsCl", "SrTiO3"],
)
def test_bonding_statistics_match_hand_counts(atoms: Atoms, expected: tuple) -> None:
    stats = bonding_statistics(from_atoms(atoms))
    assert tuple(stats) == BONDING_NAMES
    for name, want in zip(BONDING_NAMES, expected, strict=True):
        assert stats[name] == pytest.approx(want, abs=1e-9), name


def test_the_global_path_changes_predictions_through_the_fixed_point_solve() -> None:
    model = _global_model().eval()
    images = torch.rand(4, 5, 8, 8)
    changed = images.clone()
    changed[:, 4, 0, 0] += 1.0  # one whole-structure scalar
    with torch.no_grad():
        before, after = model(images), model(changed)
        assert not torch.allclose(before, after)
        # Without the head's direct use of the scalars they still act, via the injection.
        model.head[2].weight[:, -2:] = 0.0
        z_before, z_after = model.features(images), model.features(changed)
    assert not torch.allclose(z_before, z_after)
    assert model.deq.last_stats.forward.nfe > 1  # a real fixed-point solve ran
    # The per-sample GroupNorm of the stem sees only the 3 per-atom channels.
    assert model.stem[0].in_channels == 3
    with pytest.raises(ValueError, match="global_channels"):
        DEQClassifier(3, 2, global_channels=3)


def test_checkpoints_keep_the_global_path_and_old_configs_still_load(tmp_path) -> None:
    model = _global_model(1)
    path = save_checkpoint(tmp_path / "g.pt", model=model, epoch=1, history=[], config={})
    assert DEQClassifier.from_config(model.config).config == model.config
    fresh = DEQClassifier.from_config(model.config)
    load_checkpoint(path, fresh)
    images = torch.rand(2, 5, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(images), fresh(images))
    # A model without global channels has the same config keys as before they existed.
    plain = DEQClassifier(3, 2, channels=8, hidden=8, groups=4)
    assert "global_channels" not in plain.config
    old = save_checkpoint(tmp_path / "old.pt", model=plain, epoch=1, history=[], config={})
    load_checkpoint(old, DEQClassifier.from_config(plain.config))
    with pytest.raises(CheckpointError, match="global_channels"):
        load_checkpoint(
            path, DEQClassifier(5, 3, channels=8, hidden=8, groups=4, pool=2, cell="contractive")
        )


def test_split_groups_follow_refcode_stems() -> None:
    assert split_group("MAGVOG04_clean") == split_group("MAGVOG27_clean") == "MAGVOG"
    assert split_group("ABAVIJ_clean") == "ABAVIJ"
    assert split_group("ja500618z_si_006_clean") == split_group("ja500618z_si_007_clean")
    with pytest.raises(ValueError, match="mof_id"):
        split_group("")


def test_group_aware_split_never_puts_a_family_on_both_sides() -> None:
    entries = load_entries()
    ids = [e.id for e in entries]
    labels = [e.label for e in entries]
    groups = split_groups(entries)
    families = {g for g in groups if groups.count(g) > 1}
    assert "MAGVOG" in families
    for seed in range(5):
        split = stratified_split(ids, labels, seed, groups)
        part_of = {int(p): name for name, part in split.items() for p in part.tolist()}
        assert sorted(part_of) == list(range(len(ids)))
        for family in families:
            parts = {part_of[p] for p, g in enumerate(groups) if g == family}
            assert len(parts) == 1, (seed, family, parts)
        sizes = {name: len(part) for name, part in split.items()}
        assert abs(sizes["test"] - 0.15 * len(ids)) < 10  # still about 70/15/15
    # Without groups, or with one group per entry, the split is the ungrouped one.
    plain = stratified_split(ids, labels, 3)
    same = stratified_split(ids, labels, 3, ids)
    assert all(torch.equal(plain[k], same[k]) for k in plain)


def test_framework_image_of_a_shipped_mof_keeps_every_atom_class() -> None:
    entry = next(e for e in load_entries() if e.id.startswith("MAGVOG"))
    graph = from_atoms(entry.structure)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ImageOverflowWarning: all classes fit
        img = node_neighbor_image(graph, encoding="framework", size=32)
    rows = image_atom_order(graph, encoding="framework")
    assert len(rows) <= 32 < graph.number_of_nodes() or graph.number_of_nodes() <= 32
    multiplicity = img[_channel("multiplicity")].diagonal()[: len(rows)]
    assert float(multiplicity.sum()) == pytest.approx(1.0)  # every atom of the cell counted


def test_viewer_and_attribution_map_every_atom_of_a_class_to_its_row() -> None:
    from andersonn_lab.widgets import ImageViewer
    from andersonn_lab.widgets.attribution import atom_scores

    graph = from_atoms(bulk("NaCl", "rocksalt", a=5.64).repeat((2, 1, 1)), cutoff_scale=1.1)
    viewer = ImageViewer(graph, encoding="framework", size=4)
    image = node_neighbor_image(graph, encoding="framework", size=4).numpy()
    assert len(viewer.fig.data) == len(image) == len(CHANNELS["framework"])
    controller = viewer.controller
    rows = image_atom_order(graph, encoding="framework")
    for node in graph.nodes:
        element = graph.nodes[node]["element"]
        assert controller.row_of(node) == [graph.nodes[r]["element"] for r in rows].index(element)
    scores = atom_scores(np.ones((4, 4)), graph, encoding="framework")
    assert sorted(scores) == sorted(graph.nodes)  # every atom gets its class's share
    assert sum(scores.values()) == pytest.approx(2 * (4 + 4 - 1))  # the two occupied rows


def test_framework_atoms_gives_every_atom_its_own_row() -> None:
    graph = from_atoms(bulk("NaCl", "rocksalt", a=5.64).repeat((2, 1, 1)), cutoff_scale=1.1)
    pooled = node_neighbor_image(graph, encoding="framework", size=4)
    atoms = node_neighbor_image(graph, encoding="framework_atoms", size=4)
    assert CHANNELS["framework_atoms"] == CHANNELS["framework"]
    multiplicity = _channel("multiplicity")
    assert atoms[multiplicity].diagonal().tolist() == [0.25] * 4
    assert pooled[multiplicity].diagonal().tolist() == [0.5, 0.5, 0.0, 0.0]
    # Same atoms, same environments and scalars: row 0 (a Cl) agrees beyond the bond columns.
    assert torch.allclose(atoms[3:, 0, 0][1:], pooled[3:, 0, 0][1:])
    assert float(atoms[_channel("bond_order")].sum()) == pytest.approx(4 * 6 / 3)
    with pytest.warns(Warning, match="4 atoms do not fit"):
        node_neighbor_image(graph, encoding="framework_atoms", size=2)


def test_void_encoding_is_the_framework_image_plus_the_empty_space_channels() -> None:
    from andersonn_lab.structures.images import VOID_GLOBAL_SCALES
    from andersonn_lab.structures.pores import void_descriptors

    atoms = Atoms("Cu", positions=[[0, 0, 0]], cell=np.eye(3) * 3.6, pbc=True)
    graph = from_atoms(atoms)
    framework = node_neighbor_image(graph, encoding="framework", size=4)
    void = node_neighbor_image(graph, encoding="void", size=4)
    n_void = len(VOID_GLOBAL_SCALES)
    assert CHANNELS["void"][: len(CHANNELS["framework"])] == CHANNELS["framework"]
    assert void.shape[0] == len(CHANNELS["void"]) == framework.shape[0] + n_void
    assert GLOBAL_CHANNELS["void"] == GLOBAL_CHANNELS["framework"] + n_void
    assert torch.equal(void[: framework.shape[0]], framework)
    expected = void_descriptors(atoms)
    for offset, name in enumerate(VOID_GLOBAL_SCALES):
        channel = void[framework.shape[0] + offset]
        assert channel[0, 0].item() == pytest.approx(expected[name] / VOID_GLOBAL_SCALES[name])
        assert channel.sum().item() == pytest.approx(channel[0, 0].item())  # one atom row
