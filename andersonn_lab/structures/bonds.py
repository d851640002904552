"""Which atoms of an ASE structure are bonded: the nearest-shell rule and the covalent rule.

Two rules, chosen with ``bonds=`` in :func:`~andersonn_lab.structures.from_atoms`:

``"covalent"``
    Two atoms are bonded when closer than the sum of their covalent radii (Cordero et al.,
    Dalton Trans. 2008, 2832, as tabulated in :data:`ase.data.covalent_radii`) times
    ``cutoff_scale``. Right for molecules and covalent networks, wrong for most inorganic
    solids: at 1.0 diamond Si, NaCl, MgO and hcp Mg get no bonds; at 1.2 MgO gets Mg-Mg bonds
    and bcc metals their second shell.

``"nearest-shell"`` (the default)
    Covalent bonds between non-metals, plus the nearest coordination shell of every metal
    atom, with an electronegativity rule that keeps cations apart in ionic solids. With
    ``R`` the covalent radius and ``q_ij = d_ij / (R_i + R_j)`` the *reduced distance*
    (1 for a typical single bond of any pair of elements):

    1. Candidates are all pairs with ``q <= REACH`` (1.4), periodic images included
       (:func:`ase.neighborlist.neighbor_list`).
    2. Non-metal pairs (H, He, B, C, N, O, F, Ne, Si, P, S, Cl, Ar, Ge, As, Se, Br, Kr, Sb,
       Te, I, Xe, At, Rn; the metalloids count as non-metals) are bonded when
       ``q <= COVALENT_SCALE`` (1.1): the covalent rule, which gets molecules, linkers and
       covalent solids (diamond, Si, Ge, graphite, S-S in pyrite) right.
    3. A metal atom is *ionic* when some non-metal candidate is more electronegative by at
       least ``IONIC_DELTA`` (0.4, Pauling's line between non-polar and polar bonds). An ionic
       metal considers only non-metal partners, others every candidate. It is bonded to the
       allowed partners whose reduced distance is within ``1 + SHELL_TOLERANCE`` (1.12) of
       its smallest one: its nearest shell.
    4. A non-metal atom without any covalent bond (O in MgO, F in CaF2, Si in Mg2Si) adds its
       own nearest shell of metal atoms in the same way, so that a distorted site (O in
       rutile: 2 + 1 Ti at 1.95 and 1.98 A) is counted whole.
    5. The bonds are the union of 2-4, except that two metals are never bonded when either
       of them is ionic: no cation-cation bonds in ionic solids. Anion-anion contacts in
       ionic solids are never near enough to pass rule 2 (O-O in MgO is at ``q = 2.3``),
       while real anion-anion bonds (S2 in pyrite, O2 in peroxides) are kept.

    The tolerance 0.12 lies between the spread of the nearest shell in common structures
    (hcp Zn with its c/a of 1.86: 9.4 %; rutile TiO2: 2 %) and the gap to the second
    shell of bcc metals (15.5 %). Reduced distances, not raw ones, make the shell fair to
    mixed neighbours (a Zn atom with O and N neighbours; a carbon with C and H ones).

The nearest-shell rule is in the spirit of the "nearest neighbour with a relative
tolerance" and CrystalNN / Voronoi-based coordination rules (Pan et al., Inorg. Chem. 60,
1590 (2021); O'Keeffe, Acta Cryst. A35, 772 (1979)), simplified to a single shell per metal
site, and with the covalent rule kept for the non-metal framework of MOFs and molecules. It
gives textbook coordination numbers for diamond, zinc blende, wurtzite, rock salt, CsCl,
fluorite, antifluorite, rutile, perovskite (Ti-O 6, Sr-O 12: the A-site cuboctahedron), fcc,
hcp, bcc, pyrite, graphite and h-BN (``tests/test_bonds.py``).

Examples
--------
>>> from ase.build import bulk
>>> i, j, d, s = find_bonds(bulk("NaCl", "rocksalt", a=5.64))
>>> len(i), round(float(d[0]), 2)   # 6 Na-Cl bonds per cell, each listed once
(6, 2.82)
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.data import covalent_radii
from ase.neighborlist import natural_cutoffs, neighbor_list

from .elements import electronegativity

__all__ = [
    "BOND_RULES",
    "COVALENT_SCALE",
    "IONIC_DELTA",
    "NON_METALS",
    "REACH",
    "SHADOW",
    "SHELL_TOLERANCE",
    "find_bonds",
    "is_metal",
]

BOND_RULES: tuple[str, ...] = ("nearest-shell", "covalent")
"""Accepted values of ``bonds=``; the first is the default."""

REACH = 1.4
"""Largest reduced distance ``d / (R_i + R_j)`` of a nearest-shell bond."""

COVALENT_SCALE = 1.1
"""Non-metal pairs closer than this times the sum of covalent radii are bonded."""

SHELL_TOLERANCE = 0.12
"""A metal's shell holds partners within ``1 + SHELL_TOLERANCE`` of its nearest one."""

IONIC_DELTA = 0.4
"""A metal with a non-metal neighbour this much more electronegative (Pauling) is ionic."""

SHADOW = 0.9
"""A metal-X bond is dropped behind a metal-Y bond shorter than this fraction (X-Y bonded)."""

NON_METALS: frozenset[int] = frozenset(
    (1, 2, 5, 6, 7, 8, 9, 10, 14, 15, 16, 17, 18, 32, 33, 34, 35, 36, 51, 52, 53, 54, 85, 86)
)
"""Atomic numbers treated as non-metals (metalloids B, Si, Ge, As, Sb, Te included)."""


def is_metal(z: int) -> bool:
    """True unless element ``z`` is in :data:`NON_METALS`.

    Examples
    --------
    >>> is_metal(12), is_metal(14), is_metal(50)
    (True, False, True)
    """
    return int(z) not in NON_METALS


def _chi(numbers: np.ndarray) -> np.ndarray:
    """Pauling electronegativity per atom; NaN where the element has none."""
    values = {int(z): electronegativity(int(z)) for z in set(numbers.tolist())}
    return np.array(
        [np.nan if values[int(z)] is None else values[int(z)] for z in numbers], dtype=float
    )


def _canonical(i: np.ndarray, j: np.ndarray, s: np.ndarray) -> np.ndarray:
    """True for the entry of each bond pair listed as ``(i < j)`` or ``i == j`` with ``S > 0``."""
    positive = np.zeros(len(s), dtype=bool)
    decided = np.zeros(len(s), dtype=bool)
    for axis in range(3):
        col = s[:, axis]
        now = ~decided & (col != 0)
        positive[now] = col[now] > 0
        decided |= now
    return (i < j) | ((i == j) & positive)


def _shell(
    centre: np.ndarray, q: np.ndarray, allowed: np.ndarray, n_atoms: int, tolerance: float
) -> np.ndarray:
    """Entries (of ``allowed``) within ``1 + tolerance`` of their centre atom's nearest one."""
    nearest = np.full(n_atoms, np.inf)
    np.minimum.at(nearest, centre[allowed], q[allowed])
    return allowed & (q <= nearest[centre] * (1.0 + tolerance) + 1e-9)


def _shadowed(
    i: np.ndarray,
    j: np.ndarray,
    d: np.ndarray,
    s: np.ndarray,
    metal_bond: np.ndarray,
    covalent: np.ndarray,
) -> np.ndarray:
    """Metal-X entries behind a shorter metal-Y bond, with X-Y covalently bonded.

    The carbon of a chelating carboxylate sits 2.4-3.0 A from the metal, inside the metal's
    shell by distance, but behind the two oxygens that bind it: a metal-X entry is dropped
    when X has a covalent partner Y that the metal binds at less than ``SHADOW`` times the
    distance. Symmetric pi-bonding (ferrocene, Ag-alkene) keeps all its carbons.
    """
    out = np.zeros(len(i), dtype=bool)
    candidates = np.flatnonzero(metal_bond)
    if len(candidates) == 0 or not covalent.any():
        return out
    bound = {
        (int(a), int(b), *map(int, sh)): float(dd)
        for a, b, dd, sh in zip(
            i[metal_bond], j[metal_bond], d[metal_bond], s[metal_bond], strict=True
        )
    }
    partners: dict[int, list[tuple[int, np.ndarray]]] = {}
    for a, b, sh in zip(i[covalent], j[covalent], s[covalent], strict=True):
        partners.setdefault(int(a), []).append((int(b), sh))
    for k in candidates:
        m, x = int(i[k]), int(j[k])
        for y, sh in partners.get(x, ()):
            near = bound.get((m, y, *map(int, s[k] + sh)))
            if near is not None and near < SHADOW * d[k]:
                out[k] = True
                break
    return out


def find_bonds(
    atoms: Atoms,
    bonds: str = "nearest-shell",
    *,
    cutoff_scale: float = 1.0,
    shell_tolerance: float = SHELL_TOLERANCE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bond instances of a structure, each listed once.

    Parameters
    ----------
    atoms:
        The structure, periodic or not.
    bonds:
        ``"nearest-shell"`` or ``"covalent"`` (see the module docstring).
    cutoff_scale:
        Multiplier of the covalent radii for ``bonds="covalent"``; ignored otherwise.
    shell_tolerance:
        Relative width of a nearest shell for ``bonds="nearest-shell"``.

    Returns
    -------
    i, j, d, S : numpy.ndarray
        One entry per bond instance from atom ``i`` to the image of atom ``j`` at
        ``positions[j] + S @ cell``, distance ``d``; ``i < j``, or ``i == j`` (a bond to the
        atom's own image) with the lexicographically positive one of ``S`` / ``-S``.

    Raises
    ------
    ValueError
        For an unknown ``bonds`` rule.

    Examples
    --------
    >>> from ase.build import bulk
    >>> i, j, d, s = find_bonds(bulk("Mg", "hcp", a=3.209, c=5.211))
    >>> np.bincount(np.concatenate([i, j]), minlength=2)   # each bond counted at both ends
    array([12, 12])
    """
    if bonds not in BOND_RULES:
        raise ValueError(f"unknown bond rule {bonds!r}; valid rules are {', '.join(BOND_RULES)}")
    if bonds == "covalent":
        i, j, d, s = neighbor_list("ijdS", atoms, natural_cutoffs(atoms, mult=cutoff_scale))
        keep = _canonical(i, j, s)
        return i[keep], j[keep], d[keep], s[keep]

    numbers = np.asarray(atoms.numbers)
    radii = covalent_radii[numbers]
    i, j, d, s = neighbor_list("ijdS", atoms, list(radii * REACH))
    if len(i) == 0:
        return i, j, d, s
    q = d / (radii[i] + radii[j])
    metal = np.array([is_metal(z) for z in numbers], dtype=bool)
    chi = _chi(numbers)

    both_non_metal = ~metal[i] & ~metal[j]
    covalent = both_non_metal & (q <= COVALENT_SCALE)

    has_covalent = np.zeros(len(numbers), dtype=bool)
    has_covalent[i[covalent]] = True
    # A hydrogen with a covalent bond (C-H, O-H, N-H) is no metal's partner.
    bound_h = (numbers == 1) & has_covalent
    partner = ~bound_h[j]

    # Ionic metals: a more electronegative non-metal candidate (by IONIC_DELTA or more).
    polar = metal[i] & ~metal[j] & partner & (chi[j] - chi[i] >= IONIC_DELTA - 1e-9)
    ionic = np.zeros(len(numbers), dtype=bool)
    ionic[i[polar]] = True
    allowed_metal = metal[i] & partner & (~ionic[i] | ~metal[j])
    # Ionic metals rank their (non-metal) partners by reduced distance; metals in a metallic
    # environment by plain distance (covalent radii misjudge metal sizes: CuZn, FeAl, WC).
    measure = np.where(ionic[i], q, d)
    shell = _shell(i, measure, allowed_metal, len(numbers), shell_tolerance)
    # Metal-non-metal pairs as short as a covalent bond, whatever the shell (Co-N beside a
    # shorter-looking Co-Cl: covalent radii do not rank mixed ligands exactly).
    shell |= metal[i] & ~metal[j] & partner & (q <= COVALENT_SCALE)

    # Non-metals without covalent bonds: their own nearest shell of metal atoms, or of any
    # atoms when no metal is in reach (the octahedral Te of Sb2Te3).
    lone = ~metal[i] & ~has_covalent[i]
    metal_near = np.zeros(len(numbers), dtype=bool)
    metal_near[i[lone & metal[j]]] = True
    allowed_anion = lone & (metal[j] | ~metal_near[i]) & partner
    shell |= _shell(i, q, allowed_anion, len(numbers), shell_tolerance)

    # No metal-metal bond when either metal is ionic.
    shell &= ~(metal[i] & metal[j] & (ionic[i] | ionic[j]))
    shell &= ~_shadowed(i, j, d, s, shell & metal[i] & ~metal[j], covalent)
    chosen = covalent | shell

    # A bond is chosen when either end chose it: merge (i, j, S) with (j, i, -S).
    canonical = _canonical(i, j, s)
    a = np.where(canonical, i, j)
    b = np.where(canonical, j, i)
    shift = np.where(canonical[:, None], s, -s)
    keys = np.concatenate([a[:, None], b[:, None], shift], axis=1)
    _, group = np.unique(keys, axis=0, return_inverse=True)
    group = group.reshape(-1)
    selected = np.zeros(group.max() + 1, dtype=bool)
    np.logical_or.at(selected, group, chosen)
    keep = canonical & selected[group]
    return i[keep], j[keep], d[keep], s[keep]
