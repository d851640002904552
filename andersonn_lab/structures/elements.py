"""Element properties used by the ``"elements"`` and ``"electrons"`` image encodings.

Pauling electronegativity, group and period feed the ``"elements"`` encoding; the valence
electron count feeds the odd-electron flag of the ``"electrons"`` encoding.

Pauling electronegativities are the values tabulated in the CRC Handbook of Chemistry and
Physics (after A. L. Allred, J. Inorg. Nucl. Chem. 17, 215 (1961), and later additions);
elements without a Pauling value (He, Ne, Ar and everything past lawrencium) have none.
Group (1-18) and period (1-7) follow from the atomic number; lanthanides and actinides are
put in group 3. Valence electrons are counted from the group in the usual electron-counting
convention: the group number for groups 1-12 (s and d electrons), the group number minus
10 for groups 13-18 (s and p electrons; helium 2).

Examples
--------
>>> electronegativity(9), electronegativity(2)
(3.98, None)
>>> period(26), group(26), group(57)
(4, 8, 3)
>>> valence_electrons(8), valence_electrons(42)
(6, 6)
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = [
    "COMPOSITION_PROPERTIES",
    "composition_statistics",
    "electronegativity",
    "group",
    "period",
    "valence_electrons",
]

# Index z - 1; None where the element has no Pauling value.
_PAULING: tuple[float | None, ...] = (
    # H-Ne
    2.20, None, 0.98, 1.57, 2.04, 2.55, 3.04, 3.44, 3.98, None,
    # Na-Ar
    0.93, 1.31, 1.61, 1.90, 2.19, 2.58, 3.16, None,
    # K-Kr
    0.82, 1.00, 1.36, 1.54, 1.63, 1.66, 1.55, 1.83, 1.88, 1.91, 1.90, 1.65,
    1.81, 2.01, 2.18, 2.55, 2.96, 3.00,
    # Rb-Xe
    0.82, 0.95, 1.22, 1.33, 1.60, 2.16, 1.90, 2.20, 2.28, 2.20, 1.93, 1.69,
    1.78, 1.96, 2.05, 2.10, 2.66, 2.60,
    # Cs-Ba, La-Lu
    0.79, 0.89, 1.10, 1.12, 1.13, 1.14, 1.13, 1.17, 1.20, 1.20, 1.10, 1.22,
    1.23, 1.24, 1.25, 1.10, 1.27,
    # Hf-Rn
    1.30, 1.50, 2.36, 1.90, 2.20, 2.20, 2.28, 2.54, 2.00, 1.62, 2.33, 2.02,
    2.00, 2.20, 2.20,
    # Fr-Ra, Ac-Lr
    0.70, 0.90, 1.10, 1.30, 1.50, 1.38, 1.36, 1.28, 1.30, 1.30, 1.30, 1.30,
    1.30, 1.30, 1.30, 1.30, 1.30,
)  # fmt: skip

MAX_Z = 118
_PERIOD_ENDS = (2, 10, 18, 36, 54, 86, 118)


def _check(z: int) -> int:
    if isinstance(z, bool) or int(z) != z or not 1 <= int(z) <= MAX_Z:
        raise ValueError(f"atomic number must be an integer from 1 to {MAX_Z}, got {z!r}")
    return int(z)


def electronegativity(z: int) -> float | None:
    """Pauling electronegativity of element ``z``, or None where it has no Pauling value.

    Examples
    --------
    >>> electronegativity(11), electronegativity(17)
    (0.93, 3.16)
    """
    z = _check(z)
    return _PAULING[z - 1] if z <= len(_PAULING) else None


def period(z: int) -> int:
    """Period (row of the periodic table, 1-7) of element ``z``.

    Examples
    --------
    >>> period(1), period(11), period(55)
    (1, 3, 6)
    """
    z = _check(z)
    return next(p for p, end in enumerate(_PERIOD_ENDS, start=1) if z <= end)


def group(z: int) -> int:
    """Group (column of the periodic table, 1-18) of element ``z``; f-block elements give 3.

    Examples
    --------
    >>> group(1), group(2), group(5), group(30), group(92)
    (1, 18, 13, 12, 3)
    """
    z = _check(z)
    p = period(z)
    start = 1 if p == 1 else _PERIOD_ENDS[p - 2] + 1
    k = z - start  # 0-based position in the period
    if p == 1:
        return 1 if z == 1 else 18
    if p <= 3:
        return k + 1 if k < 2 else k + 11
    if p <= 5:
        return k + 1
    # periods 6 and 7: two s elements, then 15 f-block elements (La-Lu / Ac-Lr) in group 3
    if k < 2:
        return k + 1
    if k < 17:
        return 3
    return k - 13


def valence_electrons(z: int) -> int:
    """Valence electrons of element ``z``: s and d electrons (groups 1-12), s and p (13-18).

    The count behind electron-counting rules: ``group`` for groups 1-12, ``group - 10`` for
    groups 13-18, 2 for helium; lanthanides and actinides, put in group 3, count 3.

    Examples
    --------
    >>> valence_electrons(11), valence_electrons(28), valence_electrons(16), valence_electrons(2)
    (1, 10, 6, 2)
    """
    z = _check(z)
    if z == 2:
        return 2
    g = group(z)
    return g if g <= 12 else g - 10


COMPOSITION_PROPERTIES: tuple[str, ...] = (
    "electronegativity",
    "group",
    "period",
    "valence_electrons",
    "covalent_radius",
    "atomic_number",
)
"""Element properties summarised by :func:`composition_statistics`."""


def _element_property(name: str, z: int) -> float:
    if name == "electronegativity":
        chi = electronegativity(z)
        return math.nan if chi is None else chi
    if name == "covalent_radius":
        from ase.data import covalent_radii

        return float(covalent_radii[z])
    if name == "atomic_number":
        return float(_check(z))
    by_number = {"group": group, "period": period, "valence_electrons": valence_electrons}
    return float(by_number[name](z))


def composition_statistics(numbers: Iterable[int]) -> dict[str, float]:
    """Composition statistics of a set of atoms, in the spirit of Magpie (Ward et al. 2016).

    For each property of :data:`COMPOSITION_PROPERTIES` (covalent radii from ASE, in A): the
    atom-fraction-weighted mean and the minimum, maximum and range over the elements present
    (elements without a value, such as noble gases' electronegativity, are left out), and the
    number of distinct elements. Only the composition is used, never the structure.

    Examples
    --------
    >>> stats = composition_statistics([11, 17])  # NaCl
    >>> round(stats["mean_electronegativity"], 3), stats["range_electronegativity"]
    (2.045, 2.23)
    >>> stats["n_elements"], len(stats)
    (2.0, 25)
    """
    counts: dict[int, int] = {}
    for z in numbers:
        counts[int(z)] = counts.get(int(z), 0) + 1
    if not counts:
        raise ValueError("composition_statistics needs at least one atom")
    stats: dict[str, float] = {}
    for name in COMPOSITION_PROPERTIES:
        known = {z: v for z in counts if not math.isnan(v := _element_property(name, z))}
        if not known:
            stats.update({f"{s}_{name}": 0.0 for s in ("mean", "min", "max", "range")})
            continue
        weight = sum(counts[z] for z in known)
        low, high = min(known.values()), max(known.values())
        stats[f"mean_{name}"] = sum(counts[z] * v for z, v in known.items()) / weight
        stats[f"min_{name}"], stats[f"max_{name}"], stats[f"range_{name}"] = low, high, high - low
    stats["n_elements"] = float(len(counts))
    return stats
