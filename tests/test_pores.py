"""Largest cavity diameter: analytic lattices, CoRE MOF agreement, invalid input."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from ase import Atoms

from andersonn_lab.datasets import DATA_DIR
from andersonn_lab.datasets.mofs import DATA_FILE, load_entries
from andersonn_lab.structures.pores import (
    CCDC_RADII,
    VOID_RADII,
    atomic_radii,
    largest_cavity_diameter,
    void_descriptors,
)


@pytest.fixture(scope="module")
def mof_entries():
    path = DATA_DIR / "mofs" / DATA_FILE
    if not path.is_file():
        pytest.skip(f"{path} is absent; build it with `andersonn-lab data build mofs`")
    return load_entries(path.parent)


def test_simple_cubic_cavity_is_body_centre() -> None:
    a = 6.0
    atoms = Atoms("C", positions=[[0, 0, 0]], cell=np.eye(3) * a, pbc=True)
    expected = 2 * (a * math.sqrt(3) / 2 - CCDC_RADII["C"])
    assert largest_cavity_diameter(atoms) == pytest.approx(expected, abs=1e-4)


def test_bcc_cavity_is_tetrahedral_site() -> None:
    # the largest hole of a bcc lattice of point atoms is the tetrahedral site (1/2, 1/4, 0),
    # at a * sqrt(5) / 4 from its four nearest atoms -- not at an obvious symmetric point
    a = 5.0
    atoms = Atoms(
        "Ar2", scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]], cell=np.eye(3) * a, pbc=True
    )
    assert largest_cavity_diameter(atoms, radii=0.0) == pytest.approx(
        a * math.sqrt(5) / 2, abs=1e-4
    )


def test_skewed_cell_of_the_same_lattice_gives_the_same_lcd() -> None:
    a = 5.5
    cubic = Atoms("Zn", positions=[[0, 0, 0]], cell=np.eye(3) * a, pbc=True)
    skewed = Atoms("Zn", positions=[[0, 0, 0]], cell=[[a, 0, 0], [a, a, 0], [a, a, a]], pbc=True)
    assert largest_cavity_diameter(skewed) == pytest.approx(
        largest_cavity_diameter(cubic), abs=1e-4
    )


def test_mixed_radii_use_the_nearest_surface_not_the_nearest_centre() -> None:
    # rock-salt-like arrangement with very different radii; compare with a brute-force grid
    atoms = Atoms(
        "NaCl", scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]], cell=np.eye(3) * 7.0, pbc=True
    )
    radii = {"Na": 0.5, "Cl": 2.5}
    fine = np.stack(np.meshgrid(*[np.linspace(0, 1, 41)] * 3, indexing="ij"), -1).reshape(-1, 3)
    shifts = np.stack(np.meshgrid(*[np.arange(-1, 2)] * 3, indexing="ij"), -1).reshape(-1, 3)
    centres = (atoms.get_scaled_positions()[None] + shifts[:, None]).reshape(-1, 3) @ atoms.cell
    r = np.tile(atomic_radii(atoms, radii), len(shifts))
    gaps = np.linalg.norm((fine @ atoms.cell)[:, None] - centres[None], axis=2) - r
    brute = 2 * gaps.min(axis=1).max()
    ours = largest_cavity_diameter(atoms, radii=radii)
    assert ours >= brute - 1e-6  # brute force is a lower bound (grid maximum)
    assert ours == pytest.approx(brute, abs=0.05)


def test_agrees_with_core_mof_zeopp(mof_entries) -> None:
    rng = np.random.default_rng(0)
    by_class = [[e for e in mof_entries if e.label == c] for c in range(3)]
    sample = [group[i] for group in by_class for i in rng.choice(len(group), 2, replace=False)]
    sample = sorted(sample, key=lambda e: len(e.structure))[:5]
    errors, seconds = [], []
    for entry in sample:
        t0 = time.perf_counter()
        lcd = largest_cavity_diameter(entry.structure)
        seconds.append(time.perf_counter() - t0)
        errors.append(lcd - entry.info["lcd"])
        assert abs(errors[-1]) < 0.5, (entry.id, lcd, entry.info["lcd"])
    mae = float(np.mean(np.abs(errors)))
    print(f"LCD vs CoRE Zeo++ on {len(sample)} MOFs: MAE {mae:.3f} Å, {np.mean(seconds):.2f} s/MOF")
    assert mae < 0.15


def test_grid_only_is_a_lower_bound() -> None:
    atoms = Atoms(
        "Ar2", scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]], cell=np.eye(3) * 5, pbc=True
    )
    coarse = largest_cavity_diameter(atoms, radii=0.0, refine=False)
    assert coarse <= largest_cavity_diameter(atoms, radii=0.0) + 1e-9


@pytest.mark.parametrize(
    ("atoms", "message"),
    [
        (Atoms("C", positions=[[0, 0, 0]], cell=np.eye(3) * 5, pbc=False), "periodic"),
        (Atoms("C", positions=[[0, 0, 0]], cell=np.eye(3) * 5, pbc=[1, 1, 0]), "periodic"),
        (Atoms("C", positions=[[np.nan, 0, 0]], cell=np.eye(3) * 5, pbc=True), "NaN"),
        (Atoms(cell=np.eye(3) * 5, pbc=True), "no atoms"),
        (Atoms("C", positions=[[0, 0, 0]], cell=np.zeros((3, 3)), pbc=True), "degenerate"),
    ],
    ids=["no-pbc", "slab", "nan", "empty", "no-cell"],
)
def test_invalid_structures_raise(atoms: Atoms, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        largest_cavity_diameter(atoms)


def test_invalid_options_raise() -> None:
    atoms = Atoms("C", positions=[[0, 0, 0]], cell=np.eye(3) * 5, pbc=True)
    with pytest.raises(ValueError, match="spacing"):
        largest_cavity_diameter(atoms, spacing=0)
    with pytest.raises(ValueError, match="radii"):
        largest_cavity_diameter(atoms, radii="bondi")
    with pytest.raises(ValueError, match="radius"):
        largest_cavity_diameter(atoms, radii=-1.0)
    with pytest.raises(ValueError, match="ase.Atoms"):
        largest_cavity_diameter(np.zeros((3, 3)))  # type: ignore[arg-type]


def test_void_fraction_of_one_sphere_is_the_analytic_volume() -> None:
    # one sphere of radius 1.5 A in a 10 A cube: the empty fraction is 1 - (4/3) pi r^3 / V,
    # and with a probe of radius R the excluded sphere grows to radius 1.5 + R
    atoms = Atoms("Ar", positions=[[0, 0, 0]], cell=np.eye(3) * 10.0, pbc=True)
    void = void_descriptors(atoms, radii=1.5, spacing=0.25)
    for radius in (0.0, 1.0, 2.0):
        expected = 1.0 - 4.0 / 3.0 * math.pi * (1.5 + radius) ** 3 / 1000.0
        assert void[f"free_fraction_{radius:g}"] == pytest.approx(expected, abs=0.003)
    # the body centre is 5 sqrt(3) from the atom: LCD = 2 (5 sqrt(3) - 1.5)
    assert void["grid_lcd"] == pytest.approx(2 * (5 * math.sqrt(3) - 1.5), abs=1e-6)


def test_void_descriptors_bracket_the_refined_lcd_on_shipped_mofs(mof_entries) -> None:
    spacing = 0.7
    for entry in mof_entries[:: len(mof_entries) // 8][:8]:
        void = void_descriptors(entry.structure, spacing=spacing)
        lcd = largest_cavity_diameter(entry.structure)
        assert lcd - 2 * spacing * math.sqrt(3) / 2 - 1e-9 <= void["grid_lcd"] <= lcd + 1e-9
        fractions = [void[f"free_fraction_{r:g}"] for r in VOID_RADII]
        assert fractions == sorted(fractions, reverse=True), entry.id
        # no point of the cell is farther from every atom than the largest sphere's radius
        beyond = [r for r in VOID_RADII if r > lcd / 2]
        assert all(void[f"free_fraction_{r:g}"] == 0.0 for r in beyond), entry.id
