"""Molecules (SMILES, SDF, MOL, RDKit molecules) to atom-bond networks through RDKit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
from rdkit import Chem, rdBase
from rdkit.Chem import AllChem

from .errors import StructureError
from .graph import (
    check_atomic_numbers,
    check_has_bonds,
    check_overlap_molecule,
    check_positions,
    set_degrees,
)

__all__ = ["from_mol", "from_smiles", "iter_mol_file"]


def from_smiles(
    smiles: str,
    *,
    explicit_h: bool = False,
    embed_3d: bool = False,
    seed: int = 0,
    name: str | None = None,
) -> nx.Graph:
    """Build the atom-bond network of a molecule given as SMILES.

    Parameters
    ----------
    smiles:
        The SMILES string. Several dot-separated components (salts, mixtures) are allowed.
    explicit_h:
        Make hydrogens explicit atoms (nodes) instead of a ``num_hs`` count on heavy atoms.
    embed_3d:
        Compute 3-D coordinates: ETKDGv3 embedding with ``seed``, then MMFF94 relaxation
        (hydrogens are added for the embedding and removed again unless ``explicit_h``).
    seed:
        Random seed of the embedding; the same seed gives the same coordinates.
    name:
        Stored as ``graph.graph["name"]``.

    Returns
    -------
    networkx.Graph
        See :func:`from_mol` for the attributes; ``graph.graph["source"] == "smiles"`` and
        ``graph.graph["smiles"]`` is the input.

    Raises
    ------
    StructureError
        Invalid SMILES, failed sanitisation (e.g. pentavalent carbon), dummy atoms ``*``, a
        molecule without bonds, or a failed 3-D embedding; the message quotes the SMILES.

    Examples
    --------
    >>> g = from_smiles("c1ccccc1")
    >>> g.number_of_nodes(), g.number_of_edges(), g.edges[0, 1]["bond_order"]
    (6, 6, 1.5)
    """
    label = f"SMILES {smiles!r}"
    if not isinstance(smiles, str) or not smiles.strip():
        raise StructureError(f"{label}: empty or not a string")
    with _quiet_rdkit():
        mol = Chem.MolFromSmiles(smiles, sanitize=False)
        if mol is None:
            raise StructureError(f"{label}: invalid SMILES (RDKit cannot parse it)")
        _sanitize(mol, label)
        if not explicit_h:
            mol = Chem.RemoveHs(mol)
    try:
        graph = from_mol(
            mol, explicit_h=explicit_h, embed_3d=embed_3d, seed=seed, name=name, source="smiles"
        )
    except StructureError as err:
        raise StructureError(f"{label}: {str(err).split(': ', 1)[-1]}") from None
    graph.graph["smiles"] = smiles
    return graph


def from_mol(
    mol: Chem.Mol,
    *,
    explicit_h: bool = False,
    embed_3d: bool = False,
    seed: int = 0,
    name: str | None = None,
    source: str = "mol",
) -> nx.Graph:
    """Build the atom-bond network of an RDKit molecule.

    Coordinates come from the molecule's first conformer if it is 3-D (2-D depictions are
    ignored), or from ETKDG + MMFF if ``embed_3d``. The input molecule is not modified.

    Parameters
    ----------
    mol:
        A sanitised RDKit molecule.
    explicit_h, embed_3d, seed, name:
        As in :func:`from_smiles`. ``name`` defaults to the molecule's ``_Name`` property.
    source:
        Stored as ``graph.graph["source"]`` (file path, ``"smiles"`` or ``"mol"``).

    Returns
    -------
    networkx.Graph
        Nodes are RDKit atom indices with attributes ``element``, ``atomic_number``,
        ``position`` (tuple in A, or None), ``degree`` (number of bonds to other atoms in the
        graph), ``num_hs`` (total attached hydrogens, 0 for explicit ones), ``formal_charge``,
        ``aromatic``, ``in_ring``. Edges carry ``bond_order`` (1, 1.5 aromatic, 2, 3),
        ``aromatic``, ``distance`` (A or None), ``shift`` ``(0, 0, 0)``, ``shifts``,
        ``distances`` and ``multiplicity`` 1. Graph attributes: ``source``, ``name``,
        ``periodic`` False, ``cell`` None, ``formula``.

    Raises
    ------
    StructureError
        For dummy/unknown atoms, NaN coordinates, overlapping atoms, no bonds, failed embedding.

    Examples
    --------
    >>> from rdkit import Chem
    >>> g = from_mol(Chem.MolFromSmiles("CC(=O)O"), explicit_h=True)
    >>> g.number_of_nodes()
    8
    """
    if name is None and mol.HasProp("_Name") and mol.GetProp("_Name").strip():
        name = mol.GetProp("_Name").strip()
    label = _label(mol, name, source)
    check_atomic_numbers([a.GetAtomicNum() for a in mol.GetAtoms()], label)
    if mol.GetNumAtoms() == 0:
        raise StructureError(f"{label}: the molecule has no atoms")
    mol = Chem.Mol(mol)
    if embed_3d:
        mol = _embed(mol, seed, explicit_h, label)
    elif explicit_h:
        with _quiet_rdkit():
            mol = Chem.AddHs(mol, addCoords=mol.GetNumConformers() > 0)
    positions = _positions(mol)
    if positions is not None:
        check_positions(positions, label)
        check_overlap_molecule(positions, label)

    graph = nx.Graph(
        source=source,
        name=name,
        periodic=False,
        cell=None,
        formula=Chem.rdMolDescriptors.CalcMolFormula(mol),
    )
    for atom in mol.GetAtoms():
        idx = atom.GetIdx()
        graph.add_node(
            idx,
            element=atom.GetSymbol(),
            atomic_number=atom.GetAtomicNum(),
            position=None if positions is None else tuple(float(x) for x in positions[idx]),
            num_hs=atom.GetTotalNumHs(),
            formal_charge=atom.GetFormalCharge(),
            aromatic=atom.GetIsAromatic(),
            in_ring=atom.IsInRing(),
        )
    for bond in mol.GetBonds():
        i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        dist = None
        if positions is not None:
            dist = float(np.linalg.norm(positions[i] - positions[j]))
        graph.add_edge(
            i,
            j,
            bond_order=float(bond.GetBondTypeAsDouble()),
            aromatic=bond.GetIsAromatic(),
            distance=dist,
            shift=(0, 0, 0),
            shifts=((0, 0, 0),),
            distances=(dist,),
            multiplicity=1,
        )
    has_h = any(d["num_hs"] for _, d in graph.nodes(data=True))
    if not has_h:
        check_has_bonds(graph, label)
    set_degrees(graph)
    return graph


def iter_mol_file(path: Path, kind: str, **kwargs: Any) -> Iterator[nx.Graph]:
    """Yield the graphs of every record of a molecule file (see :func:`read_molecules`)."""
    source = str(path)
    user_name = kwargs.pop("name", None)
    if kind in {".smi", ".smiles"}:
        lines = path.read_text().splitlines()
        records = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
        for number, line in enumerate(records, start=1):
            smiles, _, rest = line.strip().partition(" ")
            name = user_name or rest.strip() or None
            try:
                graph = from_smiles(smiles, name=name, **kwargs)
            except StructureError as err:
                raise StructureError(f"{source!r}, record {number}: {err}") from err
            graph.graph["source"] = source
            yield graph
        return
    label = repr(source)
    if kind == ".mol":
        with _quiet_rdkit():
            mol = Chem.MolFromMolFile(source, sanitize=False, removeHs=False)
        mols = [mol]
    else:
        supplier = Chem.SDMolSupplier(source, sanitize=False, removeHs=False)
        mols = _iter_supplier(supplier)
    count = 0
    for number, mol in enumerate(mols, start=1):
        where = f"{label}, record {number}"
        if mol is None:
            raise StructureError(f"{where}: cannot be parsed as a molecule (MOL/SDF block)")
        with _quiet_rdkit():
            _sanitize(mol, where)
            if not kwargs.get("explicit_h", False):
                mol = Chem.RemoveHs(mol)
        count += 1
        yield from_mol(mol, name=user_name, source=source, **kwargs)
    if count == 0:
        raise StructureError(f"{label}: the file holds no readable molecule record")


def _iter_supplier(supplier: Chem.SDMolSupplier) -> Iterator[Chem.Mol | None]:
    for _ in range(len(supplier)):
        with _quiet_rdkit():
            mol = next(supplier)
        yield mol


class _quiet_rdkit:  # noqa: N801 - used like a function
    """Context manager silencing RDKit's own logging while we convert its errors."""

    def __enter__(self) -> None:
        self._block = rdBase.BlockLogs()

    def __exit__(self, *exc: object) -> None:
        del self._block


def _sanitize(mol: Chem.Mol, label: str) -> None:
    try:
        Chem.SanitizeMol(mol)
    except Exception as err:  # RDKit raises several exception types here
        raise StructureError(f"{label}: RDKit sanitisation failed: {err}") from None


def _label(mol: Chem.Mol, name: str | None, source: str) -> str:
    if source not in {"mol", "smiles"}:
        return repr(source)
    if name:
        return repr(name)
    try:
        return f"molecule {Chem.MolToSmiles(mol)!r}"
    except Exception:  # pragma: no cover - unsanitisable input
        return "molecule"


def _positions(mol: Chem.Mol) -> np.ndarray | None:
    if mol.GetNumConformers() == 0:
        return None
    conf = mol.GetConformer()
    if not conf.Is3D():
        return None
    return np.asarray(conf.GetPositions(), dtype=float).reshape(-1, 3)


def _embed(mol: Chem.Mol, seed: int, explicit_h: bool, label: str) -> Chem.Mol:
    with _quiet_rdkit():
        molh = Chem.AddHs(mol)
        params = AllChem.ETKDGv3()
        params.randomSeed = int(seed)
        if AllChem.EmbedMolecule(molh, params) != 0:
            params.useRandomCoords = True
            if AllChem.EmbedMolecule(molh, params) != 0:
                raise StructureError(f"{label}: 3-D embedding (ETKDG) failed")
        if AllChem.MMFFHasAllMoleculeParams(molh):
            AllChem.MMFFOptimizeMolecule(molh, maxIters=500)
        return molh if explicit_h else Chem.RemoveHs(molh)
