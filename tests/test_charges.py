"""Force-field charges, dipole shares and the ``"charges"`` image encoding, checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import AllChem

from andersonn_lab.datasets import drugs
from andersonn_lab.datasets.tasks import _graph
from andersonn_lab.structures import (
    StructureError,
    annotate_charges,
    from_mol,
    from_smiles,
    image_atom_order,
    node_neighbor_image,
)
from andersonn_lab.structures.charges import DEBYE_PER_E_ANGSTROM, dipole_shares


def _embedded(smiles: str) -> Chem.Mol:
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    assert AllChem.EmbedMolecule(mol, randomSeed=7) == 0
    AllChem.MMFFOptimizeMolecule(mol)
    return mol


def test_dipole_shares_sum_to_the_dipole_whatever_the_origin() -> None:
    rng = np.random.default_rng(0)
    pos = rng.normal(size=(6, 3))
    q = rng.normal(size=6)
    q -= q.mean()  # neutral
    mu, shares = dipole_shares(pos, q)
    # Independent reference: the dipole about an arbitrary origin, in e*A, converted to D.
    ref = (q[:, None] * (pos - np.array([5.0, -3.0, 2.0]))).sum(axis=0) * DEBYE_PER_E_ANGSTROM
    np.testing.assert_allclose(mu, ref, atol=1e-12)
    assert shares.sum() == pytest.approx(np.linalg.norm(ref), abs=1e-12)


def test_charges_image_pixels_by_hand() -> None:
    mol = _embedded("C=O")  # formaldehyde: C, O, then two H on C
    props = AllChem.MMFFGetMoleculeProperties(mol)
    q = [props.GetMMFFPartialCharge(i) for i in range(mol.GetNumAtoms())]
    pos = mol.GetConformer().GetPositions()
    graph = annotate_charges(from_mol(Chem.RemoveHs(mol)), mol)
    order = image_atom_order(graph)
    img = node_neighbor_image(graph, encoding="charges", size=4)
    r_c, r_o = order.index(0), order.index(1)
    # Carbon carries its two hydrogens' charges; the molecule is neutral.
    assert img[3, r_c, r_c] == pytest.approx(q[0] + q[2] + q[3], abs=1e-6)
    assert img[3, r_o, r_o] == pytest.approx(q[1], abs=1e-6)
    assert float(img[3].sum()) == pytest.approx(0.0, abs=1e-6)
    # Shares: projections on the dipole direction, halved by the 2 D scale.
    centred = pos - pos.mean(axis=0)
    mu = (np.array(q)[:, None] * centred).sum(axis=0) * DEBYE_PER_E_ANGSTROM
    unit = mu / np.linalg.norm(mu)
    share_o = q[1] * centred[1] @ unit * DEBYE_PER_E_ANGSTROM
    assert img[4, r_o, r_o] == pytest.approx(share_o / 2.0, abs=1e-5)
    assert 2.0 * float(img[4].sum()) == pytest.approx(np.linalg.norm(mu), abs=1e-5)
    # The bond length is real: exp(-d / 1.5 A) of the embedded C=O distance.
    d = np.linalg.norm(pos[0] - pos[1])
    assert img[2, r_c, r_o] == pytest.approx(math.exp(-d / 1.5), abs=1e-6)
    assert img[3, r_c, r_o] == 0 and img[4, r_c, r_o] == 0
    # The whole-molecule dipole, / 5 D, on every atom's diagonal pixel and nowhere else.
    assert img[5, r_c, r_c] == img[5, r_o, r_o] == pytest.approx(np.linalg.norm(mu) / 5, abs=1e-5)
    assert float(img[5].sum()) == pytest.approx(2 * np.linalg.norm(mu) / 5, abs=1e-5)


def test_charges_encoding_without_charges_names_the_fix() -> None:
    with pytest.raises(StructureError, match="annotate_charges"):
        node_neighbor_image(from_smiles("CCO", name="ethanol"), encoding="charges")


def test_drug_task_graph_uses_the_shipped_conformer() -> None:
    entry = drugs.load_entries()[0]
    graph = _graph(entry, {"conformer": True, "charges": "mmff"})
    mol = entry.info["mol"]
    pos = mol.GetConformer().GetPositions()
    for i, j, data in graph.edges(data=True):
        assert data["distance"] == pytest.approx(np.linalg.norm(pos[i] - pos[j]), abs=1e-9)
    shares = sum(d["dipole_share"] for _, d in graph.nodes(data=True))
    assert shares == pytest.approx(graph.graph["dipole_debye"], abs=1e-9)
    with pytest.raises(ValueError, match="conformer=True"):
        _graph(entry, {"charges": "mmff"})
