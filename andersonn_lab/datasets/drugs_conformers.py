"""A small, reproducible conformer search for the drugs task (build time and predict time).

The dipole moment of a flexible molecule depends on its conformation, so the drugs task labels
one physically defined geometry: the lowest-energy conformer that a small search finds.

1. RDKit ETKDGv3 embeds ``n_conformers`` conformers (seeded; RMSD pruning at 0.5 A), and
   MMFF94 (UFF where MMFF has no parameters) minimises each of them.
2. Each minimised conformer is ranked by its GFN2-xTB single-point energy (``tblite``);
   without tblite, by its force-field energy (:func:`lowest_conformer` says which ranking it
   used).
3. The best-ranked conformer is kept with its GFN2-xTB dipole vector and Mulliken charges.
   By default its geometry stays the force-field minimum; with ``n_optimise > 0`` the
   ``n_optimise`` best-ranked conformers are optimised with GFN2-xTB and the lowest optimised
   energy wins (about ten times the cost: 10-30 s per drug-sized molecule on one core,
   against 1-2 s for the whole search without it).

The lowest-energy conformer is used rather than a Boltzmann average because the image of a
drug is built from one geometry, the one whose coordinates ship with the data; a Boltzmann
average would need free energies of a complete ensemble, which a search of ten conformers does
not give.

Examples
--------
>>> conf = force_field_conformers("CCO", n_conformers=3, seed=0)
>>> conf.numbers[:3], conf.force_field
([6, 6, 8], 'MMFF94')
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

AU_TO_DEBYE = 2.541746
"""One atomic unit of dipole moment (e * bohr) in debye."""

BOHR_IN_ANGSTROM = 0.52917721092
"""One bohr in angstrom."""

HARTREE_IN_KCAL_PER_MOL = 627.509474
"""One hartree in kcal/mol."""

N_CONFORMERS = 10
"""ETKDG conformers embedded per drug before pruning."""

N_OPTIMISE = 0
"""Best-ranked conformers optimised with GFN2-xTB (the lowest optimised energy wins); 0 keeps
the force-field geometry of the conformer with the lowest GFN2-xTB single-point energy."""

PRUNE_RMSD_ANGSTROM = 0.5
"""ETKDG pruning threshold (heavy-atom RMSD after alignment)."""

EMBED_TIMEOUT_S = 60
"""Wall-clock limit of one ETKDG embedding attempt (RDKit's ``timeout``); rigid cages such as
buprenorphine can otherwise run for many minutes."""

FMAX_EV_PER_ANGSTROM = 0.05
"""Force convergence criterion of the xTB geometry optimisation."""

MAX_OPT_STEPS = 300
"""Step cap of the xTB geometry optimisation."""

MAX_STEP_ANGSTROM = 0.2
"""Largest atomic displacement per LBFGS step."""


@dataclass
class ForceFieldConformers:
    """Force-field-minimised conformers of one molecule (explicit hydrogens, RDKit atom order).

    Attributes
    ----------
    numbers:
        Atomic numbers, heavy atoms first in SMILES order, then hydrogens (``Chem.AddHs``).
    positions:
        One ``(n_atoms, 3)`` array in angstrom per conformer.
    energies_kcal:
        Force-field energy of each conformer (kcal/mol).
    force_field:
        ``"MMFF94"`` or ``"UFF"``.
    """

    numbers: list[int]
    positions: list[np.ndarray]
    energies_kcal: list[float]
    force_field: str


@dataclass
class Conformer:
    """The chosen conformer of one molecule and how it was found.

    Attributes
    ----------
    numbers, positions:
        Atomic numbers and coordinates (angstrom) of the chosen conformer.
    ranking:
        ``"GFN2-xTB"`` (single points, then optimisation) or ``"MMFF94"`` / ``"UFF"``
        (force-field energies only, when tblite is not installed).
    dipole_vector_debye:
        GFN2-xTB dipole vector (``None`` without tblite).
    charges:
        GFN2-xTB Mulliken charges (``None`` without tblite).
    energy_hartree:
        GFN2-xTB energy of the chosen geometry (``None`` without tblite).
    details:
        Search statistics: conformers found, single-point energies and dipoles, timings.
    """

    numbers: list[int]
    positions: np.ndarray
    ranking: str
    dipole_vector_debye: np.ndarray | None = None
    charges: np.ndarray | None = None
    energy_hartree: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def dipole_debye(self) -> float | None:
        """Magnitude of the GFN2-xTB dipole, or ``None`` without tblite."""
        if self.dipole_vector_debye is None:
            return None
        return float(np.linalg.norm(self.dipole_vector_debye))


def force_field_conformers(
    smiles: str, *, n_conformers: int = N_CONFORMERS, seed: int = 0
) -> ForceFieldConformers:
    """Embed conformers with ETKDGv3 and minimise them with MMFF94 (UFF as a fallback).

    Parameters
    ----------
    smiles:
        SMILES of a neutral molecule.
    n_conformers:
        Conformers requested from ETKDG (fewer survive RMSD pruning for rigid molecules).
    seed:
        Embedding seed. RDKit treats ``randomSeed=0`` like 1, so ``seed + 1`` is passed on to
        keep different seeds different.

    Returns
    -------
    ForceFieldConformers

    Raises
    ------
    ValueError
        If the SMILES does not parse or no conformer can be embedded.

    Examples
    --------
    >>> conf = force_field_conformers("c1ccccc1O", n_conformers=4)
    >>> len(conf.numbers), conf.positions[0].shape
    (13, (13, 3))
    """
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.MolFromSmiles(smiles) if smiles else None
    if mol is None:
        raise ValueError(f"invalid SMILES {smiles!r}")
    mol = Chem.AddHs(mol)
    params = AllChem.ETKDGv3()
    params.randomSeed = int(seed) + 1
    params.pruneRmsThresh = PRUNE_RMSD_ANGSTROM
    params.timeout = EMBED_TIMEOUT_S
    ids = list(AllChem.EmbedMultipleConfs(mol, int(n_conformers), params))
    if not ids:
        params.useRandomCoords = True
        params.maxIterations = 5000
        ids = list(AllChem.EmbedMultipleConfs(mol, int(n_conformers), params))
    if not ids or mol.GetNumConformers() < len(ids):
        raise ValueError(
            f"no conformer could be embedded for {smiles!r} "
            f"(ETKDG, {EMBED_TIMEOUT_S} s per attempt)"
        )
    if AllChem.MMFFHasAllMoleculeParams(mol):
        results = AllChem.MMFFOptimizeMoleculeConfs(mol, maxIters=2000)
        ff = "MMFF94"
    else:
        results = AllChem.UFFOptimizeMoleculeConfs(mol, maxIters=2000)
        ff = "UFF"
    numbers = [a.GetAtomicNum() for a in mol.GetAtoms()]
    positions = [mol.GetConformer(cid).GetPositions() for cid in ids]
    energies = [float(results[i][1]) for i in range(len(ids))]
    return ForceFieldConformers(numbers, positions, energies, ff)


def xtb_singlepoint(
    numbers: Sequence[int], positions_angstrom: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """GFN2-xTB energy (hartree), dipole vector (debye) and Mulliken charges of one geometry.

    Examples
    --------
    >>> water = [[0.0, 0.0, 0.1173], [0.0, 0.7572, -0.4692], [0.0, -0.7572, -0.4692]]
    >>> e, mu, q = xtb_singlepoint([8, 1, 1], water)  # doctest: +SKIP
    >>> round(float(np.linalg.norm(mu)), 1)  # doctest: +SKIP
    2.2
    """
    from tblite.interface import Calculator

    pos_bohr = np.asarray(positions_angstrom, dtype=float) / BOHR_IN_ANGSTROM
    calc = Calculator("GFN2-xTB", np.asarray(numbers, dtype=int), pos_bohr)
    calc.set("verbosity", 0)
    res = calc.singlepoint()
    dipole = np.asarray(res.get("dipole"), dtype=float) * AU_TO_DEBYE
    return float(res.get("energy")), dipole, np.asarray(res.get("charges"), dtype=float)


def xtb_optimise(
    numbers: Sequence[int], positions_angstrom: np.ndarray
) -> tuple[np.ndarray, int, bool]:
    """Optimise a geometry with GFN2-xTB (tblite's ASE calculator, ASE LBFGS).

    Returns
    -------
    tuple
        ``(positions_angstrom, n_steps, converged)``.
    """
    from ase import Atoms
    from ase.optimize import LBFGS
    from tblite.ase import TBLite

    atoms = Atoms(numbers=list(numbers), positions=np.asarray(positions_angstrom))
    atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
    opt = LBFGS(atoms, logfile=None, maxstep=MAX_STEP_ANGSTROM)
    converged = bool(opt.run(fmax=FMAX_EV_PER_ANGSTROM, steps=MAX_OPT_STEPS))
    return atoms.get_positions(), int(opt.nsteps), converged


def have_xtb() -> bool:
    """Whether ``tblite`` (GFN2-xTB) can be imported."""
    try:
        import tblite.interface  # noqa: F401
    except ImportError:
        return False
    return True


def lowest_conformer(
    smiles: str,
    *,
    n_conformers: int = N_CONFORMERS,
    n_optimise: int = N_OPTIMISE,
    seed: int = 0,
    use_xtb: bool | None = None,
) -> Conformer:
    """Find the lowest-energy conformer of a molecule (see the module docstring).

    Parameters
    ----------
    smiles:
        SMILES of a neutral molecule.
    n_conformers:
        ETKDG conformers embedded.
    n_optimise:
        Best-ranked conformers optimised with GFN2-xTB (0: none, keep the force-field
        geometry of the best-ranked one).
    seed:
        Embedding seed.
    use_xtb:
        ``None`` uses GFN2-xTB when tblite is installed; ``False`` ranks by force-field
        energy only (the result's ``ranking`` says which was used).

    Returns
    -------
    Conformer

    Examples
    --------
    >>> conf = lowest_conformer("CCOC(=O)C", use_xtb=False)
    >>> conf.ranking, conf.positions.shape
    ('MMFF94', (14, 3))
    """
    if use_xtb is None:
        use_xtb = have_xtb()
    t0 = time.perf_counter()
    ff = force_field_conformers(smiles, n_conformers=n_conformers, seed=seed)
    t1 = time.perf_counter()
    details: dict[str, Any] = {
        "n_found": len(ff.positions),
        "force_field": ff.force_field,
        "t_embed_s": t1 - t0,
    }
    if not use_xtb:
        best = int(np.argmin(ff.energies_kcal))
        return Conformer(ff.numbers, ff.positions[best], ff.force_field, details=details)
    points = [xtb_singlepoint(ff.numbers, pos) for pos in ff.positions]
    energies = [p[0] for p in points]
    details["sp_energies_hartree"] = energies
    details["sp_dipoles_debye"] = [float(np.linalg.norm(p[1])) for p in points]
    order = sorted(range(len(points)), key=energies.__getitem__)
    if n_optimise <= 0:
        best = order[0]
        energy, dipole, charges = points[best]
        details.update(chosen=best, opt_steps=0, opt_converged=None)
        details["t_xtb_s"] = time.perf_counter() - t1
        return Conformer(
            ff.numbers, ff.positions[best], "GFN2-xTB", dipole, charges, energy, details
        )
    candidates = []
    for idx in order[:n_optimise]:
        pos, steps, ok = xtb_optimise(ff.numbers, ff.positions[idx])
        energy, dipole, charges = xtb_singlepoint(ff.numbers, pos)
        candidates.append((energy, idx, pos, steps, ok, dipole, charges))
    energy, idx, pos, steps, ok, dipole, charges = min(candidates, key=lambda c: c[0])
    if not (math.isfinite(energy) and np.all(np.isfinite(dipole))):
        raise ValueError(f"GFN2-xTB gave a non-finite result for {smiles!r}")
    details.update(
        chosen=idx,
        opt_energies_hartree=[c[0] for c in candidates],
        opt_dipoles_debye=[float(np.linalg.norm(c[5])) for c in candidates],
        opt_steps=steps,
        opt_converged=ok,
        t_xtb_s=time.perf_counter() - t1,
    )
    return Conformer(ff.numbers, pos, "GFN2-xTB", dipole, charges, energy, details)
