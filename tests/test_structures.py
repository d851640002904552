"""Tests of andersonn_lab.structures: molecules, crystals, files and bad input."""

from __future__ import annotations

import ase.io
import networkx as nx
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from rdkit import Chem
from rdkit.Chem import AllChem

from andersonn_lab.structures import (
    StructureError,
    coordination_numbers,
    from_atoms,
    from_mol,
    from_smiles,
    read_molecules,
    read_structure,
    to_atoms,
)

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"


# ------------------------------------------------------------------------------- molecules


@pytest.mark.parametrize(
    ("smiles", "explicit_h", "n_atoms", "n_bonds", "n_aromatic"),
    [
        ("c1ccccc1", False, 6, 6, 6),
        ("c1ccccc1", True, 12, 12, 6),
        (ASPIRIN, False, 13, 13, 6),
        (ASPIRIN, True, 21, 21, 6),
        ("CCO", True, 9, 8, 0),
        ("C#N", False, 2, 1, 0),
    ],
)
def test_molecule_counts(smiles, explicit_h, n_atoms, n_bonds, n_aromatic):
    g = from_smiles(smiles, explicit_h=explicit_h)
    assert g.number_of_nodes() == n_atoms
    assert g.number_of_edges() == n_bonds
    orders = [d["bond_order"] for _, _, d in g.edges(data=True)]
    assert sum(o == 1.5 for o in orders) == n_aromatic
    assert sum(d["aromatic"] for _, _, d in g.edges(data=True)) == n_aromatic
    assert g.graph["source"] == "smiles" and g.graph["periodic"] is False
    assert g.graph["cell"] is None
    for node, data in g.nodes(data=True):
        assert data["degree"] == g.degree(node)
        assert data["position"] is None
    for _, _, data in g.edges(data=True):
        assert data["shift"] == (0, 0, 0) and data["distance"] is None


def test_aspirin_attributes():
    g = from_smiles(ASPIRIN, name="aspirin")
    elements = sorted(d["element"] for _, d in g.nodes(data=True))
    assert elements.count("C") == 9 and elements.count("O") == 4
    assert sorted(d["bond_order"] for _, _, d in g.edges(data=True)).count(2.0) == 2
    assert sum(d["num_hs"] for _, d in g.nodes(data=True)) == 8
    assert g.graph["name"] == "aspirin" and g.graph["formula"] == "C9H8O4"


def test_explicit_hydrogens_from_smiles_with_h_atoms():
    assert from_smiles("[H]C([H])([H])[H]").number_of_nodes() == 1
    assert from_smiles("[H]C([H])([H])[H]", explicit_h=True).number_of_nodes() == 5


@pytest.mark.parametrize("explicit_h", [False, True])
def test_embed_3d_is_deterministic(explicit_h):
    a = from_smiles(ASPIRIN, embed_3d=True, seed=7, explicit_h=explicit_h)
    b = from_smiles(ASPIRIN, embed_3d=True, seed=7, explicit_h=explicit_h)
    assert a.number_of_nodes() == (21 if explicit_h else 13)
    pa = np.array([a.nodes[n]["position"] for n in a])
    pb = np.array([b.nodes[n]["position"] for n in b])
    np.testing.assert_array_equal(pa, pb)
    dists = [d["distance"] for _, _, d in a.edges(data=True)]
    assert 0.9 < min(dists) and max(dists) < 1.6


def test_salt_gives_several_components():
    g = from_smiles("CC(=O)[O-].[Na+]")
    assert nx.number_connected_components(g) == 2
    charges = sorted(d["formal_charge"] for _, d in g.nodes(data=True))
    assert charges == [-1, 0, 0, 0, 1]


def test_molecule_without_heavy_bonds_but_hydrogens_is_valid():
    g = from_smiles("C")
    assert g.number_of_nodes() == 1 and g.nodes[0]["num_hs"] == 4


# ----------------------------------------------------------------------------------- files


def _embedded(smiles: str, name: str) -> Chem.Mol:
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    AllChem.EmbedMolecule(mol, randomSeed=1)
    mol.SetProp("_Name", name)
    return mol


def test_sdf_round_trip(tmp_path):
    path = tmp_path / "two.sdf"
    writer = Chem.SDWriter(str(path))
    writer.write(_embedded(ASPIRIN, "aspirin"))
    writer.write(_embedded("c1ccccc1", "benzene"))
    writer.close()
    first = read_structure(path)
    assert first.graph["name"] == "aspirin" and first.graph["source"] == str(path)
    assert first.number_of_nodes() == 13
    assert all(d["position"] is not None for _, d in first.nodes(data=True))
    graphs = list(read_molecules(path, explicit_h=True))
    assert [g.graph["name"] for g in graphs] == ["aspirin", "benzene"]
    assert [g.number_of_nodes() for g in graphs] == [21, 12]
    aromatic = [d["bond_order"] for _, _, d in graphs[1].edges(data=True)].count(1.5)
    assert aromatic == 6


def test_mol_round_trip(tmp_path):
    path = tmp_path / "aspirin.mol"
    Chem.MolToMolFile(_embedded(ASPIRIN, "aspirin"), str(path))
    g = read_structure(path, explicit_h=True)
    assert g.number_of_nodes() == 21 and g.number_of_edges() == 21
    assert g.edges[0, 1]["distance"] == pytest.approx(1.5, abs=0.1)


def test_smi_file(tmp_path):
    path = tmp_path / "set.smi"
    path.write_text("# comment\nCCO ethanol\n\nc1ccccc1 benzene\n")
    assert read_structure(path).graph["name"] == "ethanol"
    assert [g.number_of_nodes() for g in read_molecules(path)] == [3, 6]


@pytest.mark.parametrize(
    ("filename", "fmt"),
    [("si.cif", "cif"), ("si.extxyz", "extxyz"), ("si.xyz", "extxyz"), ("POSCAR", "vasp")],
)
def test_crystal_files(tmp_path, filename, fmt):
    path = tmp_path / filename
    ase.io.write(str(path), bulk("Si", "diamond", a=5.431, cubic=True), format=fmt)
    g = read_structure(path, cutoff_scale=1.1)
    assert g.number_of_nodes() == 8 and g.graph["periodic"]
    assert set(coordination_numbers(g).values()) == {4}
    assert np.allclose(g.graph["cell"], np.eye(3) * 5.431)
    assert g.graph["source"] == str(path)


def test_plain_xyz_molecule_file(tmp_path):
    path = tmp_path / "water.xyz"
    ase.io.write(str(path), molecule("H2O"), format="xyz")
    g = read_structure(path)
    assert not g.graph["periodic"] and g.graph["cell"] is None
    assert coordination_numbers(g) == {0: 2, 1: 1, 2: 1}


def test_unknown_suffix(tmp_path):
    path = tmp_path / "x.pdf"
    path.write_text("x")
    with pytest.raises(StructureError, match="x.pdf"):
        read_structure(path)


# -------------------------------------------------------------------------------- crystals


@pytest.mark.parametrize(
    ("atoms", "scale", "cn"),
    [
        (bulk("Si", "diamond", a=5.431), 1.1, 4),
        (bulk("Si", "diamond", a=5.431, cubic=True), 1.1, 4),
        (bulk("NaCl", "rocksalt", a=5.64), 1.1, 6),
        (bulk("NaCl", "rocksalt", a=5.64, cubic=True), 1.1, 6),
        (bulk("Fe", "bcc", a=2.87), 1.0, 8),
        (bulk("Fe", "bcc", a=2.87, cubic=True), 1.0, 8),
        (bulk("W", "bcc", a=3.165), 0.9, 8),
        (bulk("W", "bcc", a=3.165), 1.0, 14),
        (bulk("Cu", "fcc", a=3.61), 1.0, 12),
    ],
)
def test_coordination_numbers(atoms, scale, cn):
    g = from_atoms(atoms, cutoff_scale=scale)
    assert coordination_numbers(g) == dict.fromkeys(range(len(atoms)), cn)
    assert all(d["degree"] == cn for _, d in g.nodes(data=True))
    assert g.graph["periodic"] and g.graph["cutoff_scale"] == scale


def test_periodic_shifts_kept():
    atoms = bulk("Si", "diamond", a=5.431)
    g = from_atoms(atoms, cutoff_scale=1.1)
    data = g.edges[0, 1]
    assert data["multiplicity"] == 4 and len(set(data["shifts"])) == 4
    cell = np.asarray(g.graph["cell"])
    for shift, dist in zip(data["shifts"], data["distances"], strict=True):
        vec = atoms.positions[1] + np.asarray(shift) @ cell - atoms.positions[0]
        assert np.linalg.norm(vec) == pytest.approx(dist)
        assert dist == pytest.approx(5.431 * np.sqrt(3) / 4)


def test_self_image_bonds_are_self_loops():
    g = from_atoms(bulk("Cu", "fcc", a=3.61))
    assert list(g.edges) == [(0, 0)]
    assert g.edges[0, 0]["multiplicity"] == 6  # 6 +-S pairs = 12 neighbours
    assert g.nodes[0]["degree"] == 12


def test_non_periodic_atoms_and_components():
    water = molecule("H2O")
    pair = water + water.copy()
    pair.positions[3:] += (6.0, 0.0, 0.0)
    g = from_atoms(pair, name="water dimer")
    assert nx.number_connected_components(g) == 2
    assert g.edges[0, 1]["shift"] == (0, 0, 0)
    assert g.graph["name"] == "water dimer"


def test_to_atoms_round_trip():
    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    back = to_atoms(from_atoms(atoms, cutoff_scale=1.1))
    assert back.get_chemical_formula() == atoms.get_chemical_formula()
    np.testing.assert_allclose(back.positions, atoms.positions)
    np.testing.assert_allclose(back.cell, atoms.cell)
    with pytest.raises(StructureError):
        to_atoms(from_smiles("CCO"))


# ------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "smiles",
    ["C1CC", "C(C)(C)(C)(C)C", "[Xx]", "*CC", "[Ar]", "[Na+].[Cl-]", "", "c1cccc1"],
)
def test_bad_smiles(smiles, capfd):
    with pytest.raises(StructureError) as info:
        from_smiles(smiles)
    assert repr(smiles) in str(info.value)
    assert capfd.readouterr().err == ""  # RDKit's own logging is silenced


def test_pentavalent_carbon_message():
    with pytest.raises(StructureError, match="sanitisation failed.*valence"):
        from_smiles("C(C)(C)(C)(C)C")


def test_bad_mol_block(tmp_path):
    mol = _embedded("CC", "ethane")
    mol.GetConformer().SetAtomPosition(1, (np.nan, 0.0, 0.0))
    path = tmp_path / "nan.mol"
    Chem.MolToMolFile(mol, str(path))
    with pytest.raises(StructureError, match="nan.mol"):
        read_structure(path)
    garbage = tmp_path / "garbage.sdf"
    garbage.write_text("not a molecule\n$$$$\n")
    with pytest.raises(StructureError, match="garbage.sdf"):
        read_structure(garbage)


_CIF = (
    "data_NaCl\n_cell_length_a 5.64\n_cell_length_b 5.64\n_cell_length_c 5.64\n"
    "_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma 90\n"
    "_symmetry_space_group_name_H-M 'P 1'\n"
    "loop_\n_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n"
    "_atom_site_fract_y\n_atom_site_fract_z\nNa1 Na 0 0 0\nCl1 Cl 0.5 0 0\n"
)


def test_valid_cif_text(tmp_path):
    path = tmp_path / "nacl.cif"
    path.write_text(_CIF)
    g = read_structure(path, cutoff_scale=1.1)
    assert g.graph["name"] == "nacl" and g.number_of_nodes() == 2
    assert coordination_numbers(g) == {0: 2, 1: 2}  # Na-Cl chains along x, 2.82 A


@pytest.mark.parametrize(
    "text",
    ["", "this is not a CIF file\n\x00\x01", _CIF[:60], _CIF.replace("Cl1 Cl 0.5 0 0\n", "")],
    ids=["empty", "garbage", "truncated-header", "truncated-atoms"],
)
def test_bad_cif(tmp_path, text):
    path = tmp_path / "bad.cif"
    path.write_text(text)
    with pytest.raises(StructureError, match="bad.cif"):
        read_structure(path)


def test_unknown_element_in_xyz(tmp_path):
    path = tmp_path / "odd.xyz"
    path.write_text("2\n\nXx 0 0 0\nC 1.5 0 0\n")
    with pytest.raises(StructureError, match="odd.xyz"):
        read_structure(path)


def _nan_atoms() -> Atoms:
    atoms = molecule("H2O")
    atoms.positions[1, 0] = np.nan
    return atoms


def _periodic_overlap() -> Atoms:
    return Atoms("C", positions=[(0, 0, 0)], cell=np.eye(3) * 0.3, pbc=True)


@pytest.mark.parametrize(
    ("atoms", "match"),
    [
        (_nan_atoms(), "non-finite"),
        (Atoms(numbers=[0, 6], positions=[(0, 0, 0), (1.4, 0, 0)]), "unknown element"),
        (Atoms("CC", positions=[(0, 0, 0), (0.2, 0, 0)]), "overlap"),
        (_periodic_overlap(), "overlaps its own periodic image"),
        (
            Atoms("NaCl", positions=[(0, 0, 0), (0, 0, 4.9)], cell=np.eye(3) * 5, pbc=True),
            "overlap",
        ),
        (Atoms("Ar", positions=[(0, 0, 0)]), "no bonds"),
        (Atoms("CC", positions=[(0, 0, 0), (8, 0, 0)]), "no bonds"),
        (bulk("Ar", "fcc", a=5.26), "no bonds"),  # a van der Waals solid
        (Atoms(), "no atoms"),
    ],
)
def test_bad_atoms(atoms, match):
    with pytest.raises(StructureError, match=match) as info:
        from_atoms(atoms, name="bad one")
    assert "'bad one'" in str(info.value)


def test_covalent_rule_too_tight_for_silicon():
    with pytest.raises(StructureError, match="no bonds.*cutoff_scale=1.0"):
        from_atoms(bulk("Si", "diamond", a=5.431), bonds="covalent")


def test_bad_atoms_message_names_formula():
    with pytest.raises(StructureError, match="Ar"):
        from_atoms(Atoms("Ar", positions=[(0, 0, 0)]))


def test_dummy_atom_in_rdkit_mol():
    mol = Chem.MolFromSmiles("*CC")
    with pytest.raises(StructureError, match="unknown element"):
        from_mol(mol, name="dummy")
