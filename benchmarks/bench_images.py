"""Benchmark: atom-bond graphs -> node-neighbour images per second on one CPU thread.

Molecules: the first 500 drug-sized molecules (18-40 heavy atoms) of RDKit's bundled
``Data/NCI/first_5K.smi``; if that file is missing, a list of well-known drugs (below) repeated
to 500. Crystals: a few ASE bulk structures (and supercells). MOFs: the first ``N_MOFS``
shipped CoRE MOF 2019 structures, as ``"adjacency"`` and as ``"framework"`` images (the MOFs
recipe's encoding: classes of equivalent atoms, environments to 10 Å, whole-cell scalars).
Graph construction is not timed; only ``node_neighbor_image`` is. Target: at least 500
molecules per second.

Run with ``python benchmarks/bench_images.py``.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import networkx as nx
import torch
from ase.build import bulk
from rdkit import Chem, RDConfig, rdBase

from andersonn_lab.structures import from_atoms, from_smiles, node_neighbor_image

TARGET = 500.0
N_MOLECULES = 500
N_MOFS = 100

DRUGS = [
    "CC(=O)Oc1ccccc1C(=O)O",  # aspirin
    "CC(C)Cc1ccc(cc1)C(C)C(=O)O",  # ibuprofen
    "CC(=O)Nc1ccc(O)cc1",  # paracetamol
    "CN1C=NC2=C1C(=O)N(C(=O)N2C)C",  # caffeine
    "CN1CCC23C4C1CC5=C2C(=C(C=C5)O)OC3C(C=C4)O",  # morphine
    "CC1=C(C(=O)N(N1C)C2=CC=CC=C2)N(C)CS(=O)(=O)O",  # metamizole
    "COC1=CC=C(C=C1)CCN(C)C(C)CC2=CC=CC=C2",  # a phenethylamine
    "CN(C)C(=N)N=C(N)N",  # metformin
    "CC(C)NCC(O)COc1cccc2ccccc12",  # propranolol
    "CC1(C)SC2C(NC(=O)Cc3ccccc3)C(=O)N2C1C(=O)O",  # penicillin G
    "OC(=O)CC(O)(CC(O)=O)C(O)=O",  # citric acid
    "CN1CCN(CC1)C2=NC3=CC=CC=C3NC4=C2C=C(C=C4)Cl",  # clozapine-like
    "COc1ccc2[nH]cc(CCNC(C)=O)c2c1",  # melatonin
    "Clc1ccc(cc1)C(c1ccccc1)N1CCN(CC1)CCOCC(=O)O",  # cetirizine
    "CC(C)(C)NCC(O)c1ccc(O)c(CO)c1",  # salbutamol
    "O=C(O)c1ccccc1O",  # salicylic acid
    "CCN(CC)CC(=O)Nc1c(C)cccc1C",  # lidocaine
    "CN1C(=O)CN=C(c2ccccc2)c2cc(Cl)ccc12",  # diazepam
    "CC12CCC3C(CCC4=CC(=O)CCC34C)C1CCC2O",  # testosterone
    "NC(=O)c1cnccn1",  # pyrazinamide
]


def load_molecules() -> list[nx.Graph]:
    """Return ``N_MOLECULES`` molecule graphs (no 3-D coordinates)."""
    path = Path(RDConfig.RDDataDir) / "NCI" / "first_5K.smi"
    smiles: list[str] = []
    if path.is_file():
        block = rdBase.BlockLogs()  # noqa: F841 - silences RDKit while alive
        for line in path.read_text().splitlines():
            smi = line.split()[0] if line.strip() else ""
            mol = Chem.MolFromSmiles(smi) if smi else None
            if mol is not None and 18 <= mol.GetNumAtoms() <= 40:
                smiles.append(smi)
            if len(smiles) == N_MOLECULES:
                break
        del block
    if len(smiles) < N_MOLECULES:
        smiles = (DRUGS * (N_MOLECULES // len(DRUGS) + 1))[:N_MOLECULES]
    return [from_smiles(s) for s in smiles]


def load_crystals() -> list[nx.Graph]:
    """Return a few crystal graphs, from 1 to 64 atoms per cell."""
    structures = [
        (bulk("Si", "diamond", a=5.431), 1.1),
        (bulk("NaCl", "rocksalt", a=5.64), 1.1),
        (bulk("Fe", "bcc", a=2.87), 1.0),
        (bulk("Cu", "fcc", a=3.61, cubic=True), 1.0),
        (bulk("Si", "diamond", a=5.431, cubic=True).repeat((2, 2, 2)), 1.1),
    ]
    return [from_atoms(atoms, cutoff_scale=scale) for atoms, scale in structures]


def load_mofs() -> list[nx.Graph]:
    """Return the graphs of the first ``N_MOFS`` shipped MOFs that have bonds."""
    from andersonn_lab.datasets.mofs import load_entries
    from andersonn_lab.structures import StructureError

    graphs = []
    for entry in load_entries():
        try:
            graphs.append(from_atoms(entry.structure, name=entry.id))
        except StructureError:
            continue
        if len(graphs) == N_MOFS:
            break
    return graphs


def drug_conformer_rates(n: int = 300) -> tuple[float, float]:
    """Shipped drugs per second: 3-D network with MMFF charges, then ``"charges"`` images.

    The first number times what a ``"charges"`` image needs beyond a SMILES graph (the
    conformer's network, MMFF94 charges, dipole shares); the second only the image.
    """
    from andersonn_lab.datasets.drugs import conformer_graph, load_entries

    mols = [entry.info["mol"] for entry in load_entries()[:n]]
    start = time.perf_counter()
    graphs = [conformer_graph(mol, charges="mmff") for mol in mols]
    build = len(mols) / (time.perf_counter() - start)
    return build, rate(graphs, 3, encoding="charges", size=48)


def rate(graphs: list[nx.Graph], repeats: int, **kwargs: object) -> float:
    """Return graphs -> images per second (best of ``repeats`` passes)."""
    best = float("inf")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # crystal supercells overflow 32 atoms on purpose
        for _ in range(repeats):
            start = time.perf_counter()
            for graph in graphs:
                node_neighbor_image(graph, **kwargs)
            best = min(best, time.perf_counter() - start)
    return len(graphs) / best


def main() -> None:
    torch.set_num_threads(1)
    molecules = load_molecules()
    crystals = load_crystals()
    atoms = sum(g.number_of_nodes() for g in molecules) / len(molecules)
    print(f"{len(molecules)} molecules, {atoms:.1f} heavy atoms on average; 1 torch thread")
    for encoding in ("adjacency", "neighbors"):
        per_s = rate(molecules, repeats=3, encoding=encoding)
        print(
            f"molecules, {encoding:9s}: {per_s:7.0f} molecules/s "
            f"({per_s / TARGET:.2f}x the {TARGET:.0f}/s target)"
        )
        print(f"crystals,  {encoding:9s}: {rate(crystals, 20, encoding=encoding):7.0f} crystals/s")
    build, image = drug_conformer_rates()
    print(f"drugs, 3-D charges graph (conformer, MMFF charges): {build:7.0f} drugs/s")
    print(f"drugs, charges image (48 rows):                  {image:7.0f} drugs/s")
    mofs = load_mofs()
    atoms = sum(g.number_of_nodes() for g in mofs) / len(mofs)
    print(f"{len(mofs)} MOFs, {atoms:.0f} atoms per cell on average")
    for encoding in ("adjacency", "framework"):
        print(f"MOFs,      {encoding:9s}: {rate(mofs, 2, encoding=encoding):7.1f} MOFs/s")


if __name__ == "__main__":
    main()
