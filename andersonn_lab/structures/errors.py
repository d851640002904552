"""Errors and warnings raised while turning structures into graphs and images."""

from __future__ import annotations

__all__ = ["ImageOverflowWarning", "StructureError"]


class StructureError(ValueError):
    """A structure cannot be turned into an atom-bond network or an image.

    The message always names the offending input: the SMILES string, the file path, or the
    name/chemical formula of the :class:`ase.Atoms`.

    Examples
    --------
    >>> from andersonn_lab.structures import StructureError, from_smiles
    >>> try:
    ...     from_smiles("C(C)(C)(C)(C)C")
    ... except StructureError as err:
    ...     print("C(C)(C)(C)(C)C" in str(err))
    True
    """


class ImageOverflowWarning(UserWarning):
    """A structure has more atoms than an image has rows; the extra atoms were cropped.

    Examples
    --------
    >>> import warnings
    >>> from andersonn_lab.structures import from_smiles, node_neighbor_image
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = node_neighbor_image(from_smiles("CCCCCC"), size=4)
    >>> caught[0].category is ImageOverflowWarning
    True
    """
