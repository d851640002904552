"""Element properties behind the ``"elements"`` and ``"electrons"`` image encodings."""

import pytest

from andersonn_lab.structures.elements import (
    COMPOSITION_PROPERTIES,
    MAX_Z,
    composition_statistics,
    electronegativity,
    group,
    period,
    valence_electrons,
)

# (Z, Pauling electronegativity, period, group)
KNOWN = [
    (1, 2.20, 1, 1),
    (2, None, 1, 18),
    (6, 2.55, 2, 14),
    (8, 3.44, 2, 16),
    (9, 3.98, 2, 17),
    (11, 0.93, 3, 1),
    (14, 1.90, 3, 14),
    (18, None, 3, 18),
    (21, 1.36, 4, 3),
    (26, 1.83, 4, 8),
    (29, 1.90, 4, 11),
    (36, 3.00, 4, 18),
    (47, 1.93, 5, 11),
    (55, 0.79, 6, 1),
    (57, 1.10, 6, 3),
    (71, 1.27, 6, 3),
    (72, 1.30, 6, 4),
    (79, 2.54, 6, 11),
    (86, 2.20, 6, 18),
    (92, 1.38, 7, 3),
    (104, None, 7, 4),
    (118, None, 7, 18),
]


@pytest.mark.parametrize(("z", "chi", "row", "column"), KNOWN)
def test_known_elements(z, chi, row, column):
    assert electronegativity(z) == chi
    assert period(z) == row
    assert group(z) == column


def test_every_period_runs_from_group_1_to_18():
    for p in range(1, 8):
        zs = [z for z in range(1, MAX_Z + 1) if period(z) == p]
        assert group(zs[0]) == 1 and group(zs[-1]) == 18
        groups = [group(z) for z in zs]
        assert groups == sorted(groups)
        assert len(zs) == {1: 2, 2: 8, 3: 8, 4: 18, 5: 18, 6: 32, 7: 32}[p]


def test_electronegativity_range():
    values = [electronegativity(z) for z in range(1, MAX_Z + 1)]
    known = [v for v in values if v is not None]
    assert min(known) == 0.70 and max(known) == 3.98  # francium, fluorine
    assert sum(v is None for v in values) == 3 + (MAX_Z - 103)  # He, Ne, Ar; past Lr


@pytest.mark.parametrize(
    ("z", "count"),
    [(1, 1), (2, 2), (5, 3), (8, 6), (10, 8), (12, 2), (22, 4), (28, 10), (30, 12), (31, 3)]
    + [(41, 5), (42, 6), (52, 6), (58, 3), (83, 5), (92, 3)],
)
def test_valence_electrons(z, count):
    assert valence_electrons(z) == count


def test_valence_electrons_follow_each_period_row():
    for p in range(2, 8):
        zs = [z for z in range(1, MAX_Z + 1) if period(z) == p]
        counts = [valence_electrons(z) for z in zs]
        assert counts[:2] == [1, 2] and counts[-6:] == [3, 4, 5, 6, 7, 8]
        assert all(c == group(z) for z, c in zip(zs[:-6], counts[:-6], strict=True))  # s, d, f


@pytest.mark.parametrize("z", [0, 119, -1, 2.5, True, "6"])
def test_bad_atomic_numbers(z):
    with pytest.raises((ValueError, TypeError)):
        period(z)
    with pytest.raises((ValueError, TypeError)):
        valence_electrons(z)


def test_composition_statistics_of_quartz_by_hand():
    # SiO2: one Si (1.90, group 14, period 3, 4 valence, r 1.11 A) and two O (3.44, 16, 2, 6, 0.66)
    stats = composition_statistics([14, 8, 8])
    assert stats["mean_electronegativity"] == pytest.approx((1.90 + 2 * 3.44) / 3)
    assert (stats["min_electronegativity"], stats["max_electronegativity"]) == (1.90, 3.44)
    assert stats["range_electronegativity"] == pytest.approx(1.54)
    assert stats["mean_group"] == pytest.approx((14 + 2 * 16) / 3)
    assert stats["mean_valence_electrons"] == pytest.approx((4 + 2 * 6) / 3)
    assert stats["range_period"] == 1.0
    assert stats["mean_covalent_radius"] == pytest.approx((1.11 + 2 * 0.66) / 3)
    assert stats["mean_atomic_number"] == pytest.approx(10.0)
    assert stats["n_elements"] == 2.0
    assert list(stats) == [
        f"{s}_{p}" for p in COMPOSITION_PROPERTIES for s in ("mean", "min", "max", "range")
    ] + ["n_elements"]


def test_composition_statistics_leave_out_elements_without_a_value():
    # argon has no Pauling electronegativity: KCl's values, weighted over K and Cl only
    with_argon = composition_statistics([19, 17, 18, 18])
    assert with_argon["mean_electronegativity"] == pytest.approx((0.82 + 3.16) / 2)
    assert with_argon["mean_group"] == pytest.approx((1 + 17 + 2 * 18) / 4)  # argon counts here
    assert composition_statistics([18])["mean_electronegativity"] == 0.0
    with pytest.raises(ValueError, match="at least one atom"):
        composition_statistics([])
