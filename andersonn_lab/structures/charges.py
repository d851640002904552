"""Force-field partial charges of a 3-D molecule, and each atom's share of its dipole.

A molecule's dipole moment in the point-charge picture is ``mu = sum_a q_a (r_a - c)``; for a
neutral molecule it does not depend on the origin ``c``. Projecting each atom's term on the
direction of ``mu`` splits the magnitude ``|mu|`` into per-atom shares that add up to it
exactly, so an image can hold a molecule's polarity atom by atom.

The charges come from a force field (MMFF94, or Gasteiger where MMFF has no parameters),
not from the quantum-chemical method that labels the drugs task (GFN2-xTB): they are what a
user can compute in milliseconds for any molecule, and they are a different, much cruder model
of the charge distribution.

Examples
--------
>>> from rdkit import Chem
>>> from rdkit.Chem import AllChem
>>> mol = Chem.AddHs(Chem.MolFromSmiles("O"))
>>> _ = AllChem.EmbedMolecule(mol, randomSeed=1)
>>> charges, method = force_field_charges(mol)
>>> method, round(float(charges.sum()), 6)
('MMFF94', 0.0)
"""

from __future__ import annotations

from typing import Literal

import networkx as nx
import numpy as np
from rdkit import Chem
from rdkit.Chem import AllChem, rdPartialCharges

from .errors import StructureError

__all__ = ["DEBYE_PER_E_ANGSTROM", "annotate_charges", "dipole_shares", "force_field_charges"]

DEBYE_PER_E_ANGSTROM = 4.80320471
"""One elementary charge times one angstrom, in debye."""

ChargeModel = Literal["mmff", "gasteiger"]


def force_field_charges(mol: Chem.Mol, model: ChargeModel = "mmff") -> tuple[np.ndarray, str]:
    """Partial charges (e) of every atom of a molecule with explicit hydrogens.

    Parameters
    ----------
    mol:
        An RDKit molecule whose hydrogens are atoms (``Chem.AddHs``).
    model:
        ``"mmff"``: MMFF94 charges, falling back to Gasteiger where MMFF has no parameters;
        ``"gasteiger"``: Gasteiger-Marsili charges.

    Returns
    -------
    tuple
        ``(charges, model_used)``; ``model_used`` is ``"MMFF94"`` or ``"Gasteiger"``.

    Raises
    ------
    StructureError
        If a charge is not finite.
    """
    if model not in ("mmff", "gasteiger"):
        raise ValueError(f"unknown charge model {model!r}; use 'mmff' or 'gasteiger'")
    if model == "mmff":
        props = AllChem.MMFFGetMoleculeProperties(mol)
        if props is not None:
            charges = np.array([props.GetMMFFPartialCharge(i) for i in range(mol.GetNumAtoms())])
            used = "MMFF94"
        else:
            model = "gasteiger"
    if model == "gasteiger":
        work = Chem.Mol(mol)
        rdPartialCharges.ComputeGasteigerCharges(work)
        charges = np.array([a.GetDoubleProp("_GasteigerCharge") for a in work.GetAtoms()])
        used = "Gasteiger"
    if not np.all(np.isfinite(charges)):
        raise StructureError(f"molecule {Chem.MolToSmiles(mol)!r}: non-finite {used} charges")
    return charges.astype(float), used


def dipole_shares(positions: np.ndarray, charges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Point-charge dipole vector (debye) and each atom's share of its magnitude.

    The share of atom ``a`` is ``q_a (r_a - c) . mu_hat`` with ``c`` the centroid; the shares
    sum to ``|mu|`` exactly (to 0 for a dipole-free molecule, whose shares are all 0).

    Examples
    --------
    >>> pos = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    >>> mu, shares = dipole_shares(pos, np.array([-0.5, 0.5]))
    >>> np.round(mu, 4).tolist(), np.round(shares, 4).tolist()
    ([2.4016, 0.0, 0.0], [1.2008, 1.2008])
    """
    positions = np.asarray(positions, dtype=float)
    charges = np.asarray(charges, dtype=float)
    terms = charges[:, None] * (positions - positions.mean(axis=0)) * DEBYE_PER_E_ANGSTROM
    mu = terms.sum(axis=0)
    norm = float(np.linalg.norm(mu))
    if norm < 1e-12:
        return mu, np.zeros(len(charges))
    return mu, terms @ (mu / norm)


def annotate_charges(graph: nx.Graph, mol: Chem.Mol, model: ChargeModel = "mmff") -> nx.Graph:
    """Store force-field charges and dipole shares on a molecule's atom-bond network.

    Each node gets ``partial_charge`` (e) and ``dipole_share`` (debye); a heavy atom whose
    hydrogens are implicit in the graph carries their charges and shares too, so the values
    over the graph's nodes still sum to 0 and to ``|mu|``. The graph gets ``dipole_debye``
    (the force-field dipole magnitude), ``dipole_vector_debye`` and ``charge_model``.

    Parameters
    ----------
    graph:
        A network from :func:`~andersonn_lab.structures.from_mol` whose nodes are atom indices
        of ``mol`` (all atoms, or the heavy atoms of ``Chem.RemoveHs(mol)``: RDKit keeps heavy
        atoms first).
    mol:
        The molecule with explicit hydrogens and a 3-D conformer.
    model:
        See :func:`force_field_charges`.

    Returns
    -------
    networkx.Graph
        The same graph, annotated in place.

    Raises
    ------
    StructureError
        If the molecule has no 3-D conformer or a graph node is not an atom of ``mol``.
    """
    if mol.GetNumConformers() == 0 or not mol.GetConformer().Is3D():
        raise StructureError(f"molecule {graph.graph.get('name')!r}: no 3-D conformer")
    charges, used = force_field_charges(mol, model)
    mu, shares = dipole_shares(mol.GetConformer().GetPositions(), charges)
    owner = {}
    for atom in mol.GetAtoms():
        idx = atom.GetIdx()
        owner[idx] = idx
        if atom.GetAtomicNum() == 1 and idx not in graph and atom.GetDegree() == 1:
            owner[idx] = atom.GetNeighbors()[0].GetIdx()
    q = dict.fromkeys(graph.nodes, 0.0)
    s = dict.fromkeys(graph.nodes, 0.0)
    for idx, node in owner.items():
        if node not in q:
            raise StructureError(f"atom {idx} of the molecule is not in its graph")
        q[node] += float(charges[idx])
        s[node] += float(shares[idx])
    nx.set_node_attributes(graph, q, "partial_charge")
    nx.set_node_attributes(graph, s, "dipole_share")
    graph.graph.update(
        dipole_debye=float(np.linalg.norm(mu)),
        dipole_vector_debye=tuple(float(x) for x in mu),
        charge_model=used,
    )
    return graph
