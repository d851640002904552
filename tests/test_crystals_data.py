"""Checks of the curated crystals table (``data/crystals``) and its loader."""

from __future__ import annotations

import csv
import time
from collections import Counter

import pytest
from ase import Atoms
from ase.build import bulk
from ase.formula import Formula
from ase.neighborlist import neighbor_list

from andersonn_lab.datasets import crystals
from andersonn_lab.datasets.crystals import (
    CLASS_NAMES,
    GAP_CUTOFF_EV,
    MIN_DISTANCE_A,
    build,
    build_atoms,
    check_structure,
    density_g_cm3,
    label_for_gap,
    load_entries,
    read_references,
    read_table,
    validate_row,
)

# Experimental densities (g/cm^3, room temperature; CRC Handbook) of a few well-known crystals.
# The built cell must reproduce them within 3 %, a direct check of the lattice constants.
KNOWN_DENSITIES = {
    "Si-diamond": 2.33,
    "NaCl-B1": 2.16,
    "Cu-fcc": 8.96,
    "Al2O3-corundum": 3.95,
    "Al-fcc": 2.70,
    "Fe-bcc": 7.87,
    "W-bcc": 19.25,
    "Au-fcc": 19.3,
    "Mg-hcp": 1.74,
    "Ge-diamond": 5.32,
    "GaAs-zb": 5.32,
    "C-diamond": 3.51,
    "C-graphite": 2.26,
    "MgO-B1": 3.58,
    "KCl-B1": 1.98,
    "CaF2-fluorite": 3.18,
    "TiO2-rutile": 4.25,
    "TiO2-anatase": 3.89,
    "SiO2-quartz": 2.65,
    "MgAl2O4-spinel": 3.58,
    "ZnS-zb": 4.09,
    "FeS2-pyrite": 5.01,
    "Cu2O-cuprite": 6.0,
    "Fe2O3-corundum": 5.26,
    "MoS2-2H": 5.06,
    "WC-hex": 15.6,
    "TiC-B1": 4.93,
    "SrTiO3-perovskite": 5.12,
    "Gd-hcp": 7.90,
    "Sb-A7": 6.68,
    "ThO2-fluorite": 10.0,
    "MoSi2-C11b": 6.26,
    "IrO2-rutile": 11.66,
    "HfB2-AlB2": 11.2,
    "NiAs-hex": 7.77,
    "CdF2-fluorite": 6.33,
    "Rb-bcc": 1.53,
    "Tb-hcp": 8.23,
    "Er-hcp": 9.07,
    "CrO2-rutile": 4.89,
    "UO2-fluorite": 10.97,
    "MnO-B1": 5.37,
    "Li2O-antifluorite": 2.01,
    "Cr2O3-corundum": 5.22,
    "CeO2-fluorite": 7.22,
    "EuO-B1": 8.2,
}

STOICHIOMETRY = {
    "NaCl-B1": {"Na": 1, "Cl": 1},
    "Al2O3-corundum": {"Al": 2, "O": 3},
    "MgAl2O4-spinel": {"Mg": 1, "Al": 2, "O": 4},
    "TiO2-rutile": {"Ti": 1, "O": 2},
    "TiO2-anatase": {"Ti": 1, "O": 2},
    "Cu2O-cuprite": {"Cu": 2, "O": 1},
    "CuInSe2-chalcopyrite": {"Cu": 1, "In": 1, "Se": 2},
    "Bi2Se3-tetradymite": {"Bi": 2, "Se": 3},
    "Cu3Au-L12": {"Cu": 3, "Au": 1},
    "Mg2Si-antifluorite": {"Mg": 2, "Si": 1},
    "SrTiO3-perovskite": {"Sr": 1, "Ti": 1, "O": 3},
    "SiO2-quartz": {"Si": 1, "O": 2},
}


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    return read_table()


@pytest.fixture(scope="module")
def entries():
    return load_entries()


@pytest.fixture(scope="module")
def by_id(entries):
    return {e.id: e for e in entries}


def _reduced(counts: dict[str, int]) -> dict[str, int]:
    return dict(Formula.from_dict(counts).reduce()[0].count())


def test_count_and_unique_ids(rows):
    ids = [r["id"] for r in rows]
    assert len(ids) >= 150
    assert len(set(ids)) == len(ids), [i for i, n in Counter(ids).items() if n > 1]


def test_every_row_is_valid_and_builds(rows, entries):
    references = read_references()
    problems = {r["id"]: p for r in rows if (p := validate_row(r, references))}
    assert not problems
    assert [e.id for e in entries] == [r["id"] for r in rows]
    for entry in entries:
        assert entry.structure.pbc.all()
        assert len(entry.structure) >= 1


def test_formula_matches_structure(entries):
    for entry in entries:
        built = _reduced(entry.structure.symbols.formula.count())
        assert built == _reduced(Formula(entry.info["formula"]).count()), entry.id


@pytest.mark.parametrize("entry_id", sorted(STOICHIOMETRY))
def test_stoichiometry(by_id, entry_id):
    atoms = by_id[entry_id].structure
    assert _reduced(atoms.symbols.formula.count()) == STOICHIOMETRY[entry_id]


@pytest.mark.parametrize("entry_id", sorted(KNOWN_DENSITIES))
def test_density_matches_experiment(by_id, entry_id):
    rho = density_g_cm3(by_id[entry_id].structure)
    assert rho == pytest.approx(KNOWN_DENSITIES[entry_id], rel=0.03)


def test_densities_plausible(entries):
    for entry in entries:
        assert 0.5 < density_g_cm3(entry.structure) < 23.0, entry.id


def test_no_overlapping_atoms(entries):
    # Pairs closer than MIN_DISTANCE_A, periodic images included; the table has no hydrogen.
    overlapping = {}
    for entry in entries:
        assert "H" not in entry.structure.get_chemical_symbols(), entry.id
        d = neighbor_list("d", entry.structure, MIN_DISTANCE_A, self_interaction=False)
        if len(d):
            overlapping[entry.id] = float(d.min())
    assert not overlapping


def test_check_structure_flags_problems():
    si = bulk("Si", "diamond", a=5.431)
    check = check_structure(si)
    assert not check.overlapping and check.isolated == []
    squeezed = bulk("Si", "diamond", a=2.0)
    assert check_structure(squeezed).overlapping
    lonely = Atoms("Ar", cell=[10, 10, 10], pbc=True)
    assert check_structure(lonely).isolated == [0]


def test_label_rule():
    assert [label_for_gap(g) for g in (0.0, 1e-3, 2.999, GAP_CUTOFF_EV, 3.01, 14.2)] == [
        0,
        1,
        1,
        2,
        2,
        2,
    ]
    with pytest.raises(ValueError):
        label_for_gap(-0.1)


def test_labels_follow_gap_rule(entries):
    for entry in entries:
        gap = entry.info["gap_ev"]
        assert entry.label == label_for_gap(gap), entry.id
        assert CLASS_NAMES[entry.label] == entry.info["class_name"], entry.id
        assert (entry.info["gap_type"] == "metal") == (gap == 0), entry.id


def test_class_balance(entries):
    counts = Counter(CLASS_NAMES[e.label] for e in entries)
    print("\nclass balance:", {name: counts[name] for name in CLASS_NAMES}, "total", len(entries))
    for name in CLASS_NAMES:
        assert counts[name] >= 40, counts


def test_citations_resolve(rows):
    references = read_references()
    assert all(citation for citation in references.values())
    for row in rows:
        for key in ("lattice_ref", "gap_ref"):
            refs = [k.strip() for k in row[key].split(";") if k.strip()]
            assert refs, (row["id"], key)
            assert all(k in references for k in refs), (row["id"], key, refs)


def test_checked_citations_name_the_page_they_were_checked_against():
    """``citation_checked = yes`` exactly where ``checked_against`` gives web addresses."""
    with (crystals.CRYSTALS_DIR / crystals.REFERENCES_FILE).open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["citation_checked"] for row in rows} <= {"yes", "no"}
    for row in rows:
        addresses = row["checked_against"].split()
        assert (row["citation_checked"] == "yes") == bool(addresses), row["key"]
        assert all(a.startswith(("http://", "https://")) for a in addresses), row["key"]
    assert sum(row["citation_checked"] == "yes" for row in rows) >= 14


def test_entry_info(by_id):
    info = by_id["GaAs-zb"].info
    assert {"formula", "name", "gap_ev", "gap_ref", "lattice_ref"} <= info.keys()
    assert info["formula"] == "GaAs"
    assert info["gap_ev"] == pytest.approx(1.42)
    assert CLASS_NAMES[by_id["GaAs-zb"].label] == "semiconductor"


def test_load_entries_is_fast():
    start = time.perf_counter()
    load_entries()
    elapsed = time.perf_counter() - start
    print(f"\nload_entries: {elapsed:.2f} s")
    assert elapsed < 2.0  # < 1 s on an idle machine; margin for shared CI cores


def test_validate_row_catches_errors(rows):
    references = read_references()
    row = dict(next(r for r in rows if r["id"] == "NaCl-B1"))
    assert validate_row(row, references) == []
    assert validate_row({**row, "class": "semiconductor"}, references)
    assert validate_row({**row, "gap_ref": "NOSUCHREF"}, references)
    assert validate_row({**row, "gap_type": "metal"}, references)
    assert validate_row({**row, "gap_ev": "-1"}, references)


def test_build_atoms_rejects_unknown_builder(rows):
    row = dict(rows[0])
    with pytest.raises(ValueError):
        build_atoms({**row, "builder": "cif"})
    with pytest.raises(ValueError):
        build_atoms({**row, "prototype": "perovskite"})


def test_build_writes_provenance_and_committed_copy_is_current(tmp_path, rows):
    folder = build(tmp_path)
    text = (folder / crystals.PROVENANCE_FILE).read_text(encoding="utf-8")
    assert f"structures built and kept: {len(rows)}; skipped: 0." in text
    # build() also checks that every atom has a neighbour (no warnings) and no overlaps.
    assert "### Structure warnings\n\nNone." in text
    committed = (crystals.CRYSTALS_DIR / crystals.PROVENANCE_FILE).read_text(encoding="utf-8")
    assert text == committed, "PROVENANCE.md is stale: run andersonn-lab data build crystals"
    assert len(load_entries(folder)) == len(rows)


def test_polymorphs_never_straddle_a_split(entries):
    """Structures of one reduced formula (ZnS zinc blende / wurtzite...) stay in one part."""
    from andersonn_lab.datasets.crystals import split_group, split_groups
    from andersonn_lab.datasets.tasks import stratified_split

    assert split_group("ZnS") == split_group("Zn2S2") != split_group("ZnSe")
    ids, labels = [e.id for e in entries], [e.label for e in entries]
    groups = split_groups(entries)
    polymorphs = {g for g, n in Counter(groups).items() if n > 1}
    assert {"SZn", "CSi", "O2Ti", "BN", "C"} <= polymorphs
    straddled_without_groups = 0
    for seed in range(10):
        for with_groups in (True, False):
            split = stratified_split(ids, labels, seed, groups if with_groups else None)
            part = {int(i): name for name in ("train", "val", "test") for i in split[name]}
            parts = {g: {part[i] for i, gi in enumerate(groups) if gi == g} for g in polymorphs}
            if with_groups:
                assert all(len(p) == 1 for p in parts.values()), (seed, parts)
            else:
                straddled_without_groups += sum(len(p) > 1 for p in parts.values())
    # The check can fail: without the groups, polymorphs do land in different parts.
    assert straddled_without_groups > 0
