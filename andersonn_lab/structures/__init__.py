"""Structures to atom-bond networks (:mod:`networkx` graphs) and node-neighbour images.

* :func:`from_smiles`, :func:`from_mol`, :func:`read_molecules` -- molecules through RDKit.
* :func:`from_atoms`, :func:`to_atoms` -- crystals, MOFs and ASE molecules through ASE.
* :func:`read_structure` -- any supported file, chosen by its name.
* :func:`node_neighbor_image`, :func:`image_atom_order`, :func:`pixel_atoms` -- images.
* :func:`electronegativity`, :func:`group`, :func:`period`, :func:`valence_electrons` --
  element properties of the ``"elements"`` and ``"electrons"`` image encodings.
* :func:`annotate_charges`, :func:`force_field_charges` -- partial charges of a 3-D
  molecule and each atom's share of its dipole (the ``"charges"`` encoding).
* :func:`largest_cavity_diameter` -- pore size of a periodic structure.
"""

from .charges import annotate_charges, force_field_charges
from .crystals import from_atoms, to_atoms
from .elements import electronegativity, group, period, valence_electrons
from .errors import ImageOverflowWarning, StructureError
from .graph import canonical_order, canonical_ranks, coordination_numbers
from .images import CHANNELS, image_atom_order, node_neighbor_image, pixel_atoms
from .molecules import from_mol, from_smiles
from .pores import largest_cavity_diameter
from .reading import read_molecules, read_structure

__all__ = [
    "CHANNELS",
    "ImageOverflowWarning",
    "StructureError",
    "annotate_charges",
    "canonical_order",
    "canonical_ranks",
    "coordination_numbers",
    "electronegativity",
    "force_field_charges",
    "from_atoms",
    "from_mol",
    "from_smiles",
    "group",
    "image_atom_order",
    "largest_cavity_diameter",
    "node_neighbor_image",
    "period",
    "pixel_atoms",
    "read_molecules",
    "read_structure",
    "to_atoms",
    "valence_electrons",
]
