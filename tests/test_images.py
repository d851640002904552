"""Tests of node-neighbour images: shape, values, invariance, overflow, pixel naming."""

from __future__ import annotations

import warnings

import networkx as nx
import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from rdkit import Chem
from rdkit.Chem import AllChem

from andersonn_lab.structures import (
    CHANNELS,
    ImageOverflowWarning,
    StructureError,
    from_atoms,
    from_mol,
    from_smiles,
    image_atom_order,
    node_neighbor_image,
    pixel_atoms,
)

ENCODINGS = ("adjacency", "neighbors", "elements", "electrons")
MOLECULES = [
    "c1ccccc1",  # D6h benzene
    "Cc1ccccc1",  # toluene
    "CC(C)(C)C(F)(F)F",  # tert-butyl + CF3
    "C1C2CC3CC1CC(C2)C3",  # adamantane
    "C12C3C4C1C5C2C3C45",  # cubane
    "CC(=O)Oc1ccccc1C(=O)O",  # aspirin
    "CN1C=NC2=C1C(=O)N(C(=O)N2C)C",  # caffeine
    "c1ccc2ccccc2c1",  # naphthalene
    "CC(=O)[O-].[Na+].CC(=O)[O-].[Na+]",  # salt, repeated components
    "OC(=O)CC(O)(CC(O)=O)C(O)=O",  # citric acid
]


def _shuffled_mols(mol: Chem.Mol, n: int) -> list[Chem.Mol]:
    rng = np.random.default_rng(0)
    perms = [rng.permutation(mol.GetNumAtoms()).tolist() for _ in range(n)]
    perms.append(list(range(mol.GetNumAtoms()))[::-1])
    return [Chem.RenumberAtoms(mol, perm) for perm in perms]


def _image(graph: nx.Graph, encoding: str, size: int = 32) -> np.ndarray:
    return node_neighbor_image(graph, encoding=encoding, size=size).numpy()


# ------------------------------------------------------------------------- shape and values


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("size", [8, 32])
def test_shape_dtype_padding(encoding, size):
    g = from_smiles("CCO")
    img = node_neighbor_image(g, encoding=encoding, size=size)
    assert isinstance(img, torch.Tensor)
    assert img.shape == (len(CHANNELS[encoding]), size, size) and img.dtype == torch.float32
    assert torch.all(img[:, 3:, :] == 0)
    if encoding != "neighbors":
        assert torch.all(img[:, :, 3:] == 0)
    assert torch.all(img >= 0)


def test_adjacency_values_benzene():
    img = _image(from_smiles("c1ccccc1"), "adjacency", 8)
    np.testing.assert_allclose(np.diag(img[0])[:6], 6 / 118, rtol=1e-6)
    assert np.allclose(img[0] - np.diag(np.diag(img[0])), 0)
    ch1 = img[1]
    np.testing.assert_array_equal(ch1, ch1.T)
    assert set(np.unique(ch1).tolist()) == {0.0, 0.5}
    np.testing.assert_allclose(ch1.sum(1)[:6], 1.0)  # two aromatic bonds per atom: 2*1.5/3
    assert np.all(img[2] == 0)  # no coordinates, no distance term


def test_adjacency_row_sums_are_valences():
    g = from_smiles("CC(=O)Oc1ccccc1C(=O)O", explicit_h=True)
    img = _image(g, "adjacency")
    order = image_atom_order(g)
    for r, node in enumerate(order):
        valence = sum(d["bond_order"] for _, _, d in g.edges(node, data=True))
        assert img[1, r].sum() * 3 == pytest.approx(valence, rel=1e-6)


def test_distance_channel_with_coordinates():
    g = from_smiles("CCO", embed_3d=True)
    img = _image(g, "adjacency", 4)
    order = image_atom_order(g)
    d = g.edges[order[0], order[1]]["distance"]
    assert img[2, 0, 1] == pytest.approx(np.exp(-d / 1.5), rel=1e-6)
    nb = _image(g, "neighbors", 4)
    assert nb[1, 0, 0] == 1.0 and nb[1, 0, 1] == pytest.approx(np.exp(-d / 1.5), rel=1e-6)


def test_neighbors_values_and_k():
    g = from_smiles("OC(=O)C")
    img = _image(g, "neighbors", 6)
    order = image_atom_order(g)
    for r, node in enumerate(order):
        n_neigh = g.degree(node)
        assert img[0, r, 0] == pytest.approx(g.nodes[node]["atomic_number"] / 118)
        assert np.all(img[0, r, 1 : 1 + n_neigh] > 0) and np.all(img[:, r, 1 + n_neigh :] == 0)
        assert img[2, r, 1 : 1 + n_neigh].sum() * 3 == pytest.approx(
            sum(d["bond_order"] for _, _, d in g.edges(node, data=True))
        )
    central = order.index(1)
    np.testing.assert_allclose(img[2, central, 1:4], [2 / 3, 1 / 3, 1 / 3], rtol=1e-6)
    cut = node_neighbor_image(g, encoding="neighbors", size=6, k=1).numpy()
    assert np.all(cut[:, :, 2:] == 0)
    np.testing.assert_array_equal(cut[:, :, :2], img[:, :, :2])


def test_crystal_images_count_periodic_bonds():
    g = from_atoms(bulk("Si", "diamond", a=5.431), cutoff_scale=1.1)
    adj = _image(g, "adjacency", 4)
    assert adj[1, 0, 1] == pytest.approx(4 / 3)  # 4 bond instances between the two atoms
    nb = _image(g, "neighbors", 8)
    assert np.count_nonzero(nb[0, 0]) == 5  # the atom and its 4 neighbours
    cu = _image(from_atoms(bulk("Cu", "fcc", a=3.61)), "adjacency", 2)
    assert cu[1, 0, 0] == pytest.approx(12 / 3)  # 12 bonds to its own images, on the diagonal


def test_elements_channels_rock_salt():
    g = from_atoms(bulk("NaCl", "rocksalt", a=5.64), cutoff_scale=1.1)
    img = _image(g, "elements", 4)
    np.testing.assert_array_equal(img[:3], _image(g, "adjacency", 4))
    assert CHANNELS["elements"][3:] == ("electronegativity", "group", "period")
    order = image_atom_order(g)
    cl, na = (order.index(i) for i in (1, 0))  # ase puts Na first; Cl is heavier, row 0
    assert (cl, na) == (0, 1)
    np.testing.assert_allclose(np.diag(img[3])[:2], [3.16 / 4, 0.93 / 4], rtol=1e-6)
    np.testing.assert_allclose(img[3, 0, 1], (3.16 - 0.93) / 4, rtol=1e-6)
    np.testing.assert_array_equal(img[3], img[3].T)
    np.testing.assert_allclose(img[4, :2, :2], [[17 / 18, 1 / 18], [17 / 18, 1 / 18]], rtol=1e-6)
    np.testing.assert_allclose(img[5, :2, :2], [[3 / 7, 3 / 7], [3 / 7, 3 / 7]], rtol=1e-6)
    assert np.all(img[3:, 2:, :] == 0) and np.all(img[3:, :, 2:] == 0)


def test_elements_channels_unbonded_pairs_and_missing_electronegativity():
    g = from_smiles("CCO")  # C-C-O: the two end atoms are not bonded
    img = _image(g, "elements", 4)
    order = image_atom_order(g)
    o, c_end = order.index(2), order.index(0)
    assert img[3:, o, c_end].tolist() == [0.0, 0.0, 0.0]
    argon = from_atoms(bulk("Ar", "fcc", a=5.26), cutoff_scale=1.8)  # no Pauling value
    ar = _image(argon, "elements", 2)
    assert ar[3, 0, 0] == 0 and ar[4, 0, 0] == pytest.approx(1.0) and ar[5, 0, 0] > 0


def test_elements_channels_of_a_bond_to_an_atom_without_electronegativity():
    # Rock salt with Cl replaced by Ar (no Pauling value), bonded by a wide cutoff.
    atoms = bulk("NaCl", "rocksalt", a=5.64)
    atoms.set_chemical_symbols(["Na", "Ar"])
    g = from_atoms(atoms, cutoff_scale=1.1)
    assert g.has_edge(0, 1)
    img = _image(g, "elements", 3)
    assert image_atom_order(g) == [1, 0]  # Ar (heavier) is row 0, Na row 1
    # Hand-computed: no electronegativity difference exists for the Ar-Na bond, so its
    # pixels hold 0 (not |0.93 - 0| / 4); the diagonal holds Na's 0.93 / 4 and Ar's 0.
    np.testing.assert_allclose(img[3, :2, :2], [[0.0, 0.0], [0.0, 0.93 / 4]], rtol=1e-6)
    # Bonded pixels of group and period hold the neighbour's (column atom's) values.
    np.testing.assert_allclose(img[4, :2, :2], [[18 / 18, 1 / 18], [18 / 18, 1 / 18]], rtol=1e-6)
    np.testing.assert_allclose(img[5, :2, :2], np.full((2, 2), 3 / 7), rtol=1e-6)
    assert np.all(img[3:, 2, :] == 0) and np.all(img[3:, :, 2] == 0)


@pytest.mark.parametrize(
    ("atoms", "odd"),
    [
        (bulk("Cu", "fcc", a=3.61), 1.0),  # 11 valence electrons
        (bulk("Si", "diamond", a=5.431), 0.0),  # 2 atoms, one formula unit of 4
        (bulk("NaCl", "rocksalt", a=5.64), 0.0),  # 1 + 7
        (bulk("TiN", "rocksalt", a=4.24), 1.0),  # 4 + 5
        (bulk("CaF2", "fluorite", a=5.46), 0.0),  # 2 + 2 x 7
        (bulk("ScN", "rocksalt", a=4.5), 0.0),  # 3 + 5
    ],
)
def test_electrons_flag_counts_valence_electrons_of_a_formula_unit(atoms, odd):
    g = from_atoms(atoms, cutoff_scale=1.1)
    img = _image(g, "electrons", 4)
    assert CHANNELS["electrons"] == (*CHANNELS["elements"], "odd_electrons")
    np.testing.assert_array_equal(img[:6], _image(g, "elements", 4))
    n = g.number_of_nodes()
    np.testing.assert_array_equal(np.diag(img[6])[:n], np.full(n, odd))
    assert np.count_nonzero(img[6]) == (n if odd else 0)  # the diagonal only


def test_electrons_flag_uses_the_formula_unit_of_the_whole_graph():
    # two formula units of NbSe2 (2 x 17 electrons, even per cell, odd per formula unit)
    nbse2 = Atoms(
        "Nb2Se4",
        scaled_positions=[
            (1 / 3, 2 / 3, 0.25),
            (2 / 3, 1 / 3, 0.75),
            (1 / 3, 2 / 3, 0.62),
            (1 / 3, 2 / 3, 0.88),
            (2 / 3, 1 / 3, 0.12),
            (2 / 3, 1 / 3, 0.38),
        ],
        cell=[(3.44, 0, 0), (-1.72, 2.979, 0), (0, 0, 12.55)],
        pbc=True,
    )
    g = from_atoms(nbse2)
    assert np.all(np.diag(_image(g, "electrons", 8)[6])[:6] == 1.0)
    fluorite = from_atoms(bulk("CaF2", "fluorite", a=5.46), cutoff_scale=1.1)  # 2 + 2 x 7
    with pytest.warns(ImageOverflowWarning):  # the rows show Ca and one F (9), the cell 16
        cropped = node_neighbor_image(fluorite, encoding="electrons", size=2)
    assert np.all(cropped[6].numpy() == 0)


@pytest.mark.parametrize(
    ("smiles", "odd"),
    [
        ("CCO", 0.0),  # C2H6O: 8 + 6 + 6 = 20, implicit hydrogens included
        ("[CH3]", 1.0),  # methyl radical: 4 + 3
        ("[NH4+]", 0.0),  # 5 + 4 - 1
        ("[O-][N+](=O)[O-]", 0.0),  # nitrate: 5 + 18 - (-1) = 24
        ("[N]=O", 1.0),  # nitric oxide: 5 + 6
        ("c1ccccc1", 0.0),  # benzene, C6H6: 30 (the unit CH of a crystal would give 5)
        ("N#N", 0.0),  # 10
        ("CC(=O)[O-].[Na+].CC(=O)[O-].[Na+]", 0.0),  # sodium acetate, twice
    ],
)
def test_electrons_flag_of_molecules_counts_hydrogens_and_charges(smiles, odd):
    img = _image(from_smiles(smiles), "electrons", 16)
    n = from_smiles(smiles).number_of_nodes()
    assert np.diag(img[6])[:n].tolist() == [odd] * n


@pytest.mark.parametrize(
    "kwargs",
    [
        {"encoding": "pixels"},
        {"size": 0},
        {"size": 4, "k": 4},
        {"k": -1},
        {"on_overflow": "ignore"},
    ],
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        node_neighbor_image(from_smiles("CCO"), **kwargs)


def test_empty_graph():
    with pytest.raises(StructureError):
        node_neighbor_image(nx.Graph(name="empty"))


# ------------------------------------------------------------------------------ invariance


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("smiles", MOLECULES)
@pytest.mark.parametrize("explicit_h", [False, True])
def test_molecule_invariance(smiles, encoding, explicit_h):
    mol = Chem.MolFromSmiles(smiles)
    if explicit_h:
        mol = Chem.AddHs(mol)
    ref = _image(from_mol(mol), encoding)
    assert ref.any()
    for shuffled in _shuffled_mols(mol, 4):
        np.testing.assert_array_equal(_image(from_mol(shuffled), encoding), ref)


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("smiles", MOLECULES[:6])
def test_molecule_invariance_3d(smiles, encoding):
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    AllChem.EmbedMolecule(mol, randomSeed=3)
    ref = _image(from_mol(mol), encoding)
    for shuffled in _shuffled_mols(mol, 3):
        np.testing.assert_allclose(_image(from_mol(shuffled), encoding), ref, atol=1e-6)


def _crystals():
    return [
        (bulk("Si", "diamond", a=5.431, cubic=True), 1.1),
        (bulk("NaCl", "rocksalt", a=5.64, cubic=True), 1.1),
        (bulk("Fe", "bcc", a=2.87, cubic=True).repeat((2, 1, 1)), 1.0),
        (bulk("ZnS", "zincblende", a=5.41, cubic=True), 1.1),
    ]


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize(("atoms", "scale"), _crystals())
def test_crystal_invariance(atoms, scale, encoding):
    ref = _image(from_atoms(atoms, cutoff_scale=scale), encoding, 16)
    assert ref.any()
    rng = np.random.default_rng(1)
    for _ in range(4):
        perm = rng.permutation(len(atoms))
        img = _image(from_atoms(atoms[perm], cutoff_scale=scale), encoding, 16)
        np.testing.assert_allclose(img, ref, atol=1e-6)


def test_distorted_crystal_invariance():
    atoms = bulk("Si", "diamond", a=5.431, cubic=True)
    atoms.rattle(stdev=0.05, seed=2)
    ref = _image(from_atoms(atoms, cutoff_scale=1.1), "neighbors", 8)
    perm = np.random.default_rng(5).permutation(len(atoms))
    np.testing.assert_allclose(
        _image(from_atoms(atoms[perm], cutoff_scale=1.1), "neighbors", 8), ref, atol=1e-6
    )


def test_different_molecules_differ():
    a = _image(from_smiles("CCO"), "adjacency", 8)
    b = _image(from_smiles("COC"), "adjacency", 8)
    assert not np.array_equal(a, b)


# -------------------------------------------------------------------------------- overflow


def test_overflow_crop_warns():
    g = from_smiles("CCCCCCCCCC", name="decane")
    with pytest.warns(ImageOverflowWarning, match=r"'decane'.*6 atoms dropped"):
        img = node_neighbor_image(g, size=4)
    assert img.shape == (3, 4, 4)
    full = _image(g, "adjacency", 10)
    np.testing.assert_array_equal(img.numpy(), full[:, :4, :4])


def test_overflow_error():
    g = from_smiles("CCCCCCCCCC", name="decane")
    with pytest.raises(StructureError, match="decane"):
        node_neighbor_image(g, size=4, on_overflow="error")


def test_no_warning_when_it_fits():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        node_neighbor_image(from_smiles("CCCC"), size=4)


# ---------------------------------------------------------------------------- pixel naming


def test_image_atom_order_is_bfs_from_heaviest():
    g = from_smiles("CCCCS")
    order = image_atom_order(g)
    assert order == [4, 3, 2, 1, 0]
    assert image_atom_order(g, size=2) == [4, 3]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_pixel_atoms_match_image(encoding):
    g = from_smiles("CC(=O)Oc1ccccc1C(=O)O")
    size = 16
    img = _image(g, encoding, size)
    n = g.number_of_nodes()
    for row in range(size):
        for col in range(size):
            pair = pixel_atoms(g, row, col, encoding=encoding, size=size)
            if row >= n or img[0, row, col] == 0 and not img[:, row, col].any():
                assert pair is None or (encoding != "neighbors" and row != col)
                continue
            assert pair is not None
            a, b = pair
            if encoding != "neighbors":
                assert (img[1, row, col] > 0) == g.has_edge(a, b)
            else:
                assert a == b if col == 0 else g.has_edge(a, b)
                assert img[0, row, col] == pytest.approx(g.nodes[b]["atomic_number"] / 118)
    with pytest.raises(ValueError):
        pixel_atoms(g, size, 0, size=size)


def test_composition_image_is_electrons_plus_whole_structure_scalars():
    from andersonn_lab.structures.images import COMPOSITION_GLOBAL_SCALES, GLOBAL_CHANNELS

    g = from_atoms(bulk("NaCl", "rocksalt", a=5.64))
    img = _image(g, "composition", 4)
    n_global = GLOBAL_CHANNELS["composition"]
    assert len(CHANNELS["composition"]) == 7 + n_global == img.shape[0]
    np.testing.assert_array_equal(img[:7], _image(g, "electrons", 4))
    scaled = dict(zip(COMPOSITION_GLOBAL_SCALES, img[7:, 0, 0], strict=True))
    # Na 0.93, Cl 3.16 (Pauling); groups 1 and 17; two elements
    assert scaled["mean_electronegativity"] * 4 == pytest.approx((0.93 + 3.16) / 2, abs=1e-6)
    assert scaled["range_electronegativity"] * 4 == pytest.approx(2.23, abs=1e-6)
    assert scaled["max_group"] * 18 == pytest.approx(17, abs=1e-5)
    assert scaled["n_elements"] * 5 == pytest.approx(2, abs=1e-6)
    # the same numbers on the diagonal of each atom row, nothing off the diagonal
    n = g.number_of_nodes()
    np.testing.assert_array_equal(img[7:, 1, 1], img[7:, 0, 0])
    off = img[7:].copy()
    off[:, np.arange(n), np.arange(n)] = 0
    assert not off.any()
