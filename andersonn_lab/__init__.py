"""andersonn_lab: watch deep equilibrium models converge, with and without Anderson extrapolation.

The library is layered; each layer works without the ones above it:

* :mod:`andersonn_lab.solvers` -- batched fixed-point solvers on torch tensors.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
