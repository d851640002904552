"""Bond rules against textbook coordination numbers of common crystal prototypes.

The reference numbers are the coordination numbers every inorganic chemistry textbook gives
for these structure types (e.g. Greenwood & Earnshaw, *Chemistry of the Elements*; West,
*Solid State Chemistry and its Applications*), independent of this code.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.spacegroup import crystal

from andersonn_lab.structures import StructureError, coordination_numbers, from_atoms
from andersonn_lab.structures import bonds as bond_rules
from andersonn_lab.structures.bonds import find_bonds, is_metal


def _cubic(symbols, basis, spacegroup, a):
    return crystal(symbols, basis=basis, spacegroup=spacegroup, cellpar=[a, a, a, 90, 90, 90])


def _hexagonal(symbols, basis, spacegroup, a, c):
    return crystal(symbols, basis=basis, spacegroup=spacegroup, cellpar=[a, a, c, 90, 90, 120])


# (name, structure, {element: coordination}, ionic: cations and anions never bond alike)
PROTOTYPES = [
    ("diamond C", bulk("C", "diamond", a=3.567), {"C": 4}, False),
    ("diamond Si", bulk("Si", "diamond", a=5.431), {"Si": 4}, False),
    ("zinc blende ZnS", bulk("ZnS", "zincblende", a=5.409), {"Zn": 4, "S": 4}, True),
    ("zinc blende GaAs", bulk("GaAs", "zincblende", a=5.653), {"Ga": 4, "As": 4}, False),
    ("wurtzite GaN", bulk("GaN", "wurtzite", a=3.189, c=5.185, u=0.377), {"Ga": 4, "N": 4}, True),
    ("wurtzite ZnO", bulk("ZnO", "wurtzite", a=3.250, c=5.207, u=0.382), {"Zn": 4, "O": 4}, True),
    ("rock salt NaCl", bulk("NaCl", "rocksalt", a=5.640), {"Na": 6, "Cl": 6}, True),
    ("rock salt MgO", bulk("MgO", "rocksalt", a=4.212), {"Mg": 6, "O": 6}, True),
    ("rock salt MgO (cubic cell)", bulk("MgO", "rocksalt", a=4.212, cubic=True), {"Mg": 6}, True),
    ("CsCl", bulk("CsCl", "cesiumchloride", a=4.123), {"Cs": 8, "Cl": 8}, True),
    ("fluorite CaF2", bulk("CaF2", "fluorite", a=5.463), {"Ca": 8, "F": 4}, True),
    (
        "antifluorite Li2O",
        _cubic(["O", "Li"], [(0, 0, 0), (0.25, 0.25, 0.25)], 225, 4.611),
        {"O": 8, "Li": 4},
        True,
    ),
    (
        "antifluorite Mg2Si",
        _cubic(["Si", "Mg"], [(0, 0, 0), (0.25, 0.25, 0.25)], 225, 6.351),
        {"Si": 8, "Mg": 4},
        True,
    ),
    (
        "rutile TiO2",
        crystal(
            ["Ti", "O"],
            basis=[(0, 0, 0), (0.3048, 0.3048, 0)],
            spacegroup=136,
            cellpar=[4.594, 4.594, 2.959, 90, 90, 90],
        ),
        {"Ti": 6, "O": 3},
        True,
    ),
    (
        "perovskite SrTiO3",
        _cubic(["Sr", "Ti", "O"], [(0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0.5, 0)], 221, 3.905),
        {"Sr": 12, "Ti": 6, "O": 6},
        True,
    ),
    (
        "corundum Al2O3",
        _hexagonal(["Al", "O"], [(0, 0, 0.35216), (0.30624, 0, 0.25)], 167, 4.759, 12.991),
        {"Al": 6, "O": 4},
        True,
    ),
    (
        "calcite CaCO3",
        _hexagonal(
            ["Ca", "C", "O"], [(0, 0, 0), (0, 0, 0.25), (0.2578, 0, 0.25)], 167, 4.990, 17.061
        ),
        {"Ca": 6, "C": 3, "O": 3},
        False,  # carbonate: C-O covalent bonds inside the anion
    ),
    (
        "pyrite FeS2",
        _cubic(["Fe", "S"], [(0, 0, 0), (0.385, 0.385, 0.385)], 205, 5.417),
        {"Fe": 6, "S": 4},  # 3 Fe + the S of the S2 dumbbell
        False,
    ),
    ("fcc Cu", bulk("Cu", "fcc", a=3.615), {"Cu": 12}, False),
    ("fcc Al (cubic cell)", bulk("Al", "fcc", a=4.050, cubic=True), {"Al": 12}, False),
    ("hcp Mg", bulk("Mg", "hcp", a=3.209, c=5.211), {"Mg": 12}, False),
    ("hcp Ti", bulk("Ti", "hcp", a=2.951, c=4.684), {"Ti": 12}, False),
    ("bcc Fe", bulk("Fe", "bcc", a=2.8665), {"Fe": 8}, False),
    ("bcc W", bulk("W", "bcc", a=3.165), {"W": 8}, False),
    ("bcc Na (cubic cell)", bulk("Na", "bcc", a=4.291, cubic=True), {"Na": 8}, False),
    ("B2 NiAl", bulk("NiAl", "cesiumchloride", a=2.887), {"Ni": 8, "Al": 8}, False),
    (
        "graphite",
        _hexagonal(["C", "C"], [(0, 0, 0.25), (1 / 3, 2 / 3, 0.25)], 194, 2.464, 6.711),
        {"C": 3},
        False,
    ),
    (
        "h-BN",
        _hexagonal(["B", "N"], [(1 / 3, 2 / 3, 0.25), (1 / 3, 2 / 3, 0.75)], 194, 2.504, 6.661),
        {"B": 3, "N": 3},
        False,
    ),
]


def _element_coordination(graph: nx.Graph) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for node, cn in coordination_numbers(graph).items():
        out.setdefault(graph.nodes[node]["element"], set()).add(cn)
    return out


@pytest.mark.parametrize(
    ("atoms", "expected", "ionic"),
    [pytest.param(atoms, cn, ionic, id=name) for name, atoms, cn, ionic in PROTOTYPES],
)
def test_textbook_coordination(atoms, expected, ionic):
    graph = from_atoms(atoms)  # default arguments
    assert graph.graph["bonds"] == "nearest-shell" and graph.graph["cutoff_scale"] is None
    found = _element_coordination(graph)
    for element, cn in expected.items():
        assert found[element] == {cn}, f"{element}: {found[element]} != {cn}"
    if ionic:
        for u, v in graph.edges:
            zu, zv = graph.nodes[u]["atomic_number"], graph.nodes[v]["atomic_number"]
            assert is_metal(zu) != is_metal(zv), (
                f"{graph.nodes[u]['element']}-{graph.nodes[v]['element']} bond in an ionic solid"
            )


def test_prototype_table_is_large_enough():
    assert len(PROTOTYPES) >= 15


def test_read_structure_uses_the_same_default(tmp_path):
    from andersonn_lab.structures import read_structure

    path = tmp_path / "MgO.cif"
    bulk("MgO", "rocksalt", a=4.212).write(path)
    assert set(coordination_numbers(read_structure(path)).values()) == {6}


def test_old_rule_gave_cation_cation_bonds():
    """The covalent rule at the old crystals setting bonds Mg to Mg; the default does not."""
    mgo = bulk("MgO", "rocksalt", a=4.212)
    old = from_atoms(mgo, cutoff_scale=1.2)
    assert old.graph["bonds"] == "covalent" and coordination_numbers(old)[0] == 18
    assert coordination_numbers(from_atoms(mgo))[0] == 6


def test_bond_rule_choice_and_errors():
    si = bulk("Si", "diamond", a=5.431)
    assert from_atoms(si, bonds="covalent", cutoff_scale=1.1).graph["cutoff_scale"] == 1.1
    with pytest.raises(StructureError, match="no bonds"):
        from_atoms(si, bonds="covalent")  # ASE radii at 1.0 are too tight for Si-Si
    with pytest.raises(ValueError, match="cutoff_scale applies"):
        from_atoms(si, bonds="nearest-shell", cutoff_scale=1.2)
    with pytest.raises(ValueError, match="unknown bond rule"):
        from_atoms(si, bonds="voronoi")


def test_each_bond_instance_listed_once():
    i, j, d, s = find_bonds(bulk("Cu", "fcc", a=3.615))
    assert len(i) == 6 and np.all(i == j)  # 12 neighbours = 6 self-image pairs +-S
    keys = {(int(a), int(b), *map(int, sh)) for a, b, sh in zip(i, j, s, strict=True)}
    assert not any((b, a, -x, -y, -z) in keys for a, b, x, y, z in keys)


def _chelate() -> Atoms:
    """A zinc acetate fragment: Zn chelated by both carboxylate O, non-periodic."""
    return Atoms(
        "ZnOOCCHHH",
        positions=[
            (0.0, 0.0, 0.0),
            (1.10, 1.70, 0.0),
            (-1.10, 1.70, 0.0),
            (0.0, 2.35, 0.0),
            (0.0, 3.85, 0.0),
            (0.0, 4.25, 1.03),
            (0.89, 4.25, -0.51),
            (-0.89, 4.25, -0.51),
        ],
    )


def test_metal_linker_bonds_without_the_chelate_carbon(monkeypatch):
    graph = from_atoms(_chelate())
    assert graph.has_edge(0, 1) and graph.has_edge(0, 2)  # Zn-O
    assert graph.has_edge(1, 3) and graph.has_edge(3, 4)  # carboxylate and C-C
    assert not graph.has_edge(0, 3)  # the carboxylate C sits behind its O atoms
    monkeypatch.setattr(bond_rules, "SHADOW", 0.0)
    assert from_atoms(_chelate()).has_edge(0, 3)  # the rule, not the shell, removed it


def test_bound_hydrogen_is_no_metal_partner():
    # K+ 2.8 A from a carbonyl O and 2.6 A from a C-H hydrogen: only K-O is a bond.
    atoms = Atoms(
        "KOCCH",
        positions=[(0, 0, 0), (2.8, 0, 0), (4.0, 0, 0), (0, 3.69, 0), (0, 2.6, 0)],
    )
    graph = from_atoms(atoms)
    assert graph.has_edge(0, 1) and graph.has_edge(1, 2) and graph.has_edge(3, 4)
    assert not graph.has_edge(0, 4)


@pytest.mark.parametrize(("name", "n_bonds"), [("CH3CH2OH", 8), ("C6H6", 12), ("CH3COOH", 7)])
def test_molecules_get_every_covalent_bond(name, n_bonds):
    """Organic molecules: every bond of the structural formula, C-H included.

    The covalent rule at 1.0 misses C-H (1.09 A against 0.31 + 0.76 A); the default rule
    bonds non-metals up to 1.1 times the sum of covalent radii, as ``cutoff_scale=1.1`` does.
    """
    from ase.build import molecule

    atoms = molecule(name)
    graph = from_atoms(atoms)
    assert graph.number_of_edges() == n_bonds
    assert set(graph.edges) == set(from_atoms(atoms, cutoff_scale=1.1).edges)
    assert from_atoms(atoms, bonds="covalent").number_of_edges() < n_bonds
